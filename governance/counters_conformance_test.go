package governance

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The conformance suite: every Counters implementation (memory, Redis) must
// behave exactly as described in admission.go, to the millisecond.

// confT0 is window-aligned for seconds, minutes and hours.
var confT0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func confUSD(s string) Money { return mustMoney(s) }

type conformance struct {
	t   *testing.T
	c   Counters
	ctx context.Context
}

func (cf *conformance) admit(now time.Time, levels []Level, worst Money, tokens int64, lease time.Duration) (*Ticket, *Rejection) {
	cf.t.Helper()
	tk, rej, err := cf.c.Admit(cf.ctx, &Admission{Now: now, Location: time.UTC, Levels: levels, WorstCase: worst, Tokens: tokens, Lease: lease})
	if err != nil {
		cf.t.Fatalf("Admit: %v", err)
	}
	if (tk == nil) == (rej == nil) {
		cf.t.Fatalf("Admit returned ticket %v and rejection %v", tk, rej)
	}
	return tk, rej
}

func (cf *conformance) mustAdmit(now time.Time, levels []Level, worst Money, tokens int64) *Ticket {
	cf.t.Helper()
	tk, rej := cf.admit(now, levels, worst, tokens, time.Hour)
	if rej != nil {
		cf.t.Fatalf("rejected: %+v", rej)
	}
	return tk
}

func (cf *conformance) settle(tk *Ticket, now time.Time, cost Money, tokens int64) []BudgetChange {
	cf.t.Helper()
	ch, err := cf.c.Settle(cf.ctx, tk, Settlement{Now: now, Cost: cost, Tokens: tokens})
	if err != nil {
		cf.t.Fatalf("Settle: %v", err)
	}
	return ch
}

func (cf *conformance) status(now time.Time, levels []Level) []BudgetStatus {
	cf.t.Helper()
	st, err := cf.c.Status(cf.ctx, levels, now, time.UTC)
	if err != nil {
		cf.t.Fatalf("Status: %v", err)
	}
	return st
}

func (cf *conformance) wantStatus(now time.Time, levels []Level, i int, spent, reserved Money) {
	cf.t.Helper()
	st := cf.status(now, levels)
	if len(st) <= i {
		cf.t.Fatalf("status has %d budgets", len(st))
	}
	if st[i].Spent != spent || st[i].Reserved != reserved {
		cf.t.Fatalf("budget %d (%s %s): spent %s reserved %s, want spent %s reserved %s",
			i, st[i].Scope, st[i].Budget, st[i].Spent, st[i].Reserved, spent, reserved)
	}
}

func confKeyLevel(name string, budgets []Budget, limits ...RateLimit) Level {
	return Level{Scope: Scope{ScopeKey, name}, Budgets: budgets, RateLimits: limits}
}

// runCountersConformance runs the shared behaviour tests; newCounters must
// return a fresh, empty Counters each call.
func runCountersConformance(t *testing.T, newCounters func(t *testing.T) Counters) {
	setup := func(t *testing.T) *conformance {
		return &conformance{t: t, c: newCounters(t), ctx: context.Background()}
	}
	daily := func(limit string) []Budget { return []Budget{{Limit: confUSD(limit), Period: PeriodDay}} }

	t.Run("full reservation then settle", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("full", daily("5"))}
		tk := cf.mustAdmit(confT0, lv, confUSD("0.50"), 0)
		if len(tk.Reservations) != 1 || tk.Reservations[0].Amount != confUSD("0.50") || tk.Reservations[0].Partial ||
			tk.Reservations[0].Remaining != confUSD("5") || !tk.Reservations[0].PeriodStart.Equal(confT0.Truncate(24*time.Hour)) {
			t.Fatalf("reservation %+v", tk.Reservations)
		}
		cf.wantStatus(confT0, lv, 0, 0, confUSD("0.50"))
		ch := cf.settle(tk, confT0.Add(time.Second), confUSD("0.07"), 0)
		if len(ch) != 1 || ch[0].Before != 0 || ch[0].After != confUSD("0.07") || ch[0].Scope.Name != "full" {
			t.Fatalf("changes %+v", ch)
		}
		cf.wantStatus(confT0, lv, 0, confUSD("0.07"), 0)
		// Settling twice changes nothing.
		if ch := cf.settle(tk, confT0.Add(2*time.Second), confUSD("0.07"), 0); ch != nil {
			t.Fatalf("second settle returned %+v", ch)
		}
		cf.wantStatus(confT0, lv, 0, confUSD("0.07"), 0)
		st := cf.status(confT0, lv)[0]
		if !st.PeriodStart.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) || !st.ResetAt.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("status period %v – %v", st.PeriodStart, st.ResetAt)
		}
	})

	t.Run("small request with little left", func(t *testing.T) {
		// A developer with $0.30 left can still make a $0.07 request.
		cf := setup(t)
		lv := []Level{confKeyLevel("little", daily("5"))}
		cf.settle(cf.mustAdmit(confT0, lv, confUSD("4.70"), 0), confT0, confUSD("4.70"), 0)
		tk := cf.mustAdmit(confT0, lv, confUSD("0.07"), 0)
		if tk.Reservations[0].Partial || tk.Reservations[0].Remaining != confUSD("0.30") {
			t.Fatalf("reservation %+v", tk.Reservations[0])
		}
		if m, ok := tk.TightestRemaining(); !ok || m != confUSD("0.30") {
			t.Fatalf("tightest %s %v", m, ok)
		}
	})

	t.Run("partial reservations", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("partial", daily("1"))}
		a := cf.mustAdmit(confT0, lv, confUSD("0.50"), 0)
		b := cf.mustAdmit(confT0, lv, confUSD("0.70"), 0) // 0.50 left: partial
		if !b.Reservations[0].Partial || b.Reservations[0].Amount != confUSD("0.50") {
			t.Fatalf("b = %+v", b.Reservations[0])
		}
		cf.wantStatus(confT0, lv, 0, 0, confUSD("1"))
		// No headroom left at all: rejected, not held by a partial.
		_, rej := cf.admit(confT0, lv, confUSD("0.01"), 0, time.Hour)
		if rej == nil || rej.Reason != RejectBudget || rej.HeldByPartial || rej.Reserved != confUSD("1") || rej.Spent != 0 ||
			rej.Scope != (Scope{ScopeKey, "partial"}) || rej.Budget != daily("1")[0] ||
			!rej.ResetAt.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("rejection %+v", rej)
		}
		// a costs less than reserved: 0.40 headroom reappears, but b's partial
		// is still in flight, so a request that does not fit is refused…
		cf.settle(a, confT0, confUSD("0.10"), 0)
		cf.wantStatus(confT0, lv, 0, confUSD("0.10"), confUSD("0.50"))
		_, rej = cf.admit(confT0, lv, confUSD("0.60"), 0, time.Hour)
		if rej == nil || !rej.HeldByPartial {
			t.Fatalf("second partial admitted or wrong rejection: %+v", rej)
		}
		// …while one that fits is admitted in full.
		c := cf.mustAdmit(confT0, lv, confUSD("0.30"), 0)
		if c.Reservations[0].Partial {
			t.Fatal("c should be full")
		}
		// Once b settles, a new partial is possible again.
		cf.settle(b, confT0, confUSD("0.55"), 0) // b cost more than its partial reservation
		cf.wantStatus(confT0, lv, 0, confUSD("0.65"), confUSD("0.30"))
		d := cf.mustAdmit(confT0, lv, confUSD("0.50"), 0)
		if !d.Reservations[0].Partial || d.Reservations[0].Amount != confUSD("0.05") {
			t.Fatalf("d = %+v", d.Reservations[0])
		}
		cf.settle(c, confT0, confUSD("0.30"), 0)
		cf.settle(d, confT0, confUSD("0.05"), 0)
		cf.wantStatus(confT0, lv, 0, confUSD("1"), 0)
		_, rej = cf.admit(confT0, lv, 0, 0, time.Hour) // a spent budget stops even free requests
		if rej == nil || rej.Spent != confUSD("1") {
			t.Fatalf("spent budget admitted: %+v", rej)
		}
	})

	t.Run("held refusals say when to retry", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("held", daily("1"))}
		// a holds half the budget for an hour, b the other half (a partial)
		// on a lease that runs out in 2 s.
		tk := func(worst string, lease time.Duration) *Ticket {
			tk, rej := cf.admit(confT0, lv, confUSD(worst), 0, lease)
			if rej != nil {
				t.Fatalf("rejected: %+v", rej)
			}
			return tk
		}
		a := tk("0.50", time.Hour)
		b := tk("0.70", 2*time.Second)
		// Nothing left that is not held: retry when b's lease would run out.
		_, rej := cf.admit(confT0, lv, confUSD("0.01"), 0, time.Hour)
		if !rej.Held() || rej.RetryAfter != 2*time.Second {
			t.Fatalf("no headroom, held: %+v", rej)
		}
		_, rej = cf.admit(confT0.Add(1500*time.Millisecond), lv, confUSD("0.01"), 0, time.Hour)
		if !rej.Held() || rej.RetryAfter != 500*time.Millisecond {
			t.Fatalf("half a second later: %+v", rej)
		}
		// a settles cheaply: headroom is back but b's partial holds the rest
		// of it for a request that does not fit.
		cf.settle(a, confT0, confUSD("0.10"), 0)
		_, rej = cf.admit(confT0, lv, confUSD("0.60"), 0, time.Hour)
		if !rej.HeldByPartial || !rej.Held() || rej.RetryAfter != 2*time.Second {
			t.Fatalf("held by a partial: %+v", rej)
		}
		// Holders whose leases last longer: retry after HeldRetryAfter.
		cf.settle(b, confT0, confUSD("0.10"), 0)
		tk("0.80", time.Hour)
		_, rej = cf.admit(confT0, lv, confUSD("0.50"), 0, time.Hour)
		if !rej.Held() || rej.RetryAfter != HeldRetryAfter {
			t.Fatalf("long leases: %+v", rej)
		}
		// A spent budget is not held: no retry.
		lv2 := []Level{confKeyLevel("spent", daily("1"))}
		cf.settle(cf.mustAdmit(confT0, lv2, confUSD("1"), 0), confT0, confUSD("1"), 0)
		_, rej = cf.admit(confT0, lv2, confUSD("0.01"), 0, time.Hour)
		if rej.Held() || rej.RetryAfter != 0 {
			t.Fatalf("spent budget: %+v", rej)
		}
	})

	t.Run("levels are all or nothing", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{
			confKeyLevel("k1", daily("10")),
			{Scope: Scope{ScopeTeam, "t1"}, Budgets: []Budget{{Limit: confUSD("1"), Period: PeriodMonth}}},
			{Scope: Scope{ScopeCustomer, "c1"}, Budgets: []Budget{{Limit: confUSD("100"), Period: PeriodTotal}}},
		}
		cf.settle(cf.mustAdmit(confT0, lv, confUSD("0.95"), 0), confT0, confUSD("0.95"), 0)
		tk := cf.mustAdmit(confT0, lv, confUSD("0.10"), 0)
		if len(tk.Reservations) != 3 || tk.Reservations[0].Partial || !tk.Reservations[1].Partial || tk.Reservations[1].Amount != confUSD("0.05") ||
			tk.Reservations[2].Partial || tk.Reservations[2].Amount != confUSD("0.10") {
			t.Fatalf("reservations %+v", tk.Reservations)
		}
		if m, _ := tk.TightestRemaining(); m != confUSD("0.05") {
			t.Fatalf("tightest %s", m)
		}
		_, rej := cf.admit(confT0, lv, confUSD("0.10"), 0, time.Hour)
		if rej == nil || rej.Scope != (Scope{ScopeTeam, "t1"}) || rej.Budget.Period != PeriodMonth ||
			!rej.ResetAt.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("rejection %+v", rej)
		}
		// The refused request left the key's and customer's counters alone.
		cf.wantStatus(confT0, lv, 0, confUSD("0.95"), confUSD("0.10"))
		cf.wantStatus(confT0, lv, 2, confUSD("0.95"), confUSD("0.10"))
		st := cf.status(confT0, lv)
		if !st[2].ResetAt.IsZero() {
			t.Fatalf("total budget reset %v", st[2].ResetAt)
		}
		ch := cf.settle(tk, confT0, confUSD("0.08"), 0)
		if len(ch) != 3 || ch[1].Before != confUSD("0.95") || ch[1].After != confUSD("1.03") {
			t.Fatalf("changes %+v", ch)
		}
	})

	t.Run("request rate limit", func(t *testing.T) {
		cf := setup(t)
		rl := RateLimit{Limit: 2, Unit: RateRequests, Window: time.Minute}
		lv := []Level{confKeyLevel("rl", nil, rl)}
		cf.mustAdmit(confT0, lv, 0, 0)
		cf.mustAdmit(confT0.Add(10*time.Second), lv, 0, 0)
		_, rej := cf.admit(confT0.Add(20*time.Second), lv, 0, 0, time.Hour)
		// curr=2 in this window: wait for the next one, where the 2 weigh
		// 2×(60−s)/60 ≤ 1 → s = 30 s: 40 s + 30 s.
		if rej == nil || rej.Reason != RejectRateLimit || rej.RetryAfter != 70*time.Second || rej.Remaining != 0 ||
			rej.RateLimit != rl || !rej.ResetAt.Equal(confT0.Add(90*time.Second)) {
			t.Fatalf("rejection %+v", rej)
		}
		_, rej = cf.admit(confT0.Add(90*time.Second-time.Millisecond), lv, 0, 0, time.Hour)
		if rej == nil {
			t.Fatal("admitted 1 ms early")
		}
		cf.mustAdmit(confT0.Add(90*time.Second), lv, 0, 0)
		// Now prev=2, curr=1 at e=30 s: est = 2; limit−curr−1 = 0 ≥ 0 →
		// e' = 60×(1−0/2) = 60 s: wait to the end of the window (30 s).
		_, rej = cf.admit(confT0.Add(90*time.Second), lv, 0, 0, time.Hour)
		if rej == nil || rej.RetryAfter != 30*time.Second {
			t.Fatalf("rejection %+v", rej)
		}
		// Two idle windows later everything is forgotten.
		cf.mustAdmit(confT0.Add(5*time.Minute), lv, 0, 0)
		cf.mustAdmit(confT0.Add(5*time.Minute), lv, 0, 0)
	})

	t.Run("token rate limit and correction", func(t *testing.T) {
		cf := setup(t)
		rl := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
		lv := []Level{confKeyLevel("tok", nil, rl)}
		a := cf.mustAdmit(confT0, lv, 0, 800)
		if len(a.TokenCharges) != 1 || a.TokenCharges[0].Tokens != 800 || a.TokenCharges[0].Limit != rl {
			t.Fatalf("charges %+v", a.TokenCharges)
		}
		b := cf.mustAdmit(confT0, lv, 0, 800) // est 800 < 1000: admitted, overshooting
		_, rej := cf.admit(confT0.Add(15*time.Second), lv, 0, 800, time.Hour)
		// curr=1600 ≥ 1000: next window, need 1600×(60−s)/60 < 1000 → s > 22.5 s;
		// wait = 45 s + 22.5 s + 1 ms.
		if rej == nil || rej.Reason != RejectRateLimit || rej.RetryAfter != 67*time.Second+501*time.Millisecond {
			t.Fatalf("rejection %+v", rej)
		}
		// Settlement corrects the estimates: 800 → 100 and 800 → 50.
		cf.settle(a, confT0.Add(16*time.Second), 0, 100)
		cf.settle(b, confT0.Add(16*time.Second), 0, 50)
		c := cf.mustAdmit(confT0.Add(17*time.Second), lv, 0, 800) // est 150
		// c settles in the next window: its correction lands in prev.
		cf.settle(c, confT0.Add(61*time.Second), 0, 0) // curr 950 → prev 150 after roll
		// At e=1 s of window 2: est = 0 + 150×59/60 = 147.5 → 852 more fit
		// only as estimate < limit: admitted.
		cf.mustAdmit(confT0.Add(61*time.Second), lv, 0, 5000)
		_, rej = cf.admit(confT0.Add(61*time.Second), lv, 0, 1, time.Hour)
		if rej == nil || rej.Remaining != 0 {
			t.Fatalf("after overshoot: %+v", rej)
		}
	})

	t.Run("budgets refuse before rate limits", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("both", daily("0.01"), RateLimit{Limit: 1, Unit: RateRequests, Window: time.Hour})}
		cf.settle(cf.mustAdmit(confT0, lv, confUSD("0.01"), 0), confT0, confUSD("0.01"), 0)
		_, rej := cf.admit(confT0, lv, confUSD("0.01"), 0, time.Hour)
		if rej == nil || rej.Reason != RejectBudget {
			t.Fatalf("rejection %+v", rej)
		}
	})

	t.Run("leases expire and renew", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("lease", daily("1"))}
		dead, _ := cf.admit(confT0, lv, confUSD("0.60"), 0, time.Second)
		alive, _ := cf.admit(confT0, lv, confUSD("0.40"), 0, time.Second)
		if dead == nil || alive == nil {
			t.Fatal("not admitted")
		}
		confMust(t, cf.c.Renew(cf.ctx, []*Ticket{alive}, confT0.Add(900*time.Millisecond), time.Second))
		confMust(t, cf.c.Sweep(cf.ctx, confT0.Add(1500*time.Millisecond)))
		// dead's lease ran out; alive's was renewed to 1.9 s.
		cf.wantStatus(confT0, lv, 0, 0, confUSD("0.40"))
		confMust(t, cf.c.Sweep(cf.ctx, confT0.Add(2*time.Second)))
		cf.wantStatus(confT0, lv, 0, 0, 0)
		// Late settlements charge exactly once and release nothing twice.
		cf.settle(dead, confT0.Add(3*time.Second), confUSD("0.20"), 0)
		cf.settle(alive, confT0.Add(3*time.Second), confUSD("0.10"), 0)
		cf.settle(dead, confT0.Add(4*time.Second), confUSD("0.20"), 0)
		cf.wantStatus(confT0, lv, 0, confUSD("0.30"), 0)
		// An expired lease is also released by the next admission.
		x, _ := cf.admit(confT0.Add(5*time.Second), lv, confUSD("0.70"), 0, time.Second)
		if x == nil {
			t.Fatal("not admitted")
		}
		y, _ := cf.admit(confT0.Add(7*time.Second), lv, confUSD("0.70"), 0, time.Second)
		if y == nil || y.Reservations[0].Partial {
			t.Fatalf("expired lease still held: %+v", y)
		}
	})

	t.Run("period rollover", func(t *testing.T) {
		cf := setup(t)
		lv := []Level{confKeyLevel("roll", daily("1"))}
		late := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
		next := time.Date(2026, 11, 28, 0, 0, 1, 0, time.UTC)
		tk := cf.mustAdmit(late, lv, confUSD("0.90"), 0)
		// The new day starts empty: the in-flight reservation belongs to the old one.
		cf.wantStatus(next, lv, 0, 0, 0)
		cf.mustAdmit(next, lv, confUSD("0.90"), 0)
		cf.settle(tk, next, confUSD("0.50"), 0) // charged to the day it was admitted in
		cf.wantStatus(late, lv, 0, confUSD("0.50"), 0)
		cf.wantStatus(next, lv, 0, 0, confUSD("0.90"))
	})

	t.Run("concurrent bound", func(t *testing.T) {
		cf := setup(t)
		budget := confUSD("1")
		lv := []Level{confKeyLevel("bound", []Budget{{Limit: budget, Period: PeriodTotal}}),
			{Scope: Scope{ScopeTeam, "bound-team"}, Budgets: []Budget{{Limit: confUSD("50"), Period: PeriodTotal}}}}
		const n = 200
		maxWorst := confUSD("0.10")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var charged Money
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), 7))
				worst := Money(r.Int64N(int64(maxWorst))) + 1
				tk, rej, err := cf.c.Admit(cf.ctx, &Admission{Now: confT0, Location: time.UTC, Levels: lv, WorstCase: worst, Lease: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				if rej != nil {
					return
				}
				cost := Money(r.Int64N(int64(worst) + 1)) // ≤ worst case
				if _, err := cf.c.Settle(cf.ctx, tk, Settlement{Now: confT0, Cost: cost}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				charged += cost
				mu.Unlock()
			}()
		}
		wg.Wait()
		st := cf.status(confT0, lv)
		if st[0].Spent != charged || st[0].Reserved != 0 || st[1].Spent != charged {
			t.Fatalf("status %+v, charged %s", st, charged)
		}
		if charged > budget+maxWorst {
			t.Fatalf("charged %s > budget %s + worst %s", charged, budget, maxWorst)
		}
	})
}

func confMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
