package governance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// The 5-million-row ledger benchmark runs on demand only (it writes about
// 3 GB):
//
//	LLM_GATEWAY_BENCH_5M=1 go test ./governance -run '^$' -bench BenchmarkLedger5M -benchtime 5x -timeout 2h
//
// LLM_GATEWAY_BENCH_DB=<path> keeps the filled file there and reuses it on
// the next run (default: a temporary directory, removed afterwards).
const (
	bench5MRows     = 5_000_000
	bench5MDays     = 90
	bench5MKeys     = 1000
	bench5MTeams    = 50
	bench5MModels   = 10
	bench5MSessions = 20_000
	// bench5MSessionShare is the share of rows sent by Claude Code sessions;
	// the rest come from scripts (no session), at random times.
	bench5MSessionShare = 0.9
)

var bench5MModelNames = [bench5MModels]string{"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5",
	"claude-opus-4-1", "claude-sonnet-4", "claude-3-7-sonnet", "claude-3-5-haiku", "gpt-5", "gpt-5-mini", "gemini-2.5-pro"}

// bench5MSession is one generated Claude Code session.
type bench5MSession struct {
	id          string
	key         int
	model       int // its main model; a fifth of its requests use haiku
	start, span int64
	rows        int
}

// fill5M writes the benchmark ledger in time order through Record, an hour
// of rows at a time: 20,000 sessions of 1–3 hours spread over 90 days
// (each key's sessions in its team's working pattern), plus script traffic.
func fill5M(b *testing.B, s *SQLiteStore, start time.Time) {
	rng := rand.New(rand.NewPCG(5, 5_000_000))
	total := int64(bench5MDays * 24 * time.Hour)
	sessRows := int(bench5MRows * bench5MSessionShare)
	sessions := make([]bench5MSession, bench5MSessions)
	for i := range sessions {
		span := int64(time.Hour) + rng.Int64N(int64(2*time.Hour))
		sessions[i] = bench5MSession{id: fmt.Sprintf("%08x-5e55-4c1d-9a1e-%012x", rng.Uint32(), i), key: rng.IntN(bench5MKeys),
			model: rng.IntN(bench5MModels), start: rng.Int64N(total - span), span: span, rows: sessRows / bench5MSessions}
	}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].start < sessions[j].start })
	scriptRows := bench5MRows - sessRows
	hours := bench5MDays * 24
	var active []*bench5MSession
	next := 0
	var hour []Record
	written := 0
	for h := 0; h < hours; h++ {
		lo, hi := int64(h)*int64(time.Hour), int64(h+1)*int64(time.Hour)
		for next < len(sessions) && sessions[next].start < hi {
			active = append(active, &sessions[next])
			next++
		}
		hour = hour[:0]
		kept := active[:0]
		for _, ss := range active {
			// the session's rows in [lo, hi): spread evenly over its span
			for k := 0; k < ss.rows; k++ {
				at := ss.start + ss.span*int64(k)/int64(ss.rows)
				if at >= lo && at < hi {
					model := ss.model
					if rng.IntN(5) == 0 {
						model = 2
					}
					hour = append(hour, bench5MRecord(rng, start.Add(time.Duration(at)), ss.key, model, ss.id))
				}
			}
			if ss.start+ss.span >= hi {
				kept = append(kept, ss)
			}
		}
		active = kept
		n := scriptRows / hours
		if h < scriptRows%hours {
			n++
		}
		for k := 0; k < n; k++ {
			key := rng.IntN(bench5MKeys)
			hour = append(hour, bench5MRecord(rng, start.Add(time.Duration(lo+rng.Int64N(int64(time.Hour)))), key, key%bench5MModels, ""))
		}
		sort.Slice(hour, func(i, j int) bool { return hour[i].Time.Before(hour[j].Time) })
		for i := range hour {
			s.Record(&hour[i])
		}
		written += len(hour)
	}
	if written < bench5MRows*99/100 {
		b.Fatalf("generated %d rows", written)
	}
}

func bench5MRecord(rng *rand.Rand, at time.Time, key, model int, session string) Record {
	team := key % bench5MTeams
	in, out, cr := 200+rng.Int64N(5000), 50+rng.Int64N(3000), rng.Int64N(150_000)
	r := Record{
		Time: at, Key: fmt.Sprintf("dev-%04d", key), Team: fmt.Sprintf("team-%02d", team),
		Customer: fmt.Sprintf("bu-%d", team%10), Provider: "anthropic", Model: bench5MModelNames[model],
		RequestedModel: bench5MModelNames[model], Surface: "anthropic_messages", Status: 200, Stream: true,
		Usage:     llm.Usage{InputTokens: in, OutputTokens: out, CacheReadTokens: cr, Complete: true},
		Cost:      Money(in*3_000 + out*15_000 + cr*300),
		SessionID: session, Duration: time.Duration(1+rng.Int64N(60_000)) * time.Millisecond,
		RequestID: fmt.Sprintf("01K%023d", rng.Int64N(1<<62)), ProviderRequestID: fmt.Sprintf("req_011C%016x", rng.Uint64()),
		UserAgent: "claude-cli/2.1.328 (external, cli)", TTFT: time.Duration(rng.Int64N(3000)) * time.Millisecond, Attempts: 1,
	}
	if session == "" {
		r.UserAgent = "python-httpx/0.28.1"
	}
	if rng.IntN(100) == 0 {
		r.Status, r.Rejection, r.Usage, r.Cost, r.Attempts = 402, "budget", llm.Usage{}, 0, 0
	}
	if rng.IntN(3) == 0 {
		r.Labels = map[string]string{"project": fmt.Sprintf("p%d", team%7)}
	}
	return r
}

// BenchmarkLedger5M fills (or reuses) a SQLite ledger of 5 million rows
// and measures the queries on it.
func BenchmarkLedger5M(b *testing.B) {
	if os.Getenv("LLM_GATEWAY_BENCH_5M") == "" {
		b.Skip("set LLM_GATEWAY_BENCH_5M=1 to run the 5-million-row ledger benchmark (about 3 GB of disk)")
	}
	ctx := context.Background()
	path := os.Getenv("LLM_GATEWAY_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "ledger5m.db")
	}
	// The ledger ends an hour ago, as a live one would.
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	start := end.AddDate(0, 0, -bench5MDays)
	s, err := OpenSQLiteStore(path, SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		b.Fatal(err)
	}
	s.SetLocation(ny) // the gateway's timezone: its day rollup
	var rows int64
	if err := s.db.QueryRow("SELECT COUNT(*) FROM ledger").Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows == 0 {
		t0, c0 := time.Now(), processCPU()
		fill5M(b, s, start)
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		fillTime, fillCPU := time.Since(t0), processCPU()-c0
		t1, c1 := time.Now(), processCPU()
		if err := s.Maintain(ctx, time.Now()); err != nil {
			b.Fatal(err)
		}
		rollTime, rollCPU := time.Since(t1), processCPU()-c1
		st := s.Stats()
		b.Logf("filled %d rows in %v (%.0f rows/s, %.1f cpu-µs/row, %.0f rows/txn); rolled up in %v (%.1f cpu-µs/row)",
			st.Committed, fillTime.Round(time.Second), float64(st.Committed)/fillTime.Seconds(),
			float64(fillCPU.Microseconds())/float64(st.Committed), float64(st.Committed)/float64(st.Batches),
			rollTime.Round(time.Second), float64(rollCPU.Microseconds())/float64(st.Committed))
	} else {
		t1 := time.Now()
		if err := s.Maintain(ctx, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.Logf("caught up the rollups in %v", time.Since(t1).Round(time.Millisecond))
	}
	var dayRows int64
	s.db.QueryRow("SELECT COUNT(*) FROM rollup_day").Scan(&dayRows)
	b.Logf("%d day rollup rows", dayRows)
	var rollupRows int64
	s.db.QueryRow("SELECT COUNT(*) FROM rollup").Scan(&rollupRows)
	if fi, err := os.Stat(path); err == nil {
		b.Logf("file %s: %.2f GB, %d rollup rows", path, float64(fi.Size())/1e9, rollupRows)
	}
	day := func(back int) time.Time {
		y, m, d := end.In(ny).Date()
		return time.Date(y, m, d-back, 0, 0, 0, 0, ny)
	}
	monthStart := time.Date(day(0).Year(), day(0).Month()-1, 1, 0, 0, 0, 0, ny)
	run := func(name string, f func() (int, error)) {
		b.Run(name, func(b *testing.B) {
			n := 0
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				var err error
				if n, err = f(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/query")
			b.ReportMetric(float64(n), "rows")
		})
	}
	run("group_by=team,model,day/month", func() (int, error) {
		r, err := s.Report(ctx, ReportQuery{Dims: []Dim{DimTeam, DimModel, DimDay}, From: monthStart,
			To: monthStart.AddDate(0, 1, 0), Location: ny})
		return len(r.Rows), err
	})
	run("team_opus_per_key_per_day/week", func() (int, error) {
		r, err := s.Report(ctx, ReportQuery{Dims: []Dim{DimKey, DimDay}, Filters: []Filter{{DimTeam, "team-07"},
			{DimModel, "claude-opus-*"}}, From: day(7), To: day(0), Location: ny})
		return len(r.Rows), err
	})
	run("chargeback_team,model,month/90d", func() (int, error) {
		r, err := s.Report(ctx, ReportQuery{Dims: []Dim{DimTeam, DimModel, DimMonth}, Location: ny})
		return len(r.Rows), err
	})
	run("sessions_top20_by_cost/day", func() (int, error) {
		p, err := s.Sessions(ctx, SessionsQuery{From: day(1), To: day(0), Location: ny, Limit: 20})
		return len(p.Rows), err
	})
	run("sessions_over_$20/day", func() (int, error) {
		p, err := s.Sessions(ctx, SessionsQuery{From: day(1), To: day(0), Location: ny, MinCost: 20 * Dollar, Limit: 100})
		return len(p.Rows), err
	})
	run("requests_page/team,opus", func() (int, error) {
		p, err := s.Requests(ctx, RequestsQuery{Filters: []Filter{{DimTeam, "team-07"}, {DimModel, "claude-opus-*"}}, Location: ny})
		return len(p.Rows), err
	})
	run("requests_page/key", func() (int, error) {
		p, err := s.Requests(ctx, RequestsQuery{Filters: []Filter{{DimKey, "dev-0421"}}, Location: ny})
		return len(p.Rows), err
	})
	var old string
	s.db.QueryRow("SELECT session_id FROM ledger WHERE session_id != '' ORDER BY id LIMIT 1").Scan(&old)
	run("requests_page/oldest_session", func() (int, error) {
		p, err := s.Requests(ctx, RequestsQuery{Filters: []Filter{{DimSession, old}}, Location: ny})
		return len(p.Rows), err
	})
	run("requests_page/unfiltered,day", func() (int, error) {
		p, err := s.Requests(ctx, RequestsQuery{From: day(1), To: day(0), Location: ny})
		return len(p.Rows), err
	})
}
