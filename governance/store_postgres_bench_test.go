package governance

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
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
