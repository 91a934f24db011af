package module

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// TestLeaseTrackerRenewsOnlyProgress: a request that keeps writing keeps
// its reservation past the lease; one that stalls loses it.
func TestLeaseTrackerRenewsOnlyProgress(t *testing.T) {
	ctx := context.Background()
	counters := governance.NewMemoryCounters(nil)
	s := &sharedStore{ledger: governance.NewMemoryStore(), counters: counters, logger: zap.NewNop()}
	tr := &leaseTracker{store: s, logger: zap.NewNop(), metrics: newMetrics(baseLabels), active: map[*flight]struct{}{}}
	tr.lease.Store(int64(time.Second))
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	lv := []governance.Level{{Scope: governance.Scope{Kind: governance.ScopeKey, Name: "k"}, Budgets: []governance.Budget{{Limit: governance.Dollar, Period: governance.PeriodDay}}}}
	admit := func() *governance.Ticket {
		tk, rej, err := counters.Admit(ctx, &governance.Admission{Now: t0, Location: time.UTC, Levels: lv, WorstCase: governance.Dollar / 4, Lease: time.Second})
		if err != nil || rej != nil {
			t.Fatal(err, rej)
		}
		return tk
	}
	reserved := func(at time.Time) governance.Money {
		st, err := counters.Status(ctx, lv, at, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		return st[0].Reserved
	}
	streaming, stalled := tr.track(admit()), tr.track(admit())
	// Both got response headers; only one keeps writing.
	rec := httptest.NewRecorder()
	w := &progressWriter{ResponseWriter: rec, f: streaming}
	w.WriteHeader(200)
	(&progressWriter{ResponseWriter: rec, f: stalled}).WriteHeader(200)
	_, _ = w.Write([]byte("event: ping\n\n"))
	tr.tick(t0.Add(900 * time.Millisecond)) // renews streaming (progress) only
	tr.tick(t0.Add(1500 * time.Millisecond))
	if got := reserved(t0.Add(1500 * time.Millisecond)); got != governance.Dollar/4 {
		t.Fatalf("reserved %s, want only the streaming request's", got)
	}
	_, _ = w.Write([]byte("event: ping\n\n"))
	tr.tick(t0.Add(1800 * time.Millisecond)) // progress again: renewed to 2.8 s
	tr.tick(t0.Add(2500 * time.Millisecond))
	if got := reserved(t0.Add(2500 * time.Millisecond)); got != governance.Dollar/4 {
		t.Fatalf("reserved %s after renewal", got)
	}
	tr.tick(t0.Add(3 * time.Second)) // no progress since: expires
	if got := reserved(t0.Add(3 * time.Second)); got != 0 {
		t.Fatalf("reserved %s after the stream stalled", got)
	}
	// A request still waiting for response headers counts as progress.
	waiting := tr.track(admit())
	tr.tick(t0.Add(900 * time.Millisecond))
	tr.tick(t0.Add(1500 * time.Millisecond))
	if got := reserved(t0.Add(1500 * time.Millisecond)); got != governance.Dollar/4 {
		t.Fatalf("waiting request lost its reservation: %s", got)
	}
	tr.untrack(waiting)
	tr.untrack(streaming)
	tr.untrack(stalled)
}
