package governance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RestoreFunc returns the spend of one scope since a period start, from
// wherever spend outlives the process (the ledger). MemoryCounters.Prepare
// calls it, outside any lock, for each budget counter it creates. A typical
// implementation flushes a SQLiteStore once and then sums
// SQLiteStore.SpendSince; a MemoryStore's SpendSince serves too.
type RestoreFunc func(ctx context.Context, s Scope, since time.Time) (Money, error)

// expiredLeaseRetention is how long MemoryCounters remembers a ticket whose
// lease ran out before it was settled, so that a late Settle still charges
// its spend exactly once. Past it, a Settle of that ticket is ignored like a
// second Settle (the ledger still has the request).
const expiredLeaseRetention = 24 * time.Hour

// neverExpires is the expiry of a lease granted with Lease 0.
const neverExpires = math.MaxInt64

// MemoryCounters is the in-process Counters: budgets, reservations and
// sliding-window rate limiters in maps behind one mutex. Spend survives a
// restart only through the RestoreFunc given to NewMemoryCounters, which
// Prepare uses to seed the counters of the current periods from the ledger.
//
// Admit never does I/O. Every method is safe for concurrent use; Admit and
// Settle are atomic with respect to each other.
//
// Budgets are counted per (scope, period, period start): two budgets with
// the same period on one scope share their counter (both check it, both
// reservations hold on it, a settlement charges it once). Rate limiters are
// kept per (scope, unit, window), so a limit changed by a reload keeps its
// count; two limits on the same limiter are both checked and the request is
// counted once.
//
// A ticket must not be modified by its holder: the counters keep a
// reference to its reservations until it is settled or its lease runs out.
type MemoryCounters struct {
	restore RestoreFunc

	mu       sync.Mutex
	budgets  map[budgetKey]*memBudget
	limiters map[limiterKey]*slidingWindow
	// leases are the tickets still holding their reservations (and token
	// charges), by ID; expiring orders those with a finite lease by expiry.
	leases   map[string]*memLease
	expiring leaseHeap
	// expired are tickets whose lease ran out before they were settled: ID
	// → when it ran out.
	expired map[string]int64
}

var _ Counters = (*MemoryCounters)(nil)

// budgetKey identifies one budget counter: a scope's spend in one period.
type budgetKey struct {
	scope  Scope
	period Period
	start  int64 // Unix nanoseconds the period starts at
}

// memBudget is one budget counter.
type memBudget struct {
	spent, reserved Money
	partials        int64 // in-flight partial reservations
	leases          int64 // reservations of live leases pointing here: Sweep keeps the counter
	end             int64 // Unix nanoseconds the period ends at; neverExpires for Total
}

// limiterKey identifies one rate limiter.
type limiterKey struct {
	scope  Scope
	unit   RateUnit
	window time.Duration
}

// memLease is a ticket still holding its reservations: res[i] holds on
// states[i].
type memLease struct {
	id     string
	expiry int64 // Unix nanoseconds; neverExpires for Lease 0
	pos    int   // index in MemoryCounters.expiring; -1 when not in it
	res    []Reservation
	states []*memBudget
}

// NewMemoryCounters returns empty counters. restore, when not nil, seeds
// the spend of budget counters that Prepare creates; nil starts them at 0.
func NewMemoryCounters(restore RestoreFunc) *MemoryCounters {
	return &MemoryCounters{
		restore:  restore,
		budgets:  make(map[budgetKey]*memBudget),
		limiters: make(map[limiterKey]*slidingWindow),
		leases:   make(map[string]*memLease),
		expired:  make(map[string]int64),
	}
}

// ticketPrefix makes ticket IDs unique across processes; ticketSeq within
// one.
var (
	ticketPrefix = func() [16]byte {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		var h [16]byte
		hex.Encode(h[:], b[:])
		return h
	}()
	ticketSeq atomic.Uint64
)

// newTicketID is the process's random prefix and a sequence number, in hex:
// "9f86d081884c7d65-2a".
func newTicketID() string {
	var buf [16 + 1 + 16]byte
	b := append(buf[:0], ticketPrefix[:]...)
	b = append(b, '-')
	b = strconv.AppendUint(b, ticketSeq.Add(1), 16)
	return string(b)
}

// budgetCheck is one budget of an admission being checked.
type budgetCheck struct {
	key     budgetKey
	budget  Budget
	start   time.Time
	st      *memBudget
	amount  Money
	partial bool
}

// limiterCheck is one rate limit of an admission being checked.
type limiterCheck struct {
	key    limiterKey
	scope  Scope
	limit  RateLimit
	st     *slidingWindow
	rolled slidingWindow // st as of the admission time
	dup    bool          // an earlier check of this admission has the same limiter
}

// ticketBlock holds a ticket, room for its usual reservations and token
// charges, and its lease in a single allocation.
type ticketBlock struct {
	t      Ticket
	res    [4]Reservation
	tcs    [3]TokenCharge
	lease  memLease
	states [4]*memBudget
}

// budget returns the counter for key, creating it with spent 0.
func (c *MemoryCounters) budget(key budgetKey, p Period, start time.Time) *memBudget {
	st := c.budgets[key]
	if st == nil {
		st = &memBudget{end: periodEndNanos(p, start)}
		c.budgets[key] = st
	}
	return st
}

// periodEndNanos is when the period starting at start ends, in Unix
// nanoseconds; neverExpires for Total.
func periodEndNanos(p Period, start time.Time) int64 {
	end := p.End(start)
	if end.IsZero() {
		return neverExpires
	}
	return unixNanos(end)
}

// Admit implements Counters. It first releases every lease that ran out at
// or before a.Now (as Sweep does). Then it walks the levels narrowest first
// and each level's budgets in order; the first budget that cannot reserve
// is the one reported. Rate limits are checked only when every budget
// passes. Only when everything passes does it reserve on every budget and
// count the request (and its token estimate) on every rate limiter.
//
// A budget reserves WorstCase when it fits in the headroom (limit − spent −
// reserved); otherwise, when no other partial reservation is in flight on
// it, the whole remaining headroom (a partial reservation). A request with
// no headroom left, or whose only room is held by another partial
// reservation, is refused. So a developer with $0.30 left can still make a
// $0.07 request, and even a $0.50 one, but two requests cannot both bet on
// the last $0.30.
//
// A budget counter the process has not seen (no Prepare, or a new period)
// starts at 0: Admit does no I/O. The error is only for a malformed
// admission (nil, or a rate limit without a window).
func (c *MemoryCounters) Admit(_ context.Context, a *Admission) (*Ticket, *Rejection, error) {
	if a == nil {
		return nil, nil, errors.New("governance: nil admission")
	}
	loc := a.Location
	if loc == nil {
		loc = time.UTC
	}
	now := a.Now
	nowNs := unixNanos(now)
	worst := max(a.WorstCase, 0)
	tokens := max(a.Tokens, 0)

	// Everything that needs no counter is worked out before locking.
	var bbuf [8]budgetCheck
	var lbuf [8]limiterCheck
	bs, ls := bbuf[:0], lbuf[:0]
	nTokenLimits := 0
	for _, lv := range a.Levels {
		for _, b := range lv.Budgets {
			start := b.Period.Start(now, loc)
			bs = append(bs, budgetCheck{
				key:    budgetKey{lv.Scope, b.Period, unixNanos(start)},
				budget: b, start: start,
			})
		}
		for _, rl := range lv.RateLimits {
			if rl.Window <= 0 {
				return nil, nil, fmt.Errorf("governance: rate limit %s of %s has no window", rl, lv.Scope)
			}
			if rl.Unit == RateTokens {
				nTokenLimits++
			}
			ls = append(ls, limiterCheck{key: limiterKey{lv.Scope, rl.Unit, rl.Window}, scope: lv.Scope, limit: rl})
		}
	}
	block := new(ticketBlock)
	t := &block.t
	t.ID = newTicketID()
	t.Admitted = now
	switch n := len(bs); {
	case n > len(block.res):
		t.Reservations = make([]Reservation, n)
	case n > 0:
		t.Reservations = block.res[:n:n]
	}
	switch n := nTokenLimits; {
	case n > len(block.tcs):
		t.TokenCharges = make([]TokenCharge, 0, n)
	case n > 0:
		t.TokenCharges = block.tcs[:0:n]
	}

	c.mu.Lock()
	c.expire(nowNs)
	for i := range bs {
		ck := &bs[i]
		st := c.budget(ck.key, ck.budget.Period, ck.start)
		ck.st = st
		headroom := ck.budget.Limit - st.spent - st.reserved
		switch {
		case headroom <= 0:
			rej := budgetRejection(ck, false)
			c.heldRetry(rej, st, nowNs)
			c.mu.Unlock()
			return nil, rej, nil
		case worst <= headroom:
			ck.amount = worst
		case st.partials == 0:
			ck.amount, ck.partial = headroom, true
		default:
			rej := budgetRejection(ck, true)
			c.heldRetry(rej, st, nowNs)
			c.mu.Unlock()
			return nil, rej, nil
		}
	}
	for i := range ls {
		ck := &ls[i]
		st := c.limiters[ck.key]
		if st == nil {
			st = &slidingWindow{Window: int64(ck.key.window), Index: floorDiv(nowNs, int64(ck.key.window))}
			c.limiters[ck.key] = st
		}
		for j := range i {
			if ls[j].st == st {
				ck.dup = true
				break
			}
		}
		ck.st = st
		ck.rolled = st.at(nowNs)
		if ok, retry, remaining := ck.rolled.check(nowNs, ck.limit.Limit, ck.limit.Unit); !ok {
			c.mu.Unlock()
			return nil, &Rejection{
				Reason:     RejectRateLimit,
				Scope:      ck.scope,
				RateLimit:  ck.limit,
				RetryAfter: retry,
				ResetAt:    now.Add(retry),
				Remaining:  remaining,
			}, nil
		}
	}

	// Every check passed: apply them all.
	for i := range bs {
		ck := &bs[i]
		ck.st.reserved += ck.amount
		if ck.partial {
			ck.st.partials++
		}
		t.Reservations[i] = Reservation{
			Scope:       ck.key.scope,
			Budget:      ck.budget,
			PeriodStart: ck.start,
			Amount:      ck.amount,
			Partial:     ck.partial,
			Remaining:   ck.budget.Limit - ck.st.spent,
		}
	}
	for i := range ls {
		ck := &ls[i]
		cost := int64(1)
		if ck.limit.Unit == RateTokens {
			cost = tokens
			t.TokenCharges = append(t.TokenCharges, TokenCharge{
				Scope: ck.scope, Limit: ck.limit, Window: ck.rolled.Index, Tokens: tokens,
			})
		}
		if !ck.dup {
			*ck.st = ck.rolled
			ck.st.Curr += cost
		}
	}
	if len(t.Reservations) > 0 || len(t.TokenCharges) > 0 {
		l := &block.lease
		*l = memLease{id: t.ID, expiry: neverExpires, pos: -1, res: t.Reservations}
		if n := len(bs); n > len(block.states) {
			l.states = make([]*memBudget, n)
		} else {
			l.states = block.states[:n:n]
		}
		for i := range bs {
			l.states[i] = bs[i].st
			bs[i].st.leases++
		}
		c.leases[t.ID] = l
		if a.Lease > 0 {
			l.expiry = addNanos(nowNs, a.Lease)
			c.expiring.push(l)
		}
	}
	c.mu.Unlock()
	return t, nil, nil
}

// budgetRejection reports the budget of ck as the reason for a refusal.
func budgetRejection(ck *budgetCheck, heldByPartial bool) *Rejection {
	return &Rejection{
		Reason:        RejectBudget,
		Scope:         ck.key.scope,
		Budget:        ck.budget,
		Spent:         ck.st.spent,
		Reserved:      ck.st.reserved,
		ResetAt:       ck.budget.Period.End(ck.start),
		HeldByPartial: heldByPartial,
	}
}

// heldRetry sets the RetryAfter of a Held refusal on st: HeldRetryAfter, or
// sooner when a lease holding on st runs out sooner. Only leases expiring
// within HeldRetryAfter are looked at (a pruned walk of the expiry heap), so
// the cost does not grow with the number of requests in flight. The caller
// holds c.mu, and expired leases were released at now.
func (c *MemoryCounters) heldRetry(rej *Rejection, st *memBudget, now int64) {
	if !rej.Held() {
		return
	}
	horizon := addNanos(now, HeldRetryAfter)
	best := horizon
	h := c.expiring
	var buf [32]int
	stack := append(buf[:0], 0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(h) || h[i].expiry >= best {
			continue // children expire no sooner
		}
		if slices.Contains(h[i].states, st) {
			best = h[i].expiry
			continue
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	var first int64
	if best < horizon {
		first = best
	}
	rej.RetryAfter = heldRetryAfter(now, first)
}

// addNanos is ns + d, saturating.
func addNanos(ns int64, d time.Duration) int64 {
	if s := ns + int64(d); (d > 0) == (s > ns) {
		return s
	}
	if d > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// reservationKey is the budget counter a reservation holds on.
func reservationKey(r *Reservation) budgetKey {
	return budgetKey{r.Scope, r.Budget.Period, unixNanos(r.PeriodStart)}
}

// release gives back what a lease holds on its budgets. The caller holds
// c.mu and forgets the lease.
func (c *MemoryCounters) release(l *memLease) {
	for i, st := range l.states {
		r := &l.res[i]
		st.reserved = max(st.reserved-r.Amount, 0)
		if r.Partial && st.partials > 0 {
			st.partials--
		}
		st.leases--
	}
}

// expire releases every lease that ran out at or before now and remembers
// its ticket as expired. The caller holds c.mu.
func (c *MemoryCounters) expire(now int64) {
	for len(c.expiring) > 0 && c.expiring[0].expiry <= now {
		l := c.expiring[0]
		c.expiring.remove(l)
		c.release(l)
		delete(c.leases, l.id)
		c.expired[l.id] = l.expiry
	}
}

// Renew implements Counters: every ticket whose lease is still live (not
// settled, not run out at now) now expires at now + lease; a lease of 0
// never expires. Other tickets are ignored.
func (c *MemoryCounters) Renew(_ context.Context, tickets []*Ticket, now time.Time, lease time.Duration) error {
	nowNs := unixNanos(now)
	expiry := int64(neverExpires)
	if lease > 0 {
		expiry = addNanos(nowNs, lease)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range tickets {
		if t == nil || t.Unchecked {
			continue
		}
		l := c.leases[t.ID]
		if l == nil || l.expiry <= nowNs {
			continue
		}
		l.expiry = expiry
		switch {
		case l.pos >= 0 && expiry == neverExpires:
			c.expiring.remove(l)
		case l.pos >= 0:
			c.expiring.fix(l.pos)
		case expiry != neverExpires:
			c.expiring.push(l)
		}
	}
	return nil
}

// Settle implements Counters. It releases the ticket's reservations (unless
// its lease ran out and they were released already) and charges s.Cost to
// every budget counter the ticket reserved on, in the period it was
// admitted in, even if a new period has begun since; a counter that no
// longer exists (a past period Sweep forgot) is not charged and reports no
// change. It returns one BudgetChange per reservation whose counter was
// charged; two budgets sharing a counter are charged once and report the
// same change.
//
// Each token charge is corrected by s.Tokens − the estimate in the window
// it was charged to, when that window is still the limiter's current or
// previous one; counts never go below zero.
//
// Settling a ticket a second time does nothing and returns (nil, nil); so
// does settling a ticket these counters do not know (not issued here, or
// whose lease ran out more than a day ago), and an Unchecked ticket, which
// holds nothing here: the ledger record still counts its spend, and
// Prepare restores it after a restart.
func (c *MemoryCounters) Settle(_ context.Context, t *Ticket, s Settlement) ([]BudgetChange, error) {
	if t == nil || t.Unchecked || (len(t.Reservations) == 0 && len(t.TokenCharges) == 0) {
		return nil, nil
	}
	var changes []BudgetChange
	if len(t.Reservations) > 0 {
		changes = make([]BudgetChange, 0, len(t.Reservations))
	}

	var stbuf [8]*memBudget
	states := stbuf[:0]

	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.leases[t.ID]; l != nil {
		if l.pos >= 0 {
			c.expiring.remove(l)
		}
		c.release(l)
		delete(c.leases, t.ID)
		if len(l.states) == len(t.Reservations) {
			states = l.states // still referenced (a live lease kept them), so still in c.budgets
		}
	} else if _, ok := c.expired[t.ID]; ok {
		delete(c.expired, t.ID)
	} else {
		return nil, nil // settled already, or unknown
	}
	if len(states) != len(t.Reservations) {
		// The lease ran out: look the counters up; those Sweep forgot
		// are not charged.
		for i := range t.Reservations {
			states = append(states, c.budgets[reservationKey(&t.Reservations[i])])
		}
	}
	for i := range t.Reservations {
		r := &t.Reservations[i]
		st := states[i]
		if st == nil {
			continue
		}
		// Two budgets with the same period on one scope share a counter:
		// charge it once.
		charged := false
		for _, o := range states[:i] {
			if o == st {
				charged = true
				break
			}
		}
		before := st.spent
		if charged {
			before -= s.Cost
		} else {
			st.spent += s.Cost
		}
		changes = append(changes, BudgetChange{Scope: r.Scope, Budget: r.Budget, Before: before, After: st.spent})
	}
	for i := range t.TokenCharges {
		tc := &t.TokenCharges[i]
		dup := false
		for j := range i {
			o := &t.TokenCharges[j]
			if o.Scope == tc.Scope && o.Limit.Unit == tc.Limit.Unit && o.Limit.Window == tc.Limit.Window {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if st := c.limiters[limiterKey{tc.Scope, tc.Limit.Unit, tc.Limit.Window}]; st != nil {
			st.correct(tc.Window, s.Tokens-tc.Tokens)
		}
	}
	if len(changes) == 0 {
		changes = nil
	}
	return changes, nil
}

// Status implements Counters: one BudgetStatus per budget of the levels,
// for the period containing now. It reads only: a lease that ran out still
// counts as reserved until the next Admit or Sweep.
func (c *MemoryCounters) Status(_ context.Context, levels []Level, now time.Time, loc *time.Location) ([]BudgetStatus, error) {
	if loc == nil {
		loc = time.UTC
	}
	var out []BudgetStatus
	for _, lv := range levels {
		for _, b := range lv.Budgets {
			start := b.Period.Start(now, loc)
			out = append(out, BudgetStatus{
				Scope: lv.Scope, Budget: b,
				PeriodStart: start, ResetAt: b.Period.End(start),
			})
		}
	}
	c.mu.Lock()
	for i := range out {
		bs := &out[i]
		if st := c.budgets[budgetKey{bs.Scope, bs.Budget.Period, unixNanos(bs.PeriodStart)}]; st != nil {
			bs.Spent, bs.Reserved = st.spent, st.reserved
		}
	}
	c.mu.Unlock()
	return out, nil
}

// Prepare implements Counters: it creates the counter of every budget's
// period containing now that does not exist yet, with the spend the
// RestoreFunc reports since the period start (0 without one). The restore
// calls run outside the lock; a counter that Admit created meanwhile is
// kept as it is. A counter whose restore failed is not created, so a later
// Prepare retries it; the errors are returned joined.
func (c *MemoryCounters) Prepare(ctx context.Context, levels []Level, now time.Time, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	type missing struct {
		key    budgetKey
		period Period
		start  time.Time
		spent  Money
		err    error
	}
	var todo []missing
	seen := make(map[budgetKey]bool)
	c.mu.Lock()
	for _, lv := range levels {
		for _, b := range lv.Budgets {
			start := b.Period.Start(now, loc)
			key := budgetKey{lv.Scope, b.Period, unixNanos(start)}
			if c.budgets[key] == nil && !seen[key] {
				seen[key] = true
				todo = append(todo, missing{key: key, period: b.Period, start: start})
			}
		}
	}
	c.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}

	var errs []error
	if c.restore != nil {
		for i := range todo {
			m := &todo[i]
			if err := ctx.Err(); err != nil {
				for j := i; j < len(todo); j++ {
					todo[j].err = err
				}
				errs = append(errs, err)
				break
			}
			m.spent, m.err = c.restore(ctx, m.key.scope, m.start)
			if m.err != nil {
				errs = append(errs, fmt.Errorf("governance: restoring the spend of %s since %s: %w",
					m.key.scope, m.start.Format(time.RFC3339), m.err))
			}
		}
	}

	c.mu.Lock()
	for _, m := range todo {
		if m.err != nil || c.budgets[m.key] != nil {
			continue
		}
		c.budgets[m.key] = &memBudget{spent: m.spent, end: periodEndNanos(m.period, m.start)}
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

// Sweep implements Counters: it releases the reservations of every lease
// that ran out at or before now (remembering the ticket for a day, so a
// late Settle still charges once), forgets rate limiters whose counts have
// both expired, and forgets budget counters of past periods that hold no
// reservation. Its cost grows with the number of limiters and budget
// counters, not with the number of leases.
func (c *MemoryCounters) Sweep(_ context.Context, now time.Time) error {
	nowNs := unixNanos(now)
	forgetBefore := addNanos(nowNs, -expiredLeaseRetention)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(nowNs)
	for id, at := range c.expired {
		if at <= forgetBefore {
			delete(c.expired, id)
		}
	}
	for k, st := range c.limiters {
		if st.Index < floorDiv(nowNs, st.Window)-1 {
			delete(c.limiters, k)
		}
	}
	for k, st := range c.budgets {
		if st.end <= nowNs && st.leases == 0 && st.reserved == 0 && st.partials == 0 {
			delete(c.budgets, k)
		}
	}
	return nil
}

// Close implements Counters; memory counters hold nothing to release.
func (c *MemoryCounters) Close() error { return nil }

// leaseHeap is a binary min-heap of leases by expiry; each lease knows its
// position, so it can be removed or moved when settled or renewed.
type leaseHeap []*memLease

func (h *leaseHeap) push(l *memLease) {
	l.pos = len(*h)
	*h = append(*h, l)
	h.up(l.pos)
}

// remove takes l out of the heap.
func (h *leaseHeap) remove(l *memLease) {
	i, last := l.pos, len(*h)-1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	l.pos = -1
	if i != last {
		h.fix(i)
	}
}

// fix restores the heap order after the expiry at position i changed.
func (h leaseHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h leaseHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}

func (h leaseHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].expiry <= h[i].expiry {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h leaseHeap) down(i int) bool {
	start := i
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].expiry < h[least].expiry {
			least = l
		}
		if r < len(h) && h[r].expiry < h[least].expiry {
			least = r
		}
		if least == i {
			return i > start
		}
		h.swap(i, least)
		i = least
	}
}

// slidingWindow is one sliding-window rate limiter: the counts of the
// current fixed window and of the one before it. Windows are aligned at
// Unix nanosecond multiples of Window (index = floor(now / Window)).
//
// The estimated count at now, e = now − Index×Window into the current
// window (W = Window, c = Curr, p = Prev), is
//
//	est = c + p×(W − e)/W
//
// Every decision and wait below is computed exactly, in 128-bit integer
// arithmetic on nanoseconds, never rounded through a float: the Redis
// implementation evaluates the same formulas in float64 milliseconds, which
// agrees with these whenever p×W (in ms) stays below 2^53.
type slidingWindow struct {
	Window int64 // nanoseconds, > 0
	Index  int64 // the window Curr counts
	Curr   int64
	Prev   int64
}

// at is the limiter as of Unix nanosecond now: when now is in the next
// window, Curr becomes Prev; when it is later still, both are 0. A now
// before the current window (a clock stepping back) counts in the current
// window, as if at its start: a limiter never moves backwards.
func (w slidingWindow) at(now int64) slidingWindow {
	switch idx := floorDiv(now, w.Window); {
	case idx == w.Index+1:
		w.Index, w.Prev, w.Curr = idx, w.Curr, 0
	case idx > w.Index+1:
		w.Index, w.Prev, w.Curr = idx, 0, 0
	}
	return w
}

// elapsed is how far into the current window now is, in [0, Window).
func (w slidingWindow) elapsed(now int64) int64 {
	e := now - w.Index*w.Window
	return min(max(e, 0), w.Window-1)
}

// estimate is est at now as a float, for people and tests; w must be rolled
// to now (see at). Decisions use exact arithmetic instead.
func (w slidingWindow) estimate(now int64) float64 {
	W := float64(w.Window)
	return float64(w.Curr) + float64(w.Prev)*(W-float64(w.elapsed(now)))/W
}

// check decides one request at now against limit; w must be rolled to now.
// A request (cost 1) fits when est + 1 ≤ limit; tokens fit when est <
// limit, whatever their estimate (one large request can pass a nearly idle
// limiter; settlement corrects the count), so the decision never depends on
// the cost. When it does not fit, retry is the smallest wait after which
// the same request would fit if nothing else arrived (see retryAfter).
// remaining is max(0, limit − ceil(est)) either way.
func (w slidingWindow) check(now, limit int64, unit RateUnit) (ok bool, retry time.Duration, remaining int64) {
	c, p, W := max(w.Curr, 0), max(w.Prev, 0), w.Window
	decay := mul128(uint64(p), uint64(W-w.elapsed(now))) // p×(W−e) = (est − c)×W
	q, exact := div128(decay, uint64(W))
	if !exact {
		q++ // ceil((est − c))
	}
	remaining = max(0, limit-c-int64(q))

	room := limit - c - 1 // requests: est + 1 ≤ L ⇔ p×(W−e) ≤ (L−c−1)×W
	if unit == RateTokens {
		room = limit - c // tokens: est < L ⇔ p×(W−e) < (L−c)×W
	}
	if room >= 0 {
		bound := mul128(uint64(room), uint64(W))
		if cmp := decay.cmp(bound); cmp < 0 || (cmp == 0 && unit == RateRequests) {
			return true, 0, remaining
		}
	}
	return false, w.retryAfter(now, limit, unit), remaining
}

// retryAfter is the wait described at check for a request that does not
// fit now (w rolled to now), rounded up to a whole millisecond, at least
// 1 ms. With W the window, e the elapsed time, c = Curr, p = Prev and L the
// limit, all in integer nanoseconds:
//
// Requests need p×(W−e') ≤ (L−c−1)×W. When L−c−1 ≥ 0 that happens in this
// window at e' = W − floor((L−c−1)×W/p); otherwise in the next one, where
// the current count becomes the previous, s = W − floor((L−1)×W/c) into it:
// a wait of (W−e) + s. (The spec's e' = W×(1 − (L−c−1)/p), exactly.)
//
// Tokens need the strict p×(W−e') < (L−c)×W: e' = W − ceil((L−c)×W/p) + 1
// when L−c > 0, else s = W − ceil(L×W/c) + 1 into the next window.
//
// A limit below 1 never fits; it answers one window.
func (w slidingWindow) retryAfter(now, limit int64, unit RateUnit) time.Duration {
	c, p, W := max(w.Curr, 0), max(w.Prev, 0), w.Window
	e := w.elapsed(now)
	if limit < 1 {
		return roundUpMilli(W)
	}
	var wait int64
	if unit == RateTokens {
		if room := limit - c; room > 0 && p > 0 {
			wait = W - ceilMulDiv(room, W, p) + 1 - e
		} else {
			wait = (W - e) + W - ceilMulDiv(limit, W, max(c, 1)) + 1
		}
	} else {
		if room := limit - c - 1; room >= 0 && p > 0 {
			wait = W - floorMulDiv(room, W, p) - e
		} else {
			wait = (W - e) + W - floorMulDiv(limit-1, W, max(c, 1))
		}
	}
	return roundUpMilli(wait)
}

// roundUpMilli rounds a wait in nanoseconds up to a whole millisecond, at
// least 1 ms.
func roundUpMilli(ns int64) time.Duration {
	const ms = int64(time.Millisecond)
	if ns <= ms {
		return time.Millisecond
	}
	return time.Duration((ns-1)/ms+1) * time.Millisecond
}

// correct adds delta to the count of window index (a token estimate
// replaced by the actual count): to Curr while it is the current window, to
// Prev when it has just become the previous one, nowhere when older.
// Counts never go below 0.
func (w *slidingWindow) correct(index, delta int64) {
	switch index {
	case w.Index:
		w.Curr = max(w.Curr+delta, 0)
	case w.Index - 1:
		w.Prev = max(w.Prev+delta, 0)
	}
}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func mul128(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (x u128) cmp(y u128) int {
	switch {
	case x.hi != y.hi:
		if x.hi < y.hi {
			return -1
		}
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

// div128 is floor(x / d) and whether it is exact, saturating at the
// largest int64.
func div128(x u128, d uint64) (q uint64, exact bool) {
	if x.hi >= d {
		return math.MaxInt64, false
	}
	q, r := bits.Div64(x.hi, x.lo, d)
	return min(q, math.MaxInt64), r == 0
}

// floorMulDiv is floor(a×b/d) and ceilMulDiv ceil(a×b/d), for a, b ≥ 0 and
// d > 0, saturating at the largest int64.
func floorMulDiv(a, b, d int64) int64 {
	q, _ := div128(mul128(uint64(a), uint64(b)), uint64(d))
	return int64(q)
}

func ceilMulDiv(a, b, d int64) int64 {
	q, exact := div128(mul128(uint64(a), uint64(b)), uint64(d))
	if !exact && q < math.MaxInt64 {
		q++
	}
	return int64(q)
}
