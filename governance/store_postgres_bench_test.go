package governance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// BenchmarkPostgresRecord measures the rows per second a PostgreSQL ledger
// commits, from one instance and from two instances (two stores, each
// with its own writer and pool) writing the same database at once, and
// Record's own cost on the request path (ns/op, allocs/op). The queue is
// sized so that no row is dropped: the figure is what PostgreSQL takes.
func BenchmarkPostgresRecord(b *testing.B) {
	pg := testkit.StartPostgres(b)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(5, 1024, base, time.Second)
	for i := range recs {
		recs[i].Key = fmt.Sprintf("key-%02d", i%100)
		recs[i].Team = fmt.Sprintf("team-%d", i%10)
	}
	at := func(i int64) time.Time { return base.Add(time.Duration(i) * 100 * time.Microsecond) }
	for _, instances := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			dsn := newPgDatabase(b, pg)
			stores := make([]*PostgresStore, instances)
			for i := range stores {
				stores[i] = openPostgres(b, dsn, PostgresOptions{QueueSize: b.N + 1024})
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for _, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := b.N / instances; n > 0; n-- {
						i := next.Add(1)
						r := recs[i%int64(len(recs))]
						r.Time = at(i)
						s.Record(&r)
					}
				}()
			}
			wg.Wait()
			recordNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			var committed, batches int64
			for _, s := range stores {
				flush(b, s)
				st := s.Stats()
				if st.Dropped != 0 {
					b.Fatalf("dropped %d", st.Dropped)
				}
				committed += st.Committed
				batches += st.Batches
			}
			b.StopTimer()
			b.ReportMetric(float64(committed)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(committed)/float64(max(batches, 1)), "rows/batch")
			b.ReportMetric(recordNs, "record-ns/op") // Record alone, the request path's share
		})
	}
}

// PostgresQueryRowsEnv sets how many ledger rows BenchmarkPostgresQueries
// loads (e.g. 5000000); without it the benchmark is skipped: it needs a
// few GB of disk and minutes to load, so it runs on demand.
const PostgresQueryRowsEnv = "LLM_GATEWAY_PG_QUERY_ROWS"

// BenchmarkPostgresQueries fills a PostgreSQL ledger with the issue's
// shape of data (90 days, 1,000 keys, 50 teams, 10 models, 20,000
// sessions) and times the three questions: group_by=team,model,day over a
// month, the top 20 sessions by cost over a day, and a filtered page of
// requests.
//
//	LLM_GATEWAY_PG_QUERY_ROWS=5000000 go test ./governance -run XXX -bench BenchmarkPostgresQueries -benchtime 5x -timeout 1h
func BenchmarkPostgresQueries(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv(PostgresQueryRowsEnv))
	if n <= 0 {
		b.Skipf("set %s=<rows> to run (e.g. 5000000)", PostgresQueryRowsEnv)
	}
	pg := testkit.StartPostgres(b)
	s := openPostgres(b, pg.DSN, PostgresOptions{})
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	start := end.Add(-90 * 24 * time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	models := []string{"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4",
		"gpt-5", "gpt-5-mini", "gemini-2.5-pro", "claude-3-7-sonnet", "claude-3-5-haiku"}
	const chunk = 10_000
	recs := make([]Record, chunk)
	batch := make([]pgOp, chunk)
	loadStart := time.Now()
	for done := 0; done < n; done += chunk {
		m := min(chunk, n-done)
		for i := range m {
			k := rng.IntN(1000)
			sess := rng.IntN(20_000)
			recs[i] = Record{
				// Appended in time order, as a live ledger is.
				Time: start.Add(time.Duration(done+i) * (90 * 24 * time.Hour / time.Duration(n))),
				Key:  fmt.Sprintf("key-%04d", k), Team: fmt.Sprintf("team-%02d", k%50), Customer: fmt.Sprintf("cust-%d", k%7),
				Provider: "anthropic", Model: models[rng.IntN(len(models))], Surface: "anthropic_messages", Status: 200,
				SessionID: fmt.Sprintf("sess-%05d", sess), RequestID: fmt.Sprintf("r%d", done+i),
				Usage: llm.Usage{InputTokens: rng.Int64N(20_000), OutputTokens: rng.Int64N(4_000), CacheReadTokens: rng.Int64N(100_000)},
				Cost:  Money(rng.Int64N(int64(Dollar))),
			}
			batch[i] = pgOp{rec: &recs[i], seq: int64(done + i + 1)}
		}
		if err := s.write(batch[:m], false); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d rows in %v", n, time.Since(loadStart).Round(time.Second))
	ctx := context.Background()
	// The gateway's timezone (UTC here): its day rollup is built from the
	// 15-minute rollup, as at a first start after the upgrade.
	zoneStart := time.Now()
	s.SetLocation(time.UTC)
	if err := s.registerZone(ctx); err != nil {
		b.Fatal(err)
	}
	var r15, rDay int64
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM llm_gateway_rollup), (SELECT COUNT(*) FROM llm_gateway_rollup_day)`).Scan(&r15, &rDay); err != nil {
		b.Fatal(err)
	}
	b.Logf("day rollup built in %v; rollup rows: %d (15-minute), %d (day)", time.Since(zoneStart).Round(time.Millisecond), r15, rDay)
	month := ReportQuery{Dims: []Dim{DimTeam, DimModel, DimDay}, From: end.AddDate(0, -1, 0), To: end}
	day := SessionsQuery{From: end.Add(-24 * time.Hour), To: end, Limit: 20}
	page := RequestsQuery{Filters: []Filter{{DimKey, "key-0042"}, {DimModel, "claude-opus-*"}}, From: end.AddDate(0, -1, 0), To: end, Limit: 100}
	for _, q := range []struct {
		name string
		run  func() error
	}{
		{"group_by=team,model,day/month", func() error { _, err := s.Report(ctx, month); return err }},
		{"top20_sessions/day", func() error { _, err := s.Sessions(ctx, day); return err }},
		{"requests_page/filtered", func() error { _, err := s.Requests(ctx, page); return err }},
	} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
