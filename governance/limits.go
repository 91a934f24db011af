package governance

import (
	"fmt"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Period is a calendar budget period.
type Period uint8

// The budget periods. Hours, days, weeks (starting Monday) and months are
// calendar-aligned in the gateway's time zone; Total never resets.
const (
	PeriodTotal Period = iota
	PeriodHour
	PeriodDay
	PeriodWeek
	PeriodMonth
)

var periodNames = [...]string{PeriodTotal: "total", PeriodHour: "hour", PeriodDay: "day", PeriodWeek: "week", PeriodMonth: "month"}

// String is the period's name as written in the Caddyfile and labels.
func (p Period) String() string {
	if int(p) < len(periodNames) {
		return periodNames[p]
	}
	return "unknown"
}

// Adjective is the period as an adjective for messages ("daily").
func (p Period) Adjective() string {
	switch p {
	case PeriodHour:
		return "hourly"
	case PeriodDay:
		return "daily"
	case PeriodWeek:
		return "weekly"
	case PeriodMonth:
		return "monthly"
	}
	return "total"
}

// ParsePeriod reads "hour", "day", "week", "month" or "total".
func ParsePeriod(s string) (Period, error) {
	for p, n := range periodNames {
		if n == s {
			return Period(p), nil
		}
	}
	return 0, fmt.Errorf("unknown budget period %q (want hour, day, week, month or total)", s)
}

// epoch is where the Total period starts.
var epoch = time.Unix(0, 0).UTC()

// Start returns the start of the period containing t, in loc: the top of
// the hour, midnight, Monday midnight or the first of the month. Total
// starts at the Unix epoch.
//
// Around DST changes the period is the one that really contains t: in the
// hour repeated when clocks go back, the second 01:00–02:00 is its own
// hour; where a change skips local midnight (America/Santiago,
// America/Havana), the day begins at the change, 01:00. So t is always in
// [Start, End(Start)).
func (p Period) Start(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	switch p {
	case PeriodHour:
		// Truncate the wall clock, not the date: time.Date would pick the
		// first of two ambiguous 01:00s.
		return t.Add(-(time.Duration(t.Minute())*time.Minute +
			time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())))
	case PeriodDay:
		return midnight(y, m, d, loc)
	case PeriodWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return midnight(y, m, d-back, loc)
	case PeriodMonth:
		return midnight(y, m, 1, loc)
	}
	return epoch
}

// End returns the start of the period after the one starting at start (the
// reset time); the zero time for Total.
func (p Period) End(start time.Time) time.Time {
	y, m, d := start.Date()
	loc := start.Location()
	switch p {
	case PeriodHour:
		// The next top of the hour, across DST changes: an hour is an hour.
		return start.Add(time.Hour).Truncate(time.Second)
	case PeriodDay:
		return midnight(y, m, d+1, loc)
	case PeriodWeek:
		return midnight(y, m, d+7, loc)
	case PeriodMonth:
		return midnight(y, m+1, 1, loc)
	}
	return time.Time{}
}

// midnight is the first instant of the local day (y, m, d) in loc; the
// arguments may be out of range as time.Date allows. Where a DST change
// skips midnight, time.Date normalises 00:00 either forward to the change
// (01:00, the right answer) or back into the previous day (23:00); in the
// latter case the day starts where that 23:00's zone ends.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if t.Hour() >= 12 {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

// Budget is a spending limit over a period.
type Budget struct {
	Limit  Money
	Period Period
}

// String is "$5.00 daily".
func (b Budget) String() string { return FormatUSD(b.Limit) + " " + b.Period.Adjective() }

// FormatUSD writes an amount for people: "$5.00", "$0.072", "$0.000000123"
// (cents at least, more decimals only when they are not zero).
func FormatUSD(m Money) string {
	s := m.String() // "5.000000000"
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	if strings.HasPrefix(whole, "-") {
		return "-$" + whole[1:] + "." + frac
	}
	return "$" + whole + "." + frac
}

// RateUnit is what a rate limit counts.
type RateUnit uint8

// The rate-limit units.
const (
	RateRequests RateUnit = iota
	RateTokens
)

// String is "requests" or "tokens".
func (u RateUnit) String() string {
	if u == RateTokens {
		return "tokens"
	}
	return "requests"
}

// RateLimit allows Limit units per Window, enforced with a sliding-window
// counter (two counts per limiter, no timestamps).
type RateLimit struct {
	Limit  int64
	Unit   RateUnit
	Window time.Duration
}

// String is "600 requests per minute".
func (r RateLimit) String() string {
	return fmt.Sprintf("%d %s per %s", r.Limit, r.Unit, windowName(r.Window))
}

func windowName(w time.Duration) string {
	switch w {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return w.String()
}

// ParseWindow reads "second", "minute", "hour" or "day".
func ParseWindow(s string) (time.Duration, error) {
	switch s {
	case "second":
		return time.Second, nil
	case "minute":
		return time.Minute, nil
	case "hour":
		return time.Hour, nil
	case "day":
		return 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("unknown rate-limit window %q (want second, minute, hour or day)", s)
}

// MaxBudget is the largest budget limit: $1,000,000. Counters compare
// amounts as IEEE doubles in Redis's Lua, exact up to 2^53 nano-dollars
// (about $9M); the margin covers spend and reservations beyond the limit.
const MaxBudget = 1_000_000 * Dollar

// RequestLimitsOnly keeps only the request-rate limits of levels: what
// applies to free calls such as count_tokens. nil when none remain.
func RequestLimitsOnly(levels []Level) []Level {
	var out []Level
	for _, l := range levels {
		var rl []RateLimit
		for _, r := range l.RateLimits {
			if r.Unit == RateRequests {
				rl = append(rl, r)
			}
		}
		if len(rl) > 0 {
			out = append(out, Level{Scope: l.Scope, RateLimits: rl})
		}
	}
	return out
}

// RateLimitTokens is what a request's usage counts against token rate
// limits: input, cache writes and output, and cache reads only with
// countCacheReads (Anthropic's own input-token limits leave them out, and a
// Claude Code turn reads ~90K cached tokens).
func RateLimitTokens(u llm.Usage, countCacheReads bool) int64 {
	var n int64
	for _, k := range llm.TokenKinds {
		if k.IsToken() && (k != llm.CacheReadKind || countCacheReads) {
			n += u.Count(k)
		}
	}
	return n
}
