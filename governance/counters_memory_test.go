package governance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// memT0 is a Wednesday noon in UTC, on a minute boundary.
var memT0 = time.Date(2025, 6, 11, 12, 0, 0, 0, time.UTC)

func memUSD(s string) Money {
	m, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

func memKey(n string) Scope  { return Scope{ScopeKey, n} }
func memTeam(n string) Scope { return Scope{ScopeTeam, n} }
func memCust(n string) Scope { return Scope{ScopeCustomer, n} }

func memDaily(limit string) Budget { return Budget{Limit: memUSD(limit), Period: PeriodDay} }

func memPerMinute(n int64, u RateUnit) RateLimit {
	return RateLimit{Limit: n, Unit: u, Window: time.Minute}
}

func memOneLevel(s Scope, budgets ...Budget) []Level {
	return []Level{{Scope: s, Budgets: budgets}}
}

// memMustAdmit admits or fails the test.
func memMustAdmit(t testing.TB, c Counters, a Admission) *Ticket {
	t.Helper()
	tk, rej, err := c.Admit(context.Background(), &a)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if rej != nil {
		t.Fatalf("Admit rejected: %+v", *rej)
	}
	if tk == nil {
		t.Fatal("Admit returned neither ticket nor rejection")
	}
	return tk
}

// memMustReject expects a rejection.
func memMustReject(t testing.TB, c Counters, a Admission) *Rejection {
	t.Helper()
	tk, rej, err := c.Admit(context.Background(), &a)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if rej == nil {
		t.Fatalf("Admit admitted %+v; want a rejection", *tk)
	}
	if tk != nil {
		t.Fatal("Admit returned both a ticket and a rejection")
	}
	return rej
}

func memMustSettle(t testing.TB, c Counters, tk *Ticket, s Settlement) []BudgetChange {
	t.Helper()
	ch, err := c.Settle(context.Background(), tk, s)
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	return ch
}

// spend admits and settles one request costing cost.
func memSpend(t testing.TB, c Counters, levels []Level, now time.Time, cost Money) {
	t.Helper()
	tk := memMustAdmit(t, c, Admission{Now: now, Levels: levels, WorstCase: cost})
	memMustSettle(t, c, tk, Settlement{Now: now, Cost: cost})
}

// status returns the first budget of each level.
func memStatus(t testing.TB, c Counters, levels []Level, now time.Time, loc *time.Location) []BudgetStatus {
	t.Helper()
	st, err := c.Status(context.Background(), levels, now, loc)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func memCheckBudget(t testing.TB, c Counters, s Scope, b Budget, now time.Time, spent, reserved Money) {
	t.Helper()
	st := memStatus(t, c, []Level{{Scope: s, Budgets: []Budget{b}}}, now, time.UTC)
	if st[0].Spent != spent || st[0].Reserved != reserved {
		t.Errorf("%s %s: spent %s reserved %s; want spent %s reserved %s",
			s, b, st[0].Spent, st[0].Reserved, spent, reserved)
	}
}

func TestMemoryCountersConformance(t *testing.T) {
	runCountersConformance(t, func(*testing.T) Counters { return NewMemoryCounters(nil) })
}

// ---------------------------------------------------------------------------
// Sliding-window math, with fixed times.

func TestSlidingWindowCheck(t *testing.T) {
	const W = int64(time.Minute)
	idx := floorDiv(unixNanos(memT0), W)
	ms := time.Millisecond
	tests := []struct {
		name              string
		unit              RateUnit
		limit, curr, prev int64
		elapsed           time.Duration
		est               float64
		ok                bool
		retry             time.Duration
		remaining         int64
	}{
		// Requests, 10 per minute: est + 1 ≤ 10.
		{"idle", RateRequests, 10, 0, 0, 10 * time.Second, 0, true, 0, 10},
		{"last one fits", RateRequests, 10, 9, 0, 59999 * ms, 9, true, 0, 1},
		{"previous window weighs half", RateRequests, 10, 3, 8, 30 * time.Second, 7, true, 0, 3},
		{"previous window decayed enough", RateRequests, 10, 0, 20, 33 * time.Second, 9, true, 0, 1},
		// Full window: wait for the next one, where 10×(60−s)/60 ≤ 9: s = 6 s;
		// 45 s left in this one.
		{"full, next window", RateRequests, 10, 10, 0, 15 * time.Second, 10, false, 51 * time.Second, 0},
		// 4 + 12×(60−e')/60 ≤ 9 → e' = 35 s, 20 s from now.
		{"previous decays this window", RateRequests, 10, 4, 12, 15 * time.Second, 13, false, 20 * time.Second, 0},
		// 5 + 7×(60−e')/60 ≤ 9 → e' = 25.714285714… s: 5.714285714… s, rounded up.
		{"rounded up to the millisecond", RateRequests, 10, 5, 7, 20 * time.Second, 5 + 7*40.0/60, false, 5715 * ms, 0},
		// 9 + 3×(60−e')/60 ≤ 9 → e' = 60 s: the next window start.
		{"room only at the window end", RateRequests, 10, 9, 3, 0, 12, false, 60 * time.Second, 0},
		{"previous decays, 3 s", RateRequests, 10, 0, 20, 30 * time.Second, 10, false, 3 * time.Second, 0},
		// Over the limit (it was lowered): next window, 25×(60−s)/60 ≤ 9 →
		// s = 38.4 s after the 60 s left.
		{"overfull", RateRequests, 10, 25, 0, 0, 25, false, 98400 * ms, 0},
		{"limit 0 never fits", RateRequests, 0, 0, 0, 10 * time.Second, 0, false, time.Minute, 0},

		// Tokens, 1000 per minute: est < 1000, whatever the request's size.
		{"tokens idle", RateTokens, 1000, 0, 0, 0, 0, true, 0, 1000},
		{"tokens nearly full still pass", RateTokens, 1000, 999, 0, 10 * time.Second, 999, true, 0, 1},
		{"tokens 900", RateTokens, 1000, 900, 0, 10 * time.Second, 900, true, 0, 100},
		// 1000×(60−s)/60 < 1000 → s > 0: 1 ns into the next window, 45 s away.
		{"tokens full", RateTokens, 1000, 1000, 0, 15 * time.Second, 1000, false, 45001 * ms, 0},
		// 400 + 1200×(60−e')/60 < 1000 → e' > 30 s: 15 s + 1 ns.
		{"tokens previous decays", RateTokens, 1000, 400, 1200, 15 * time.Second, 1300, false, 15001 * ms, 0},
		// One large request overshot: 2500×(60−s)/60 < 1000 → s > 36 s.
		{"tokens overshoot", RateTokens, 1000, 2500, 0, 30 * time.Second, 2500, false, 66001 * ms, 0},
		{"tokens previous only", RateTokens, 1000, 0, 1500, 0, 1500, false, 20001 * ms, 0},
		{"tokens at the boundary", RateTokens, 1000, 0, 1500, 20 * time.Second, 1000, false, 1 * ms, 0},
		{"tokens just past the boundary", RateTokens, 1000, 0, 1500, 20*time.Second + ms, 1500 * (40 - 0.001) / 60, true, 0, 0},
		{"tokens limit 0 never fits", RateTokens, 0, 0, 0, 0, 0, false, time.Minute, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := slidingWindow{Window: W, Index: idx, Curr: tc.curr, Prev: tc.prev}
			now := idx*W + int64(tc.elapsed)
			if est := w.estimate(now); math.Abs(est-tc.est) > 1e-9 {
				t.Errorf("estimate = %v, want %v", est, tc.est)
			}
			ok, retry, remaining := w.check(now, tc.limit, tc.unit)
			if ok != tc.ok || retry != tc.retry || remaining != tc.remaining {
				t.Errorf("check = %v, %v, %d; want %v, %v, %d", ok, retry, remaining, tc.ok, tc.retry, tc.remaining)
			}
			if !ok && tc.limit > 0 {
				// After the wait, with nothing else arriving, it fits.
				later := now + int64(retry)
				if ok, _, _ := w.at(later).check(later, tc.limit, tc.unit); !ok {
					t.Errorf("still refused after %v", retry)
				}
			}
		})
	}
}

func TestSlidingWindowRoll(t *testing.T) {
	const W = int64(time.Minute)
	idx := floorDiv(unixNanos(memT0), W)
	w := slidingWindow{Window: W, Index: idx, Curr: 7, Prev: 4}
	at := func(windows int64, e time.Duration) int64 { return (idx+windows)*W + int64(e) }
	tests := []struct {
		name string
		now  int64
		want slidingWindow
		est  float64
	}{
		{"same window", at(0, 45*time.Second), w, 7 + 4*15.0/60},
		{"last nanosecond", at(1, -1), w, 7 + 4*1.0/float64(W)},
		{"next window", at(1, 15*time.Second), slidingWindow{W, idx + 1, 0, 7}, 7 * 45.0 / 60},
		{"next window start", at(1, 0), slidingWindow{W, idx + 1, 0, 7}, 7},
		{"two windows on", at(2, 0), slidingWindow{W, idx + 2, 0, 0}, 0},
		{"many windows on", at(1000, 5*time.Second), slidingWindow{W, idx + 1000, 0, 0}, 0},
		// A clock stepping back counts in the current window, at its start.
		{"clock stepped back", at(-1, 30*time.Second), w, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := w.at(tc.now)
			if got != tc.want {
				t.Errorf("at = %+v, want %+v", got, tc.want)
			}
			if est := got.estimate(tc.now); math.Abs(est-tc.est) > 1e-9 {
				t.Errorf("estimate = %v, want %v", est, tc.est)
			}
		})
	}
	// Windows are aligned on multiples of their width since the epoch, also
	// before it.
	if got := (slidingWindow{Window: W, Index: -5}).at(-1); got.Index != -1 {
		t.Errorf("window of -1 ns: %d, want -1", got.Index)
	}
}

func TestSlidingWindowCorrect(t *testing.T) {
	base := slidingWindow{Window: int64(time.Minute), Index: 100, Curr: 500, Prev: 300}
	tests := []struct {
		name         string
		index, delta int64
		want         slidingWindow
	}{
		{"current, fewer", 100, -200, slidingWindow{base.Window, 100, 300, 300}},
		{"current, more", 100, 250, slidingWindow{base.Window, 100, 750, 300}},
		{"current, never below 0", 100, -900, slidingWindow{base.Window, 100, 0, 300}},
		{"previous", 99, 100, slidingWindow{base.Window, 100, 500, 400}},
		{"previous, never below 0", 99, -301, slidingWindow{base.Window, 100, 500, 0}},
		{"older: dropped", 98, 1000, base},
		{"newer (clock skew): dropped", 101, 1000, base},
	}
	for _, tc := range tests {
		w := base
		w.correct(tc.index, tc.delta)
		if w != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, w, tc.want)
		}
	}
}

// TestSlidingWindowRetryIsTight checks, over random states, that a refused
// request fits after RetryAfter with nothing else arriving, and not one
// millisecond earlier.
func TestSlidingWindowRetryIsTight(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	windows := []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour}
	refused := 0
	for range 20000 {
		W := int64(windows[rng.IntN(len(windows))])
		unit := RateUnit(rng.IntN(2))
		limit := 1 + rng.Int64N(1000)
		w := slidingWindow{Window: W, Index: floorDiv(unixNanos(memT0), W), Curr: rng.Int64N(2 * limit), Prev: rng.Int64N(3 * limit)}
		now := w.Index*W + rng.Int64N(W)
		ok, retry, remaining := w.check(now, limit, unit)
		if want := max(0, limit-int64(math.Ceil(w.estimate(now)))); remaining != want {
			t.Fatalf("%+v: remaining %d, want %d", w, remaining, want)
		}
		if ok {
			continue
		}
		refused++
		if retry < time.Millisecond || retry%time.Millisecond != 0 {
			t.Fatalf("%+v limit %d %s: retry %v is not whole milliseconds", w, limit, unit, retry)
		}
		later := now + int64(retry)
		if ok, _, _ := w.at(later).check(later, limit, unit); !ok {
			t.Fatalf("%+v limit %d %s at +%d: still refused after %v", w, limit, unit, now-w.Index*W, retry)
		}
		if retry > time.Millisecond {
			earlier := later - int64(time.Millisecond)
			if ok, _, _ := w.at(earlier).check(earlier, limit, unit); ok {
				t.Fatalf("%+v limit %d %s at +%d: admitted 1 ms before %v", w, limit, unit, now-w.Index*W, retry)
			}
		}
	}
	if refused < 5000 {
		t.Fatalf("only %d refusals: the test is not exercising RetryAfter", refused)
	}
}

// ---------------------------------------------------------------------------
// Reservations.

func TestMemoryFullReservation(t *testing.T) {
	c := NewMemoryCounters(nil)
	alice := memKey("alice")
	b := memDaily("1")
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: memOneLevel(alice, b), WorstCase: memUSD("0.07"), Lease: time.Minute})
	want := []Reservation{{Scope: alice, Budget: b, PeriodStart: time.Date(2025, 6, 11, 0, 0, 0, 0, time.UTC),
		Amount: memUSD("0.07"), Remaining: memUSD("1")}}
	if !reflect.DeepEqual(tk.Reservations, want) {
		t.Errorf("reservations %+v, want %+v", tk.Reservations, want)
	}
	if tk.ID == "" || !tk.Admitted.Equal(memT0) || tk.Unchecked || tk.TokenCharges != nil {
		t.Errorf("ticket %+v", *tk)
	}
	st := memStatus(t, c, memOneLevel(alice, b), memT0, time.UTC)
	wantSt := []BudgetStatus{{Scope: alice, Budget: b, Spent: 0, Reserved: memUSD("0.07"),
		PeriodStart: time.Date(2025, 6, 11, 0, 0, 0, 0, time.UTC), ResetAt: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC)}}
	if !reflect.DeepEqual(st, wantSt) {
		t.Errorf("status %+v, want %+v", st, wantSt)
	}
	if r, ok := tk.TightestRemaining(); !ok || r != memUSD("1") {
		t.Errorf("TightestRemaining = %s, %v", r, ok)
	}
}

// A developer with $0.30 left can still make a $0.07 request, and a larger
// one on what is left.
func TestMemoryThirtyCentsLeft(t *testing.T) {
	c := NewMemoryCounters(nil)
	lv := memOneLevel(memKey("dev"), memDaily("1"))
	memSpend(t, c, lv, memT0, memUSD("0.70"))

	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.07")})
	if r := tk.Reservations[0]; r.Amount != memUSD("0.07") || r.Partial || r.Remaining != memUSD("0.30") {
		t.Errorf("$0.07 request: %+v", r)
	}
	big := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.50")})
	if r := big.Reservations[0]; r.Amount != memUSD("0.23") || !r.Partial || r.Remaining != memUSD("0.30") {
		t.Errorf("$0.50 request: %+v, want a partial reservation of $0.23", r)
	}
	rej := memMustReject(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.01")})
	want := Rejection{Reason: RejectBudget, Scope: memKey("dev"), Budget: memDaily("1"),
		Spent: memUSD("0.70"), Reserved: memUSD("0.30"), ResetAt: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC),
		RetryAfter: HeldRetryAfter} // not spent: the headroom is held by requests in flight
	if !reflect.DeepEqual(*rej, want) {
		t.Errorf("rejection %+v, want %+v", *rej, want)
	}
}

func TestMemoryPartialReservations(t *testing.T) {
	c := NewMemoryCounters(nil)
	dev := memKey("dev")
	b := memDaily("1")
	lv := memOneLevel(dev, b)
	a := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.60")})
	p := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.50")})
	if r := p.Reservations[0]; !r.Partial || r.Amount != memUSD("0.40") {
		t.Fatalf("partial: %+v", r)
	}
	memMustSettle(t, c, a, Settlement{Now: memT0, Cost: memUSD("0.50")}) // headroom 0.10, held by p
	memCheckBudget(t, c, dev, b, memT0, memUSD("0.50"), memUSD("0.40"))

	// A second partial is refused while the first is in flight…
	rej := memMustReject(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.20")})
	if !rej.HeldByPartial || rej.Spent != memUSD("0.50") || rej.Reserved != memUSD("0.40") || rej.Scope != dev {
		t.Errorf("second partial: %+v", *rej)
	}
	// …but a request that fits the headroom is not.
	small := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.05")})
	if r := small.Reservations[0]; r.Partial || r.Amount != memUSD("0.05") {
		t.Errorf("small: %+v", r)
	}
	// The partial request costs more than it held (at most its worst case).
	ch := memMustSettle(t, c, p, Settlement{Now: memT0, Cost: memUSD("0.45")})
	if want := []BudgetChange{{dev, b, memUSD("0.50"), memUSD("0.95")}}; !reflect.DeepEqual(ch, want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	memCheckBudget(t, c, dev, b, memT0, memUSD("0.95"), memUSD("0.05"))
	if rej := memMustReject(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.20")}); rej.HeldByPartial {
		t.Errorf("no headroom left: %+v", *rej)
	}
	memMustSettle(t, c, small, Settlement{Now: memT0, Cost: memUSD("0.01")})
	// Nothing partial in flight any more: the last 4 cents can be held.
	last := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.20")})
	if r := last.Reservations[0]; !r.Partial || r.Amount != memUSD("0.04") || r.Remaining != memUSD("0.04") {
		t.Errorf("last: %+v", r)
	}
}

func TestMemoryExhausted(t *testing.T) {
	c := NewMemoryCounters(nil)
	dev := memKey("dev")
	total := Budget{Limit: memUSD("2"), Period: PeriodTotal}
	lv := memOneLevel(dev, memDaily("5"), total)
	memSpend(t, c, lv, memT0, memUSD("2"))
	rej := memMustReject(t, c, Admission{Now: memT0, Levels: lv})
	want := Rejection{Reason: RejectBudget, Scope: dev, Budget: total, Spent: memUSD("2")}
	if !reflect.DeepEqual(*rej, want) {
		t.Errorf("rejection %+v, want %+v (a total budget never resets)", *rej, want)
	}
	// A zero limit refuses even a free request; a free request is admitted
	// wherever there is headroom.
	rej = memMustReject(t, c, Admission{Now: memT0, Levels: memOneLevel(memKey("zero"), memDaily("0"))})
	if rej.Budget != memDaily("0") {
		t.Errorf("zero budget: %+v", *rej)
	}
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: memOneLevel(memKey("free"), memDaily("1"))})
	if r := tk.Reservations[0]; r.Amount != 0 || r.Partial {
		t.Errorf("free request: %+v", r)
	}
	// Spend beyond the limit (a partial overrun) reports a negative headroom
	// as a refusal too.
	over := memOneLevel(memKey("over"), memDaily("1"))
	p := memMustAdmit(t, c, Admission{Now: memT0, Levels: over, WorstCase: memUSD("3")})
	memMustSettle(t, c, p, Settlement{Now: memT0, Cost: memUSD("3")})
	if rej := memMustReject(t, c, Admission{Now: memT0, Levels: over}); rej.Spent != memUSD("3") {
		t.Errorf("overrun: %+v", *rej)
	}
}

// memHierarchy is alice and bob in team platform of customer acme.
func memHierarchy(key string) []Level {
	return []Level{
		{Scope: memKey(key), Budgets: []Budget{memDaily("10")},
			RateLimits: []RateLimit{memPerMinute(100, RateRequests), memPerMinute(10000, RateTokens)}},
		{Scope: memTeam("platform"), Budgets: []Budget{memDaily("1")},
			RateLimits: []RateLimit{memPerMinute(50, RateRequests)}},
		{Scope: memCust("acme"), Budgets: []Budget{{Limit: memUSD("100"), Period: PeriodMonth}},
			RateLimits: []RateLimit{memPerMinute(1_000_000, RateTokens)}},
	}
}

func (c *MemoryCounters) testLimiter(s Scope, u RateUnit, w time.Duration) (slidingWindow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.limiters[limiterKey{s, u, w}]
	if st == nil {
		return slidingWindow{}, false
	}
	return *st, true
}

func TestMemoryMultiLevelAllOrNothing(t *testing.T) {
	c := NewMemoryCounters(nil)
	month := Budget{Limit: memUSD("100"), Period: PeriodMonth}
	// bob spends the whole team budget.
	memSpend(t, c, memHierarchy("bob"), memT0, memUSD("1"))

	rej := memMustReject(t, c, Admission{Now: memT0, Levels: memHierarchy("alice"), WorstCase: memUSD("0.20"), Tokens: 500})
	want := Rejection{Reason: RejectBudget, Scope: memTeam("platform"), Budget: memDaily("1"),
		Spent: memUSD("1"), ResetAt: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC)}
	if !reflect.DeepEqual(*rej, want) {
		t.Errorf("rejection %+v, want %+v", *rej, want)
	}
	// The team's refusal left alice's counters untouched…
	memCheckBudget(t, c, memKey("alice"), memDaily("10"), memT0, 0, 0)
	for _, u := range []RateUnit{RateRequests, RateTokens} {
		if w, ok := c.testLimiter(memKey("alice"), u, time.Minute); ok && (w.Curr != 0 || w.Prev != 0) {
			t.Errorf("alice's %s limiter counted a refused request: %+v", u, w)
		}
	}
	// …and the customer's (bob's request is all it has).
	memCheckBudget(t, c, memCust("acme"), month, memT0, memUSD("1"), 0)
	if w, _ := c.testLimiter(memCust("acme"), RateTokens, time.Minute); w.Curr != 0 {
		t.Errorf("acme's token limiter: %+v, want bob's 0 tokens only", w)
	}
	if w, _ := c.testLimiter(memTeam("platform"), RateRequests, time.Minute); w.Curr != 1 {
		t.Errorf("platform's request limiter: %+v, want bob's request only", w)
	}
}

func TestMemoryRateLimitAllOrNothing(t *testing.T) {
	c := NewMemoryCounters(nil)
	levels := []Level{
		{Scope: memKey("alice"), Budgets: []Budget{memDaily("10")}, RateLimits: []RateLimit{memPerMinute(100, RateRequests)}},
		{Scope: memTeam("platform"), Budgets: []Budget{memDaily("10")}, RateLimits: []RateLimit{memPerMinute(2, RateRequests)}},
		{Scope: memCust("acme"), RateLimits: []RateLimit{memPerMinute(1000, RateTokens)}},
	}
	now := memT0.Add(15 * time.Second)
	first := memMustAdmit(t, c, Admission{Now: now, Levels: levels, WorstCase: memUSD("1"), Tokens: 5000})
	if want := []TokenCharge{{memCust("acme"), memPerMinute(1000, RateTokens), floorDiv(unixNanos(now), int64(time.Minute)), 5000}}; !reflect.DeepEqual(first.TokenCharges, want) {
		t.Errorf("token charges %+v, want %+v", first.TokenCharges, want)
	}
	// The customer's token limiter is over (one large request may pass an
	// idle limiter): the next request is refused there, after every budget
	// passed, and nothing is reserved or counted.
	rej := memMustReject(t, c, Admission{Now: now, Levels: levels, WorstCase: memUSD("1"), Tokens: 10})
	if rej.Reason != RejectRateLimit || rej.Scope != memCust("acme") || rej.RateLimit != memPerMinute(1000, RateTokens) || rej.Remaining != 0 {
		t.Errorf("rejection %+v", *rej)
	}
	// 45 s left in this window, then 5000×(60−s)/60 < 1000 → s > 48 s in the
	// next: 93 s and 1 ns, rounded up to the millisecond.
	if rej.RetryAfter != 93001*time.Millisecond || !rej.ResetAt.Equal(now.Add(rej.RetryAfter)) {
		t.Errorf("retry after %v, reset at %v", rej.RetryAfter, rej.ResetAt)
	}
	memCheckBudget(t, c, memKey("alice"), memDaily("10"), now, 0, memUSD("1"))
	memCheckBudget(t, c, memTeam("platform"), memDaily("10"), now, 0, memUSD("1"))
	if w, _ := c.testLimiter(memKey("alice"), RateRequests, time.Minute); w.Curr != 1 {
		t.Errorf("alice's request limiter %+v, want the first request only", w)
	}
	// Settle the large request with its actual count: the limiter is below
	// its limit again.
	memMustSettle(t, c, first, Settlement{Now: now, Cost: memUSD("0.5"), Tokens: 800})
	second := memMustAdmit(t, c, Admission{Now: now, Levels: levels, WorstCase: memUSD("1"), Tokens: 10})
	// The team allows 2 requests a minute: a third is refused with the
	// team's limit, and when the budget refuses too, the budget wins.
	rej = memMustReject(t, c, Admission{Now: now, Levels: levels, WorstCase: memUSD("1")})
	if rej.Reason != RejectRateLimit || rej.Scope != memTeam("platform") || rej.Remaining != 0 {
		t.Errorf("third request: %+v", *rej)
	}
	// Next window at 60 s (45 s away), then 2×(60−s)/60 ≤ 1 → s = 30 s.
	if rej.RetryAfter != 75*time.Second {
		t.Errorf("third request: retry after %v, want 75s", rej.RetryAfter)
	}
	poor := slices.Clone(levels)
	poor[1].Budgets = []Budget{memDaily("1.2")} // 0.5 spent + 1 reserved: no headroom
	if rej := memMustReject(t, c, Admission{Now: now, Levels: poor, WorstCase: memUSD("1")}); rej.Reason != RejectBudget {
		t.Errorf("budget and rate limit both refuse: %+v, want the budget reported", *rej)
	}
	memMustSettle(t, c, second, Settlement{Now: now, Cost: memUSD("0.5"), Tokens: 10})
}

func TestMemorySettle(t *testing.T) {
	c := NewMemoryCounters(nil)
	levels := memHierarchy("alice")
	month := Budget{Limit: memUSD("100"), Period: PeriodMonth}
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: levels, WorstCase: memUSD("0.5"), Lease: time.Minute})
	if len(tk.Reservations) != 3 {
		t.Fatalf("reservations %+v", tk.Reservations)
	}
	ch := memMustSettle(t, c, tk, Settlement{Now: memT0.Add(time.Second), Cost: memUSD("0.123")})
	want := []BudgetChange{
		{memKey("alice"), memDaily("10"), 0, memUSD("0.123")},
		{memTeam("platform"), memDaily("1"), 0, memUSD("0.123")},
		{memCust("acme"), month, 0, memUSD("0.123")},
	}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	memCheckBudget(t, c, memKey("alice"), memDaily("10"), memT0, memUSD("0.123"), 0)
	memCheckBudget(t, c, memTeam("platform"), memDaily("1"), memT0, memUSD("0.123"), 0)
	memCheckBudget(t, c, memCust("acme"), month, memT0, memUSD("0.123"), 0)

	// Twice: nothing.
	if ch, err := c.Settle(context.Background(), tk, Settlement{Now: memT0, Cost: memUSD("1")}); ch != nil || err != nil {
		t.Errorf("second Settle = %+v, %v", ch, err)
	}
	memCheckBudget(t, c, memKey("alice"), memDaily("10"), memT0, memUSD("0.123"), 0)

	// Unchecked (fail-open) tickets, nil and foreign tickets: nothing.
	for _, tk := range []*Ticket{nil, {Unchecked: true}, {ID: "elsewhere", Reservations: tk.Reservations}} {
		if ch, err := c.Settle(context.Background(), tk, Settlement{Now: memT0, Cost: memUSD("1")}); ch != nil || err != nil {
			t.Errorf("Settle(%+v) = %+v, %v", tk, ch, err)
		}
	}
	memCheckBudget(t, c, memCust("acme"), month, memT0, memUSD("0.123"), 0)
	c.mu.Lock()
	if len(c.leases)+len(c.expiring)+len(c.expired) != 0 {
		t.Errorf("leases left: %+v %+v %+v", c.leases, c.expiring, c.expired)
	}
	c.mu.Unlock()
}

func TestMemorySettleAfterLeaseExpiry(t *testing.T) {
	for _, swept := range []bool{true, false} {
		t.Run(fmt.Sprintf("swept=%v", swept), func(t *testing.T) {
			c := NewMemoryCounters(nil)
			dev := memKey("dev")
			b := memDaily("10")
			lv := memOneLevel(dev, b)
			forever := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.2")}) // Lease 0: never expires
			tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: 30 * time.Second})
			ctx := context.Background()
			if err := c.Sweep(ctx, memT0.Add(30*time.Second-1)); err != nil {
				t.Fatal(err)
			}
			memCheckBudget(t, c, dev, b, memT0, 0, memUSD("1.2"))
			if swept {
				if err := c.Sweep(ctx, memT0.Add(30*time.Second)); err != nil {
					t.Fatal(err)
				}
				memCheckBudget(t, c, dev, b, memT0, 0, memUSD("0.2"))
			}
			// The request finishes late: charged once, released once.
			ch := memMustSettle(t, c, tk, Settlement{Now: memT0.Add(40 * time.Second), Cost: memUSD("0.3")})
			if want := []BudgetChange{{dev, b, 0, memUSD("0.3")}}; !reflect.DeepEqual(ch, want) {
				t.Errorf("changes %+v, want %+v", ch, want)
			}
			memCheckBudget(t, c, dev, b, memT0, memUSD("0.3"), memUSD("0.2"))
			if ch := memMustSettle(t, c, tk, Settlement{Now: memT0.Add(41 * time.Second), Cost: memUSD("0.3")}); ch != nil {
				t.Errorf("second Settle: %+v", ch)
			}
			if err := c.Sweep(ctx, memT0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			memCheckBudget(t, c, dev, b, memT0, memUSD("0.3"), memUSD("0.2"))
			memMustSettle(t, c, forever, Settlement{Now: memT0.Add(time.Hour), Cost: memUSD("0.1")})
			memCheckBudget(t, c, dev, b, memT0, memUSD("0.4"), 0)
		})
	}
}

func TestMemoryExpiredLeaseForgotten(t *testing.T) {
	c := NewMemoryCounters(nil)
	lv := memOneLevel(memKey("dev"), Budget{Limit: memUSD("10"), Period: PeriodTotal})
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: time.Minute})
	ctx := context.Background()
	c.Sweep(ctx, memT0.Add(time.Minute))
	c.Sweep(ctx, memT0.Add(time.Minute+expiredLeaseRetention-1))
	c.mu.Lock()
	n, live := len(c.expired), len(c.leases)+len(c.expiring)
	c.mu.Unlock()
	if n != 1 || live != 0 {
		t.Fatalf("%d expired tickets remembered, %d live; want the expired one", n, live)
	}
	c.Sweep(ctx, memT0.Add(time.Minute+expiredLeaseRetention))
	c.mu.Lock()
	n = len(c.expired)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d expired tickets remembered a day after expiry", n)
	}
	// A day late, the settlement is ignored like a second one.
	if ch := memMustSettle(t, c, tk, Settlement{Now: memT0.Add(48 * time.Hour), Cost: memUSD("1")}); ch != nil {
		t.Errorf("changes %+v", ch)
	}
	memCheckBudget(t, c, memKey("dev"), lv[0].Budgets[0], memT0, 0, 0)
}

func TestMemoryRenew(t *testing.T) {
	c := NewMemoryCounters(nil)
	ctx := context.Background()
	dev := memKey("dev")
	b := memDaily("10")
	lv := memOneLevel(dev, b)
	a := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: 10 * time.Second})
	late := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("2"), Lease: 10 * time.Second})
	done := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("4"), Lease: 10 * time.Second})
	memMustSettle(t, c, done, Settlement{Now: memT0, Cost: 0})

	if err := c.Renew(ctx, []*Ticket{a, done, nil, {Unchecked: true}, {ID: "unknown"}}, memT0.Add(8*time.Second), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Sweep(ctx, memT0.Add(15*time.Second))
	memCheckBudget(t, c, dev, b, memT0, 0, memUSD("1")) // late expired at 10 s; a lives until 18 s
	// Renewing an expired lease does not bring it back.
	if err := c.Renew(ctx, []*Ticket{late}, memT0.Add(16*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Sweep(ctx, memT0.Add(18*time.Second-1))
	memCheckBudget(t, c, dev, b, memT0, 0, memUSD("1"))
	c.Sweep(ctx, memT0.Add(18*time.Second))
	memCheckBudget(t, c, dev, b, memT0, 0, 0)

	// An expired lease not swept yet is not renewed either.
	x := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: 10 * time.Second})
	c.Renew(ctx, []*Ticket{x}, memT0.Add(10*time.Second), time.Hour)
	c.Sweep(ctx, memT0.Add(10*time.Second))
	memCheckBudget(t, c, dev, b, memT0, 0, 0)

	// A renewal with lease 0 never expires.
	y := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: 10 * time.Second})
	c.Renew(ctx, []*Ticket{y}, memT0.Add(5*time.Second), 0)
	c.Sweep(ctx, memT0.Add(20*time.Hour))
	memCheckBudget(t, c, dev, b, memT0, 0, memUSD("1"))
}

// Admit releases the leases that ran out, so a request stuck without
// progress does not block its budget until the next Sweep.
func TestMemoryAdmitReleasesExpiredLeases(t *testing.T) {
	c := NewMemoryCounters(nil)
	dev := memKey("dev")
	b := memDaily("1")
	lv := memOneLevel(dev, b)
	stuck := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("1"), Lease: 10 * time.Second})
	other := memMustAdmit(t, c, Admission{Now: memT0, Levels: memOneLevel(memKey("other"), b), WorstCase: memUSD("0.5"), Lease: 5 * time.Second})
	if r := memMustReject(t, c, Admission{Now: memT0.Add(10*time.Second - 1), Levels: lv, WorstCase: memUSD("0.2")}); r.Reserved != memUSD("1") {
		t.Errorf("rejection %+v", *r)
	}
	tk := memMustAdmit(t, c, Admission{Now: memT0.Add(10 * time.Second), Levels: lv, WorstCase: memUSD("0.2")})
	if r := tk.Reservations[0]; r.Partial || r.Amount != memUSD("0.2") {
		t.Errorf("reservation %+v", r)
	}
	// Every expired lease went, not only those on the admitted path.
	memCheckBudget(t, c, memKey("other"), b, memT0, 0, 0)
	memCheckBudget(t, c, dev, b, memT0, 0, memUSD("0.2"))
	// Their late settlements still charge once.
	memMustSettle(t, c, stuck, Settlement{Now: memT0.Add(time.Minute), Cost: memUSD("0.4")})
	memMustSettle(t, c, other, Settlement{Now: memT0.Add(time.Minute), Cost: memUSD("0.1")})
	memCheckBudget(t, c, dev, b, memT0, memUSD("0.4"), memUSD("0.2"))
	memCheckBudget(t, c, memKey("other"), b, memT0, memUSD("0.1"), 0)
}

// TestLeaseHeap drives the lease heap with random pushes, removals and
// renewals against a plain list, checking that it always yields the
// earliest expiry and that every lease knows its position.
func TestLeaseHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h leaseHeap
	var in []*memLease
	for i := range 20000 {
		switch op := rng.IntN(10); {
		case op < 4 || len(in) == 0:
			l := &memLease{id: fmt.Sprint(i), expiry: rng.Int64N(1000), pos: -1}
			h.push(l)
			in = append(in, l)
		case op < 7:
			j := rng.IntN(len(in))
			h.remove(in[j])
			if in[j].pos != -1 {
				t.Fatal("removed lease keeps a position")
			}
			in = append(in[:j], in[j+1:]...)
		default:
			l := in[rng.IntN(len(in))]
			l.expiry = rng.Int64N(1000)
			h.fix(l.pos)
		}
		if len(h) != len(in) {
			t.Fatalf("heap has %d leases, want %d", len(h), len(in))
		}
		least := int64(math.MaxInt64)
		for _, l := range in {
			least = min(least, l.expiry)
			if h[l.pos] != l {
				t.Fatalf("lease %s at %d is not there", l.id, l.pos)
			}
		}
		if len(h) > 0 && h[0].expiry != least {
			t.Fatalf("heap top %d, least %d", h[0].expiry, least)
		}
	}
}

func TestMemorySweepForgets(t *testing.T) {
	c := NewMemoryCounters(nil)
	ctx := context.Background()
	levels := []Level{{Scope: memKey("dev"),
		Budgets:    []Budget{memDaily("10"), {Limit: memUSD("10"), Period: PeriodTotal}},
		RateLimits: []RateLimit{memPerMinute(10, RateRequests), {Limit: 10, Unit: RateTokens, Window: time.Hour}}}}
	memSpend(t, c, levels, memT0, memUSD("1"))
	held := memMustAdmit(t, c, Admission{Now: memT0, Levels: levels, WorstCase: memUSD("1")})
	count := func() (budgets, limiters int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.budgets), len(c.limiters)
	}
	c.Sweep(ctx, memT0.Add(2*time.Minute-1))
	if b, l := count(); b != 2 || l != 2 {
		t.Fatalf("%d budgets, %d limiters; want 2, 2", b, l)
	}
	c.Sweep(ctx, memT0.Add(2*time.Minute)) // the minute limiter's counts have both expired
	if b, l := count(); b != 2 || l != 1 {
		t.Fatalf("%d budgets, %d limiters; want 2, 1", b, l)
	}
	tomorrow := time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC)
	c.Sweep(ctx, tomorrow) // yesterday's counter still holds a reservation
	if b, l := count(); b != 2 || l != 0 {
		t.Fatalf("%d budgets, %d limiters; want 2, 0", b, l)
	}
	ch := memMustSettle(t, c, held, Settlement{Now: tomorrow, Cost: memUSD("0.5")})
	if len(ch) != 2 || ch[0].After != memUSD("1.5") || ch[1].After != memUSD("1.5") {
		t.Errorf("changes %+v", ch)
	}
	c.Sweep(ctx, tomorrow.Add(time.Hour))
	if b, l := count(); b != 1 || l != 0 {
		t.Fatalf("%d budgets, %d limiters; want the total budget only", b, l)
	}
	memCheckBudget(t, c, memKey("dev"), levels[0].Budgets[1], tomorrow, memUSD("1.5"), 0)
}

// A live lease keeps the counter of its period even when it reserved
// nothing (a free request), so its settlement is still charged.
func TestMemorySweepKeepsCountersOfLiveLeases(t *testing.T) {
	c := NewMemoryCounters(nil)
	dev := memKey("dev")
	b := memDaily("1")
	lv := memOneLevel(dev, b)
	free := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv}) // never expires
	tomorrow := memT0.Add(24 * time.Hour)
	c.Sweep(context.Background(), tomorrow)
	ch := memMustSettle(t, c, free, Settlement{Now: tomorrow, Cost: memUSD("0.1")})
	if want := []BudgetChange{{dev, b, 0, memUSD("0.1")}}; !reflect.DeepEqual(ch, want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	memCheckBudget(t, c, dev, b, memT0, memUSD("0.1"), 0)
	c.Sweep(context.Background(), tomorrow)
	c.mu.Lock()
	n := len(c.budgets)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d budget counters left after the last lease went", n)
	}
}

func TestMemoryPeriodRollover(t *testing.T) {
	c := NewMemoryCounters(nil)
	ctx := context.Background()
	ny := mustLoad(t, "America/New_York")
	dev := memKey("dev")
	b := memDaily("1")
	lv := memOneLevel(dev, b)
	// 23:59:59 on June 11 in New York.
	before := time.Date(2025, 6, 11, 23, 59, 59, 0, ny)
	after := before.Add(2 * time.Second)
	tk := memMustAdmit(t, c, Admission{Now: before, Location: ny, Levels: lv, WorstCase: memUSD("0.9")})
	if want := time.Date(2025, 6, 11, 0, 0, 0, 0, ny); !tk.Reservations[0].PeriodStart.Equal(want) {
		t.Errorf("period start %v, want %v", tk.Reservations[0].PeriodStart, want)
	}
	// A new day: nothing spent or reserved in it yet.
	fresh := memMustAdmit(t, c, Admission{Now: after, Location: ny, Levels: lv, WorstCase: memUSD("0.9")})
	if r := fresh.Reservations[0]; r.Partial || r.Remaining != memUSD("1") {
		t.Errorf("new period: %+v", r)
	}
	// The charge goes to the day the request was admitted in.
	ch := memMustSettle(t, c, tk, Settlement{Now: after, Cost: memUSD("0.8")})
	if want := []BudgetChange{{dev, b, 0, memUSD("0.8")}}; !reflect.DeepEqual(ch, want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	st := memStatus(t, c, lv, before, ny)[0]
	if st.Spent != memUSD("0.8") || st.Reserved != 0 {
		t.Errorf("June 11: %+v", st)
	}
	st = memStatus(t, c, lv, after, ny)[0]
	if st.Spent != 0 || st.Reserved != memUSD("0.9") || !st.PeriodStart.Equal(time.Date(2025, 6, 12, 0, 0, 0, 0, ny)) ||
		!st.ResetAt.Equal(time.Date(2025, 6, 13, 0, 0, 0, 0, ny)) {
		t.Errorf("June 12: %+v", st)
	}

	// A request of the old day whose lease ran out, settled after its day
	// was forgotten: its charge is dropped (the ledger has it).
	old := memMustAdmit(t, c, Admission{Now: before, Location: ny, Levels: lv, WorstCase: memUSD("0.1"), Lease: time.Second})
	c.Sweep(ctx, after.Add(time.Minute))
	if ch := memMustSettle(t, c, old, Settlement{Now: after.Add(2 * time.Minute), Cost: memUSD("0.1")}); ch != nil {
		t.Errorf("changes %+v, want none", ch)
	}
	if st := memStatus(t, c, lv, after, ny)[0]; st.Spent != 0 {
		t.Errorf("June 12: %+v", st)
	}
}

func TestMemoryTokenCorrection(t *testing.T) {
	const W = time.Minute
	dev := memKey("dev")
	tokens := memPerMinute(1000, RateTokens)
	lv := []Level{{Scope: dev, RateLimits: []RateLimit{tokens}}}
	at := func(d time.Duration) time.Time { return memT0.Add(d) } // memT0 starts a window
	idx := floorDiv(unixNanos(memT0), int64(W))
	check := func(t *testing.T, c *MemoryCounters, now time.Time, curr, prev int64) {
		t.Helper()
		w, _ := c.testLimiter(dev, RateTokens, W)
		w = w.at(unixNanos(now))
		if w.Curr != curr || w.Prev != prev {
			t.Errorf("limiter at %v: curr %d prev %d; want %d, %d", now.Sub(memT0), w.Curr, w.Prev, curr, prev)
		}
	}

	t.Run("same window", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		tk := memMustAdmit(t, c, Admission{Now: at(10 * time.Second), Levels: lv, Tokens: 300})
		if want := []TokenCharge{{dev, tokens, idx, 300}}; !reflect.DeepEqual(tk.TokenCharges, want) {
			t.Errorf("charges %+v, want %+v", tk.TokenCharges, want)
		}
		if tk.Reservations != nil {
			t.Errorf("reservations %+v", tk.Reservations)
		}
		check(t, c, at(10*time.Second), 300, 0)
		memMustSettle(t, c, tk, Settlement{Now: at(20 * time.Second), Tokens: 120})
		check(t, c, at(20*time.Second), 120, 0)
		memMustSettle(t, c, tk, Settlement{Now: at(20 * time.Second), Tokens: 5000}) // twice: nothing
		check(t, c, at(20*time.Second), 120, 0)
	})
	t.Run("one window later", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		tk := memMustAdmit(t, c, Admission{Now: at(50 * time.Second), Levels: lv, Tokens: 300})
		memMustSettle(t, c, tk, Settlement{Now: at(70 * time.Second), Tokens: 500})
		check(t, c, at(70*time.Second), 0, 500)
	})
	t.Run("one window later, limiter already rolled", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		tk := memMustAdmit(t, c, Admission{Now: at(50 * time.Second), Levels: lv, Tokens: 300})
		memMustAdmit(t, c, Admission{Now: at(65 * time.Second), Levels: lv, Tokens: 10})
		memMustSettle(t, c, tk, Settlement{Now: at(70 * time.Second), Tokens: 100})
		check(t, c, at(70*time.Second), 10, 100)
	})
	t.Run("two windows later: dropped", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		tk := memMustAdmit(t, c, Admission{Now: at(50 * time.Second), Levels: lv, Tokens: 300})
		memMustAdmit(t, c, Admission{Now: at(125 * time.Second), Levels: lv, Tokens: 10})
		memMustSettle(t, c, tk, Settlement{Now: at(130 * time.Second), Tokens: 900})
		check(t, c, at(130*time.Second), 10, 0)
	})
	t.Run("never below zero", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		a := memMustAdmit(t, c, Admission{Now: at(50 * time.Second), Levels: lv, Tokens: 300})
		memMustAdmit(t, c, Admission{Now: at(65 * time.Second), Levels: lv, Tokens: 10})
		c.mu.Lock()
		c.limiters[limiterKey{dev, RateTokens, W}].Prev = 100 // as if a reload changed what counts
		c.mu.Unlock()
		memMustSettle(t, c, a, Settlement{Now: at(70 * time.Second), Tokens: 0})
		check(t, c, at(70*time.Second), 10, 0)
	})
	t.Run("limiter swept", func(t *testing.T) {
		c := NewMemoryCounters(nil)
		tk := memMustAdmit(t, c, Admission{Now: at(50 * time.Second), Levels: lv, Tokens: 300})
		c.Sweep(context.Background(), at(3*W))
		memMustSettle(t, c, tk, Settlement{Now: at(3 * W), Tokens: 900})
		if _, ok := c.testLimiter(dev, RateTokens, W); ok {
			t.Error("a settlement brought a swept limiter back")
		}
	})
}

// Two limits on the same counter (same scope, unit and window) both apply,
// but the request is counted once; likewise two budgets of the same period
// on one scope are charged once.
func TestMemoryDuplicateLimits(t *testing.T) {
	c := NewMemoryCounters(nil)
	dev := memKey("dev")
	lv := []Level{{Scope: dev,
		Budgets:    []Budget{memDaily("1"), memDaily("0.5")},
		RateLimits: []RateLimit{memPerMinute(1000, RateTokens), memPerMinute(500, RateTokens), memPerMinute(3, RateRequests), memPerMinute(2, RateRequests)}}}
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.2"), Tokens: 400})
	if len(tk.Reservations) != 2 || len(tk.TokenCharges) != 2 {
		t.Fatalf("ticket %+v", *tk)
	}
	if w, _ := c.testLimiter(dev, RateTokens, time.Minute); w.Curr != 400 {
		t.Errorf("tokens counted %d, want 400", w.Curr)
	}
	if w, _ := c.testLimiter(dev, RateRequests, time.Minute); w.Curr != 1 {
		t.Errorf("requests counted %d, want 1", w.Curr)
	}
	ch := memMustSettle(t, c, tk, Settlement{Now: memT0, Cost: memUSD("0.3"), Tokens: 100})
	want := []BudgetChange{{dev, memDaily("1"), 0, memUSD("0.3")}, {dev, memDaily("0.5"), 0, memUSD("0.3")}}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}
	memCheckBudget(t, c, dev, memDaily("0.5"), memT0, memUSD("0.3"), 0)
	if w, _ := c.testLimiter(dev, RateTokens, time.Minute); w.Curr != 100 {
		t.Errorf("tokens counted %d after settlement, want 100", w.Curr)
	}
	// The tighter budget governs: 0.2 left of 0.5.
	tk = memMustAdmit(t, c, Admission{Now: memT0, Levels: lv, WorstCase: memUSD("0.5")})
	if r := tk.Reservations; r[0].Partial || !r[1].Partial || r[1].Amount != memUSD("0.2") {
		t.Errorf("reservations %+v", r)
	}
	memMustSettle(t, c, tk, Settlement{Now: memT0})
	// The tighter request limit governs: 2 per minute.
	rej := memMustReject(t, c, Admission{Now: memT0, Levels: lv})
	if rej.Reason != RejectRateLimit || rej.RateLimit != memPerMinute(2, RateRequests) {
		t.Errorf("third request: %+v, want the 2-per-minute limit", *rej)
	}
}

func TestMemoryAdmitErrorsAndIDs(t *testing.T) {
	c := NewMemoryCounters(nil)
	if _, _, err := c.Admit(context.Background(), nil); err == nil {
		t.Error("nil admission accepted")
	}
	bad := []Level{{Scope: memKey("dev"), RateLimits: []RateLimit{{Limit: 10, Unit: RateRequests}}}}
	if _, _, err := c.Admit(context.Background(), &Admission{Now: memT0, Levels: bad}); err == nil {
		t.Error("rate limit without a window accepted")
	}
	ids := map[string]bool{}
	re := regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]+$`)
	for range 1000 {
		tk := memMustAdmit(t, c, Admission{Now: memT0})
		if ids[tk.ID] || !re.MatchString(tk.ID) {
			t.Fatalf("ticket ID %q: duplicate or malformed", tk.ID)
		}
		ids[tk.ID] = true
		memMustSettle(t, c, tk, Settlement{Now: memT0})
	}
	// A request with no limits holds nothing and leaves no lease.
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.leases)+len(c.expiring)+len(c.expired)+len(c.budgets)+len(c.limiters) != 0 {
		t.Errorf("state left: %d leases, %d budgets, %d limiters", len(c.leases), len(c.budgets), len(c.limiters))
	}
}

func TestMemoryManyBudgets(t *testing.T) {
	// More budgets and token limits than a ticket has inline room for.
	c := NewMemoryCounters(nil)
	var levels []Level
	for i := range 4 {
		levels = append(levels, Level{Scope: memKey(fmt.Sprint("k", i)),
			Budgets:    []Budget{memDaily("1"), {Limit: memUSD("2"), Period: PeriodMonth}},
			RateLimits: []RateLimit{memPerMinute(1000, RateTokens)}})
	}
	tk := memMustAdmit(t, c, Admission{Now: memT0, Levels: levels, WorstCase: memUSD("0.1"), Tokens: 10})
	if len(tk.Reservations) != 8 || len(tk.TokenCharges) != 4 {
		t.Fatalf("ticket %+v", *tk)
	}
	ch := memMustSettle(t, c, tk, Settlement{Now: memT0, Cost: memUSD("0.05"), Tokens: 20})
	if len(ch) != 8 {
		t.Fatalf("changes %+v", ch)
	}
	for _, lv := range levels {
		memCheckBudget(t, c, lv.Scope, lv.Budgets[1], memT0, memUSD("0.05"), 0)
		if w, _ := c.testLimiter(lv.Scope, RateTokens, time.Minute); w.Curr != 20 {
			t.Errorf("%s tokens %d", lv.Scope, w.Curr)
		}
	}
}

// ---------------------------------------------------------------------------
// The bound, under concurrency.

// TestMemoryBudgetBound runs many concurrent requests against shared
// budgets and checks the reservation model's promise: what is charged never
// exceeds a budget by more than one request's worst case, and never exceeds
// it at all when no request costs more than it reserved.
func TestMemoryBudgetBound(t *testing.T) {
	for _, overrun := range []bool{false, true} {
		t.Run(fmt.Sprintf("overrun=%v", overrun), func(t *testing.T) {
			testBudgetBound(t, overrun)
		})
	}
}

func testBudgetBound(t *testing.T, overrun bool) {
	const (
		workers  = 200
		keys     = 10
		attempts = 25
	)
	c := NewMemoryCounters(nil)
	ctx := context.Background()
	keyBudget := memDaily("1.5")
	teamBudget := memDaily("10")
	custBudget := Budget{Limit: memUSD("8"), Period: PeriodTotal}
	maxWorst := memUSD("0.25")
	levelsOf := func(k int) []Level {
		return []Level{
			{Scope: memKey(fmt.Sprint("k", k)), Budgets: []Budget{keyBudget}},
			{Scope: memTeam("t"), Budgets: []Budget{teamBudget}},
			{Scope: memCust("c"), Budgets: []Budget{custBudget}},
		}
	}

	var (
		mu        sync.Mutex
		charged   = map[Scope]Money{}
		admitted  int
		partials  int
		overshoot bool
	)
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // status, sweeps and renewals race with the requests
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Status(ctx, levelsOf(i%keys), memT0, time.UTC)
			c.Sweep(ctx, memT0) // nothing has expired: leases never end here
			runtime.Gosched()
		}
	})

	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			levels := levelsOf(g % keys)
			for range attempts {
				worst := 1 + Money(rng.Int64N(int64(maxWorst)))
				tk, rej, err := c.Admit(ctx, &Admission{Now: memT0, Levels: levels, WorstCase: worst, Lease: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				if rej != nil {
					runtime.Gosched()
					continue
				}
				c.Renew(ctx, []*Ticket{tk}, memT0, time.Hour)
				runtime.Gosched()
				held := worst
				part := false
				for _, r := range tk.Reservations {
					held = min(held, r.Amount)
					part = part || r.Partial
				}
				var cost Money
				switch {
				case overrun && rng.IntN(2) == 0:
					cost = worst // as much as it can
				case overrun:
					cost = Money(rng.Int64N(int64(worst) + 1))
				default:
					cost = Money(rng.Int64N(int64(held) + 1))
				}
				ch, err := c.Settle(ctx, tk, Settlement{Now: memT0, Cost: cost})
				if err != nil || len(ch) != 3 {
					t.Errorf("Settle: %v, %+v", err, ch)
					return
				}
				mu.Lock()
				admitted++
				if part {
					partials++
				}
				overshoot = overshoot || cost > held
				for _, r := range tk.Reservations {
					charged[r.Scope] += cost
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()

	if partials == 0 {
		t.Error("no partial reservation happened: the test is not exercising them")
	}
	if overrun && !overshoot {
		t.Error("no request cost more than it held")
	}
	t.Logf("%d admitted of %d, %d partial", admitted, workers*attempts, partials)
	check := func(s Scope, b Budget) {
		st := memStatus(t, c, []Level{{Scope: s, Budgets: []Budget{b}}}, memT0, time.UTC)[0]
		if st.Spent != charged[s] || st.Reserved != 0 {
			t.Errorf("%s: spent %s reserved %s; charged %s", s, st.Spent, st.Reserved, charged[s])
		}
		limit := b.Limit
		if overrun {
			limit += maxWorst
		}
		if st.Spent > limit {
			t.Errorf("%s spent %s, beyond %s", s, st.Spent, FormatUSD(limit))
		}
	}
	for k := range keys {
		check(memKey(fmt.Sprint("k", k)), keyBudget)
	}
	check(memTeam("t"), teamBudget)
	check(memCust("c"), custBudget)
	// Somebody must have hit the customer budget, or the bound is vacuous.
	if charged[memCust("c")] < custBudget.Limit-maxWorst {
		t.Errorf("customer charged only %s of %s", charged[memCust("c")], custBudget)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.leases)+len(c.expiring)+len(c.expired) != 0 {
		t.Errorf("%d leases left", len(c.leases))
	}
	for k, st := range c.budgets {
		if st.partials != 0 || st.reserved != 0 {
			t.Errorf("%+v: %+v", k, *st)
		}
	}
}

// ---------------------------------------------------------------------------
// Prepare and restoring spend.

func TestMemoryPrepareRestore(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	now := time.Date(2025, 6, 11, 1, 30, 0, 0, berlin)
	levels := []Level{
		{Scope: memKey("alice"), Budgets: []Budget{memDaily("10"), {Limit: memUSD("100"), Period: PeriodMonth}}},
		{Scope: memTeam("platform"), Budgets: []Budget{{Limit: memUSD("100"), Period: PeriodWeek}}},
		{Scope: memCust("acme"), Budgets: []Budget{{Limit: memUSD("1000"), Period: PeriodTotal}}},
	}
	var c *MemoryCounters
	var mu sync.Mutex
	calls := map[string]time.Time{}
	fail := map[Scope]bool{memTeam("platform"): true}
	restore := func(ctx context.Context, s Scope, since time.Time) (Money, error) {
		// Restores run outside the lock: reading the counters must not
		// deadlock.
		if _, err := c.Status(ctx, levels, now, berlin); err != nil {
			return 0, err
		}
		mu.Lock()
		defer mu.Unlock()
		k := fmt.Sprint(s, " ", since.Format(time.RFC3339))
		calls[k] = since
		if fail[s] {
			return 0, errors.New("ledger unavailable")
		}
		return Money(len(k)) * Dollar / 100, nil
	}
	c = NewMemoryCounters(restore)
	ctx := context.Background()
	err := c.Prepare(ctx, levels, now, berlin)
	if err == nil || !strings.Contains(err.Error(), "team platform") || !strings.Contains(err.Error(), "ledger unavailable") {
		t.Errorf("Prepare: %v, want the team's restore error", err)
	}
	wantCalls := []string{
		"key alice 2025-06-11T00:00:00+02:00",
		"key alice 2025-06-01T00:00:00+02:00",
		"team platform 2025-06-09T00:00:00+02:00",
		"customer acme 1970-01-01T00:00:00Z",
	}
	if len(calls) != len(wantCalls) {
		t.Errorf("restore calls %v, want %v", calls, wantCalls)
	}
	for _, k := range wantCalls {
		if _, ok := calls[k]; !ok {
			t.Errorf("restore not called for %s (calls %v)", k, calls)
		}
	}
	st := memStatus(t, c, levels, now, berlin)
	for i, k := range []string{wantCalls[0], wantCalls[1], "", wantCalls[3]} {
		want := Money(len(k)) * Dollar / 100
		if st[i].Spent != want || st[i].Reserved != 0 {
			t.Errorf("%s %s: spent %s, want %s", st[i].Scope, st[i].Budget, st[i].Spent, want)
		}
	}
	// Only the failed counter is restored again.
	clear(calls)
	fail = nil
	if err := c.Prepare(ctx, levels, now, berlin); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Errorf("second Prepare restored %v, want the team's week only", calls)
	}
	if st := memStatus(t, c, levels, now, berlin); st[2].Spent != Money(len(wantCalls[2]))*Dollar/100 {
		t.Errorf("team: %+v", st[2])
	}
	// Admit does no I/O: a period the counters have not seen starts at 0.
	clear(calls)
	tomorrow := now.Add(24 * time.Hour)
	tk := memMustAdmit(t, c, Admission{Now: tomorrow, Location: berlin, Levels: levels, WorstCase: memUSD("1")})
	if len(calls) != 0 || tk.Reservations[0].Remaining != memUSD("10") {
		t.Errorf("Admit restored %v; reservations %+v", calls, tk.Reservations)
	}
	// …and Prepare does not overwrite a counter Admit created.
	if err := c.Prepare(ctx, levels, tomorrow, berlin); err != nil || len(calls) != 0 {
		t.Errorf("Prepare after Admit: %v, calls %v", err, calls)
	}
	// A cancelled context restores nothing and creates nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	other := memOneLevel(memKey("bob"), memDaily("1"))
	if err := c.Prepare(cctx, other, now, berlin); !errors.Is(err, context.Canceled) {
		t.Errorf("Prepare with a cancelled context: %v", err)
	}
	c.mu.Lock()
	_, exists := c.budgets[budgetKey{memKey("bob"), PeriodDay, unixNanos(time.Date(2025, 6, 11, 0, 0, 0, 0, berlin))}]
	c.mu.Unlock()
	if exists {
		t.Error("cancelled Prepare created a counter")
	}
	// Without a restore function counters start at 0.
	z := NewMemoryCounters(nil)
	if err := z.Prepare(ctx, levels, now, berlin); err != nil {
		t.Fatal(err)
	}
	z.mu.Lock()
	n := len(z.budgets)
	z.mu.Unlock()
	if n != 4 {
		t.Errorf("%d counters prepared, want 4", n)
	}
}

// memSpendLedger is what both stores offer to restore from.
type memSpendLedger interface {
	Store
	SpendSince(Scope, time.Time) (Totals, error)
}

// memLedgerRestore flushes the ledger and sums its spend, as the module does.
func memLedgerRestore(l memSpendLedger) RestoreFunc {
	var once sync.Once
	var flushErr error
	return func(ctx context.Context, s Scope, since time.Time) (Money, error) {
		once.Do(func() { flushErr = l.Flush(ctx) })
		if flushErr != nil {
			return 0, flushErr
		}
		t, err := l.SpendSince(s, since)
		return t.Cost, err
	}
}

func TestMemoryPrepareFromLedger(t *testing.T) {
	// Kolkata is +05:30: its days begin at 18:30 UTC, on a 15-minute bucket
	// boundary.
	kolkata := mustLoad(t, "Asia/Kolkata")
	now := time.Date(2025, 6, 11, 15, 0, 0, 0, kolkata) // a Wednesday
	dayStart := time.Date(2025, 6, 11, 0, 0, 0, 0, kolkata)
	records := []struct {
		at   time.Time
		cost string
	}{
		{dayStart, "1"},                                         // today
		{now.Add(-time.Nanosecond), "0.5"},                      // today
		{dayStart.Add(-time.Nanosecond), "2"},                   // yesterday, this week
		{time.Date(2025, 6, 9, 0, 0, 0, 0, kolkata), "4"},       // Monday
		{time.Date(2025, 6, 8, 23, 59, 59, 0, kolkata), "8"},    // last week, this month
		{time.Date(2025, 5, 31, 23, 59, 59, 0, kolkata), "16"},  // last month
		{time.Date(2024, 1, 1, 0, 0, 0, 0, kolkata), "32"},      // long ago
		{time.Date(2025, 6, 11, 23, 0, 0, 0, kolkata), "10000"}, // the future (a clock ahead)
	}
	levels := []Level{
		{Scope: memKey("alice"), Budgets: []Budget{memDaily("100"), {Limit: memUSD("100"), Period: PeriodMonth}}},
		{Scope: memTeam("platform"), Budgets: []Budget{{Limit: memUSD("100"), Period: PeriodWeek}}},
		{Scope: memCust("acme"), Budgets: []Budget{{Limit: memUSD("100000"), Period: PeriodTotal}, {Limit: memUSD("1"), Period: PeriodHour}}},
	}
	// The future record counts: SpendSince sums everything from the start.
	want := []string{"10001.5", "10015.5", "10007.5", "10063.5", "10000"}

	sqlite := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	memory := NewMemoryStore()
	for name, store := range map[string]memSpendLedger{"sqlite": sqlite, "memory": memory} {
		t.Run(name, func(t *testing.T) {
			for _, r := range records {
				store.Record(&Record{Time: r.at, Key: "alice", Team: "platform", Customer: "acme",
					Cost: memUSD(r.cost), Usage: llm.Usage{InputTokens: 1}})
			}
			store.Record(&Record{Time: now, Key: "bob", Team: "data", Customer: "acme", Cost: memUSD("0.25")})
			c := NewMemoryCounters(memLedgerRestore(store))
			if err := c.Prepare(context.Background(), levels, now, kolkata); err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), want...)
			want[3] = "10063.75" // bob's request counts for the customer
			want[4] = "10000.25"
			for i, st := range memStatus(t, c, levels, now, kolkata) {
				if st.Spent != memUSD(want[i]) {
					t.Errorf("%s %s: restored %s, want %s", st.Scope, st.Budget, st.Spent, want[i])
				}
			}
		})
	}
}

func TestMemoryStoreSpendSince(t *testing.T) {
	// The same table as TestSQLiteSpendSince.
	s := NewMemoryStore()
	b := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
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
	put(time.Unix(-1, 0), "e", 1)
	put(time.Unix(0, 0), "e", 10)
	put(time.Unix(899, 0), "e", 100)
	put(time.Unix(900, 0), "e", 1000)
	tests := []struct {
		scope Scope
		since time.Time
		want  Money
	}{
		{Scope{ScopeKey, "k"}, time.Time{}, 11111},
		{Scope{ScopeKey, "k"}, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 11111},
		{Scope{ScopeKey, "k"}, b.Add(-1), 11111},
		{Scope{ScopeKey, "k"}, b, 11110},
		{Scope{ScopeKey, "k"}, b.Add(1), 11110},
		{Scope{ScopeKey, "k"}, b.Add(q - 1), 11110},
		{Scope{ScopeKey, "k"}, b.Add(q), 11000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour - 1), 10000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour), 10000},
		{Scope{ScopeKey, "k"}, b.Add(time.Hour + q), 0},
		{Scope{ScopeKey, "k"}, b.In(mustLoad(t, "Asia/Kolkata")), 11110},
		{Scope{ScopeTeam, "team-k"}, b.Add(q), 11000},
		{Scope{ScopeCustomer, "cust"}, b, 11110},
		{Scope{ScopeCustomer, "cust"}, time.Time{}, 11111 + 1111},
		{Scope{ScopeKey, "nobody"}, time.Time{}, 0},
		{Scope{ScopeTeam, "k"}, time.Time{}, 0},
		{Scope{ScopeKey, "e"}, time.Time{}, 1111},
		{Scope{ScopeKey, "e"}, time.Unix(-1, 0), 1111},
		{Scope{ScopeKey, "e"}, time.Unix(0, 0), 1110},
		{Scope{ScopeKey, "e"}, time.Unix(899, 0), 1110},
		{Scope{ScopeKey, "e"}, time.Unix(900, 0), 1000},
		{Scope{ScopeKey, ""}, time.Time{}, 0},
	}
	for _, tc := range tests {
		got, err := s.SpendSince(tc.scope, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		if got.Cost != tc.want || got.Usage.InputTokens != int64(tc.want) || got.Requests != got.Usage.OutputTokens {
			t.Errorf("%s since %s: %+v; want cost %d", tc.scope, tc.since.Format(time.RFC3339Nano), got, tc.want)
		}
	}
}

// TestMemoryStoreSpendSinceMatchesSQLite compares both stores on random
// records.
func TestMemoryStoreSpendSinceMatchesSQLite(t *testing.T) {
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	span := 60 * 24 * time.Hour
	recs := randomRecords(3, 3000, from, span)
	sq := openSQLite(t, filepath.Join(t.TempDir(), "u.db"), SQLiteOptions{})
	mem := NewMemoryStore()
	for i := range recs {
		sq.Record(&recs[i])
		mem.Record(&recs[i])
	}
	flush(t, sq)
	rng := rand.New(rand.NewPCG(5, 6))
	scopes := []Scope{memKey("alice"), memKey("bob"), memTeam("platform"), memTeam("ml"), memCust("acme"), memCust("globex"), memKey("")}
	for range 200 {
		s := scopes[rng.IntN(len(scopes))]
		since := from.Add(time.Duration(rng.Int64N(int64(span + 48*time.Hour)))).Add(-24 * time.Hour)
		a, err1 := sq.SpendSince(s, since)
		b, err2 := mem.SpendSince(s, since)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("%s since %s: sqlite %+v (%v), memory %+v (%v)", s, since, a, err1, b, err2)
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmarks.

func memBenchLevels(key string) []Level {
	big := Budget{Limit: 1 << 60, Period: PeriodDay}
	return []Level{
		{Scope: memKey(key), Budgets: []Budget{big},
			RateLimits: []RateLimit{memPerMinute(1<<50, RateRequests), memPerMinute(1<<60, RateTokens)}},
		{Scope: memTeam("platform"), Budgets: []Budget{big},
			RateLimits: []RateLimit{memPerMinute(1<<50, RateRequests), memPerMinute(1<<60, RateTokens)}},
		{Scope: memCust("acme"), Budgets: []Budget{{Limit: 1 << 60, Period: PeriodMonth}},
			RateLimits: []RateLimit{memPerMinute(1<<50, RateRequests), memPerMinute(1<<60, RateTokens)}},
	}
}

func memBenchAdmitSettle(b *testing.B, c *MemoryCounters, levels []Level, now time.Time) {
	ctx := context.Background()
	a := Admission{Now: now, Location: time.UTC, Levels: levels, WorstCase: memUSD("0.30"), Tokens: 4000, Lease: time.Minute}
	tk, rej, err := c.Admit(ctx, &a)
	if err != nil || rej != nil {
		b.Fatalf("Admit: %v, %+v", err, rej)
	}
	if _, err := c.Settle(ctx, tk, Settlement{Now: now, Cost: 1, Tokens: 3500}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemoryAdmitSettle is one request's admission and settlement on
// a key, a team and a customer, each with a budget, a request limit and a
// token limit.
func BenchmarkMemoryAdmitSettle(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		c := NewMemoryCounters(nil)
		levels := memBenchLevels("alice")
		b.ReportAllocs()
		for b.Loop() {
			memBenchAdmitSettle(b, c, levels, memT0)
		}
	})
	b.Run("parallel-one-key", func(b *testing.B) {
		c := NewMemoryCounters(nil)
		levels := memBenchLevels("alice")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				memBenchAdmitSettle(b, c, levels, memT0)
			}
		})
	})
	b.Run("parallel-many-keys", func(b *testing.B) {
		c := NewMemoryCounters(nil)
		var mu sync.Mutex
		n := 0
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			levels := memBenchLevels(fmt.Sprint("key-", n))
			n++
			mu.Unlock()
			for pb.Next() {
				memBenchAdmitSettle(b, c, levels, memT0)
			}
		})
	})
}
