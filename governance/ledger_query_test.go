package governance

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// ledgerStores are a memory and a SQLite store holding the same records.
func ledgerStores(t *testing.T, recs []Record) []struct {
	name string
	s    Store
} {
	mem := NewMemoryStore()
	out := []struct {
		name string
		s    Store
	}{{"memory", mem}}
	for i := range recs {
		mem.Record(&recs[i])
	}
	for _, v := range sqliteVariants(t, recs) {
		out = append(out, struct {
			name string
			s    Store
		}{v.name, v.s})
	}
	return out
}

type sqliteVariant struct {
	name string
	s    *SQLiteStore
}

// sqliteVariants are three SQLite stores holding recs: nothing rolled up
// (rows only), everything rolled up, and rolled up to the middle record's
// time, the rest written after (some rows late, upserted into the rollup).
func sqliteVariants(t *testing.T, recs []Record) []sqliteVariant {
	ctx := context.Background()
	var vs []sqliteVariant
	for _, name := range []string{"sqlite", "sqlite-rolled", "sqlite-half-rolled"} {
		s := openSQLite(t, filepath.Join(t.TempDir(), name+".db"), SQLiteOptions{MaintainEvery: time.Hour})
		switch name { // day rollups in the zones the tests query in
		case "sqlite-rolled":
			s.SetLocation(mustLoad(t, "America/New_York"))
		case "sqlite-half-rolled":
			s.SetLocation(mustLoad(t, "Europe/Paris"))
		}
		half := len(recs) / 2
		for i := range recs {
			if name == "sqlite-half-rolled" && i == half {
				flush(t, s)
				if err := s.Maintain(ctx, recs[half].Time); err != nil {
					t.Fatal(err)
				}
			}
			s.Record(&recs[i])
		}
		flush(t, s)
		if name == "sqlite-rolled" {
			if err := s.Maintain(ctx, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
			var n, days int
			if err := s.db.QueryRow("SELECT COUNT(*) FROM rollup").Scan(&n); err != nil || n == 0 {
				t.Fatalf("rollup rows %d, %v", n, err)
			}
			if err := s.db.QueryRow("SELECT COUNT(*) FROM rollup_day").Scan(&days); err != nil || days == 0 {
				t.Fatalf("day rollup rows %d, %v", days, err)
			}
		}
		vs = append(vs, sqliteVariant{name, s})
	}
	return vs
}

func TestRequests(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	fx := reportFixture(t)
	fx[1].CacheHit, fx[1].Saved = true, 4*Dollar
	day := func(s string) time.Time {
		tm, _ := time.ParseInLocation(time.DateOnly, s, paris)
		return tm
	}
	tests := []struct {
		name      string
		q         RequestsQuery
		wantKeys  []string // key@cost of the page's rows
		wantTotal Money
		next      bool
	}{
		{"newest first", RequestsQuery{}, []string{"carol", "bob", "bob", "alice", "alice", "alice"}, 11*Dollar + 9, false},
		{"team and opus glob", RequestsQuery{Filters: []Filter{{DimTeam, "payments"}, {DimModel, "claude-opus-*"}}},
			[]string{"bob", "bob", "alice", "alice"}, 10*Dollar + 2, false},
		{"by cost, limit", RequestsQuery{OrderBy: OrderByCost, Limit: 2}, []string{"bob", "alice"}, 11*Dollar + 9, true},
		{"day filter and label", RequestsQuery{Filters: []Filter{{DimDay, "2026-10-25"}, {"label.project", "apollo"}}},
			[]string{"alice"}, 2 * Dollar, false},
		{"range", RequestsQuery{From: day("2026-10-25"), To: day("2026-10-26")}, []string{"bob", "alice", "alice"}, 7*Dollar + 7, false},
		{"session glob by tokens", RequestsQuery{Filters: []Filter{{DimSession, "s-?o?"}}, OrderBy: OrderByTokens},
			[]string{"bob", "bob"}, 5*Dollar + 1, false},
	}
	for _, st := range ledgerStores(t, fx) {
		for _, tt := range tests {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				q := tt.q
				q.Location = paris
				p, err := st.s.Requests(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, r := range p.Rows {
					keys = append(keys, r.Key)
				}
				if !reflect.DeepEqual(keys, tt.wantKeys) {
					t.Errorf("keys = %v, want %v", keys, tt.wantKeys)
				}
				if p.Total.Cost != tt.wantTotal {
					t.Errorf("total = %d, want %d", p.Total.Cost, tt.wantTotal)
				}
				if (p.NextCursor != "") != tt.next {
					t.Errorf("next cursor %q, want one: %v", p.NextCursor, tt.next)
				}
			})
		}
		t.Run(st.name+"/cache hit fields", func(t *testing.T) {
			p, err := st.s.Requests(context.Background(), RequestsQuery{Filters: []Filter{{DimKey, "alice"}}})
			if err != nil || len(p.Rows) != 3 {
				t.Fatalf("%+v, %v", p, err)
			}
			if r := p.Rows[1]; !r.CacheHit || r.Saved != 4*Dollar || !r.Time.Equal(fx[1].Time) || r.Time.Location() != time.UTC {
				t.Errorf("row %+v", r)
			}
			if p.Total.CacheHits != 1 || p.Total.Saved != 4*Dollar {
				t.Errorf("total %+v", p.Total)
			}
		})
		t.Run(st.name+"/refusals", func(t *testing.T) {
			if _, err := st.s.Requests(context.Background(), RequestsQuery{OrderBy: OrderByRequests}); !errors.Is(err, ErrInvalidQuery) {
				t.Errorf("order by requests: %v", err)
			}
			if _, err := st.s.Requests(context.Background(), RequestsQuery{Cursor: makeCursor(1)}); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("offset cursor: %v", err)
			}
			c := makeRequestCursor(OrderByTime, requestKey{1, 1, 1})
			if _, err := st.s.Requests(context.Background(), RequestsQuery{OrderBy: OrderByCost, Cursor: c}); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("cursor of another order: %v", err)
			}
		})
	}
}

// TestRequestsPagesMatch walks every page of random records in each order
// in both stores: the same rows, each once, and totals equal on every page.
func TestRequestsPagesMatch(t *testing.T) {
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(11, 400, base, 48*time.Hour)
	for i := 0; i < 40; i++ { // equal times and costs: the tie-breaks matter
		recs[i].Time, recs[i].Cost = base, Dollar
	}
	stores := ledgerStores(t, recs)
	for _, o := range []OrderBy{OrderByTime, OrderByCost, OrderByTokens} {
		for _, filters := range [][]Filter{nil, {{DimKey, "alice"}}, {{DimModel, "claude-*"}, {"label.env", "prod"}},
			{{DimSession, "sess-1?"}, {DimHour, "*T0?:00:00Z"}}, {{DimStatus, "4*"}, {DimRejection, ""}}} {
			pages := make([][]Record, len(stores))
			totals := make([]Totals, len(stores))
			for si, st := range stores {
				q := RequestsQuery{OrderBy: o, Limit: 37, Filters: filters}
				for n := 0; ; n++ {
					p, err := st.s.Requests(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						totals[si] = p.Total
					} else if p.Total != totals[si] {
						t.Fatalf("%s %s page %d total %+v, first %+v", st.name, o, n, p.Total, totals[si])
					}
					pages[si] = append(pages[si], p.Rows...)
					if p.NextCursor == "" {
						break
					}
					q.Cursor = p.NextCursor
				}
			}
			var want Totals
			count := 0
			for i := range recs {
				lr := fromRecord(&recs[i])
				if lr.matches(filters, time.UTC) {
					lr.addTo(&want)
					count++
				}
			}
			for si, st := range stores {
				if totals[si] != want {
					t.Errorf("%s %s %v: total %+v, want %+v", st.name, o, filters, totals[si], want)
				}
				if len(pages[si]) != count {
					t.Fatalf("%s %s %v: %d rows, want %d", st.name, o, filters, len(pages[si]), count)
				}
				for i := range pages[0] {
					if !sameRecord(pages[0][i], pages[si][i]) {
						t.Fatalf("%s %s %v row %d:\n%+v\n%+v", st.name, o, filters, i, pages[0][i], pages[si][i])
					}
				}
			}
			for i := range pages[0] {
				if i > 0 && orderValue(o, &pages[0][i]) > orderValue(o, &pages[0][i-1]) {
					t.Fatalf("%s: row %d out of order", o, i)
				}
			}
		}
	}
}

func TestSessions(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	fx := reportFixture(t)
	fx = append(fx, Record{Time: fx[0].Time, Key: "dave", Team: "web", Model: "gpt-5", Cost: 100 * Dollar}) // no session
	fx[2].SessionID = "s-shared"
	fx = append(fx, Record{Time: fx[5].Time.Add(time.Minute), Key: "carol", Team: "web2", SessionID: "s-shared", Model: "m", Cost: 2})
	type row struct {
		session, key, team string
		requests           int64
		cost               Money
		models             []string
	}
	tests := []struct {
		name      string
		q         SessionsQuery
		want      []row
		wantTotal Money
		next      bool
	}{
		{"by cost", SessionsQuery{}, []row{
			{"s-alice", "alice", "payments", 2, 5*Dollar + 1, []string{"claude-opus-4-5"}},
			{"s-bob", "bob", "payments", 2, 5*Dollar + 1, []string{"claude-opus-4-5"}},
			{"s-carol", "carol", "web", 1, Dollar, []string{"claude-sonnet-4-5"}},
			{"s-shared", "alice", "payments", 1, 7, []string{"claude-sonnet-4-5"}},
			{"s-shared", "carol", "web2", 1, 2, []string{"m"}},
		}, 11*Dollar + 11, false},
		{"over $2, limit 1", SessionsQuery{MinCost: 2 * Dollar, Limit: 1}, []row{
			{"s-alice", "alice", "payments", 2, 5*Dollar + 1, []string{"claude-opus-4-5"}},
		}, 10*Dollar + 2, true},
		{"page 2", SessionsQuery{MinCost: 2 * Dollar, Limit: 1, Cursor: makeCursor(1)}, []row{
			{"s-bob", "bob", "payments", 2, 5*Dollar + 1, []string{"claude-opus-4-5"}},
		}, 10*Dollar + 2, false},
		{"newest first, team filter", SessionsQuery{OrderBy: OrderByTime, Filters: []Filter{{DimTeam, "web*"}}}, []row{
			{"s-shared", "carol", "web2", 1, 2, []string{"m"}},
			{"s-carol", "carol", "web", 1, Dollar, []string{"claude-sonnet-4-5"}},
		}, Dollar + 2, false},
		{"by requests, models merged", SessionsQuery{OrderBy: OrderByRequests, Filters: []Filter{{DimKey, "alice"}}}, []row{
			{"s-alice", "alice", "payments", 2, 5*Dollar + 1, []string{"claude-opus-4-5"}},
			{"s-shared", "alice", "payments", 1, 7, []string{"claude-sonnet-4-5"}},
		}, 5*Dollar + 8, false},
	}
	for _, st := range ledgerStores(t, fx) {
		for _, tt := range tests {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				q := tt.q
				q.Location = paris
				p, err := st.s.Sessions(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				var got []row
				for _, r := range p.Rows {
					got = append(got, row{r.Session, r.Key, r.Team, r.Totals.Requests, r.Totals.Cost, r.Models})
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("rows = %v\nwant %v", got, tt.want)
				}
				if p.Total.Cost != tt.wantTotal {
					t.Errorf("total = %d, want %d", p.Total.Cost, tt.wantTotal)
				}
				if (p.NextCursor != "") != tt.next {
					t.Errorf("next cursor %q, want one: %v", p.NextCursor, tt.next)
				}
			})
		}
		t.Run(st.name+"/first and last seen, cache share", func(t *testing.T) {
			p, err := st.s.Sessions(context.Background(), SessionsQuery{Filters: []Filter{{DimSession, "s-bob"}}})
			if err != nil || len(p.Rows) != 1 {
				t.Fatalf("%+v, %v", p, err)
			}
			r := p.Rows[0]
			if !r.FirstSeen.Equal(fx[3].Time) || !r.LastSeen.Equal(fx[4].Time) || r.FirstSeen.Location() != time.UTC {
				t.Errorf("first %v last %v", r.FirstSeen, r.LastSeen)
			}
			if r.Totals.Usage.InputTokens != 1010 || r.Totals.CacheReadShare() != 0 {
				t.Errorf("totals %+v", r.Totals)
			}
		})
	}
}

func TestGlobRunes(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"claude-opus-*", "claude-opus-4-5", true},
		{"claude-opus-*", "claude-sonnet-4-5", false},
		{"caf?", "café", true},
		{"caf??", "café", false},
		{"*", "", true},
		{"?", "", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"[ab]*", "[ab]x", true},
		{"[ab]*", "ax", false},
		{"*é", "résumé", true},
		{"A*", "a", false},
	} {
		if got := globRunes(tt.p, tt.s); got != tt.want {
			t.Errorf("globRunes(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

// TestSQLiteRetention prunes rows older than the retention once they are
// rolled up: reports over the pruned days still answer from the rollup,
// the request log holds the kept rows only.
func TestSQLiteRetention(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := base.AddDate(0, 0, 10)
	recs := randomRecords(3, 2000, base, 10*24*time.Hour)
	s := openSQLite(t, filepath.Join(t.TempDir(), "r.db"), SQLiteOptions{MaintainEvery: time.Hour, Retention: 72 * time.Hour})
	s.opts.now = func() time.Time { return now }
	mem := NewMemoryStore()
	for i := range recs {
		s.Record(&recs[i])
		mem.Record(&recs[i])
	}
	flush(t, s)
	if err := s.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Records(ctx, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := now.Add(-72 * time.Hour)
	want := 0
	for _, r := range recs {
		if !r.Time.Before(cut) {
			want++
		}
	}
	if len(kept) != want || s.pruned.Load() != int64(len(recs)-want) || !kept[0].Time.After(cut.Add(-time.Nanosecond)) {
		t.Fatalf("kept %d rows (pruned %d), want %d from %v", len(kept), s.pruned.Load(), want, cut)
	}
	for _, q := range []ReportQuery{
		{Dims: []Dim{DimTeam, DimDay}},
		{Dims: []Dim{DimSession}, From: base, To: base.AddDate(0, 0, 2)},
	} {
		a, _ := mem.Report(ctx, q)
		b, err := s.Report(ctx, q)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%v after pruning: %v\n%+v\n%+v", q.Dims, err, a, b)
		}
	}
	p, err := s.Requests(ctx, RequestsQuery{Limit: MaxPageLimit})
	if err != nil || len(p.Rows) != want {
		t.Errorf("request log %d rows, %v; want %d", len(p.Rows), err, want)
	}
	// A label report reads rows: it answers for the kept rows only.
	lr, err := s.Report(ctx, ReportQuery{Dims: []Dim{"label.env"}})
	if err != nil || lr.Total.Requests != int64(want) {
		t.Errorf("label report counts %d, %v; want %d", lr.Total.Requests, err, want)
	}
}

// TestSQLiteLateRows records rows for buckets and days already rolled up
// (a writer that was stuck, a clock behind): they reach both rollups in
// their own transaction, so reports stay equal to the rows, never missing
// or double-counting one.
func TestSQLiteLateRows(t *testing.T) {
	ctx := context.Background()
	paris := mustLoad(t, "Europe/Paris")
	base := time.Date(2026, 3, 20, 0, 0, 0, 0, paris)
	recs := randomRecords(9, 1200, base, 12*24*time.Hour) // over the spring-forward night
	s := openSQLite(t, filepath.Join(t.TempDir(), "late.db"), SQLiteOptions{MaintainEvery: time.Hour})
	s.SetLocation(paris)
	mem := NewMemoryStore()
	for i := range recs[:800] {
		s.Record(&recs[i])
		mem.Record(&recs[i])
	}
	flush(t, s)
	if err := s.Maintain(ctx, base.AddDate(0, 0, 13)); err != nil {
		t.Fatal(err)
	}
	for i := range recs[800:] { // late: every day of them is rolled up
		s.Record(&recs[800+i])
		mem.Record(&recs[800+i])
	}
	flush(t, s)
	var lateDays int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM rollup_day_state WHERE watermark > ?", localDay(unixNanos(recs[len(recs)-1].Time), paris)).Scan(&lateDays); err != nil || lateDays != 1 {
		t.Fatalf("day rollup not past the late rows: %d, %v", lateDays, err)
	}
	for _, q := range []ReportQuery{
		{Dims: []Dim{DimTeam, DimDay}, Location: paris},
		{Dims: []Dim{DimMonth, DimModel}, Location: paris, From: base.AddDate(0, 0, 1), To: base.AddDate(0, 0, 9)},
		{Dims: []Dim{DimSession, DimHour}, Location: paris},
	} {
		a, _ := mem.Report(ctx, q)
		b, err := s.Report(ctx, q)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%v with late rows: %v\n%+v\n%+v", q.Dims, err, a.Total, b.Total)
		}
	}
	a, _ := mem.Sessions(ctx, SessionsQuery{Location: paris})
	b, err := s.Sessions(ctx, SessionsQuery{Location: paris})
	if err != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("sessions with late rows: %v", err)
	}
}
