package governance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every test here runs against a real redis-server started for it (see
// redistest_test.go) with fixed, fake times passed explicitly.

// redisT0 is a Friday, aligned to seconds, minutes and hours.
var redisT0 = time.Date(2030, 3, 15, 10, 0, 0, 0, time.UTC)

func TestRedisCountersConformance(t *testing.T) {
	runCountersConformance(t, func(t *testing.T) Counters { return newRedisCountersForTest(t) })
}

// --- helpers ---

type redisFixture struct {
	t   *testing.T
	rc  *RedisCounters
	ctx context.Context
}

func newRedisFixture(t *testing.T) *redisFixture {
	return &redisFixture{t: t, rc: newRedisCountersForTest(t), ctx: context.Background()}
}

func (f *redisFixture) admit(a Admission) (*Ticket, *Rejection) {
	f.t.Helper()
	if a.Location == nil {
		a.Location = time.UTC
	}
	tk, rej, err := f.rc.Admit(f.ctx, &a)
	if err != nil {
		f.t.Fatalf("Admit: %v", err)
	}
	if (tk == nil) == (rej == nil) {
		f.t.Fatalf("Admit returned ticket %+v and rejection %+v", tk, rej)
	}
	return tk, rej
}

func (f *redisFixture) mustAdmit(a Admission) *Ticket {
	f.t.Helper()
	tk, rej := f.admit(a)
	if rej != nil {
		f.t.Fatalf("rejected: %+v", rej)
	}
	return tk
}

func (f *redisFixture) mustReject(a Admission) *Rejection {
	f.t.Helper()
	tk, rej := f.admit(a)
	if tk != nil {
		f.t.Fatalf("admitted: %+v", tk)
	}
	return rej
}

func (f *redisFixture) settle(tk *Ticket, now time.Time, cost Money, tokens int64) []BudgetChange {
	f.t.Helper()
	ch, err := f.rc.Settle(f.ctx, tk, Settlement{Now: now, Cost: cost, Tokens: tokens})
	if err != nil {
		f.t.Fatalf("Settle: %v", err)
	}
	return ch
}

// budgetState reads a budget hash straight from Redis.
func (f *redisFixture) budgetState(s Scope, p Period, start time.Time) (spent, reserved, partials int64) {
	f.t.Helper()
	vals, err := f.rc.client.HMGet(f.ctx, f.rc.budgetKey(s, p, start), "spent", "reserved", "partials").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	var out [3]int64
	for i, v := range vals {
		if out[i], err = redisInt(v); err != nil {
			f.t.Fatal(err)
		}
	}
	return out[0], out[1], out[2]
}

func (f *redisFixture) wantBudget(s Scope, p Period, start time.Time, spent, reserved Money, partials int64) {
	f.t.Helper()
	gs, gr, gp := f.budgetState(s, p, start)
	if gs != int64(spent) || gr != int64(reserved) || gp != partials {
		f.t.Fatalf("%s %s from %s: spent %s reserved %s partials %d, want %s %s %d",
			s, p, start.Format(time.RFC3339), Money(gs), Money(gr), gp, spent, reserved, partials)
	}
}

// limiterState reads a limiter hash straight from Redis.
func (f *redisFixture) limiterState(s Scope, l RateLimit) (index, curr, prev int64) {
	f.t.Helper()
	vals, err := f.rc.client.HMGet(f.ctx, f.rc.limiterKey(s, l), "index", "curr", "prev").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	var out [3]int64
	for i, v := range vals {
		if out[i], err = redisInt(v); err != nil {
			f.t.Fatal(err)
		}
	}
	return out[0], out[1], out[2]
}

func (f *redisFixture) pttl(key string) time.Duration {
	f.t.Helper()
	d, err := f.rc.client.PTTL(f.ctx, key).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func redisUSD(s string) Money { return mustMoney(s) }

var (
	redisScopeKey      = Scope{ScopeKey, "alice"}
	redisScopeTeam     = Scope{ScopeTeam, "platform"}
	redisScopeCustomer = Scope{ScopeCustomer, "acme"}
)

func redisDayStart(t time.Time) time.Time { return PeriodDay.Start(t, time.UTC) }

// --- budgets ---

func TestRedisAdmitReservesOnEveryLevel(t *testing.T) {
	f := newRedisFixture(t)
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("10"), Period: PeriodDay}, {Limit: redisUSD("40"), Period: PeriodWeek}}},
		{Scope: redisScopeTeam, Budgets: []Budget{{Limit: redisUSD("100"), Period: PeriodMonth}}},
		{Scope: redisScopeCustomer, Budgets: []Budget{{Limit: redisUSD("1000"), Period: PeriodTotal}}},
	}
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1.25"), Lease: time.Minute})
	if len(tk.ID) != 32 || strings.Trim(tk.ID, "0123456789abcdef") != "" {
		t.Fatalf("ticket ID %q is not 128 bits of hex", tk.ID)
	}
	if !tk.Admitted.Equal(redisT0) || tk.Unchecked || len(tk.TokenCharges) != 0 {
		t.Fatalf("ticket %+v", tk)
	}
	starts := []time.Time{
		time.Date(2030, 3, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 3, 11, 0, 0, 0, 0, time.UTC), // Monday
		time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0).UTC(),
	}
	want := []struct {
		scope Scope
		b     Budget
	}{{redisScopeKey, levels[0].Budgets[0]}, {redisScopeKey, levels[0].Budgets[1]}, {redisScopeTeam, levels[1].Budgets[0]}, {redisScopeCustomer, levels[2].Budgets[0]}}
	if len(tk.Reservations) != len(want) {
		t.Fatalf("%d reservations", len(tk.Reservations))
	}
	for i, r := range tk.Reservations {
		if r.Scope != want[i].scope || r.Budget != want[i].b || !r.PeriodStart.Equal(starts[i]) ||
			r.Amount != redisUSD("1.25") || r.Partial || r.Remaining != want[i].b.Limit {
			t.Fatalf("reservation %d: %+v", i, r)
		}
		f.wantBudget(r.Scope, r.Budget.Period, r.PeriodStart, 0, redisUSD("1.25"), 0)
	}

	st, err := f.rc.Status(f.ctx, levels, redisT0.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	resets := []time.Time{
		time.Date(2030, 3, 16, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 3, 18, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 4, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	for i, s := range st {
		if s.Scope != want[i].scope || s.Budget != want[i].b || s.Spent != 0 || s.Reserved != redisUSD("1.25") ||
			!s.PeriodStart.Equal(starts[i]) || !s.ResetAt.Equal(resets[i]) {
			t.Fatalf("status %d: %+v", i, s)
		}
	}

	ch := f.settle(tk, redisT0.Add(5*time.Second), redisUSD("0.40"), 0)
	if len(ch) != 4 {
		t.Fatalf("changes %+v", ch)
	}
	for i, c := range ch {
		if c.Scope != want[i].scope || c.Budget != want[i].b || c.Before != 0 || c.After != redisUSD("0.40") {
			t.Fatalf("change %d: %+v", i, c)
		}
		f.wantBudget(c.Scope, c.Budget.Period, starts[i], redisUSD("0.40"), 0, 0)
	}
	// The ticket and its lease are gone.
	if n, _ := f.rc.client.Exists(f.ctx, f.rc.ticketKey(tk.ID)).Result(); n != 0 {
		t.Fatal("ticket hash left behind")
	}
	if n, _ := f.rc.client.ZCard(f.ctx, f.rc.leasesKey).Result(); n != 0 {
		t.Fatal("lease left behind")
	}
	// Remaining reflects the spend.
	tk2 := f.mustAdmit(Admission{Now: redisT0.Add(time.Minute), Levels: levels, WorstCase: redisUSD("1")})
	if m, _ := tk2.TightestRemaining(); m != redisUSD("9.60") {
		t.Fatalf("tightest remaining %s", m)
	}
	// A second settlement with more spend reports before and after.
	ch = f.settle(tk2, redisT0.Add(2*time.Minute), redisUSD("0.10"), 0)
	if ch[0].Before != redisUSD("0.40") || ch[0].After != redisUSD("0.50") {
		t.Fatalf("changes %+v", ch)
	}
}

func TestRedisBudgetRejectionsAndPartials(t *testing.T) {
	f := newRedisFixture(t)
	daily := Budget{Limit: redisUSD("1"), Period: PeriodDay}
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{daily}}}
	at := func(wc string) Admission {
		return Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD(wc), Lease: time.Hour}
	}
	day := redisDayStart(redisT0)
	f.settle(f.mustAdmit(at("0.90")), redisT0, redisUSD("0.90"), 0)

	a := f.mustAdmit(at("0.05")) // fits: full
	b := f.mustAdmit(at("0.50")) // 0.05 left: partial of all of it
	if a.Reservations[0].Partial || a.Reservations[0].Amount != redisUSD("0.05") || a.Reservations[0].Remaining != redisUSD("0.10") {
		t.Fatalf("a = %+v", a.Reservations[0])
	}
	if !b.Reservations[0].Partial || b.Reservations[0].Amount != redisUSD("0.05") || b.Reservations[0].Remaining != redisUSD("0.10") {
		t.Fatalf("b = %+v", b.Reservations[0])
	}
	f.wantBudget(redisScopeKey, PeriodDay, day, redisUSD("0.90"), redisUSD("0.10"), 1)

	// Headroom 0: refused, not because of a partial.
	rej := f.mustReject(at("0.01"))
	want := Rejection{Reason: RejectBudget, Scope: redisScopeKey, Budget: daily, Spent: redisUSD("0.90"), Reserved: redisUSD("0.10"),
		ResetAt: time.Date(2030, 3, 16, 0, 0, 0, 0, time.UTC), RetryAfter: HeldRetryAfter}
	if *rej != want {
		t.Fatalf("rejection %+v, want %+v", rej, want)
	}

	// a costs less: 0.04 headroom reappears, but b's partial holds it for
	// requests that do not fit.
	f.settle(a, redisT0, redisUSD("0.01"), 0)
	rej = f.mustReject(at("0.50"))
	if !rej.HeldByPartial || rej.Spent != redisUSD("0.91") || rej.Reserved != redisUSD("0.05") {
		t.Fatalf("rejection %+v", rej)
	}
	d := f.mustAdmit(at("0.03"))
	if d.Reservations[0].Partial {
		t.Fatal("d should be full")
	}
	// b settles above its partial reservation; the partial slot frees up.
	f.settle(b, redisT0, redisUSD("0.06"), 0)
	f.wantBudget(redisScopeKey, PeriodDay, day, redisUSD("0.97"), redisUSD("0.03"), 0)
	rej = f.mustReject(at("0.50"))
	if rej.HeldByPartial || rej.Spent != redisUSD("0.97") || rej.Reserved != redisUSD("0.03") {
		t.Fatalf("rejection %+v", rej)
	}
	f.settle(d, redisT0, redisUSD("0.03"), 0)
	f.wantBudget(redisScopeKey, PeriodDay, day, redisUSD("1"), 0, 0)
	// Nothing left: even a free request is refused.
	if rej := f.mustReject(at("0")); rej.Spent != redisUSD("1") {
		t.Fatalf("rejection %+v", rej)
	}
}

func TestRedisAdmitIsAllOrNothing(t *testing.T) {
	f := newRedisFixture(t)
	reqs := RateLimit{Limit: 100, Unit: RateRequests, Window: time.Minute}
	toks := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("10"), Period: PeriodDay}}, RateLimits: []RateLimit{reqs, toks}},
		{Scope: redisScopeTeam, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}, {Limit: redisUSD("0.5"), Period: PeriodTotal}}},
	}
	day := redisDayStart(redisT0)
	// Spend the team's total budget through another key.
	other := []Level{{Scope: Scope{ScopeKey, "bob"}}, levels[1]}
	f.settle(f.mustAdmit(Admission{Now: redisT0, Levels: other, WorstCase: redisUSD("0.5")}), redisT0, redisUSD("0.5"), 0)

	rej := f.mustReject(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("0.1"), Tokens: 10})
	// The key fits, the team's daily fits, the team's total does not: that
	// one is reported, with no reset.
	if rej.Reason != RejectBudget || rej.Scope != redisScopeTeam || rej.Budget.Period != PeriodTotal || !rej.ResetAt.IsZero() ||
		rej.Spent != redisUSD("0.5") {
		t.Fatalf("rejection %+v", rej)
	}
	// Nothing was applied anywhere.
	f.wantBudget(redisScopeKey, PeriodDay, day, 0, 0, 0)
	f.wantBudget(redisScopeTeam, PeriodDay, day, redisUSD("0.5"), 0, 0)
	if n, _ := f.rc.client.Exists(f.ctx, f.rc.limiterKey(redisScopeKey, reqs), f.rc.limiterKey(redisScopeKey, toks)).Result(); n != 0 {
		t.Fatal("a refused request touched the rate limiters")
	}
	if n, _ := f.rc.client.ZCard(f.ctx, f.rc.leasesKey).Result(); n != 0 {
		t.Fatal("a refused request left a lease")
	}

	// Narrowest first: with the key's budget spent too, the key is reported.
	keyOnly := []Level{levels[0]}
	f.settle(f.mustAdmit(Admission{Now: redisT0, Levels: keyOnly, WorstCase: redisUSD("10")}), redisT0, redisUSD("10"), 0)
	rej = f.mustReject(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("0.1")})
	if rej.Scope != redisScopeKey {
		t.Fatalf("rejection %+v", rej)
	}
	// Within a level, budgets in order.
	two := []Level{{Scope: redisScopeTeam, Budgets: []Budget{{Limit: redisUSD("0.5"), Period: PeriodTotal}, {Limit: redisUSD("0.1"), Period: PeriodDay}}}}
	if rej := f.mustReject(Admission{Now: redisT0, Levels: two}); rej.Budget.Period != PeriodTotal {
		t.Fatalf("rejection %+v", rej)
	}
}

func TestRedisBudgetRejectsBeforeRateLimitCounts(t *testing.T) {
	f := newRedisFixture(t)
	reqs := RateLimit{Limit: 5, Unit: RateRequests, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("0.01"), Period: PeriodDay}}, RateLimits: []RateLimit{reqs}}}
	f.settle(f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("0.01")}), redisT0, redisUSD("0.01"), 0)
	for range 10 {
		if rej := f.mustReject(Admission{Now: redisT0, Levels: levels}); rej.Reason != RejectBudget {
			t.Fatalf("rejection %+v", rej)
		}
	}
	if _, curr, _ := f.limiterState(redisScopeKey, reqs); curr != 1 {
		t.Fatalf("limiter counted %d requests, want the 1 admitted", curr)
	}
}

func TestRedisSettleChargesAdmissionPeriod(t *testing.T) {
	f := newRedisFixture(t)
	berlin := mustLoad(t, "Europe/Berlin")
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("5"), Period: PeriodDay}}}}
	// 23:59:30 in Berlin is 22:59:30 UTC.
	late := time.Date(2030, 3, 15, 23, 59, 30, 0, berlin)
	next := late.Add(time.Minute)
	tk := f.mustAdmit(Admission{Now: late, Location: berlin, Levels: levels, WorstCase: redisUSD("1"), Lease: time.Hour})
	if want := time.Date(2030, 3, 15, 0, 0, 0, 0, berlin); !tk.Reservations[0].PeriodStart.Equal(want) {
		t.Fatalf("period start %v, want %v", tk.Reservations[0].PeriodStart, want)
	}
	ch := f.settle(tk, next, redisUSD("0.75"), 0)
	if ch[0].Before != 0 || ch[0].After != redisUSD("0.75") {
		t.Fatalf("changes %+v", ch)
	}
	st, err := f.rc.Status(f.ctx, levels, next, berlin)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Spent != 0 || st[0].Reserved != 0 || !st[0].PeriodStart.Equal(time.Date(2030, 3, 16, 0, 0, 0, 0, berlin)) {
		t.Fatalf("today %+v", st[0])
	}
	st, _ = f.rc.Status(f.ctx, levels, late, berlin)
	if st[0].Spent != redisUSD("0.75") || st[0].Reserved != 0 {
		t.Fatalf("yesterday %+v", st[0])
	}
	// The same instant in UTC is another day's key.
	st, _ = f.rc.Status(f.ctx, levels, late, time.UTC)
	if st[0].Spent != 0 {
		t.Fatalf("UTC day %+v", st[0])
	}
}

func TestRedisSettleIsIdempotent(t *testing.T) {
	f := newRedisFixture(t)
	toks := RateLimit{Limit: 10_000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("5"), Period: PeriodDay}}, RateLimits: []RateLimit{toks}}}
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Tokens: 500, Lease: time.Minute})
	if ch := f.settle(tk, redisT0, redisUSD("0.30"), 200); len(ch) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	for range 3 {
		if ch := f.settle(tk, redisT0.Add(time.Second), redisUSD("0.30"), 200); ch != nil {
			t.Fatalf("second settle returned %+v", ch)
		}
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("0.30"), 0, 0)
	if _, curr, _ := f.limiterState(redisScopeKey, toks); curr != 200 {
		t.Fatalf("tokens %d, want 200", curr)
	}
	if d := f.pttl(f.rc.settledKey(tk.ID)); d <= 14*time.Minute || d > redisSettledTTL {
		t.Fatalf("settled marker TTL %v", d)
	}

	// An unchecked ticket (served fail-open, settled once Redis answers)
	// reserved nothing: its cost is charged once, and renewing it does
	// nothing.
	un := &Ticket{ID: "whatever", Unchecked: true, Reservations: tk.Reservations, TokenCharges: tk.TokenCharges}
	if err := f.rc.Renew(f.ctx, []*Ticket{un, nil}, redisT0, time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ch := f.settle(un, redisT0, redisUSD("9"), 9000)
		if i == 0 && (len(ch) != 1 || ch[0].After != redisUSD("9.30")) || i == 1 && ch != nil {
			t.Fatalf("unchecked settle #%d returned %+v", i+1, ch)
		}
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("9.30"), 0, 0)
	if ch := f.settle(&Ticket{ID: "nothing", Unchecked: true}, redisT0, redisUSD("9"), 9000); ch != nil {
		t.Fatalf("unchecked settle of nothing returned %+v", ch)
	}
	if ch, err := f.rc.Settle(f.ctx, nil, Settlement{Now: redisT0}); ch != nil || err != nil {
		t.Fatalf("nil ticket: %v %v", ch, err)
	}
}

func TestRedisKeyTTLs(t *testing.T) {
	f := newRedisFixture(t)
	reqs := RateLimit{Limit: 100, Unit: RateRequests, Window: time.Minute}
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("5"), Period: PeriodDay}}, RateLimits: []RateLimit{reqs}},
		{Scope: redisScopeCustomer, Budgets: []Budget{{Limit: redisUSD("50"), Period: PeriodTotal}}},
	}
	now := time.Date(2030, 3, 15, 18, 0, 0, 0, time.UTC) // 6 h before midnight
	tk := f.mustAdmit(Admission{Now: now, Levels: levels, WorstCase: redisUSD("1"), Lease: 2 * time.Minute})
	near := func(got, want time.Duration) bool { return got <= want && got > want-5*time.Second }
	if d := f.pttl(f.rc.budgetKey(redisScopeKey, PeriodDay, redisDayStart(now))); !near(d, 30*time.Hour) {
		t.Fatalf("daily budget TTL %v, want 6 h + 24 h", d)
	}
	if d := f.pttl(f.rc.budgetKey(redisScopeCustomer, PeriodTotal, time.Unix(0, 0))); d != -1 {
		t.Fatalf("total budget TTL %v, want none", d)
	}
	if d := f.pttl(f.rc.limiterKey(redisScopeKey, reqs)); !near(d, 2*time.Minute) {
		t.Fatalf("limiter TTL %v, want 2 windows", d)
	}
	if d := f.pttl(f.rc.ticketKey(tk.ID)); !near(d, 2*time.Minute+redisTicketMargin) {
		t.Fatalf("ticket TTL %v", d)
	}
	if score, err := f.rc.client.ZScore(f.ctx, f.rc.leasesKey, tk.ID).Result(); err != nil || int64(score) != now.Add(2*time.Minute).UnixMilli() {
		t.Fatalf("lease score %v %v", score, err)
	}
	// Lease 0: no expiry, no zset entry, no TTL.
	forever := f.mustAdmit(Admission{Now: now, Levels: levels, WorstCase: redisUSD("1")})
	if d := f.pttl(f.rc.ticketKey(forever.ID)); d != -1 {
		t.Fatalf("lease-0 ticket TTL %v", d)
	}
	if _, err := f.rc.client.ZScore(f.ctx, f.rc.leasesKey, forever.ID).Result(); err != redis.Nil {
		t.Fatalf("lease-0 ticket in the lease zset: %v", err)
	}
	if err := f.rc.Sweep(f.ctx, now.Add(24*365*time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeCustomer, PeriodTotal, time.Unix(0, 0), 0, redisUSD("1"), 0)
	// A settlement after a budget key expired recreates it with a TTL.
	f.rc.client.Del(f.ctx, f.rc.budgetKey(redisScopeKey, PeriodDay, redisDayStart(now)))
	f.settle(forever, now.Add(time.Hour), redisUSD("0.5"), 0)
	if d := f.pttl(f.rc.budgetKey(redisScopeKey, PeriodDay, redisDayStart(now))); !near(d, 29*time.Hour) {
		t.Fatalf("recreated budget TTL %v", d)
	}
}

// --- rate limits ---

func TestRedisRequestRateLimit(t *testing.T) {
	f := newRedisFixture(t)
	rl := RateLimit{Limit: 10, Unit: RateRequests, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, RateLimits: []RateLimit{rl}}}
	at := func(d time.Duration) Admission { return Admission{Now: redisT0.Add(d), Levels: levels} }
	for range 10 {
		f.mustAdmit(at(0))
	}
	// curr=10, prev=0 at e=0: next window, where 10×(60−s)/60 ≤ 9 → s = 6 s.
	rej := f.mustReject(at(0))
	want := Rejection{Reason: RejectRateLimit, Scope: redisScopeKey, RateLimit: rl, RetryAfter: 66 * time.Second,
		ResetAt: redisT0.Add(66 * time.Second), Remaining: 0}
	if *rej != want {
		t.Fatalf("rejection %+v, want %+v", rej, want)
	}
	f.mustReject(at(66*time.Second - time.Millisecond))
	f.mustAdmit(at(66 * time.Second))
	if idx, curr, prev := f.limiterState(redisScopeKey, rl); idx != redisT0.Unix()/60+1 || curr != 1 || prev != 10 {
		t.Fatalf("limiter index %d curr %d prev %d", idx, curr, prev)
	}
}

func TestRedisRequestRateLimitWithinWindow(t *testing.T) {
	f := newRedisFixture(t)
	rl := RateLimit{Limit: 10, Unit: RateRequests, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, RateLimits: []RateLimit{rl}}}
	at := func(d time.Duration) Admission { return Admission{Now: redisT0.Add(d), Levels: levels} }
	for range 4 {
		f.mustAdmit(at(0))
	}
	// Next window at e=30 s: prev 4 weighs 2, so 8 more fit (8+2+1 > 10 after).
	for range 8 {
		f.mustAdmit(at(90 * time.Second))
	}
	rej := f.mustReject(at(90 * time.Second))
	// limit−curr−1 = 1, prev = 4 → e' = 60×(1−1/4) = 45 s: 15 s from now.
	if rej.RetryAfter != 15*time.Second || !rej.ResetAt.Equal(redisT0.Add(105*time.Second)) || rej.Remaining != 0 {
		t.Fatalf("rejection %+v", rej)
	}
	f.mustReject(at(105*time.Second - time.Millisecond))
	f.mustAdmit(at(105 * time.Second))
}

func TestRedisTokenRateLimit(t *testing.T) {
	f := newRedisFixture(t)
	rl := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, RateLimits: []RateLimit{rl}}}
	at := func(d time.Duration, tokens int64) Admission {
		return Admission{Now: redisT0.Add(d), Levels: levels, Tokens: tokens, Lease: time.Hour}
	}
	a := f.mustAdmit(at(0, 600))
	wantWindow := redisT0.UnixNano() / int64(time.Minute)
	if len(a.TokenCharges) != 1 || a.TokenCharges[0] != (TokenCharge{Scope: redisScopeKey, Limit: rl, Window: wantWindow, Tokens: 600}) {
		t.Fatalf("token charges %+v", a.TokenCharges)
	}
	b := f.mustAdmit(at(0, 600)) // est 600 < 1000: admitted, overshooting
	// curr=1200: next window, 1200×(60−s)/60 < 1000 → s > 10 s: 60 s + 10 s + 1 ms.
	rej := f.mustReject(at(0, 1))
	if rej.RetryAfter != 70*time.Second+time.Millisecond || rej.Remaining != 0 || rej.RateLimit != rl {
		t.Fatalf("rejection %+v", rej)
	}

	// Corrections: a used 100 (same window: curr 1200 → 700).
	f.settle(a, redisT0.Add(10*time.Second), 0, 100)
	if _, curr, prev := f.limiterState(redisScopeKey, rl); curr != 700 || prev != 0 {
		t.Fatalf("curr %d prev %d", curr, prev)
	}
	// b settles in the next window: the correction lands in prev (700 → 1000).
	f.settle(b, redisT0.Add(61*time.Second), 0, 900)
	if idx, curr, prev := f.limiterState(redisScopeKey, rl); idx != wantWindow+1 || curr != 0 || prev != 1000 {
		t.Fatalf("index %d curr %d prev %d", idx, curr, prev)
	}
	// A charge two windows old is dropped.
	c := f.mustAdmit(at(2*time.Minute+time.Second, 100)) // prev 0 (window +1 was idle)
	f.settle(c, redisT0.Add(4*time.Minute+time.Second), 0, 5000)
	// (the limiter stays as c left it: window +2, which at +4 counts nothing)
	if idx, curr, prev := f.limiterState(redisScopeKey, rl); idx != wantWindow+2 || curr != 100 || prev != 0 {
		t.Fatalf("stale correction applied: index %d curr %d prev %d", idx, curr, prev)
	}
	// Counts never go below 0 (the limiter lost its count meanwhile).
	d := f.mustAdmit(at(5*time.Minute, 500))
	f.rc.client.HSet(f.ctx, f.rc.limiterKey(redisScopeKey, rl), "curr", 100)
	f.settle(d, redisT0.Add(5*time.Minute), 0, 0)
	if _, curr, _ := f.limiterState(redisScopeKey, rl); curr != 0 {
		t.Fatalf("curr %d, want 0", curr)
	}
}

// TestRedisRetryAfterIsExact drives random limiters into a refusal and checks
// that RetryAfter is the first whole millisecond at which the same request
// fits: refused 1 ms earlier, admitted then.
func TestRedisRetryAfterIsExact(t *testing.T) {
	f := newRedisFixture(t)
	rng := rand.New(rand.NewPCG(42, 7))
	windows := []time.Duration{time.Second, time.Minute, time.Hour, 7 * time.Second}
	for i := range 150 {
		unit := RateUnit(rng.IntN(2))
		rl := RateLimit{Limit: 1 + rng.Int64N(40), Unit: unit, Window: windows[rng.IntN(len(windows))]}
		if unit == RateTokens {
			rl.Limit *= 100
		}
		scope := Scope{ScopeKey, fmt.Sprintf("probe-%d", i)}
		levels := []Level{{Scope: scope, RateLimits: []RateLimit{rl}}}
		now := redisT0.Add(time.Duration(rng.Int64N(int64(rl.Window))).Truncate(time.Millisecond))
		var rej *Rejection
		var cost int64
		for range 1000 {
			cost = 0
			if unit == RateTokens {
				cost = 1 + rng.Int64N(rl.Limit/3+1)
			}
			var tk *Ticket
			tk, rej = f.admit(Admission{Now: now, Levels: levels, Tokens: cost})
			if rej != nil {
				break
			}
			_ = tk
			step := int64(rl.Window) / rl.Limit // about two limits per window
			if unit == RateTokens {
				step = int64(rl.Window) / 6
			}
			now = now.Add(time.Duration(rng.Int64N(step)).Truncate(time.Millisecond))
		}
		if rej == nil {
			t.Fatalf("case %d (%s): never refused", i, rl)
		}
		if rej.RetryAfter < time.Millisecond || rej.RetryAfter%time.Millisecond != 0 || !rej.ResetAt.Equal(now.Add(rej.RetryAfter)) {
			t.Fatalf("case %d (%s): rejection %+v", i, rl, rej)
		}
		if rej.RetryAfter > time.Millisecond {
			if tk, _ := f.admit(Admission{Now: now.Add(rej.RetryAfter - time.Millisecond), Levels: levels, Tokens: cost}); tk != nil {
				t.Fatalf("case %d (%s): admitted 1 ms before RetryAfter %v", i, rl, rej.RetryAfter)
			}
		}
		if _, again := f.admit(Admission{Now: now.Add(rej.RetryAfter), Levels: levels, Tokens: cost}); again != nil {
			t.Fatalf("case %d (%s): refused at RetryAfter %v: %+v", i, rl, rej.RetryAfter, again)
		}
	}
}

func TestRedisRetryAfterFormula(t *testing.T) {
	const W = 60_000
	for _, c := range []struct {
		unit                     RateUnit
		limit, curr, prev, e, ms int64
	}{
		{RateRequests, 10, 10, 0, 0, 66_000},     // next window, s = 6 s
		{RateRequests, 10, 8, 4, 30_000, 15_000}, // within: e' = 45 s
		{RateRequests, 2, 1, 2, 30_000, 30_000},  // limit−curr−1 = 0: end of window
		{RateRequests, 1, 1, 0, 59_999, 60_001},  // two windows: s = W
		{RateTokens, 1000, 1600, 0, 15_000, 67_501},
		{RateTokens, 1000, 1000, 0, 0, 60_001}, // c = L: strictly after the boundary
		{RateTokens, 1000, 400, 1200, 0, 30_001},
		{RateRequests, 0, 0, 0, 10, 60_000}, // nothing ever fits: one window
		{RateTokens, 0, 0, 0, 10, 60_000},
	} {
		got := redisRetryAfter(c.unit, c.limit, c.curr, c.prev, c.e, W)
		if got != time.Duration(c.ms)*time.Millisecond {
			t.Errorf("%+v: %v", c, got)
		}
	}
}

func TestRedisRateLimitRefusalAppliesNothing(t *testing.T) {
	f := newRedisFixture(t)
	reqs := RateLimit{Limit: 100, Unit: RateRequests, Window: time.Minute}
	tight := RateLimit{Limit: 1, Unit: RateRequests, Window: time.Hour}
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("5"), Period: PeriodDay}}, RateLimits: []RateLimit{reqs}},
		{Scope: redisScopeTeam, RateLimits: []RateLimit{tight}},
	}
	f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Lease: time.Minute})
	rej := f.mustReject(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Lease: time.Minute})
	if rej.Reason != RejectRateLimit || rej.Scope != redisScopeTeam || rej.RateLimit != tight {
		t.Fatalf("rejection %+v", rej)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, redisUSD("1"), 0)
	if _, curr, _ := f.limiterState(redisScopeKey, reqs); curr != 1 {
		t.Fatalf("key limiter %d", curr)
	}
}

func TestRedisSharedCounters(t *testing.T) {
	// Two budgets with one period on one scope share a counter (as in
	// MemoryCounters): both reserve on it, the cost is charged once.
	f := newRedisFixture(t)
	rl := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey,
		Budgets:    []Budget{{Limit: redisUSD("5"), Period: PeriodDay}, {Limit: redisUSD("3"), Period: PeriodDay}},
		RateLimits: []RateLimit{rl, {Limit: 2000, Unit: RateTokens, Window: time.Minute}},
	}}
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Tokens: 100, Lease: time.Minute})
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, redisUSD("2"), 0)
	if _, curr, _ := f.limiterState(redisScopeKey, rl); curr != 100 {
		t.Fatalf("tokens counted %d times 100", curr/100)
	}
	ch := f.settle(tk, redisT0, redisUSD("0.5"), 300)
	if len(ch) != 2 || ch[0].After != redisUSD("0.5") || ch[1].After != redisUSD("0.5") || ch[1].Before != 0 || ch[1].Budget.Limit != redisUSD("3") {
		t.Fatalf("changes %+v", ch)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("0.5"), 0, 0)
	if _, curr, _ := f.limiterState(redisScopeKey, rl); curr != 300 {
		t.Fatalf("tokens %d, want 300", curr)
	}
}

// --- leases ---

func TestRedisLeaseExpiryAcrossInstances(t *testing.T) {
	srv := startRedisServer(t)
	a, b := newRedisCountersOn(t, srv, ""), newRedisCountersOn(t, srv, "")
	ctx := context.Background()
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("10"), Period: PeriodDay}}}}
	reserved := func(at time.Time) Money {
		t.Helper()
		st, err := b.Status(ctx, levels, at, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		return st[0].Reserved
	}
	admit := func(c *RedisCounters, at time.Time, wc string, lease time.Duration) *Ticket {
		t.Helper()
		tk, rej, err := c.Admit(ctx, &Admission{Now: at, Location: time.UTC, Levels: levels, WorstCase: redisUSD(wc), Lease: lease})
		if err != nil || rej != nil {
			t.Fatalf("Admit: %v %+v", err, rej)
		}
		return tk
	}
	// Instance a admits and dies.
	dead := admit(a, redisT0, "3", 30*time.Second)
	if got := reserved(redisT0); got != redisUSD("3") {
		t.Fatalf("reserved %s", got)
	}
	b1 := admit(b, redisT0.Add(10*time.Second), "1", time.Hour)
	if err := b.Sweep(ctx, redisT0.Add(29*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := reserved(redisT0); got != redisUSD("4") {
		t.Fatalf("reserved %s before the lease ends", got)
	}
	// The next admission after the lease ends releases it.
	b2 := admit(b, redisT0.Add(31*time.Second), "1", time.Hour)
	if got := reserved(redisT0); got != redisUSD("2") {
		t.Fatalf("reserved %s after the lease ended, want b's 2", got)
	}
	// Renewing a released ticket does nothing.
	if err := a.Renew(ctx, []*Ticket{dead}, redisT0.Add(32*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.client.ZCard(ctx, b.leasesKey).Result(); n != 2 {
		t.Fatalf("%d leases, want b's 2", n)
	}
	// The late settlement charges once and releases nothing twice.
	for range 2 {
		if _, err := a.Settle(ctx, dead, Settlement{Now: redisT0.Add(time.Minute), Cost: redisUSD("2.5")}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := b.Status(ctx, levels, redisT0, time.UTC)
	if st[0].Spent != redisUSD("2.5") || st[0].Reserved != redisUSD("2") {
		t.Fatalf("status %+v", st[0])
	}
	for _, tk := range []*Ticket{b1, b2} {
		if _, err := b.Settle(ctx, tk, Settlement{Now: redisT0.Add(time.Minute), Cost: redisUSD("1")}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = a.Status(ctx, levels, redisT0, time.UTC)
	if st[0].Spent != redisUSD("4.5") || st[0].Reserved != 0 {
		t.Fatalf("status %+v", st[0])
	}
}

func TestRedisRenewAndSweep(t *testing.T) {
	f := newRedisFixture(t)
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("10"), Period: PeriodDay}}}}
	day := redisDayStart(redisT0)
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Lease: 30 * time.Second})
	if err := f.rc.Renew(f.ctx, []*Ticket{tk}, redisT0.Add(20*time.Second), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := f.pttl(f.rc.ticketKey(tk.ID)); d <= redisTicketMargin {
		t.Fatalf("renewed ticket TTL %v", d)
	}
	if err := f.rc.Sweep(f.ctx, redisT0.Add(49*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, day, 0, redisUSD("1"), 0)
	// An expired but not yet swept lease is not renewed.
	if err := f.rc.Renew(f.ctx, []*Ticket{tk}, redisT0.Add(50*time.Second), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := f.rc.Sweep(f.ctx, redisT0.Add(50*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, day, 0, 0, 0)

	// Renew with lease 0: never expires.
	tk2 := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Lease: time.Second})
	if err := f.rc.Renew(f.ctx, []*Ticket{tk2}, redisT0, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.rc.Sweep(f.ctx, redisT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, day, 0, redisUSD("1"), 0)
	if d := f.pttl(f.rc.ticketKey(tk2.ID)); d != -1 {
		t.Fatalf("ticket TTL %v after renewing with lease 0", d)
	}
}

func TestRedisSweepReleasesEveryExpiredLease(t *testing.T) {
	f := newRedisFixture(t)
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1000"), Period: PeriodDay}}}}
	var partial *Ticket
	for i := range 3*redisSweepBatch + 5 {
		tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("1"), Lease: time.Duration(1+i%5) * time.Second})
		if tk.Reservations[0].Partial {
			partial = tk
		}
	}
	if partial != nil {
		t.Fatal("unexpected partial")
	}
	// One long lease stays.
	keep := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("2"), Lease: time.Hour})
	if err := f.rc.Sweep(f.ctx, redisT0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, redisUSD("2"), 0)
	if ids, _ := f.rc.client.ZRange(f.ctx, f.rc.leasesKey, 0, -1).Result(); len(ids) != 1 || ids[0] != keep.ID {
		t.Fatalf("leases left: %v", ids)
	}
	if n, _ := f.rc.client.Keys(f.ctx, f.rc.prefix+"t:*").Result(); len(n) != 1 {
		t.Fatalf("ticket hashes left: %d", len(n))
	}
}

func TestRedisSweepReleasesPartial(t *testing.T) {
	f := newRedisFixture(t)
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}}}}
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("5"), Lease: time.Second})
	if !tk.Reservations[0].Partial {
		t.Fatal("want a partial")
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, redisUSD("1"), 1)
	if err := f.rc.Sweep(f.ctx, redisT0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), 0, 0, 0)
}

// --- the script itself ---

func TestRedisAdmitReplaysRetriedScript(t *testing.T) {
	f := newRedisFixture(t)
	reqs := RateLimit{Limit: 100, Unit: RateRequests, Window: time.Minute}
	toks := RateLimit{Limit: 1000, Unit: RateTokens, Window: time.Minute}
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}}, RateLimits: []RateLimit{reqs, toks}}}
	f.settle(f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: redisUSD("0.5")}), redisT0, redisUSD("0.5"), 0)
	a := &Admission{Now: redisT0, Location: time.UTC, Levels: levels, WorstCase: redisUSD("0.7"), Tokens: 50, Lease: time.Minute}
	first, rej, err := f.rc.admit(f.ctx, a, "0123456789abcdef0123456789abcdef")
	if err != nil || rej != nil {
		t.Fatal(err, rej)
	}
	// The client resends the script after losing the reply.
	again, rej, err := f.rc.admit(f.ctx, a, "0123456789abcdef0123456789abcdef")
	if err != nil || rej != nil {
		t.Fatal(err, rej)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("replayed %+v, first %+v", again, first)
	}
	if !first.Reservations[0].Partial || first.Reservations[0].Amount != redisUSD("0.5") || first.Reservations[0].Remaining != redisUSD("0.5") {
		t.Fatalf("reservation %+v", first.Reservations[0])
	}
	f.wantBudget(redisScopeKey, PeriodDay, redisDayStart(redisT0), redisUSD("0.5"), redisUSD("0.5"), 1)
	if _, curr, _ := f.limiterState(redisScopeKey, reqs); curr != 2 {
		t.Fatalf("requests %d, want 2", curr)
	}
	if _, curr, _ := f.limiterState(redisScopeKey, toks); curr != 50 {
		t.Fatalf("tokens %d, want 50", curr)
	}
}

func TestRedisMoneyIsExact(t *testing.T) {
	f := newRedisFixture(t)
	// 15 and 16 digits: beyond Lua's %.14g, within 2^53.
	limit := RedisMaxMoney
	worst := Money(1<<53 - 12345)
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: limit, Period: PeriodTotal}}}}
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: worst})
	if tk.Reservations[0].Amount != worst || tk.Reservations[0].Partial {
		t.Fatalf("reservation %+v", tk.Reservations[0])
	}
	f.wantBudget(redisScopeKey, PeriodTotal, time.Unix(0, 0), 0, worst, 0)
	cost := Money(123_456_789_012_345)
	ch := f.settle(tk, redisT0, cost, 0)
	if ch[0].After != cost {
		t.Fatalf("changes %+v", ch)
	}
	tk = f.mustAdmit(Admission{Now: redisT0, Levels: levels, WorstCase: worst})
	if want := limit - cost; !tk.Reservations[0].Partial || tk.Reservations[0].Amount != want || tk.Reservations[0].Remaining != want {
		t.Fatalf("reservation %+v, want partial %d", tk.Reservations[0], want)
	}
	f.wantBudget(redisScopeKey, PeriodTotal, time.Unix(0, 0), cost, limit-cost, 1)
}

func TestRedisValidation(t *testing.T) {
	f := newRedisFixture(t)
	for name, lv := range map[string]Level{
		"budget too large":   {Scope: redisScopeKey, Budgets: []Budget{{Limit: RedisMaxMoney + 1, Period: PeriodDay}}},
		"unknown period":     {Scope: redisScopeKey, Budgets: []Budget{{Limit: 1, Period: Period(9)}}},
		"no window":          {Scope: redisScopeKey, RateLimits: []RateLimit{{Limit: 1}}},
		"sub-ms window":      {Scope: redisScopeKey, RateLimits: []RateLimit{{Limit: 1, Window: 1500 * time.Microsecond}}},
		"rate limit too big": {Scope: redisScopeKey, RateLimits: []RateLimit{{Limit: 1 << 60, Window: time.Second}}},
		"unknown unit":       {Scope: redisScopeKey, RateLimits: []RateLimit{{Limit: 1, Unit: RateUnit(7), Window: time.Second}}},
	} {
		if _, _, err := f.rc.Admit(f.ctx, &Admission{Now: redisT0, Levels: []Level{lv}}); err == nil {
			t.Errorf("%s: Admit accepted it", name)
		}
		if err := f.rc.Prepare(f.ctx, []Level{lv}, redisT0, time.UTC); err == nil {
			t.Errorf("%s: Prepare accepted it", name)
		}
	}
	if _, _, err := f.rc.Admit(f.ctx, &Admission{Now: redisT0, WorstCase: RedisMaxMoney + 1}); err == nil {
		t.Error("worst case beyond 2^53 accepted")
	}
	if _, _, err := f.rc.Admit(f.ctx, nil); err == nil {
		t.Error("nil admission accepted")
	}
	if _, err := f.rc.Settle(f.ctx, &Ticket{ID: "a:b"}, Settlement{Now: redisT0}); err == nil {
		t.Error("ticket ID with ':' accepted")
	}
	if _, err := f.rc.Settle(f.ctx, &Ticket{ID: "ok"}, Settlement{Now: redisT0, Cost: RedisMaxMoney + 1}); err == nil {
		t.Error("cost beyond 2^53 accepted")
	}
	// Negative worst case and tokens count as 0, like MemoryCounters.
	tk := f.mustAdmit(Admission{Now: redisT0, Levels: []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}}}}, WorstCase: -5, Tokens: -5})
	if tk.Reservations[0].Amount != 0 {
		t.Fatalf("reservation %+v", tk.Reservations[0])
	}
	if err := f.rc.Prepare(f.ctx, []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}}}}, redisT0, time.UTC); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if err := f.rc.Ping(f.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// --- keys ---

func TestRedisKeyLayout(t *testing.T) {
	r := &RedisCounters{prefix: "{llmgw}:"}
	start := time.Date(2030, 3, 15, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ got, want string }{
		{r.budgetKey(Scope{ScopeKey, "alice"}, PeriodDay, start), "{llmgw}:b:key:alice:day:1899763200"},
		{r.budgetKey(Scope{ScopeCustomer, "acme"}, PeriodTotal, time.Unix(0, 0)), "{llmgw}:b:customer:acme:total:0"},
		{r.budgetKey(Scope{ScopeTeam, "a:b"}, PeriodDay, start), "{llmgw}:b:team:a%3Ab:day:1899763200"},
		{r.budgetKey(Scope{ScopeTeam, "a%3Ab"}, PeriodDay, start), "{llmgw}:b:team:a%253Ab:day:1899763200"},
		{r.budgetKey(Scope{ScopeKey, "x}{ ü"}, PeriodHour, start), "{llmgw}:b:key:x%7D%7B%20%C3%BC:hour:1899763200"},
		{r.limiterKey(Scope{ScopeKey, "alice"}, RateLimit{Limit: 5, Unit: RateTokens, Window: time.Minute}), "{llmgw}:rl:key:alice:tokens:60000"},
		{r.limiterKey(Scope{ScopeKind(9), "svc.ci-1@x+y"}, RateLimit{Limit: 5, Window: time.Second}), "{llmgw}:rl:kind9:svc.ci-1@x+y:requests:1000"},
		{r.ticketKey("abc"), "{llmgw}:t:abc"},
		{r.settledKey("abc"), "{llmgw}:s:abc"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

func TestRedisNamesNeverCollide(t *testing.T) {
	srv := startRedisServer(t)
	rc := newRedisCountersOn(t, srv, "")
	other := newRedisCountersOn(t, srv, "tenant2")
	ctx := context.Background()
	names := []string{"a:b", "a%3Ab", "a", "a:b:day", "x}{y", "ü", ""}
	for i, n := range names {
		lv := []Level{{Scope: Scope{ScopeKey, n}, Budgets: []Budget{{Limit: redisUSD("100"), Period: PeriodDay}}}}
		tk, _, err := rc.Admit(ctx, &Admission{Now: redisT0, Levels: lv, WorstCase: Money(i + 1)})
		if err != nil || tk == nil {
			t.Fatal(err)
		}
		if _, err := rc.Settle(ctx, tk, Settlement{Now: redisT0, Cost: Money(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		lv := []Level{{Scope: Scope{ScopeKey, n}, Budgets: []Budget{{Limit: redisUSD("100"), Period: PeriodDay}}}}
		st, err := rc.Status(ctx, lv, redisT0, time.UTC)
		if err != nil || st[0].Spent != Money(i+1) {
			t.Fatalf("%q: %+v %v", n, st, err)
		}
		// Another prefix is another key space.
		st, err = other.Status(ctx, lv, redisT0, time.UTC)
		if err != nil || st[0].Spent != 0 {
			t.Fatalf("%q under another prefix: %+v %v", n, st, err)
		}
	}
	// Every key carries the hash tag, and only it.
	keys, err := rc.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{llmgw}:") || strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
			t.Errorf("key %q", k)
		}
	}
	if _, err := NewRedisCounters(RedisOptions{URL: srv.URL, Prefix: "a{b}"}); err == nil {
		t.Error("prefix with braces accepted")
	}
}

// --- fleet ---

// TestRedisFleetConcurrency is two Caddy instances (two clients) admitting
// and settling from 200 goroutines against one budget.
func TestRedisFleetConcurrency(t *testing.T) {
	srv := startRedisServer(t)
	inst := []*RedisCounters{newRedisCountersOn(t, srv, ""), newRedisCountersOn(t, srv, "")}
	ctx := context.Background()
	budget := redisUSD("2")
	maxWorst := redisUSD("0.10")
	reqs := RateLimit{Limit: 1_000_000, Unit: RateRequests, Window: time.Hour}
	toks := RateLimit{Limit: 1_000_000_000, Unit: RateTokens, Window: time.Hour}
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: budget, Period: PeriodDay}}, RateLimits: []RateLimit{reqs, toks}},
		{Scope: redisScopeTeam, Budgets: []Budget{{Limit: redisUSD("1000"), Period: PeriodMonth}}},
		{Scope: redisScopeCustomer, Budgets: []Budget{{Limit: redisUSD("1000"), Period: PeriodTotal}}},
	}
	const goroutines, perGoroutine = 200, 5
	var (
		wg                      sync.WaitGroup
		charged                 atomic.Int64
		admitted, refused, part atomic.Int64
		tokens                  atomic.Int64
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := inst[g%2]
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for i := range perGoroutine {
				now := redisT0.Add(time.Duration(g*perGoroutine+i) * time.Millisecond)
				worst := 1 + Money(rng.Int64N(int64(maxWorst)))
				est := 1 + rng.Int64N(1000)
				tk, rej, err := c.Admit(ctx, &Admission{Now: now, Location: time.UTC, Levels: levels, WorstCase: worst, Tokens: est, Lease: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				if rej != nil {
					if rej.Reason != RejectBudget || rej.Scope != redisScopeKey {
						t.Errorf("rejection %+v", rej)
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				if tk.Reservations[0].Partial {
					part.Add(1)
				}
				cost := Money(rng.Int64N(int64(worst) + 1)) // at most the worst case
				used := rng.Int64N(2000)
				// Settle from either instance.
				if _, err := inst[rng.IntN(2)].Settle(ctx, tk, Settlement{Now: now, Cost: cost, Tokens: used}); err != nil {
					t.Error(err)
					return
				}
				charged.Add(int64(cost))
				tokens.Add(used)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	f := &redisFixture{t: t, rc: inst[0], ctx: ctx}
	spent, reserved, partials := f.budgetState(redisScopeKey, PeriodDay, redisDayStart(redisT0))
	t.Logf("admitted %d (partial %d), refused %d, charged %s of %s", admitted.Load(), part.Load(), refused.Load(), Money(charged.Load()), budget)
	if refused.Load() == 0 || admitted.Load() == 0 {
		t.Fatal("the budget should both admit and refuse")
	}
	if spent != charged.Load() || reserved != 0 || partials != 0 {
		t.Fatalf("spent %s reserved %s partials %d, want spent %s and nothing held", Money(spent), Money(reserved), partials, Money(charged.Load()))
	}
	if Money(spent) > budget+maxWorst {
		t.Fatalf("spent %s > budget %s + largest worst case %s", Money(spent), budget, maxWorst)
	}
	for _, s := range []struct {
		scope Scope
		p     Period
	}{{redisScopeTeam, PeriodMonth}, {redisScopeCustomer, PeriodTotal}} {
		sp, res, pa := f.budgetState(s.scope, s.p, s.p.Start(redisT0, time.UTC))
		if sp != charged.Load() || res != 0 || pa != 0 {
			t.Fatalf("%s: spent %s reserved %s partials %d", s.scope, Money(sp), Money(res), pa)
		}
	}
	// Refused requests were counted nowhere: the limiters saw exactly the
	// admitted ones, corrected to the actual tokens.
	if _, curr, _ := f.limiterState(redisScopeKey, reqs); curr != admitted.Load() {
		t.Fatalf("request limiter %d, admitted %d", curr, admitted.Load())
	}
	if _, curr, _ := f.limiterState(redisScopeKey, toks); curr != tokens.Load() {
		t.Fatalf("token limiter %d, used %d", curr, tokens.Load())
	}
	if n, _ := inst[1].client.ZCard(ctx, inst[1].leasesKey).Result(); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}

// --- failures ---

func TestRedisUnreachable(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rc, err := NewRedisCounters(RedisOptions{URL: "redis://:s3cretpw@" + addr + "/0", DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	redisExpectFailures(t, rc, "s3cretpw", 3*time.Second)
}

func TestRedisUnresponsive(t *testing.T) {
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				<-done
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		close(done)
		conns.Wait()
	})
	rc, err := NewRedisCounters(RedisOptions{URL: "redis://user:s3cretpw@" + l.Addr().String() + "/0",
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	redisExpectFailures(t, rc, "s3cretpw", 5*time.Second)
}

// redisExpectFailures runs every operation against a broken Redis: each must
// return an error within bound, never hang or panic, and never quote secret.
func redisExpectFailures(t *testing.T, rc *RedisCounters, secret string, bound time.Duration) {
	t.Helper()
	levels := []Level{{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1"), Period: PeriodDay}},
		RateLimits: []RateLimit{{Limit: 10, Unit: RateTokens, Window: time.Minute}}}}
	tk := &Ticket{ID: redisNewTicketID(), Admitted: redisT0,
		Reservations: []Reservation{{Scope: redisScopeKey, Budget: levels[0].Budgets[0], PeriodStart: redisDayStart(redisT0), Amount: 1}},
		TokenCharges: []TokenCharge{{Scope: redisScopeKey, Limit: levels[0].RateLimits[0], Window: 1, Tokens: 1}}}
	ops := map[string]func(context.Context) error{
		"Ping":    rc.Ping,
		"Prepare": func(ctx context.Context) error { return rc.Prepare(ctx, levels, redisT0, time.UTC) },
		"Admit": func(ctx context.Context) error {
			tk, rej, err := rc.Admit(ctx, &Admission{Now: redisT0, Levels: levels, WorstCase: 1, Lease: time.Minute})
			if tk != nil || rej != nil {
				t.Errorf("Admit returned %v %v with its error", tk, rej)
			}
			return err
		},
		"Settle": func(ctx context.Context) error {
			ch, err := rc.Settle(ctx, tk, Settlement{Now: redisT0, Cost: 1})
			if ch != nil {
				t.Errorf("Settle returned %v with its error", ch)
			}
			return err
		},
		"Status": func(ctx context.Context) error { _, err := rc.Status(ctx, levels, redisT0, time.UTC); return err },
		"Renew":  func(ctx context.Context) error { return rc.Renew(ctx, []*Ticket{tk}, redisT0, time.Minute) },
		"Sweep":  func(ctx context.Context) error { return rc.Sweep(ctx, redisT0) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op(context.Background())
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if took > bound {
			t.Errorf("%s took %v (bound %v): %v", name, took, bound, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error quotes the password: %v", name, err)
		}
		if !strings.HasPrefix(err.Error(), "redis counters: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
	// The caller's deadline bounds an operation too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := rc.Ping(ctx); err == nil || time.Since(start) > time.Second {
		t.Errorf("Ping with a 50 ms deadline: %v after %v", err, time.Since(start))
	}
}

func TestRedisOptions(t *testing.T) {
	for _, u := range []string{
		"redis://:hunter2pw@127.0.0.1:notaport/0",
		"redis://user:hunter2pw@exa mple.com:6379/0",
		"redis://:hunter2pw@127.0.0.1:6379/x",
		"ftp://:hunter2pw@127.0.0.1:6379/0",
		"redis://:hunter2pw@127.0.0.1:6379/0?pool_size=many",
		"redis://:hunter2%70w@127.0.0.1:bad/0",
	} {
		_, err := NewRedisCounters(RedisOptions{URL: u})
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
	if _, err := NewRedisCounters(RedisOptions{}); err == nil {
		t.Error("no URL accepted")
	}

	rc, err := NewRedisCounters(RedisOptions{URL: "redis://127.0.0.1:6379/2"})
	if err != nil {
		t.Fatal(err)
	}
	o := rc.client.(*redis.Client).Options()
	if o.DialTimeout != DefaultRedisTimeout || o.ReadTimeout != DefaultRedisTimeout || o.WriteTimeout != DefaultRedisTimeout ||
		o.DB != 2 || o.DialerRetries != 1 || o.MaxRetries != 1 || !o.ContextTimeoutEnabled || rc.prefix != "{llmgw}:" {
		t.Fatalf("options %+v", o)
	}
	rc.Close()
	rc, err = NewRedisCounters(RedisOptions{URL: "rediss://127.0.0.1:6380/0?dial_timeout=3s", ReadTimeout: time.Second, Prefix: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	o = rc.client.(*redis.Client).Options()
	if o.DialTimeout != 3*time.Second || o.ReadTimeout != time.Second || o.TLSConfig == nil || rc.leasesKey != "{gw}:leases" {
		t.Fatalf("options %+v", o)
	}
	rc.Close()

	// A client passed in stays open after Close.
	srv := startRedisServer(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer client.Close()
	rc, err = NewRedisCounters(RedisOptions{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("passed-in client closed: %v", err)
	}
}

// --- benchmark ---

// BenchmarkRedisAdmitSettle is one request's trip through the counters on a
// local redis-server: key, team and customer with a budget each, a request
// and a token limit on the key.
func BenchmarkRedisAdmitSettle(b *testing.B) {
	srv := startRedisServer(b)
	rc := newRedisCountersOn(b, srv, "")
	ctx := context.Background()
	levels := []Level{
		{Scope: redisScopeKey, Budgets: []Budget{{Limit: redisUSD("1000000"), Period: PeriodDay}}, RateLimits: []RateLimit{
			{Limit: 1 << 40, Unit: RateRequests, Window: time.Minute},
			{Limit: 1 << 40, Unit: RateTokens, Window: time.Minute},
		}},
		{Scope: redisScopeTeam, Budgets: []Budget{{Limit: redisUSD("1000000"), Period: PeriodMonth}}},
		{Scope: redisScopeCustomer, Budgets: []Budget{{Limit: redisUSD("1000000"), Period: PeriodTotal}}},
	}
	a := Admission{Now: redisT0, Location: time.UTC, Levels: levels, WorstCase: redisUSD("0.5"), Tokens: 2000, Lease: 30 * time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tk, rej, err := rc.Admit(ctx, &a)
		if err != nil || rej != nil {
			b.Fatal(err, rej)
		}
		if _, err := rc.Settle(ctx, tk, Settlement{Now: redisT0, Cost: 1, Tokens: 1500}); err != nil {
			b.Fatal(err)
		}
	}
}
