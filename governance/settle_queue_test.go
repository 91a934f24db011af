package governance

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyCounters fails every call while down, and every Settle of a ticket
// in poison; it records what it settled, in order.
type flakyCounters struct {
	Counters // nil unless wrapping real counters
	down     atomic.Bool
	mu       sync.Mutex
	poison   map[string]bool
	settled  []string
	closed   bool
}

var errDown = errors.New("counters down")

func (f *flakyCounters) Admit(ctx context.Context, a *Admission) (*Ticket, *Rejection, error) {
	if f.down.Load() {
		return nil, nil, errDown
	}
	if f.Counters == nil {
		return &Ticket{ID: "t"}, nil, nil
	}
	return f.Counters.Admit(ctx, a)
}

func (f *flakyCounters) Settle(ctx context.Context, t *Ticket, s Settlement) ([]BudgetChange, error) {
	if f.down.Load() {
		return nil, errDown
	}
	f.mu.Lock()
	bad := f.poison[t.ID]
	f.mu.Unlock()
	if bad {
		return nil, errors.New("refused")
	}
	var ch []BudgetChange
	if f.Counters != nil {
		var err error
		if ch, err = f.Counters.Settle(ctx, t, s); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.settled = append(f.settled, t.ID)
	f.mu.Unlock()
	return ch, nil
}

func (f *flakyCounters) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	if f.Counters != nil {
		return f.Counters.Close()
	}
	return nil
}

func (f *flakyCounters) settledIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.settled)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}

func queueTicket(id string) *Ticket {
	return &Ticket{ID: id, Reservations: []Reservation{{Scope: Scope{ScopeKey, "k"}, Budget: Budget{Limit: Dollar, Period: PeriodDay}}}}
}

// TestUncheckedTicketSettlesOnRedis: a request served while Redis was
// unreachable, settled once it answers, is charged to every budget of its
// path in the period it was served in and to its token limiters, once.
func TestUncheckedTicketSettlesOnRedis(t *testing.T) {
	f := newRedisFixture(t)
	rl := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: Dollar, Period: PeriodDay}}, RateLimits: []RateLimit{rl, {Limit: 5, Unit: RateRequests, Window: time.Minute}}},
		{Scope: redisScopeTeam, Budgets: []Budget{{Limit: 10 * Dollar, Period: PeriodMonth}}},
	}
	a := &Admission{Now: redisT0, Location: time.UTC, Levels: levels, WorstCase: Dollar / 2, Tokens: 900, Lease: time.Hour}
	tk := UncheckedTicket(a)
	if !tk.Unchecked || len(tk.Reservations) != 2 || len(tk.TokenCharges) != 1 || tk.TokenCharges[0].Window != redisT0.UnixNano()/int64(time.Minute) {
		t.Fatalf("unchecked ticket %+v", tk)
	}
	cost := redisUSD("0.25")
	// Settled later (the store came back), at the time the request ended.
	for range 2 {
		if _, err := f.rc.Settle(f.ctx, tk, Settlement{Now: redisT0.Add(30 * time.Second), Cost: cost, Tokens: 400}); err != nil {
			t.Fatal(err)
		}
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), cost, 0, 0)
	f.wantBudget(redisScopeTeam, PeriodMonth, PeriodMonth.Start(redisT0, time.UTC), cost, 0, 0)
	if _, curr, _ := f.limiterState(redisScopeKey, rl); curr != 400 {
		t.Fatalf("token limiter curr %d, want 400", curr)
	}
	// An unchecked ticket that names nothing changes nothing.
	if ch, err := f.rc.Settle(f.ctx, &Ticket{Unchecked: true}, Settlement{Now: redisT0, Cost: cost}); ch != nil || err != nil {
		t.Fatal(ch, err)
	}
}

// TestQueuedCountersReplayWhenRedisAnswers: settlements that could not
// reach Redis (a failed Settle, a request served unchecked) are applied once
// it answers again, and only once.
func TestQueuedCountersReplayWhenRedisAnswers(t *testing.T) {
	f := newRedisFixture(t)
	flaky := &flakyCounters{Counters: f.rc}
	var applied atomic.Int64
	q := NewQueuedCounters(flaky, QueuedOptions{Retry: time.Millisecond, MaxRetry: 5 * time.Millisecond,
		OnApplied: func(n int) { applied.Add(int64(n)) }})
	t.Cleanup(func() { _ = q.Close() })
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: Dollar, Period: PeriodDay}}}}
	adm := func() *Admission {
		return &Admission{Now: redisT0, Location: time.UTC, Levels: levels, WorstCase: Dollar / 10, Lease: time.Hour}
	}
	tk, rej, err := q.Admit(f.ctx, adm())
	if err != nil || rej != nil {
		t.Fatal(err, rej)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, Dollar/10, 0)

	flaky.down.Store(true)
	s := Settlement{Now: redisT0.Add(time.Second), Cost: redisUSD("0.03")}
	if _, err := q.Settle(f.ctx, tk, s); !errors.Is(err, ErrSettlementQueued) || !errors.Is(err, errDown) {
		t.Fatalf("settle while down: %v", err)
	}
	if _, _, err := q.Admit(f.ctx, adm()); err == nil {
		t.Fatal("admit while down succeeded")
	}
	unchecked := UncheckedTicket(adm())
	if _, err := q.Settle(f.ctx, unchecked, Settlement{Now: redisT0.Add(2 * time.Second), Cost: redisUSD("0.05")}); err != ErrSettlementQueued {
		t.Fatalf("unchecked settle: %v", err)
	}
	if q.Queued() != 2 {
		t.Fatalf("queued %d, want 2", q.Queued())
	}

	flaky.down.Store(false)
	eventually(t, "the queue to drain", func() bool { return q.Queued() == 0 })
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("0.08"), 0, 0)
	if got := flaky.settledIDs(); !slices.Equal(got, []string{tk.ID, unchecked.ID}) {
		t.Fatalf("applied %v, want oldest first", got)
	}
	if applied.Load() != 2 || q.Dropped() != 0 {
		t.Fatalf("applied %d dropped %d", applied.Load(), q.Dropped())
	}
	// A replay changes nothing.
	if _, err := q.Settle(f.ctx, tk, s); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("0.08"), 0, 0)
}

// TestQueuedCountersBoundAndDrops: the queue is bounded (the oldest goes), a
// settlement the counters keep refusing while they answer is dropped, and
// what is left at Close is dropped; every drop is reported.
func TestQueuedCountersBoundAndDrops(t *testing.T) {
	ctx := context.Background()
	t.Run("full", func(t *testing.T) {
		flaky := &flakyCounters{}
		var drops []string
		var mu sync.Mutex
		q := NewQueuedCounters(flaky, QueuedOptions{Size: 2, Retry: time.Hour, OnDrop: func(n int, reason string) {
			mu.Lock()
			defer mu.Unlock()
			for range n {
				drops = append(drops, reason)
			}
		}})
		flaky.down.Store(true)
		for _, id := range []string{"a", "b", "c"} {
			if _, err := q.Settle(ctx, queueTicket(id), Settlement{}); !errors.Is(err, ErrSettlementQueued) {
				t.Fatalf("%s: %v", id, err)
			}
		}
		if q.Queued() != 2 || q.Dropped() != 1 {
			t.Fatalf("queued %d dropped %d", q.Queued(), q.Dropped())
		}
		flaky.down.Store(false)
		if _, _, err := q.Admit(ctx, &Admission{}); err != nil { // the counters answer: retry at once
			t.Fatal(err)
		}
		eventually(t, "the queue to drain", func() bool { return q.Queued() == 0 })
		if got := flaky.settledIDs(); !slices.Equal(got, []string{"b", "c"}) {
			t.Fatalf("applied %v", got)
		}
		_ = q.Close()
		mu.Lock()
		defer mu.Unlock()
		if len(drops) != 1 || drops[0] != "the settlement queue is full" {
			t.Fatalf("drops %q", drops)
		}
	})
	t.Run("refused while answering", func(t *testing.T) {
		flaky := &flakyCounters{poison: map[string]bool{"bad": true}}
		var dropped atomic.Int64
		q := NewQueuedCounters(flaky, QueuedOptions{Retry: time.Millisecond, MaxRetry: time.Millisecond,
			OnDrop: func(n int, _ string) { dropped.Add(int64(n)) }})
		defer q.Close()
		if _, err := q.Settle(ctx, queueTicket("bad"), Settlement{}); !errors.Is(err, ErrSettlementQueued) {
			t.Fatal(err)
		}
		if _, err := q.Settle(ctx, queueTicket("good"), Settlement{}); err != ErrSettlementQueued {
			t.Fatal(err) // queued behind "bad", not tried
		}
		// While nothing else answers, "bad" looks like an outage and blocks.
		for range settleStrikes {
			if _, _, err := q.Admit(ctx, &Admission{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a retry", func() bool {
				q.mu.Lock()
				defer q.mu.Unlock()
				return len(q.items) == 0 || q.items[0].seen == q.answered.Load()
			})
		}
		eventually(t, "the queue to drain", func() bool { return q.Queued() == 0 })
		if dropped.Load() != 1 || !slices.Equal(flaky.settledIDs(), []string{"good"}) {
			t.Fatalf("dropped %d, applied %v", dropped.Load(), flaky.settledIDs())
		}
	})
	t.Run("close", func(t *testing.T) {
		flaky := &flakyCounters{}
		var dropped atomic.Int64
		q := NewQueuedCounters(flaky, QueuedOptions{Retry: time.Hour, OnDrop: func(n int, _ string) { dropped.Add(int64(n)) }})
		flaky.down.Store(true)
		for _, id := range []string{"a", "b"} {
			_, _ = q.Settle(ctx, queueTicket(id), Settlement{})
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if dropped.Load() != 2 || q.Dropped() != 2 || !flaky.closed {
			t.Fatalf("dropped %d, inner closed %v", dropped.Load(), flaky.closed)
		}
		if _, err := q.Settle(ctx, queueTicket("late"), Settlement{}); !errors.Is(err, ErrStoreClosed) {
			t.Fatalf("settle after close: %v", err)
		}
	})
	t.Run("close applies what it can", func(t *testing.T) {
		flaky := &flakyCounters{}
		q := NewQueuedCounters(flaky, QueuedOptions{Retry: time.Hour})
		flaky.down.Store(true)
		_, _ = q.Settle(ctx, queueTicket("a"), Settlement{})
		flaky.down.Store(false)
		_ = q.Close()
		if q.Dropped() != 0 || !slices.Equal(flaky.settledIDs(), []string{"a"}) {
			t.Fatalf("dropped %d, applied %v", q.Dropped(), flaky.settledIDs())
		}
	})
}
