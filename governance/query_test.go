package governance

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// reportFixture is a small ledger: two keys of team payments, one of team
// web, two models, three days around a Europe/Paris DST change, labels.
func reportFixture(t *testing.T) []Record {
	paris := mustLoad(t, "Europe/Paris")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	rec := func(when, key, team, model string, cost Money, in int64, labels map[string]string) Record {
		return Record{Time: at(when), Key: key, Team: team, Provider: "anthropic", Model: model,
			Surface: "messages", SessionID: "s-" + key, Cost: cost, Labels: labels,
			Usage: llm.Usage{InputTokens: in, OutputTokens: 1}}
	}
	apollo := map[string]string{"project": "apollo"}
	return []Record{
		rec("2026-10-24 23:30", "alice", "payments", "claude-opus-4-5", 3*Dollar+1, 100, apollo),
		rec("2026-10-25 00:10", "alice", "payments", "claude-opus-4-5", 2*Dollar, 50, apollo),
		rec("2026-10-25 02:30", "alice", "payments", "claude-sonnet-4-5", 7, 10, nil),
		rec("2026-10-25 12:00", "bob", "payments", "claude-opus-4-5", 5*Dollar, 10, map[string]string{"project": "zeus"}),
		rec("2026-10-26 09:00", "bob", "payments", "claude-opus-4-5", 1, 1000, nil),
		rec("2026-10-26 09:30", "carol", "web", "claude-sonnet-4-5", Dollar, 20, apollo),
	}
}

type wantRow struct {
	vals     []string
	requests int64
	cost     Money
}

func TestReport(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	day := func(s string) time.Time {
		tm, _ := time.ParseInLocation(time.DateOnly, s, paris)
		return tm
	}
	tests := []struct {
		name      string
		q         ReportQuery
		want      []wantRow
		wantTotal Money
		next      bool
	}{
		{"key,model", ReportQuery{Dims: []Dim{DimKey, DimModel}}, []wantRow{
			{[]string{"alice", "claude-opus-4-5"}, 2, 5*Dollar + 1},
			{[]string{"bob", "claude-opus-4-5"}, 2, 5*Dollar + 1},
			{[]string{"carol", "claude-sonnet-4-5"}, 1, Dollar},
			{[]string{"alice", "claude-sonnet-4-5"}, 1, 7},
		}, 11*Dollar + 9, false},
		{"team filter, opus glob, per key per day", ReportQuery{Dims: []Dim{DimKey, DimDay},
			Filters: []Filter{{DimTeam, "payments"}, {DimModel, "claude-opus-*"}}}, []wantRow{
			{[]string{"bob", "2026-10-25"}, 1, 5 * Dollar},
			{[]string{"alice", "2026-10-24"}, 1, 3*Dollar + 1},
			{[]string{"alice", "2026-10-25"}, 1, 2 * Dollar},
			{[]string{"bob", "2026-10-26"}, 1, 1},
		}, 10*Dollar + 2, false},
		{"label dim and filter", ReportQuery{Dims: []Dim{"label.project"}, Filters: []Filter{{"label.project", "apollo"}}},
			[]wantRow{{[]string{"apollo"}, 3, 6*Dollar + 1}}, 6*Dollar + 1, false},
		{"label dim with unlabelled", ReportQuery{Dims: []Dim{"label.project"}, OrderBy: OrderByRequests}, []wantRow{
			{[]string{"apollo"}, 3, 6*Dollar + 1},
			{[]string{""}, 2, 8},
			{[]string{"zeus"}, 1, 5 * Dollar},
		}, 11*Dollar + 9, false},
		{"from/to by dates in Paris, by hour across DST", ReportQuery{Dims: []Dim{DimHour}, From: day("2026-10-25"), To: day("2026-10-26"),
			Filters: []Filter{{DimKey, "alice"}}, OrderBy: OrderByTokens}, []wantRow{
			{[]string{"2026-10-25T00:00:00+02:00"}, 1, 2 * Dollar},
			{[]string{"2026-10-25T02:00:00+01:00"}, 1, 7},
		}, 2*Dollar + 7, false},
		{"week and month", ReportQuery{Dims: []Dim{DimMonth, DimWeek}}, []wantRow{
			{[]string{"2026-10", "2026-10-19"}, 4, 10*Dollar + 8},
			{[]string{"2026-10", "2026-10-26"}, 2, Dollar + 1},
		}, 11*Dollar + 9, false},
		{"session, glob on key, limit", ReportQuery{Dims: []Dim{DimSession}, Filters: []Filter{{DimKey, "?o*"}}, Limit: 1},
			[]wantRow{{[]string{"s-bob"}, 2, 5*Dollar + 1}}, 5*Dollar + 1, false},
		{"page", ReportQuery{Dims: []Dim{DimKey}, Limit: 2}, []wantRow{
			{[]string{"alice"}, 3, 5*Dollar + 8},
			{[]string{"bob"}, 2, 5*Dollar + 1},
		}, 11*Dollar + 9, true},
		{"second page", ReportQuery{Dims: []Dim{DimKey}, Limit: 2, Cursor: makeCursor(2)}, []wantRow{
			{[]string{"carol"}, 1, Dollar},
		}, 11*Dollar + 9, false},
		{"no dims: one total row", ReportQuery{Filters: []Filter{{DimCustomer, ""}}, Location: time.UTC},
			[]wantRow{{[]string{}, 6, 11*Dollar + 9}}, 11*Dollar + 9, false},
		{"nothing matches", ReportQuery{Dims: []Dim{DimKey}, Filters: []Filter{{DimSurface, "chat"}}}, nil, 0, false},
	}
	for _, st := range ledgerStores(t, reportFixture(t)) {
		for _, tt := range tests {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				q := tt.q
				if q.Location == nil {
					q.Location = paris
				}
				rep, err := st.s.Report(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				var got []wantRow
				for _, r := range rep.Rows {
					got = append(got, wantRow{r.Values, r.Totals.Requests, r.Totals.Cost})
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("rows = %v, want %v", got, tt.want)
				}
				if rep.Total.Cost != tt.wantTotal {
					t.Errorf("total = %d, want %d", rep.Total.Cost, tt.wantTotal)
				}
				if (rep.NextCursor != "") != tt.next {
					t.Errorf("next cursor = %q, want one: %v", rep.NextCursor, tt.next)
				}
			})
		}
	}
}

// TestReportTotalIsSumOfRows checks, on random records, that both stores
// agree and the total is the rows' sum to the nano-dollar.
func TestReportTotalIsSumOfRows(t *testing.T) {
	loc := mustLoad(t, "America/New_York")
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, loc)
	recs := randomRecords(7, 3000, from, 40*24*time.Hour)
	mem := NewMemoryStore()
	for i := range recs {
		mem.Record(&recs[i])
	}
	variants := sqliteVariants(t, recs)
	kolkata := mustLoad(t, "Asia/Kolkata")
	odd := time.FixedZone("odd", 7*60) // not a multiple of 15 minutes: rows only
	for _, q := range []ReportQuery{
		{Dims: []Dim{DimTeam, DimModel, DimDay}, Location: loc},
		{Dims: []Dim{DimKey, DimHour}, Location: loc, OrderBy: OrderByRequests, From: from.AddDate(0, 0, 5), To: from.AddDate(0, 0, 10)},
		{Dims: []Dim{DimWeek, DimSession}, Location: loc, OrderBy: OrderByTokens},
		{Dims: []Dim{DimMonth, DimProvider}, Location: kolkata, From: from.Add(7*time.Minute + 3), To: from.Add(20*24*time.Hour + 11*time.Second)},
		{Dims: []Dim{DimDay, DimHour}, Location: kolkata, Filters: []Filter{{DimModel, "claude-*"}, {DimKey, "?o*"}}},
		{Dims: []Dim{DimRejection, DimSurface}, Location: odd, Filters: []Filter{{DimDay, "2026-03-1?"}}},
		{Dims: []Dim{DimCustomer}, Location: loc, Filters: []Filter{{DimWeek, "2026-03-09"}, {DimHour, "*T1?:00:00-04:00"}}},
		{Dims: []Dim{"label.project", DimTeam}, Location: loc, Filters: []Filter{{DimStatus, "200"}}},
		{Location: loc, Filters: []Filter{{DimTeam, "nobody"}}},
		{Location: loc, From: from.AddDate(0, 0, 3), To: from.AddDate(0, 0, 3).Add(time.Minute)},
	} {
		a, err := mem.Report(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			b, err := v.s.Report(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s %v %v: memory and sqlite differ:\n%+v\n%+v", v.name, q.Dims, q.Filters, a, b)
			}
		}
		if len(q.Dims) == 0 {
			continue
		}
		var sum Totals
		for _, r := range a.Rows {
			sum.Requests += r.Totals.Requests
			sum.Usage.AddCounts(r.Totals.Usage)
			sum.Cost += r.Totals.Cost
		}
		if sum.Requests != a.Total.Requests || sum.Cost != a.Total.Cost || sum.Usage != a.Total.Usage {
			t.Errorf("%v: total %+v, sum of rows %+v", q.Dims, a.Total, sum)
		}
		if len(a.Rows) < 2 {
			t.Errorf("%v: %d rows, want several", q.Dims, len(a.Rows))
		}
	}
	for _, q := range []SessionsQuery{
		{Location: loc},
		{Location: kolkata, From: from.Add(time.Hour + time.Second), To: from.AddDate(0, 0, 9), MinCost: 10 * Dollar, OrderBy: OrderByTime},
		{Location: loc, Filters: []Filter{{DimTeam, "ml"}, {DimDay, "2026-03-0*"}}, OrderBy: OrderByTokens, Limit: 7},
		{Location: loc, Filters: []Filter{{"label.env", "prod"}}, OrderBy: OrderByRequests},
	} {
		a, err := mem.Sessions(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Rows) < 2 {
			t.Errorf("sessions %+v: %d rows, want several", q, len(a.Rows))
		}
		for _, v := range variants {
			b, err := v.s.Sessions(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s sessions %+v: memory and sqlite differ:\n%+v\n%+v", v.name, q, a, b)
			}
		}
	}
}

func TestParseDimAndCursor(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{{"key", true}, {"session", true}, {"label.project", true}, {"label.", false}, {"day", true}, {"week", true}, {"speed", false}, {"", false}} {
		if _, ok := ParseDim(tt.in); ok != tt.ok {
			t.Errorf("ParseDim(%q) ok = %v", tt.in, ok)
		}
	}
	for _, c := range []string{"x", "bw", makeCursor(-1)} {
		if _, err := parseCursor(c); err == nil {
			t.Errorf("parseCursor(%q) accepted", c)
		}
	}
	if n, err := parseCursor(makeCursor(40)); err != nil || n != 40 {
		t.Errorf("parseCursor round trip = %d, %v", n, err)
	}
}
