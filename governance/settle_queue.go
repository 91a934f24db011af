package governance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSettlementQueued is what QueuedCounters.Settle returns (alone, or
// joined with the counters' own error) when the settlement was queued
// instead of applied: it will be applied when the counters answer again.
var ErrSettlementQueued = errors.New("settlement queued until the counters answer")

// Defaults for QueuedOptions.
const (
	// DefaultSettleQueueSize is how many settlements QueuedCounters keeps
	// waiting at most; past it the oldest is dropped.
	DefaultSettleQueueSize = 65_536
	// DefaultSettleRetry is the first wait before retrying the queue after a
	// failure; each failure doubles it up to DefaultSettleMaxRetry.
	DefaultSettleRetry    = 250 * time.Millisecond
	DefaultSettleMaxRetry = 10 * time.Second
	// settleStrikes is how many times a queued settlement may fail while the
	// counters answer other calls before it is dropped as unappliable.
	settleStrikes = 3
	// settleCallTimeout bounds one queued Settle call.
	settleCallTimeout = 10 * time.Second
	// settleCloseTimeout bounds the last attempt Close makes.
	settleCloseTimeout = 3 * time.Second
)

// QueuedOptions configures NewQueuedCounters. The zero value is ready to use.
type QueuedOptions struct {
	// Size is the most settlements kept waiting (DefaultSettleQueueSize).
	Size int
	// Retry and MaxRetry bound the backoff between attempts while the
	// counters do not answer (DefaultSettleRetry, DefaultSettleMaxRetry).
	Retry, MaxRetry time.Duration
	// OnDrop, when not nil, is told about n settlements that were lost: the
	// queue was full (the oldest goes), one kept failing while the counters
	// answered everything else, or Close could not apply what was left. It
	// must not call back into the counters.
	OnDrop func(n int, reason string)
	// OnApplied, when not nil, is told how many queued settlements a retry
	// applied.
	OnApplied func(n int)
}

// QueuedCounters wraps counters that can be unreachable (Redis) so that no
// spend they were not there to take is lost: the settlement of an
// UncheckedTicket (a request served while admission could not reach them,
// on_error open) and every Settle that failed wait in a bounded in-memory
// queue, and are applied, oldest first, once the counters answer again. A
// retry goroutine runs only while the queue is not empty; any other call the
// counters answer wakes it at once.
//
// Replaying a settlement is safe: RedisCounters ignores a second Settle of a
// ticket within redisSettledTTL. The queue lives in memory: what is still
// queued when the process stops is reported as dropped.
type QueuedCounters struct {
	inner Counters
	opts  QueuedOptions

	mu      sync.Mutex
	items   []queuedSettlement
	running bool
	closed  bool
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{} // closed when the running retry goroutine exits

	// answered counts calls the counters answered, so a settlement that
	// keeps failing while they answer others can be told from an outage.
	answered atomic.Int64
	dropped  atomic.Int64
}

type queuedSettlement struct {
	ticket  *Ticket
	s       Settlement
	strikes int
	seen    int64 // answered at the last failure
}

var _ Counters = (*QueuedCounters)(nil)

// NewQueuedCounters wraps c; Close closes c.
func NewQueuedCounters(c Counters, opts QueuedOptions) *QueuedCounters {
	if opts.Size <= 0 {
		opts.Size = DefaultSettleQueueSize
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultSettleRetry
	}
	if opts.MaxRetry < opts.Retry {
		opts.MaxRetry = max(DefaultSettleMaxRetry, opts.Retry)
	}
	return &QueuedCounters{inner: c, opts: opts, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// UncheckedTicket is the ticket of a request served without admission
// because the counters could not be reached (and the caller fails open):
// nothing is reserved or counted, but the ticket names every budget of a's
// levels in the period of a.Now, and every token rate limit in the window of
// a.Now, so that settling it later charges what the request cost to those
// periods and windows. QueuedCounters queues its settlement until the
// counters answer; RedisCounters applies it; MemoryCounters (which never
// fail) ignore it.
func UncheckedTicket(a *Admission) *Ticket {
	t := &Ticket{ID: redisNewTicketID(), Admitted: a.Now, Unchecked: true}
	for i := range a.Levels {
		lv := &a.Levels[i]
		for _, b := range lv.Budgets {
			t.Reservations = append(t.Reservations, Reservation{
				Scope: lv.Scope, Budget: b, PeriodStart: b.Period.Start(a.Now, a.Location),
			})
		}
	}
	for i := range a.Levels {
		lv := &a.Levels[i]
		for _, l := range lv.RateLimits {
			if l.Unit != RateTokens || l.Window <= 0 {
				continue
			}
			t.TokenCharges = append(t.TokenCharges, TokenCharge{
				Scope: lv.Scope, Limit: l, Window: floorDiv(a.Now.UnixNano(), int64(l.Window)),
			})
		}
	}
	return t
}

// Queued is how many settlements are waiting.
func (q *QueuedCounters) Queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Dropped is how many settlements were lost since the counters were made.
func (q *QueuedCounters) Dropped() int64 { return q.dropped.Load() }

// Inner returns the wrapped counters.
func (q *QueuedCounters) Inner() Counters { return q.inner }

// ok records that the counters answered a call, and wakes the retry
// goroutine if settlements are waiting.
func (q *QueuedCounters) ok() {
	q.answered.Add(1)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *QueuedCounters) result(err error) error {
	if err == nil {
		q.ok()
	}
	return err
}

// Prepare passes through.
func (q *QueuedCounters) Prepare(ctx context.Context, levels []Level, now time.Time, loc *time.Location) error {
	return q.result(q.inner.Prepare(ctx, levels, now, loc))
}

// Admit passes through.
func (q *QueuedCounters) Admit(ctx context.Context, a *Admission) (*Ticket, *Rejection, error) {
	t, rej, err := q.inner.Admit(ctx, a)
	return t, rej, q.result(err)
}

// Renew passes through.
func (q *QueuedCounters) Renew(ctx context.Context, tickets []*Ticket, now time.Time, lease time.Duration) error {
	return q.result(q.inner.Renew(ctx, tickets, now, lease))
}

// Status passes through.
func (q *QueuedCounters) Status(ctx context.Context, levels []Level, now time.Time, loc *time.Location) ([]BudgetStatus, error) {
	st, err := q.inner.Status(ctx, levels, now, loc)
	return st, q.result(err)
}

// Sweep passes through.
func (q *QueuedCounters) Sweep(ctx context.Context, now time.Time) error {
	return q.result(q.inner.Sweep(ctx, now))
}

// Settle applies the settlement now, or queues it: an unchecked ticket's
// settlement (unless it charges nothing), and any settlement while others
// are waiting, is queued
// without trying (the counters were just found unreachable; order is kept);
// a Settle that fails is queued. A queued settlement returns
// ErrSettlementQueued (joined with the counters' error when one was tried).
func (q *QueuedCounters) Settle(ctx context.Context, t *Ticket, s Settlement) ([]BudgetChange, error) {
	if t == nil || (t.Unchecked && (len(t.Reservations) == 0 && len(t.TokenCharges) == 0 || s.Cost == 0 && s.Tokens == 0)) {
		return nil, nil // nothing was reserved and there is nothing to charge
	}
	q.mu.Lock()
	closed, waiting := q.closed, len(q.items)
	q.mu.Unlock()
	if closed {
		q.drop(1, "the counters are closed")
		return nil, ErrStoreClosed
	}
	if !t.Unchecked && waiting == 0 {
		changes, err := q.inner.Settle(ctx, t, s)
		if err == nil {
			q.ok()
			return changes, nil
		}
		if !q.enqueue(t, s) {
			return nil, err
		}
		return nil, errors.Join(ErrSettlementQueued, err)
	}
	if !q.enqueue(t, s) {
		return nil, ErrStoreClosed
	}
	return nil, ErrSettlementQueued
}

// enqueue adds a settlement, dropping the oldest when full, and makes sure
// the retry goroutine runs. False after Close.
func (q *QueuedCounters) enqueue(t *Ticket, s Settlement) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.drop(1, "the counters are closed")
		return false
	}
	full := len(q.items) >= q.opts.Size
	if full {
		q.items[0] = queuedSettlement{}
		q.items = q.items[1:]
	}
	q.items = append(q.items, queuedSettlement{ticket: t, s: s, seen: q.answered.Load()})
	if !q.running {
		q.running = true
		q.done = make(chan struct{})
		go q.run(q.done)
	}
	q.mu.Unlock()
	if full {
		q.drop(1, "the settlement queue is full")
	}
	return true
}

func (q *QueuedCounters) drop(n int, reason string) {
	if n <= 0 {
		return
	}
	q.dropped.Add(int64(n))
	if q.opts.OnDrop != nil {
		q.opts.OnDrop(n, reason)
	}
}

// run retries the queue until it is empty, backing off while the counters
// do not answer.
func (q *QueuedCounters) run(done chan struct{}) {
	defer close(done)
	wait := q.opts.Retry
	for {
		ctx, cancel := context.WithTimeout(context.Background(), settleCallTimeout)
		applied, empty, err := q.drain(ctx)
		cancel()
		if applied > 0 && q.opts.OnApplied != nil {
			q.opts.OnApplied(applied)
		}
		if empty {
			return
		}
		if applied > 0 || err == nil {
			wait = q.opts.Retry
		}
		timer := time.NewTimer(wait)
		select {
		case <-q.quit:
			timer.Stop()
			return
		case <-q.wake:
			timer.Stop()
			wait = q.opts.Retry
		case <-timer.C:
			wait = min(2*wait, q.opts.MaxRetry)
		}
	}
}

// drain applies queued settlements oldest first until one fails or none
// are left. empty reports that the queue was found empty, in which case the
// retry goroutine is marked stopped (under the lock, so enqueue starts a new
// one).
func (q *QueuedCounters) drain(ctx context.Context) (applied int, empty bool, err error) {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.items = nil
			q.mu.Unlock()
			return applied, true, nil
		}
		if q.closed && ctx.Err() != nil {
			q.mu.Unlock()
			return applied, false, ctx.Err()
		}
		head := q.items[0]
		q.mu.Unlock()

		t := head.ticket
		_, err = q.inner.Settle(ctx, t, head.s)

		q.mu.Lock()
		if len(q.items) == 0 || q.items[0].ticket != t {
			// Dropped meanwhile as the oldest of a full queue.
			q.mu.Unlock()
			if err == nil {
				applied++
			}
			continue
		}
		if err == nil {
			q.items[0] = queuedSettlement{}
			q.items = q.items[1:]
			q.mu.Unlock()
			q.answered.Add(1)
			applied++
			continue
		}
		// A failure while the counters answered other calls since this
		// settlement last failed is a strike against it, not an outage.
		h := &q.items[0]
		if now := q.answered.Load(); now != h.seen {
			h.strikes++
			h.seen = now
		}
		poisoned := h.strikes >= settleStrikes
		if poisoned {
			q.items[0] = queuedSettlement{}
			q.items = q.items[1:]
		}
		q.mu.Unlock()
		if poisoned {
			q.drop(1, "the counters keep refusing it: "+err.Error())
			continue
		}
		return applied, false, err
	}
}

// Close stops retrying, makes one last attempt at what is queued, reports
// what is left as dropped, and closes the wrapped counters.
func (q *QueuedCounters) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	done := q.done
	running := q.running
	q.mu.Unlock()
	close(q.quit)
	if running {
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleCloseTimeout)
	applied, _, _ := q.drain(ctx)
	cancel()
	if applied > 0 && q.opts.OnApplied != nil {
		q.opts.OnApplied(applied)
	}
	q.mu.Lock()
	left := len(q.items)
	q.items = nil
	q.mu.Unlock()
	q.drop(left, "the counters closed before the store answered")
	return q.inner.Close()
}
