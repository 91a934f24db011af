package governance

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPeriodStartEnd(t *testing.T) {
	utc := time.UTC
	ny := mustLoad(t, "America/New_York")
	berlin := mustLoad(t, "Europe/Berlin")
	kolkata := mustLoad(t, "Asia/Kolkata")
	santiago := mustLoad(t, "America/Santiago")
	havana := mustLoad(t, "America/Havana")
	cairo := mustLoad(t, "Africa/Cairo")
	u := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, utc) }

	tests := []struct {
		name       string
		p          Period
		loc        *time.Location
		at         time.Time
		start, end time.Time // compared as instants
		length     time.Duration
	}{
		// Months.
		{"Jan 31 → Feb", PeriodMonth, utc, time.Date(2025, 1, 31, 23, 59, 59, 999999999, utc), u(2025, 1, 1, 0, 0), u(2025, 2, 1, 0, 0), 31 * 24 * time.Hour},
		{"February", PeriodMonth, utc, u(2025, 2, 15, 12, 0), u(2025, 2, 1, 0, 0), u(2025, 3, 1, 0, 0), 28 * 24 * time.Hour},
		{"Dec → Jan next year", PeriodMonth, utc, u(2025, 12, 31, 12, 0), u(2025, 12, 1, 0, 0), u(2026, 1, 1, 0, 0), 31 * 24 * time.Hour},
		{"first instant of a month", PeriodMonth, utc, u(2025, 3, 1, 0, 0), u(2025, 3, 1, 0, 0), u(2025, 4, 1, 0, 0), 31 * 24 * time.Hour},
		{"leap February 2028", PeriodMonth, utc, u(2028, 2, 29, 23, 0), u(2028, 2, 1, 0, 0), u(2028, 3, 1, 0, 0), 29 * 24 * time.Hour},
		{"2100 is not leap", PeriodMonth, utc, u(2100, 2, 28, 23, 0), u(2100, 2, 1, 0, 0), u(2100, 3, 1, 0, 0), 28 * 24 * time.Hour},
		{"2000 is leap", PeriodMonth, utc, u(2000, 2, 10, 0, 0), u(2000, 2, 1, 0, 0), u(2000, 3, 1, 0, 0), 29 * 24 * time.Hour},
		// Days.
		{"Feb 28 2028 → Feb 29", PeriodDay, utc, u(2028, 2, 28, 10, 0), u(2028, 2, 28, 0, 0), u(2028, 2, 29, 0, 0), 24 * time.Hour},
		{"Feb 29 2028", PeriodDay, utc, u(2028, 2, 29, 10, 0), u(2028, 2, 29, 0, 0), u(2028, 3, 1, 0, 0), 24 * time.Hour},
		{"Feb 28 2100 → Mar 1", PeriodDay, utc, u(2100, 2, 28, 10, 0), u(2100, 2, 28, 0, 0), u(2100, 3, 1, 0, 0), 24 * time.Hour},
		{"Dec 31 → Jan 1", PeriodDay, utc, u(2025, 12, 31, 23, 59), u(2025, 12, 31, 0, 0), u(2026, 1, 1, 0, 0), 24 * time.Hour},
		{"last nanosecond of a day", PeriodDay, utc, time.Date(2025, 6, 1, 23, 59, 59, 999999999, utc), u(2025, 6, 1, 0, 0), u(2025, 6, 2, 0, 0), 24 * time.Hour},
		// Weeks start on Monday.
		{"Sunday belongs to the week before", PeriodWeek, utc, u(2025, 6, 1, 15, 0), u(2025, 5, 26, 0, 0), u(2025, 6, 2, 0, 0), 7 * 24 * time.Hour},
		{"Monday midnight starts a week", PeriodWeek, utc, u(2025, 6, 2, 0, 0), u(2025, 6, 2, 0, 0), u(2025, 6, 9, 0, 0), 7 * 24 * time.Hour},
		{"last nanosecond of Sunday", PeriodWeek, utc, time.Date(2025, 6, 8, 23, 59, 59, 999999999, utc), u(2025, 6, 2, 0, 0), u(2025, 6, 9, 0, 0), 7 * 24 * time.Hour},
		{"week across a year", PeriodWeek, utc, u(2025, 1, 1, 12, 0), u(2024, 12, 30, 0, 0), u(2025, 1, 6, 0, 0), 7 * 24 * time.Hour},
		{"week across a month", PeriodWeek, utc, u(2025, 7, 31, 12, 0), u(2025, 7, 28, 0, 0), u(2025, 8, 4, 0, 0), 7 * 24 * time.Hour},
		// Hours.
		{"hour", PeriodHour, utc, time.Date(2025, 6, 1, 10, 59, 59, 999999999, utc), u(2025, 6, 1, 10, 0), u(2025, 6, 1, 11, 0), time.Hour},
		{"top of the hour", PeriodHour, utc, u(2025, 6, 1, 10, 0), u(2025, 6, 1, 10, 0), u(2025, 6, 1, 11, 0), time.Hour},
		{"hour across midnight", PeriodHour, utc, u(2025, 12, 31, 23, 30), u(2025, 12, 31, 23, 0), u(2026, 1, 1, 0, 0), time.Hour},
		// Total.
		{"total", PeriodTotal, utc, u(2025, 6, 1, 10, 0), time.Unix(0, 0), time.Time{}, 0},
		{"total in a zone", PeriodTotal, kolkata, u(1999, 6, 1, 10, 0), time.Unix(0, 0), time.Time{}, 0},
		{"nil location is UTC", PeriodDay, nil, u(2025, 6, 1, 23, 30), u(2025, 6, 1, 0, 0), u(2025, 6, 2, 0, 0), 24 * time.Hour},

		// New York: clocks spring forward on 2025-03-09 at 02:00 EST (07:00
		// UTC) and fall back on 2025-11-02 at 02:00 EDT (06:00 UTC).
		{"NY 23-hour day", PeriodDay, ny, u(2025, 3, 9, 16, 0), u(2025, 3, 9, 5, 0), u(2025, 3, 10, 4, 0), 23 * time.Hour},
		{"NY 23-hour day, before the change", PeriodDay, ny, u(2025, 3, 9, 6, 30), u(2025, 3, 9, 5, 0), u(2025, 3, 10, 4, 0), 23 * time.Hour},
		{"NY 25-hour day", PeriodDay, ny, u(2025, 11, 2, 17, 0), u(2025, 11, 2, 4, 0), u(2025, 11, 3, 5, 0), 25 * time.Hour},
		{"NY day after the change", PeriodDay, ny, u(2025, 11, 3, 4, 30), u(2025, 11, 2, 4, 0), u(2025, 11, 3, 5, 0), 25 * time.Hour},
		{"NY hour before spring forward", PeriodHour, ny, u(2025, 3, 9, 6, 59), u(2025, 3, 9, 6, 0), u(2025, 3, 9, 7, 0), time.Hour},
		{"NY hour after spring forward", PeriodHour, ny, u(2025, 3, 9, 7, 30), u(2025, 3, 9, 7, 0), u(2025, 3, 9, 8, 0), time.Hour},
		{"NY first 01:30 EDT", PeriodHour, ny, u(2025, 11, 2, 5, 30), u(2025, 11, 2, 5, 0), u(2025, 11, 2, 6, 0), time.Hour},
		{"NY second 01:30 EST", PeriodHour, ny, u(2025, 11, 2, 6, 30), u(2025, 11, 2, 6, 0), u(2025, 11, 2, 7, 0), time.Hour},
		{"NY week with a 23-hour day", PeriodWeek, ny, u(2025, 3, 9, 16, 0), u(2025, 3, 3, 5, 0), u(2025, 3, 10, 4, 0), 167 * time.Hour},
		{"NY March", PeriodMonth, ny, u(2025, 3, 20, 0, 0), u(2025, 3, 1, 5, 0), u(2025, 4, 1, 4, 0), 31*24*time.Hour - time.Hour},
		{"NY new year in UTC is still December", PeriodMonth, ny, u(2026, 1, 1, 3, 0), u(2025, 12, 1, 5, 0), u(2026, 1, 1, 5, 0), 31 * 24 * time.Hour},

		// Berlin: spring forward 2025-03-30 02:00 CET (01:00 UTC), fall back
		// 2025-10-26 03:00 CEST (01:00 UTC).
		{"Berlin 23-hour day", PeriodDay, berlin, u(2025, 3, 30, 12, 0), u(2025, 3, 29, 23, 0), u(2025, 3, 30, 22, 0), 23 * time.Hour},
		{"Berlin 25-hour day", PeriodDay, berlin, u(2025, 10, 26, 12, 0), u(2025, 10, 25, 22, 0), u(2025, 10, 26, 23, 0), 25 * time.Hour},
		{"Berlin first 02:30 CEST", PeriodHour, berlin, u(2025, 10, 26, 0, 30), u(2025, 10, 26, 0, 0), u(2025, 10, 26, 1, 0), time.Hour},
		{"Berlin second 02:30 CET", PeriodHour, berlin, u(2025, 10, 26, 1, 30), u(2025, 10, 26, 1, 0), u(2025, 10, 26, 2, 0), time.Hour},
		{"Berlin October", PeriodMonth, berlin, u(2025, 10, 31, 22, 59), u(2025, 9, 30, 22, 0), u(2025, 10, 31, 23, 0), 31*24*time.Hour + time.Hour},
		{"Berlin November begins at 23:00 UTC", PeriodMonth, berlin, u(2025, 10, 31, 23, 0), u(2025, 10, 31, 23, 0), u(2025, 11, 30, 23, 0), 30 * 24 * time.Hour},

		// Kolkata is +05:30 all year: its hours start at half past in UTC.
		{"Kolkata hour", PeriodHour, kolkata, u(2025, 6, 1, 10, 45), u(2025, 6, 1, 10, 30), u(2025, 6, 1, 11, 30), time.Hour},
		{"Kolkata hour, UTC top of the hour", PeriodHour, kolkata, u(2025, 6, 1, 11, 0), u(2025, 6, 1, 10, 30), u(2025, 6, 1, 11, 30), time.Hour},
		{"Kolkata day is already tomorrow", PeriodDay, kolkata, u(2025, 6, 1, 20, 0), u(2025, 6, 1, 18, 30), u(2025, 6, 2, 18, 30), 24 * time.Hour},
		{"Kolkata month", PeriodMonth, kolkata, u(2025, 5, 31, 19, 0), u(2025, 5, 31, 18, 30), u(2025, 6, 30, 18, 30), 30 * 24 * time.Hour},
		{"Kolkata week", PeriodWeek, kolkata, u(2025, 6, 1, 18, 29), u(2025, 5, 25, 18, 30), u(2025, 6, 1, 18, 30), 7 * 24 * time.Hour},

		// Zones whose DST change skips local midnight: the day starts at the
		// change, 01:00, and the day before ends there.
		{"Santiago day without midnight", PeriodDay, santiago, u(2025, 9, 7, 12, 0), u(2025, 9, 7, 4, 0), u(2025, 9, 8, 3, 0), 23 * time.Hour},
		{"Santiago day before it", PeriodDay, santiago, u(2025, 9, 7, 3, 30), u(2025, 9, 6, 4, 0), u(2025, 9, 7, 4, 0), 24 * time.Hour},
		{"Santiago week with it", PeriodWeek, santiago, u(2025, 9, 7, 12, 0), u(2025, 9, 1, 4, 0), u(2025, 9, 8, 3, 0), 7*24*time.Hour - time.Hour},
		{"Havana day without midnight", PeriodDay, havana, u(2025, 3, 9, 12, 0), u(2025, 3, 9, 5, 0), u(2025, 3, 10, 4, 0), 23 * time.Hour},
		{"Cairo day without midnight", PeriodDay, cairo, u(2025, 4, 25, 12, 0), u(2025, 4, 24, 22, 0), u(2025, 4, 25, 21, 0), 23 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := tc.p.Start(tc.at, tc.loc)
			if !start.Equal(tc.start) {
				t.Errorf("Start(%s) = %s, want %s", tc.at, start.UTC(), tc.start.UTC())
			}
			wantLoc := tc.loc
			if wantLoc == nil {
				wantLoc = time.UTC
			}
			if tc.p != PeriodTotal && start.Location() != wantLoc {
				t.Errorf("Start is in %s, want %s", start.Location(), wantLoc)
			}
			end := tc.p.End(start)
			if !end.Equal(tc.end) {
				t.Errorf("End(%s) = %s, want %s", start.UTC(), end.UTC(), tc.end.UTC())
			}
			if tc.p != PeriodTotal {
				if got := end.Sub(start); got != tc.length {
					t.Errorf("period lasts %s, want %s", got, tc.length)
				}
				if tc.at.Before(start) || !tc.at.Before(end) {
					t.Errorf("%s is not in [%s, %s)", tc.at.UTC(), start.UTC(), end.UTC())
				}
			}
		})
	}
}

// TestPeriodPartition checks, at random instants over 50 years in zones with
// awkward rules, that the period containing t contains t, that its end is
// where the next period starts, and that its start is its own start.
func TestPeriodPartition(t *testing.T) {
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu",
		"America/Santiago", "America/Havana", "Africa/Cairo", "America/Sao_Paulo", "Pacific/Chatham",
		"Australia/Lord_Howe", "Pacific/Apia"}
	rng := rand.New(rand.NewPCG(1, 2))
	from := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	to := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, z := range zones {
		loc := mustLoad(t, z)
		for range 4000 {
			at := time.Unix(0, from+rng.Int64N(to-from))
			for _, p := range []Period{PeriodHour, PeriodDay, PeriodWeek, PeriodMonth} {
				start := p.Start(at, loc)
				end := p.End(start)
				if at.Before(start) || !at.Before(end) {
					t.Fatalf("%s %s at %s: [%s, %s) does not contain it", z, p, at.In(loc), start, end)
				}
				if z == "Australia/Lord_Howe" && p == PeriodHour {
					continue // half-hour DST shifts: hours there may overlap
				}
				if next := p.Start(end, loc); !next.Equal(end) {
					t.Fatalf("%s %s at %s: ends at %s but the next one starts at %s", z, p, at.In(loc), end, next)
				}
				if again := p.Start(start, loc); !again.Equal(start) {
					t.Fatalf("%s %s at %s: starts at %s, whose own period starts at %s", z, p, at.In(loc), start, again)
				}
			}
		}
	}
}

func TestFormatUSD(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{0, "$0.00"},
		{5 * Dollar, "$5.00"},
		{Dollar / 10, "$0.10"},
		{72 * Dollar / 1000, "$0.072"},
		{123, "$0.000000123"},
		{1, "$0.000000001"},
		{1234*Dollar + 567_890_123, "$1234.567890123"},
		{50 * Dollar / 100, "$0.50"},
		{-3 * Dollar / 2, "-$1.50"},
		{-1, "-$0.000000001"},
	}
	for _, tc := range tests {
		if got := FormatUSD(tc.m); got != tc.want {
			t.Errorf("FormatUSD(%d) = %q, want %q", int64(tc.m), got, tc.want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	for _, p := range []Period{PeriodTotal, PeriodHour, PeriodDay, PeriodWeek, PeriodMonth} {
		got, err := ParsePeriod(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	for _, s := range []string{"", "daily", "Day", "year", "unknown", "minute"} {
		if _, err := ParsePeriod(s); err == nil {
			t.Errorf("ParsePeriod(%q) succeeded", s)
		}
	}
	adjectives := map[Period]string{PeriodTotal: "total", PeriodHour: "hourly", PeriodDay: "daily", PeriodWeek: "weekly", PeriodMonth: "monthly"}
	for p, want := range adjectives {
		if got := p.Adjective(); got != want {
			t.Errorf("%v.Adjective() = %q, want %q", p, got, want)
		}
	}
	if got := Period(99).String(); got != "unknown" {
		t.Errorf("Period(99).String() = %q", got)
	}
	if got := (Budget{Limit: 5 * Dollar, Period: PeriodDay}).String(); got != "$5.00 daily" {
		t.Errorf("Budget.String() = %q", got)
	}
}

func TestParseWindow(t *testing.T) {
	tests := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	for s, want := range tests {
		got, err := ParseWindow(s)
		if err != nil || got != want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", s, got, err, want)
		}
		if name := windowName(got); name != s {
			t.Errorf("windowName(%v) = %q, want %q", got, name, s)
		}
	}
	for _, s := range []string{"", "minutes", "1m", "Minute", "week"} {
		if _, err := ParseWindow(s); err == nil {
			t.Errorf("ParseWindow(%q) succeeded", s)
		}
	}
	rl := RateLimit{Limit: 600, Unit: RateRequests, Window: time.Minute}
	if got := rl.String(); got != "600 requests per minute" {
		t.Errorf("RateLimit.String() = %q", got)
	}
	rl = RateLimit{Limit: 200000, Unit: RateTokens, Window: 90 * time.Second}
	if got := rl.String(); got != "200000 tokens per 1m30s" {
		t.Errorf("RateLimit.String() = %q", got)
	}
}
