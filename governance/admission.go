package governance

import (
	"context"
	"time"
)

// Level is one scope of a request's path with the limits configured on it.
type Level struct {
	Scope      Scope
	Budgets    []Budget
	RateLimits []RateLimit
}

// Admission asks the counters to admit one request.
type Admission struct {
	// Now is the admission time; Location aligns budget periods.
	Now      time.Time
	Location *time.Location
	// Levels is the request's path, narrowest first (key, team, customer).
	Levels []Level
	// WorstCase is the most the request can cost: estimated input at the
	// dearest input rate plus max_tokens at the output rate.
	WorstCase Money
	// Tokens is the token estimate charged to token rate limits now and
	// corrected at settlement.
	Tokens int64
	// Lease is how long the reservation lives without renewal.
	Lease time.Duration
}

// Reservation is what a ticket holds on one budget.
type Reservation struct {
	Scope Scope
	// Budget is the budget as configured at admission.
	Budget Budget
	// PeriodStart identifies the period the request is charged to: the one
	// it was admitted in.
	PeriodStart time.Time
	// Amount is the money held until settlement.
	Amount Money
	// Partial is true when the request did not fit and holds the whole
	// remaining headroom instead (at most one per budget at a time).
	Partial bool
	// Remaining is limit − spent when the request was admitted (what the
	// x-llm-gateway-budget-remaining-usd header reports).
	Remaining Money
}

// TokenCharge is what a ticket charged one token rate limiter.
type TokenCharge struct {
	Scope  Scope
	Limit  RateLimit
	Window int64 // index of the window charged: unix nanos / window
	Tokens int64
}

// Ticket is an admitted request's claim on the counters. Settle exactly
// once; a ticket that is never settled releases its reservations when its
// lease runs out.
type Ticket struct {
	ID           string
	Admitted     time.Time
	Reservations []Reservation
	TokenCharges []TokenCharge
	// Unchecked is set when the store was unreachable and the gateway was
	// configured to fail open: nothing was reserved or counted.
	Unchecked bool
}

// TightestRemaining is the smallest limit − spent over the ticket's budgets,
// and false when it holds none.
func (t *Ticket) TightestRemaining() (Money, bool) {
	if t == nil || len(t.Reservations) == 0 {
		return 0, false
	}
	m := t.Reservations[0].Remaining
	for _, r := range t.Reservations[1:] {
		if r.Remaining < m {
			m = r.Remaining
		}
	}
	return m, true
}

// RejectReason says why a request was refused.
type RejectReason uint8

// The reasons Admit refuses.
const (
	RejectBudget RejectReason = iota + 1
	RejectRateLimit
)

// String is the reason as a metric label value.
func (r RejectReason) String() string {
	if r == RejectRateLimit {
		return "rate_limit"
	}
	return "budget"
}

// Rejection explains a refused admission.
type Rejection struct {
	Reason RejectReason
	Scope  Scope

	// Budget refusals.
	Budget   Budget
	Spent    Money
	Reserved Money
	// ResetAt is when the budget's period ends (zero for total budgets) or
	// when the rate limit next fits the request.
	ResetAt time.Time
	// HeldByPartial is true when headroom remains but another in-flight
	// request already holds it on a partial reservation.
	HeldByPartial bool

	// Rate-limit refusals.
	RateLimit RateLimit
	// RetryAfter is when to try again: for a rate limit, when the request
	// would fit; for a budget whose headroom is only held by requests in
	// flight (Held), HeldRetryAfter or, when sooner, the time the first
	// lease holding on it runs out unless renewed. Zero for a spent budget.
	RetryAfter time.Duration
	// Remaining is how much of the rate limit is left in the sliding window.
	Remaining int64
}

// HeldRetryAfter is how long a request refused only because requests in
// flight hold a budget's remaining headroom is told to wait before trying
// again: long enough for a typical reply to settle, short enough that a
// client retrying a handful of times outlasts a long one.
const HeldRetryAfter = 5 * time.Second

// Held reports whether a budget refusal is only due to reservations of
// requests in flight: the budget is not spent (spent < limit), so money
// may come back when they settle. A spent budget is not Held.
func (r *Rejection) Held() bool {
	return r != nil && r.Reason == RejectBudget && r.Spent < r.Budget.Limit
}

// heldRetryAfter is Rejection.RetryAfter of a Held refusal: HeldRetryAfter,
// or until the first holder's lease expiry (nanoseconds, 0 when none is
// known within HeldRetryAfter) when that is sooner; never below a
// millisecond.
func heldRetryAfter(now, holderExpiry int64) time.Duration {
	d := HeldRetryAfter
	if holderExpiry > 0 {
		if until := time.Duration(holderExpiry - now); until < d {
			d = until
		}
	}
	return max(d, time.Millisecond)
}

// Settlement is what a finished request actually used.
type Settlement struct {
	Now  time.Time
	Cost Money
	// Tokens is the actual count for token rate limits.
	Tokens int64
}

// BudgetChange is one budget's spend before and after a settlement, for
// budget_warn crossings.
type BudgetChange struct {
	Scope         Scope
	Budget        Budget
	Before, After Money
}

// BudgetStatus is one budget's state, for the admin API and the gauges.
type BudgetStatus struct {
	Scope    Scope
	Budget   Budget
	Spent    Money
	Reserved Money
	// PeriodStart and ResetAt bound the current period (ResetAt is zero for
	// total budgets).
	PeriodStart, ResetAt time.Time
}

// Counters hold budgets, reservations and rate limits. Implementations:
// MemoryCounters (one process; spend restored from the ledger at start) and
// RedisCounters (a fleet). All methods are safe for concurrent use.
type Counters interface {
	// Prepare makes sure the budgets of these levels have counters for the
	// current period, restoring their spend from the ledger when the
	// counters are new. It is called before serving a configuration.
	Prepare(ctx context.Context, levels []Level, now time.Time, loc *time.Location) error
	// Admit checks every budget and rate limit of every level atomically and
	// either reserves on all of them or on none.
	Admit(ctx context.Context, a *Admission) (*Ticket, *Rejection, error)
	// Renew extends the leases of tickets whose requests are still making
	// progress.
	Renew(ctx context.Context, tickets []*Ticket, now time.Time, lease time.Duration) error
	// Settle replaces a ticket's reservations by the actual cost, charged to
	// the periods it was admitted in, and corrects its token charges.
	Settle(ctx context.Context, t *Ticket, s Settlement) ([]BudgetChange, error)
	// Status reports the budgets of these levels.
	Status(ctx context.Context, levels []Level, now time.Time, loc *time.Location) ([]BudgetStatus, error)
	// Sweep releases the reservations of expired leases and forgets idle
	// rate limiters.
	Sweep(ctx context.Context, now time.Time) error
	// Close releases resources.
	Close() error
}
