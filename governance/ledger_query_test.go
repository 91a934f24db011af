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
	sq := openSQLite(t, filepath.Join(t.TempDir(), "ledger.db"), SQLiteOptions{})
	for i := range recs {
		mem.Record(&recs[i])
		sq.Record(&recs[i])
	}
	flush(t, sq)
	return []struct {
		name string
		s    Store
	}{{"memory", mem}, {"sqlite", sq}}
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
		for _, filters := range [][]Filter{nil, {{DimKey, "alice"}}, {{DimModel, "claude-*"}, {"label.env", "prod"}}} {
			var pages [2][]Record
			var totals [2]Totals
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
			if totals[0] != want || totals[1] != want {
				t.Errorf("%s %v: totals %+v / %+v, want %+v", o, filters, totals[0], totals[1], want)
			}
			if len(pages[0]) != count || len(pages[1]) != count {
				t.Fatalf("%s %v: %d / %d rows, want %d", o, filters, len(pages[0]), len(pages[1]), count)
			}
			for i := range pages[0] {
				if !sameRecord(pages[0][i], pages[1][i]) {
					t.Fatalf("%s %v row %d:\n%+v\n%+v", o, filters, i, pages[0][i], pages[1][i])
				}
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
