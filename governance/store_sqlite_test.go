package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// openSQLite opens a store at path, closing it when the test ends.
func openSQLite(t testing.TB, path string, opts SQLiteOptions) *SQLiteStore {
	t.Helper()
	s, err := OpenSQLiteStore(path, opts)
	if err != nil {
		t.Fatalf("OpenSQLiteStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t testing.TB, s Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%s): %v", name, err)
	}
	return loc
}

// randomRecords makes n records with every field filled, times spread over
// [from, from+span) at nanosecond precision, and names drawn from small sets
// (empty names included) so groups repeat.
func randomRecords(seed uint64, n int, from time.Time, span time.Duration) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{
			Time:           from.Add(time.Duration(rng.Int64N(int64(span)))),
			Key:            pick("alice", "bob", "carol", "dave", "svc-ci", ""),
			Team:           pick("platform", "data", "", "ml"),
			Customer:       pick("acme", "globex", ""),
			Provider:       pick("anthropic", "bedrock", "vertex", "openai", ""),
			Model:          pick("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gpt-5"),
			RequestedModel: pick("claude-sonnet-4-5-20250929", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-haiku-4-5"),
			Surface:        pick("anthropic_messages", "openai_chat", "bedrock_invoke"),
			Status:         []int{200, 200, 200, 400, 429, 529}[rng.IntN(6)],
			Stream:         rng.IntN(2) == 0,
			Usage: llm.Usage{
				InputTokens:        rng.Int64N(200_000),
				OutputTokens:       rng.Int64N(64_000),
				CacheReadTokens:    rng.Int64N(1_000_000),
				CacheWrite5mTokens: rng.Int64N(50_000),
				CacheWrite1hTokens: rng.Int64N(50_000),
				WebSearchRequests:  rng.Int64N(5),
				Complete:           rng.IntN(4) != 0,
				OutputEstimated:    rng.IntN(8) == 0,
			},
			Cost:              Money(rng.Int64N(5 * int64(Dollar))),
			SessionID:         fmt.Sprintf("sess-%d", rng.IntN(50)),
			Duration:          time.Duration(rng.Int64N(int64(10 * time.Minute))).Truncate(time.Microsecond),
			RequestID:         fmt.Sprintf("01JZ%022d", i),
			ProviderRequestID: pick("req_011CabcDEF", "", "0f6c1a2b-3c4d"),
			UserAgent:         pick("claude-cli/2.1.328 (external, cli)", "OpenAI/Python 1.99.0", ""),
			TTFT:              time.Duration(rng.Int64N(int64(5 * time.Second))).Truncate(time.Microsecond),
			Attempts:          rng.IntN(3),
			Rejection:         pick("", "", "budget", "rate_limit"),
			ErrorType:         pick("", "", "overloaded_error"),
			CacheHit:          rng.IntN(10) == 0,
		}
		if out[i].CacheHit {
			out[i].Saved = Money(rng.Int64N(int64(Dollar)))
		}
		if rng.IntN(2) == 0 {
			out[i].Labels = map[string]string{"project": pick("apollo", "gemini"), "env": pick("prod", "dev")}
		}
	}
	return out
}

// scopesOf lists every non-empty scope the records touch.
func scopesOf(recs []Record) []Scope {
	seen := map[Scope]bool{}
	var out []Scope
	for _, r := range recs {
		for _, sc := range []Scope{{ScopeKey, r.Key}, {ScopeTeam, r.Team}, {ScopeCustomer, r.Customer}} {
			if sc.Name != "" && !seen[sc] {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	return out
}

// sameRecord compares two records field by field, times by instant.
func sameRecord(a, b Record) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestSQLiteReopenRestoresTotalsAndLedger(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	base := time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		recs []Record
	}{
		{"empty", nil},
		{"one record every field", []Record{{
			Time: time.Date(2025, 7, 1, 9, 30, 15, 123456789, ny), Key: "alice", Team: "platform", Customer: "acme",
			Provider: "bedrock", Model: "claude-sonnet-4-5", RequestedModel: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			Surface: "bedrock_invoke_stream", Status: 200, Stream: true,
			Usage: llm.Usage{InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheWrite5mTokens: 4,
				CacheWrite1hTokens: 5, WebSearchRequests: 6, Complete: true, OutputEstimated: true},
			Cost: 123_456_789_012, SessionID: "0d9c3b5e-session", Duration: 1234567 * time.Microsecond,
			RequestID: "01JZ8Q4T3G7Y2K5M9N0P1R2S3T", ProviderRequestID: "req_011CXyz", UserAgent: "claude-cli/2.1.328 (external, cli)",
			Labels: map[string]string{"project": "apollo", "env": "caf\u00e9 \"prod\""}, TTFT: 412 * time.Millisecond,
			Attempts: 2, ErrorType: "overloaded_error",
		}}},
		{"refused", []Record{{Time: base, Key: "alice", Status: 402, Surface: "anthropic_messages",
			RequestID: "01JZ8Q4T3G7Y2K5M9N0P1R2S3V", Rejection: "budget", UserAgent: "curl/8.5.0"}}},
		{"no hierarchy", []Record{{Time: base, Status: 401, Surface: "anthropic_messages"}}},
		{"key without team", []Record{
			{Time: base, Key: "solo", Cost: 1, Usage: llm.Usage{InputTokens: 10}},
			{Time: base.Add(time.Hour), Key: "solo", Cost: 2, Usage: llm.Usage{OutputTokens: 20}},
		}},
		{"large amounts", []Record{
			{Time: base, Key: "big", Team: "t", Customer: "c", Cost: 4_000_000 * Dollar, Usage: llm.Usage{InputTokens: 1 << 40}},
			{Time: base.Add(time.Second), Key: "big", Team: "t", Customer: "c", Cost: 4_000_000*Dollar + 7, Usage: llm.Usage{InputTokens: 1 << 40}},
		}},
		{"random 2000", randomRecords(1, 2000, base, 72*time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nested", "dir", "usage.db")
			ref := NewMemoryStore()
			s1, err := OpenSQLiteStore(path, SQLiteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var r Record // reused: the store must keep its own copy
			for _, rec := range tc.recs {
				r = rec
				s1.Record(&r)
				ref.Record(&rec)
			}
			r = Record{Key: "mutated-after-record"}
			flush(t, s1)
			scopes := scopesOf(tc.recs)
			before := map[Scope]Totals{}
			for _, sc := range scopes {
				before[sc] = s1.Totals(sc)
				if want := ref.Totals(sc); before[sc] != want {
					t.Fatalf("%s before restart: got %+v, want %+v", sc, before[sc], want)
				}
			}
			if st := s1.Stats(); st.Committed != int64(len(tc.recs)) || st.WriteErrors != 0 || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
			if err := s1.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s2 := openSQLite(t, path, SQLiteOptions{})
			for _, sc := range scopes {
				if got := s2.Totals(sc); got != before[sc] {
					t.Errorf("%s after restart: got %+v, want %+v", sc, got, before[sc])
				}
				// The buckets add up to the all-time row.
				if got, err := s2.SpendSince(sc, time.Time{}); err != nil || got != before[sc] {
					t.Errorf("%s SpendSince(zero) = %+v, %v; want %+v", sc, got, err, before[sc])
				}
			}
			if got := s2.Totals(Scope{ScopeKey, "mutated-after-record"}); got != (Totals{}) {
				t.Errorf("mutating a record after Record changed the store: %+v", got)
			}
			got, err := s2.Records(context.Background(), time.Time{}, time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.recs) {
				t.Fatalf("ledger has %d rows, want %d", len(got), len(tc.recs))
			}
			// Match rows to records by instant (random times are distinct).
			want := map[int64][]Record{}
			for _, rec := range tc.recs {
				want[rec.Time.UnixNano()] = append(want[rec.Time.UnixNano()], rec)
			}
			for i, g := range got {
				if i > 0 && g.Time.Before(got[i-1].Time) {
					t.Fatalf("rows not in time order at %d", i)
				}
				if g.Time.Location() != time.UTC {
					t.Errorf("row time %v not in UTC", g.Time)
				}
				cands := want[g.Time.UnixNano()]
				found := false
				for j, c := range cands {
					if sameRecord(g, c) {
						want[g.Time.UnixNano()] = append(cands[:j], cands[j+1:]...)
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("ledger row %+v matches no record", g)
				}
			}
		})
	}
}

func TestSQLiteRecordsRangeAndLimit(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		s.Record(&Record{Time: base.Add(time.Duration(i) * time.Second), Key: "k", Duration: 1500 * time.Nanosecond})
	}
	flush(t, s)
	tests := []struct {
		name     string
		from, to time.Time
		limit    int
		want     []int // seconds after base
	}{
		{"all", time.Time{}, time.Time{}, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"from inclusive to exclusive", base.Add(3 * time.Second), base.Add(6 * time.Second), 0, []int{3, 4, 5}},
		{"to just past", time.Time{}, base.Add(2*time.Second + 1), 0, []int{0, 1, 2}},
		{"from just past", base.Add(8*time.Second + 1), time.Time{}, 0, []int{9}},
		{"limit", base.Add(2 * time.Second), time.Time{}, 3, []int{2, 3, 4}},
		{"empty", base.Add(5 * time.Second), base.Add(5 * time.Second), 0, nil},
		{"reversed", base.Add(6 * time.Second), base.Add(5 * time.Second), 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Records(context.Background(), tc.from, tc.to, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var secs []int
			for _, r := range got {
				secs = append(secs, int(r.Time.Sub(base)/time.Second))
				if r.Duration != time.Microsecond {
					t.Errorf("duration %v, want 1µs (kept to the microsecond)", r.Duration)
				}
			}
			if !reflect.DeepEqual(secs, tc.want) {
				t.Errorf("got %v, want %v", secs, tc.want)
			}
		})
	}
}

func TestSQLiteGroupCommit(t *testing.T) {
	const writers, perWriter, maxBatch = 8, 625, 512
	const n = writers * perWriter
	tests := []struct {
		name string
		// gate holds the first transaction open until every record is
		// queued, so the batching is deterministic.
		gate       bool
		maxBatches int64
	}{
		{"gated", true, 1 + (n+maxBatch-1)/maxBatch},
		// Free-running, batches grow by themselves; the bound is loose
		// because it depends on scheduling.
		{"free running", false, n / 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sizes []int
			release := make(chan struct{})
			first := true
			opts := SQLiteOptions{MaxBatch: maxBatch, beforeCommit: func(size int) error {
				mu.Lock()
				sizes = append(sizes, size)
				wait := tc.gate && first
				first = false
				mu.Unlock()
				if wait {
					<-release
				}
				return nil
			}}
			path := filepath.Join(t.TempDir(), "u.db")
			s := openSQLite(t, path, opts)
			ref := NewMemoryStore()
			recs := randomRecords(7, n, time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), 48*time.Hour)
			for i := range recs {
				ref.Record(&recs[i])
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w * perWriter; i < (w+1)*perWriter; i++ {
						s.Record(&recs[i])
					}
				})
			}
			wg.Wait()
			close(release)
			flush(t, s)
			st := s.Stats()
			t.Logf("%d records in %d transactions", st.Committed, st.Batches)
			if st.Committed != n {
				t.Fatalf("committed %d, want %d", st.Committed, n)
			}
			if st.Batches > tc.maxBatches {
				t.Errorf("%d transactions for %d records, want at most %d", st.Batches, n, tc.maxBatches)
			}
			if st.Queued != 0 {
				t.Errorf("queue length %d after flush", st.Queued)
			}
			mu.Lock()
			for _, sz := range sizes {
				if sz < 1 || sz > maxBatch {
					t.Errorf("batch of %d records, want 1..%d", sz, maxBatch)
				}
			}
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openSQLite(t, path, SQLiteOptions{})
			for _, sc := range scopesOf(recs) {
				if got, want := s2.Totals(sc), ref.Totals(sc); got != want {
					t.Errorf("%s: got %+v, want %+v", sc, got, want)
				}
			}
			rows, err := s2.Records(context.Background(), time.Time{}, time.Time{}, 0)
			if err != nil || len(rows) != n {
				t.Fatalf("ledger: %d rows, %v; want %d", len(rows), err, n)
			}
		})
	}
}

// usageDataset mixes random records with hand-placed ones on the edges that
// matter: DST changes in New York, Kolkata midnight (18:30 UTC), 15-minute
// bucket edges, the Unix epoch and times with non-15-minute offsets.
func usageDataset(t *testing.T) []Record {
	ny := mustLoad(t, "America/New_York")
	kolkata := mustLoad(t, "Asia/Kolkata")
	amsterdam := mustLoad(t, "Europe/Amsterdam")
	recs := randomRecords(42, 1500, time.Date(2025, 3, 6, 0, 0, 0, 0, time.UTC), 8*24*time.Hour)
	recs = append(recs, randomRecords(43, 500, time.Date(2025, 10, 30, 0, 0, 0, 0, time.UTC), 6*24*time.Hour)...)
	edges := []time.Time{
		// New York: spring forward 2025-03-09 02:00 EST, fall back 2025-11-02 02:00 EDT.
		time.Date(2025, 3, 8, 23, 59, 59, 999999999, ny),
		time.Date(2025, 3, 9, 0, 0, 0, 0, ny),
		time.Date(2025, 3, 9, 1, 59, 59, 999999999, ny),
		time.Date(2025, 3, 9, 3, 0, 0, 0, ny),
		time.Date(2025, 3, 9, 23, 59, 59, 999999999, ny),
		time.Date(2025, 3, 10, 0, 0, 0, 0, ny),
		time.Date(2025, 11, 2, 1, 30, 0, 0, ny),                // EDT
		time.Date(2025, 11, 2, 1, 30, 0, 0, ny).Add(time.Hour), // 01:30 again, EST
		time.Date(2025, 11, 2, 23, 59, 59, 999999999, ny),
		time.Date(2025, 11, 3, 0, 0, 0, 0, ny),
		// Kolkata midnight.
		time.Date(2025, 3, 10, 18, 29, 59, 999999999, time.UTC),
		time.Date(2025, 3, 10, 18, 30, 0, 0, time.UTC),
		time.Date(2025, 3, 11, 0, 0, 0, 0, kolkata),
		// UTC midnight and bucket edges.
		time.Date(2025, 3, 11, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 3, 12, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 3, 12, 0, 14, 59, 999999999, time.UTC),
		time.Date(2025, 3, 12, 0, 15, 0, 0, time.UTC),
		// The epoch, before it, and local mean time (+00:19:32) in 1930.
		time.Unix(0, 0), time.Unix(0, -1), time.Unix(-86400, 5), time.Unix(899, 999999999),
		// One UTC quarter hour, two Amsterdam days.
		time.Date(1930, 6, 1, 23, 52, 0, 0, amsterdam),
		time.Date(1930, 6, 2, 0, 2, 0, 0, amsterdam),
	}
	for i, e := range edges {
		for j := range 2 { // two records per instant: the same group twice
			recs = append(recs, Record{
				Time: e, Key: fmt.Sprintf("edge-%d", i%3), Team: "edges", Customer: []string{"", "acme"}[j],
				Provider: "anthropic", Model: "claude-haiku-4-5", Status: 200,
				Usage: llm.Usage{InputTokens: int64(i + 1), OutputTokens: int64(j + 1), CacheReadTokens: 7,
					CacheWrite5mTokens: 3, CacheWrite1hTokens: 2, WebSearchRequests: 1},
				Cost: Money(1000*i + j),
			})
		}
	}
	return recs
}

func TestSQLiteUsageMatchesMemory(t *testing.T) {
	recs := usageDataset(t)
	mem := NewMemoryStore()
	s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	for i := range recs {
		mem.Record(&recs[i])
		s.Record(&recs[i])
	}
	flush(t, s)

	ny := mustLoad(t, "America/New_York")
	locs := []*time.Location{
		nil, time.UTC, ny, mustLoad(t, "Asia/Kolkata"), mustLoad(t, "Asia/Kathmandu"),
		mustLoad(t, "Australia/Lord_Howe"), mustLoad(t, "Europe/Amsterdam"),
		time.FixedZone("odd", 5*3600+17*60+13), time.FixedZone("west", -(9*3600 + 30*60)),
	}
	at := func(i int) time.Time { return recs[i].Time } // windows on exact record times
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"open", time.Time{}, time.Time{}},
		{"from only", at(10), time.Time{}},
		{"to only", time.Time{}, at(10)},
		{"record instants", at(100), at(200)},
		{"record instants reversed", at(200), at(100)},
		{"DST day NY", time.Date(2025, 3, 9, 0, 0, 0, 0, ny), time.Date(2025, 3, 10, 0, 0, 0, 0, ny)},
		{"one nanosecond", time.Date(2025, 3, 9, 0, 0, 0, 0, ny), time.Date(2025, 3, 9, 0, 0, 0, 1, ny)},
		{"empty", at(5), at(5)},
		{"mid bucket", time.Date(2025, 3, 12, 0, 7, 0, 0, time.UTC), time.Date(2025, 3, 13, 0, 7, 0, 1, time.UTC)},
		{"before 1971", time.Time{}, time.Unix(365*86400, 0)},
		{"epoch bucket", time.Unix(0, 0), time.Unix(900, 0)},
		{"fall back", time.Date(2025, 11, 1, 12, 0, 0, 0, ny), time.Date(2025, 11, 3, 12, 0, 0, 0, ny)},
	}
	groups := []GroupBy{GroupByKey, GroupByTeam, GroupByCustomer, GroupByModel, GroupByProvider, GroupByDay, "bogus"}
	for _, g := range groups {
		for _, w := range windows {
			for _, loc := range locs {
				if g != GroupByDay && loc != nil {
					continue // Location only matters for days
				}
				name := fmt.Sprintf("%s/%s", g, w.name)
				if g == GroupByDay && loc == nil {
					name += "/nil"
				} else if g == GroupByDay {
					name += "/" + loc.String()
				}
				t.Run(name, func(t *testing.T) {
					q := UsageQuery{GroupBy: g, From: w.from, To: w.to, Location: loc}
					want, err := mem.Usage(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					got, err := s.Usage(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("sqlite rows differ from memory rows\n got: %+v\nwant: %+v", got, want)
					}
				})
			}
		}
	}
}

// TestSQLiteUsageDays checks day folding by hand, so the comparison with
// MemoryStore is not the only witness.
func TestSQLiteUsageDays(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	kolkata := mustLoad(t, "Asia/Kolkata")
	utc := func(s string) time.Time {
		tt, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	tests := []struct {
		name  string
		loc   *time.Location
		times []string
		want  map[string]int64 // day → requests
	}{
		{"NY spring forward (23 h day)", ny, []string{
			"2025-03-09T04:59:59.999999999Z", // Mar 8 23:59:59 EST
			"2025-03-09T05:00:00Z",           // Mar 9 00:00 EST
			"2025-03-10T03:59:59.999999999Z", // Mar 9 23:59:59 EDT
			"2025-03-10T04:00:00Z",           // Mar 10 00:00 EDT
		}, map[string]int64{"2025-03-08": 1, "2025-03-09": 2, "2025-03-10": 1}},
		{"NY fall back (25 h day)", ny, []string{
			"2025-11-02T03:59:59Z", // Nov 1 23:59:59 EDT
			"2025-11-02T04:00:00Z", // Nov 2 00:00 EDT
			"2025-11-02T05:30:00Z", // 01:30 EDT
			"2025-11-02T06:30:00Z", // 01:30 EST
			"2025-11-03T04:59:59Z", // Nov 2 23:59:59 EST
			"2025-11-03T05:00:00Z", // Nov 3 00:00 EST
		}, map[string]int64{"2025-11-01": 1, "2025-11-02": 4, "2025-11-03": 1}},
		{"Kolkata +05:30", kolkata, []string{
			"2025-06-01T18:29:59.999999999Z",
			"2025-06-01T18:30:00Z",
			"2025-06-02T18:29:00Z",
		}, map[string]int64{"2025-06-01": 1, "2025-06-02": 2}},
		{"UTC by default", nil, []string{
			"2025-06-01T18:29:59Z",
			"2025-06-01T23:59:59.999999999Z",
			"2025-06-02T00:00:00Z",
		}, map[string]int64{"2025-06-01": 2, "2025-06-02": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
			for _, ts := range tc.times {
				s.Record(&Record{Time: utc(ts), Key: "k", Cost: 5, Usage: llm.Usage{InputTokens: 2}})
			}
			flush(t, s)
			rows, err := s.Usage(context.Background(), UsageQuery{GroupBy: GroupByDay, Location: tc.loc})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, r := range rows {
				got[r.Group] = r.Totals.Requests
				if r.Totals.Cost != Money(5*r.Totals.Requests) || r.Totals.Usage.InputTokens != 2*r.Totals.Requests {
					t.Errorf("%s: totals %+v inconsistent", r.Group, r.Totals)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSQLiteSpendSince(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	b := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // a bucket boundary
	q := SpendBucket
	put := func(at time.Time, key string, cost Money) {
		s.Record(&Record{Time: at, Key: key, Team: "team-" + key, Customer: "cust", Cost: cost,
			Usage: llm.Usage{InputTokens: int64(cost), OutputTokens: 1}})
	}
	put(b.Add(-1), "k", 1)
	put(b, "k", 10)
	put(b.Add(q-1), "k", 100)
	put(b.Add(q), "k", 1000)
	put(b.Add(time.Hour), "k", 10000)
	// Around the epoch, whose quarter hour must not collide with the
	// all-time bucket 0.
	put(time.Unix(-1, 0), "e", 1)
	put(time.Unix(0, 0), "e", 10)
	put(time.Unix(899, 0), "e", 100)
	put(time.Unix(900, 0), "e", 1000)
	flush(t, s)

	tests := []struct {
		scope Scope
		since time.Time
		want  Money
	}{
		{Scope{ScopeKey, "k"}, time.Time{}, 11111},
		{Scope{ScopeKey, "k"}, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 11111},
		{Scope{ScopeKey, "k"}, b.Add(-1), 11111}, // floored to b-15m
		{Scope{ScopeKey, "k"}, b, 11110},
		{Scope{ScopeKey, "k"}, b.Add(1), 11110}, // floored to b
		{Scope{ScopeKey, "k"}, b.Add(q - 1), 11110},
		{Scope{ScopeKey, "k"}, b.Add(q), 11000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour - 1), 10000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour), 10000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour + q), 0},
		{Scope{ScopeKey, "k"}, b.In(mustLoad(t, "Asia/Kolkata")), 11110}, // zone is irrelevant
		{Scope{ScopeTeam, "team-k"}, b.Add(q), 11000},
		{Scope{ScopeCustomer, "cust"}, b, 11110}, // the epoch records are long before
		{Scope{ScopeCustomer, "cust"}, time.Time{}, 11111 + 1111},
		{Scope{ScopeKey, "nobody"}, time.Time{}, 0},
		{Scope{ScopeTeam, "k"}, time.Time{}, 0}, // same name, other kind
		{Scope{ScopeKey, "e"}, time.Time{}, 1111},
		{Scope{ScopeKey, "e"}, time.Unix(-1, 0), 1111},
		{Scope{ScopeKey, "e"}, time.Unix(0, 0), 1110},
		{Scope{ScopeKey, "e"}, time.Unix(899, 0), 1110},
		{Scope{ScopeKey, "e"}, time.Unix(900, 0), 1000},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s since %s", tc.scope, tc.since.Format(time.RFC3339Nano)), func(t *testing.T) {
			got, err := s.SpendSince(tc.scope, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cost != tc.want || got.Usage.InputTokens != int64(tc.want) {
				t.Errorf("cost %d, input %d; want %d", got.Cost, got.Usage.InputTokens, tc.want)
			}
			if got.Requests != got.Usage.OutputTokens {
				t.Errorf("requests %d, output tokens %d: should match", got.Requests, got.Usage.OutputTokens)
			}
		})
	}
}

// errInjected is the failure the write hooks inject.
var errInjected = errors.New("injected write failure")

func TestSQLiteWriteErrorRetries(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		backoffs []time.Duration
	}{
		{"one failure", 1, []time.Duration{50 * time.Millisecond}},
		{"backoff is capped", 10, []time.Duration{
			50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond,
			5 * time.Second, 5 * time.Second, 5 * time.Second,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var reported []error
			var slept []time.Duration
			var attempts atomic.Int64
			opts := SQLiteOptions{
				OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
				beforeCommit: func(int) error {
					if attempts.Add(1) <= int64(tc.failures) {
						return errInjected
					}
					return nil
				},
				sleep: func(d time.Duration, _ <-chan struct{}) { mu.Lock(); slept = append(slept, d); mu.Unlock() },
			}
			path := filepath.Join(t.TempDir(), "u.db")
			s := openSQLite(t, path, opts)
			recs := randomRecords(3, 300, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Hour)
			ref := NewMemoryStore()
			for i := range recs {
				s.Record(&recs[i])
				ref.Record(&recs[i])
			}
			flush(t, s)
			st := s.Stats()
			if st.Committed != int64(len(recs)) || st.WriteErrors != int64(tc.failures) || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
			mu.Lock()
			if len(reported) != tc.failures {
				t.Errorf("OnError called %d times, want %d", len(reported), tc.failures)
			}
			for _, err := range reported {
				if !errors.Is(err, errInjected) {
					t.Errorf("reported %v, want it to wrap the injected error", err)
				}
			}
			if !reflect.DeepEqual(slept, tc.backoffs) {
				t.Errorf("backoffs %v, want %v", slept, tc.backoffs)
			}
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2 := openSQLite(t, path, SQLiteOptions{})
			rows, err := s2.Records(context.Background(), time.Time{}, time.Time{}, 0)
			if err != nil || len(rows) != len(recs) {
				t.Fatalf("ledger: %d rows, %v; want %d (no loss, no duplicates)", len(rows), err, len(recs))
			}
			for _, sc := range scopesOf(recs) {
				want := ref.Totals(sc)
				if got := s2.Totals(sc); got != want {
					t.Errorf("%s totals %+v, want %+v", sc, got, want)
				}
				if got, _ := s2.SpendSince(sc, time.Time{}); got != want {
					t.Errorf("%s buckets %+v, want %+v", sc, got, want)
				}
			}
		})
	}
}

// TestSQLiteWriteErrorLocked fails writes for real: another connection holds
// the write lock past the busy timeout.
func TestSQLiteWriteErrorLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	failed := make(chan error, 1)
	s := openSQLite(t, path, SQLiteOptions{
		BusyTimeout: 20 * time.Millisecond,
		OnError: func(err error) {
			select {
			case failed <- err:
			default:
			}
		},
		sleep: func(time.Duration, <-chan struct{}) {}, // retry at once (each attempt waits the busy timeout)
	})
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin() // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Time: time.Date(2025, 4, 1, 10, 0, 0, 0, time.UTC), Key: "k", Team: "t", Cost: 42, Usage: llm.Usage{InputTokens: 9}}
	s.Record(&r)
	err = <-failed
	if !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
		t.Errorf("error %v does not look like a lock timeout", err)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if st := s.Stats(); st.Committed != 1 || st.WriteErrors < 1 {
		t.Errorf("stats %+v", st)
	}
	var n int
	if err := other.QueryRow("SELECT COUNT(*) FROM ledger").Scan(&n); err != nil || n != 1 {
		t.Errorf("ledger rows %d, %v; want 1", n, err)
	}
	for _, sc := range []Scope{{ScopeKey, "k"}, {ScopeTeam, "t"}} {
		if got, _ := s.SpendSince(sc, time.Time{}); got.Cost != 42 || got.Requests != 1 {
			t.Errorf("%s: %+v", sc, got)
		}
	}
}

func TestSQLiteCloseGivesUpOnFailingWrites(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	s, err := OpenSQLiteStore(filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{
		OnError:      func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
		beforeCommit: func(int) error { return errInjected },
		sleep:        func(_ time.Duration, stop <-chan struct{}) { <-stop },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.Record(&Record{Key: "k", Cost: 1})
	}
	err = s.Close()
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "3 usage records lost") {
		t.Fatalf("Close = %v, want the write error and the loss", err)
	}
	if again := s.Close(); again != err {
		t.Errorf("second Close = %v, want %v", again, err)
	}
	if st := s.Stats(); st.Dropped != 3 || st.Committed != 0 {
		t.Errorf("stats %+v", st)
	}
	s.Record(&Record{Key: "late"}) // must not panic
	if st := s.Stats(); st.Dropped != 4 {
		t.Errorf("dropped %d after a late record, want 4", st.Dropped)
	}
	if got := s.Totals(Scope{ScopeKey, "late"}); got != (Totals{}) {
		t.Errorf("late record counted: %+v", got)
	}
	mu.Lock()
	if last := reported[len(reported)-1]; !errors.Is(last, ErrStoreClosed) {
		t.Errorf("late record reported %v, want ErrStoreClosed", last)
	}
	mu.Unlock()
	if err := s.Flush(context.Background()); !errors.Is(err, ErrStoreClosed) || !errors.Is(err, errInjected) {
		t.Errorf("Flush after a lossy Close = %v", err)
	}
}

// TestSQLiteCloseWithFullQueue closes a store whose writes fail while a
// Record waits for room in a full queue: Close must not deadlock.
func TestSQLiteCloseWithFullQueue(t *testing.T) {
	attempted := make(chan struct{}, 100)
	s, err := OpenSQLiteStore(filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{
		QueueSize: 1,
		beforeCommit: func(int) error {
			attempted <- struct{}{}
			return errInjected
		},
		sleep: func(_ time.Duration, stop <-chan struct{}) { <-stop },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Record(&Record{Key: "k"})
	<-attempted                 // the writer holds record 1 and waits to retry
	s.Record(&Record{Key: "k"}) // fills the queue
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		s.Record(&Record{Key: "k"}) // waits for room
	}()
	waitForBlockedRecord(t)
	if err := s.Close(); !errors.Is(err, errInjected) {
		t.Errorf("Close = %v, want the write error", err)
	}
	<-blocked
	if st := s.Stats(); st.Dropped != 3 || st.Committed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// waitForBlockedRecord spins (yielding, never sleeping) until a goroutine is
// blocked sending inside SQLiteStore.Record.
func waitForBlockedRecord(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 1_000_000 {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[chan send") && strings.Contains(g, ".(*SQLiteStore).Record(") {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatal("no Record blocked on the full queue")
}

func TestSQLiteCloseAndFlushLifecycle(t *testing.T) {
	s, err := OpenSQLiteStore(filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Record(&Record{Key: "k", Cost: 3})
	if err := s.Close(); err != nil { // Close flushes
		t.Fatal(err)
	}
	if st := s.Stats(); st.Committed != 1 {
		t.Errorf("Close did not commit the queued record: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Errorf("Flush after a clean Close = %v", err)
	}
	s.Record(&Record{Key: "k"}) // no OnError set: dropped silently, no panic
}

func TestSQLiteFlushHonoursContext(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{
		beforeCommit: func(int) error { once.Do(func() { <-release }); return nil },
	})
	s.Record(&Record{Key: "k"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a cancelled context = %v", err)
	}
	close(release)
	flush(t, s)
	if st := s.Stats(); st.Committed != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestSQLiteTwoInstances overlaps two stores on one file, as a Caddy reload
// or a second process can.
func TestSQLiteTwoInstances(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	ref := NewMemoryStore()
	all := randomRecords(11, 3000, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour)
	for i := range all {
		ref.Record(&all[i])
	}
	a := openSQLite(t, path, SQLiteOptions{})
	for i := range all[:1000] {
		a.Record(&all[i])
	}
	flush(t, a)
	b := openSQLite(t, path, SQLiteOptions{}) // opened while a is live
	for _, sc := range scopesOf(all[:1000]) {
		if got, want := b.Totals(sc), a.Totals(sc); got != want {
			t.Fatalf("%s: second instance loaded %+v, first has %+v", sc, got, want)
		}
	}
	var wg sync.WaitGroup
	for _, part := range []struct {
		s    *SQLiteStore
		recs []Record
	}{{a, all[1000:2000]}, {b, all[2000:]}} {
		wg.Go(func() {
			for i := range part.recs {
				part.s.Record(&part.recs[i])
			}
		})
	}
	wg.Wait()
	flush(t, a)
	flush(t, b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// b keeps working after a is gone.
	extra := Record{Time: time.Date(2025, 8, 2, 0, 0, 0, 0, time.UTC), Key: "alice", Cost: 77}
	b.Record(&extra)
	ref.Record(&extra)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.WriteErrors != 0 {
		t.Errorf("a: %+v", st)
	}
	if st := b.Stats(); st.WriteErrors != 0 {
		t.Errorf("b: %+v", st)
	}

	c := openSQLite(t, path, SQLiteOptions{})
	for _, sc := range scopesOf(append(all, extra)) {
		if got, want := c.Totals(sc), ref.Totals(sc); got != want {
			t.Errorf("%s: got %+v, want %+v", sc, got, want)
		}
	}
	rows, err := c.Records(context.Background(), time.Time{}, time.Time{}, 0)
	if err != nil || len(rows) != len(all)+1 {
		t.Errorf("ledger rows %d, %v; want %d", len(rows), err, len(all)+1)
	}
	var check string
	if err := c.db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
}

func TestSQLiteSchema(t *testing.T) {
	t.Run("fresh file", func(t *testing.T) {
		s := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
		var version int
		var mode, sync string
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != sqliteSchemaVersion {
			t.Errorf("user_version %d, %v", version, err)
		}
		if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode %q, %v", mode, err)
		}
		if err := s.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != "1" {
			t.Errorf("synchronous %q, %v; want 1 (NORMAL)", sync, err)
		}
	})
	t.Run("version 1 migrated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "u.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{sqliteSchemaV1, `INSERT INTO ledger (time_ns, key, team, customer, provider, model,
			requested_model, surface, status, stream, input_tokens, output_tokens, cache_read_tokens,
			cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
			output_estimated, session_id, duration_us) VALUES (1, 'old', '', '', 'p', 'm', 'm', 's', 200, 0,
			7, 8, 0, 0, 0, 0, 9, 1, 0, '', 0)`, "PRAGMA user_version = 1"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s := openSQLite(t, path, SQLiteOptions{})
		var version int
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != sqliteSchemaVersion {
			t.Fatalf("user_version %d, %v", version, err)
		}
		s.Record(&Record{Time: time.Unix(2, 0), Key: "new", Usage: llm.Usage{InputTokens: 3, InputEstimated: true, OutputTokens: 4, OutputEstimated: true}})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if err != nil || len(rows) != 2 {
			t.Fatalf("rows %+v, %v", rows, err)
		}
		if u := rows[0].Usage; rows[0].Key != "old" || u.InputTokens != 7 || u.InputEstimated || !u.Complete {
			t.Errorf("migrated row %+v", rows[0])
		}
		if u := rows[1].Usage; rows[1].Key != "new" || !u.InputEstimated || !u.OutputEstimated {
			t.Errorf("new row %+v", rows[1])
		}
	})
	t.Run("version 2 migrated in place", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "u.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{sqliteSchemaV1, sqliteSchemaV2, `INSERT INTO ledger (time_ns, key, team, customer, provider, model,
			requested_model, surface, status, stream, input_tokens, output_tokens, cache_read_tokens,
			cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
			output_estimated, session_id, duration_us, input_estimated) VALUES (1, 'old', '', '', 'p', 'm', 'm', 's', 200, 0,
			7, 8, 0, 0, 0, 0, 9, 1, 0, '', 0, 1)`, "PRAGMA user_version = 2"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s := openSQLite(t, path, SQLiteOptions{})
		var version int
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != sqliteSchemaVersion {
			t.Fatalf("user_version %d, %v", version, err)
		}
		s.Record(&Record{Time: time.Unix(2, 0), Key: "new", Model: "claude-opus-4-6", PriceModel: "claude-opus-4-6", PriceEffectiveFrom: "2026-02-05",
			Cost: 780_000_000, Usage: llm.Usage{InputTokens: 1000, OutputTokens: 5000, Speed: "fast", InferenceGeo: "us"}})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if err != nil || len(rows) != 2 {
			t.Fatalf("rows %+v, %v", rows, err)
		}
		if r := rows[0]; r.Key != "old" || !r.Usage.InputEstimated || r.PriceModel != "" || r.Usage.Speed != "" {
			t.Errorf("migrated row %+v", r)
		}
		if r := rows[1]; r.PriceRow() != "claude-opus-4-6@2026-02-05" || r.Usage.Speed != "fast" || r.Usage.InferenceGeo != "us" {
			t.Errorf("new row %+v", r)
		}
		for g, want := range map[GroupBy][]string{GroupBySpeed: {"", "fast"}, GroupByInferenceGeo: {"", "us"}, GroupByPriceRow: {"", "claude-opus-4-6@2026-02-05"}} {
			got, err := s.Usage(context.Background(), UsageQuery{GroupBy: g})
			if err != nil || len(got) != 2 || got[0].Group != want[0] || got[1].Group != want[1] || got[1].Totals.Cost != 780_000_000 {
				t.Errorf("group by %s: %+v, %v", g, got, err)
			}
		}
	})
	t.Run("version 3 migrated in place", func(t *testing.T) {
		// A file as the previous release wrote it: schema 3, one row, totals.
		path := filepath.Join(t.TempDir(), "u.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{sqliteSchemaV1, sqliteSchemaV2, sqliteSchemaV3, `INSERT INTO ledger (time_ns, key, team, customer, provider, model,
			requested_model, surface, status, stream, input_tokens, output_tokens, cache_read_tokens,
			cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
			output_estimated, session_id, duration_us, input_estimated, price_model, price_effective_from,
			speed, inference_geo) VALUES (1, 'old', '', '', 'p', 'm', 'm', 's', 200, 1,
			7, 8, 0, 0, 0, 0, 9, 1, 0, 'sess', 5, 0, 'm', '2025-01-01', 'fast', 'us')`,
			`INSERT INTO totals VALUES ('key', 'old', 0, 1, 7, 8, 0, 0, 0, 0, 9)`,
			"PRAGMA user_version = 3"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s := openSQLite(t, path, SQLiteOptions{})
		var version int
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != sqliteSchemaVersion {
			t.Fatalf("user_version %d, %v", version, err)
		}
		if got := s.Totals(Scope{ScopeKey, "old"}); got.Requests != 1 || got.Cost != 9 {
			t.Errorf("totals of the old file %+v", got)
		}
		s.Record(&Record{Time: time.Unix(2, 0), Key: "new", Status: 200, RequestID: "01JZREQ", ProviderRequestID: "req_011C",
			Labels: map[string]string{"project": "apollo"}, UserAgent: "claude-cli/2.1.328", TTFT: 250 * time.Millisecond,
			Attempts: 2, ErrorType: "overloaded_error"})
		s.Record(&Record{Time: time.Unix(3, 0), Key: "new", Status: 402, RequestID: "01JZREF", Rejection: "budget"})
		flush(t, s)
		rows, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if err != nil || len(rows) != 3 {
			t.Fatalf("rows %+v, %v", rows, err)
		}
		if r := rows[0]; r.Key != "old" || r.PriceRow() != "m@2025-01-01" || r.SessionID != "sess" || r.RequestID != "" ||
			r.Labels != nil || r.TTFT != 0 || r.Attempts != 0 || r.Rejection != "" || r.ErrorType != "" || r.UserAgent != "" {
			t.Errorf("migrated row %+v", r)
		}
		if r := rows[1]; r.RequestID != "01JZREQ" || r.ProviderRequestID != "req_011C" || r.Labels["project"] != "apollo" ||
			len(r.Labels) != 1 || r.UserAgent != "claude-cli/2.1.328" || r.TTFT != 250*time.Millisecond || r.Attempts != 2 ||
			r.ErrorType != "overloaded_error" {
			t.Errorf("new row %+v", r)
		}
		if r := rows[2]; r.RequestID != "01JZREF" || r.Rejection != "budget" || r.Status != 402 {
			t.Errorf("refused row %+v", r)
		}
	})
	t.Run("version 4 migrated in place", func(t *testing.T) {
		// A file as the previous release wrote it: schema 4, rows, totals.
		path := filepath.Join(t.TempDir(), "u.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		old := `INSERT INTO ledger (time_ns, key, team, customer, provider, model,
			requested_model, surface, status, stream, input_tokens, output_tokens, cache_read_tokens,
			cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
			output_estimated, session_id, duration_us, input_estimated, price_model, price_effective_from,
			speed, inference_geo, request_id, provider_request_id, labels, user_agent, ttft_us, attempts,
			rejection, error_type) VALUES (%d, 'old', 'payments', '', 'anthropic', 'claude-opus-4-5', 'claude-opus-4-5',
			'anthropic_messages', 200, 1, 7, 8, 30, 0, 0, 0, %d, 1, 0, 'sess-1', 5, 0, 'claude-opus-4-5', '2025-01-01',
			'', '', 'req-%d', 'req_011C', '{"project":"apollo"}', 'claude-cli/2.1.328', 900, 1, '', '')`
		base := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		stmts := []string{sqliteSchemaV1, sqliteSchemaV2, sqliteSchemaV3, sqliteSchemaV4}
		for i := 0; i < 3; i++ {
			stmts = append(stmts, fmt.Sprintf(old, base.Add(time.Duration(i)*20*time.Minute).UnixNano(), (i+1)*int(Dollar), i))
		}
		stmts = append(stmts, `INSERT INTO totals VALUES ('key', 'old', 0, 3, 21, 24, 90, 0, 0, 0, 6000000000)`,
			`INSERT INTO totals VALUES ('team', 'payments', 0, 3, 21, 24, 90, 0, 0, 0, 6000000000)`, "PRAGMA user_version = 4")
		for _, q := range stmts {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s := openSQLite(t, path, SQLiteOptions{MaintainEvery: time.Hour})
		var version int
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != sqliteSchemaVersion {
			t.Fatalf("user_version %d, %v", version, err)
		}
		if got := s.Totals(Scope{ScopeKey, "old"}); got.Requests != 3 || got.Cost != 6*Dollar || got.CacheHits != 0 {
			t.Errorf("totals of the old file %+v", got)
		}
		s.Record(&Record{Time: base.Add(time.Hour), Key: "new", Team: "payments", Model: "claude-opus-4-5", SessionID: "sess-2",
			Cost: Dollar, CacheHit: true, Saved: 2 * Dollar})
		flush(t, s)
		rows, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if err != nil || len(rows) != 4 {
			t.Fatalf("rows %+v, %v", rows, err)
		}
		if r := rows[0]; r.Key != "old" || r.CacheHit || r.Saved != 0 || r.RequestID != "req-0" || r.Labels["project"] != "apollo" ||
			r.TTFT != 900*time.Microsecond {
			t.Errorf("migrated row %+v", r)
		}
		if r := rows[3]; !r.CacheHit || r.Saved != 2*Dollar {
			t.Errorf("new row %+v", r)
		}
		// The rows of the old file are rolled up by the writer, and reports
		// read them the same before and after.
		q := ReportQuery{Dims: []Dim{DimKey, DimDay}}
		before, err := s.Report(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		s.SetLocation(time.UTC)
		if err := s.Maintain(context.Background(), base.AddDate(0, 0, 3)); err != nil {
			t.Fatal(err)
		}
		after, err := s.Report(context.Background(), q)
		if err != nil || !reflect.DeepEqual(before, after) || after.Total.Cost != 7*Dollar || after.Total.Saved != 2*Dollar {
			t.Errorf("report before the roll-up %+v, after %+v, %v", before, after, err)
		}
		sessions, err := s.Sessions(context.Background(), SessionsQuery{})
		if err != nil || len(sessions.Rows) != 2 || sessions.Rows[0].Session != "sess-1" || sessions.Rows[0].Totals.Requests != 3 ||
			!sessions.Rows[0].FirstSeen.Equal(base) || !sessions.Rows[0].LastSeen.Equal(base.Add(40*time.Minute)) {
			t.Errorf("sessions %+v, %v", sessions, err)
		}
	})
	t.Run("newer version refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "u.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if s, err := OpenSQLiteStore(path, SQLiteOptions{}); err == nil || !strings.Contains(err.Error(), "99") {
			if s != nil {
				s.Close()
			}
			t.Errorf("OpenSQLiteStore on schema 99 = %v", err)
		}
	})
	t.Run("bad paths", func(t *testing.T) {
		dir := t.TempDir()
		for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "a?b.db")} {
			if s, err := OpenSQLiteStore(p, SQLiteOptions{}); err == nil {
				s.Close()
				t.Errorf("OpenSQLiteStore(%q) succeeded", p)
			}
		}
	})
	t.Run("not a database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "u.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenSQLiteStore(path, SQLiteOptions{}); err == nil {
			s.Close()
			t.Error("opened a file that is not a database")
		}
	})
}

// BenchmarkSQLiteRecord measures records per second through Record and the
// group-committing writer (the final Flush is inside the timing). Requests
// arrive 100 µs apart (10,000 per second) from 100 keys in 10 teams.
func BenchmarkSQLiteRecord(b *testing.B) {
	base := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(5, 1024, base, time.Second)
	for i := range recs {
		recs[i].Key = fmt.Sprintf("key-%02d", i%100)
		recs[i].Team = fmt.Sprintf("team-%d", i%10)
	}
	at := func(i int64) time.Time { return base.Add(time.Duration(i) * 100 * time.Microsecond) }
	for _, par := range []bool{false, true} {
		name := "serial"
		if par {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			s := openSQLite(b, filepath.Join(b.TempDir(), "u.db"), SQLiteOptions{})
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			if par {
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						r := recs[i%int64(len(recs))]
						r.Time = at(i)
						s.Record(&r)
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					r := recs[i%len(recs)]
					r.Time = at(int64(i))
					s.Record(&r)
				}
			}
			flush(b, s)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(st.Committed), "cpu-µs/record")
			b.ReportMetric(float64(st.Committed)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Committed)/float64(max(st.Batches, 1)), "records/txn")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used, which
// a busy machine does not inflate the way it inflates wall-clock time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
