package governance

import (
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestRequestLimitsOnly(t *testing.T) {
	key, team := Scope{ScopeKey, "alice"}, Scope{ScopeTeam, "platform"}
	levels := []Level{
		{Scope: key, Budgets: []Budget{{Period: PeriodDay, Limit: 5 * Dollar}}, RateLimits: []RateLimit{
			{Unit: RateRequests, Limit: 10, Window: time.Minute}, {Unit: RateTokens, Limit: 1000, Window: time.Minute}}},
		{Scope: team, Budgets: []Budget{{Period: PeriodMonth, Limit: 50 * Dollar}}, RateLimits: []RateLimit{{Unit: RateTokens, Limit: 5, Window: time.Minute}}},
	}
	got := RequestLimitsOnly(levels)
	if len(got) != 1 || got[0].Scope != key || len(got[0].Budgets) != 0 || len(got[0].RateLimits) != 1 || got[0].RateLimits[0].Unit != RateRequests {
		t.Fatalf("got %+v", got)
	}
	if RequestLimitsOnly(levels[1:]) != nil {
		t.Fatal("a level with only token limits and budgets must drop out")
	}
}

func TestRateLimitTokens(t *testing.T) {
	u := llm.Usage{InputTokens: 1, OutputTokens: 20, CacheReadTokens: 90_000, CacheWrite5mTokens: 300, CacheWrite1hTokens: 4000, WebSearchRequests: 7}
	if got := RateLimitTokens(u, false); got != 4321 {
		t.Fatalf("without cache reads %d, want 4321", got)
	}
	if got := RateLimitTokens(u, true); got != 94321 {
		t.Fatalf("with cache reads %d, want 94321", got)
	}
}

func TestBudgetWarnings(t *testing.T) {
	r, err := NewRegistry(nil, []TeamSpec{{Name: "platform", Limits: Limits{BudgetWarn: 50}}},
		[]KeySpec{{Name: "alice", Hash: HashSecret("a"), Team: "platform", Limits: Limits{BudgetWarn: 80}}, {Name: "bob", Hash: HashSecret("b")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	day := Budget{Period: PeriodDay, Limit: 10 * Dollar}
	change := func(kind ScopeKind, name string, before, after string) BudgetChange {
		return BudgetChange{Scope: Scope{kind, name}, Budget: day, Before: mustUSD(t, before), After: mustUSD(t, after)}
	}
	got := r.BudgetWarnings([]BudgetChange{
		change(ScopeKey, "alice", "7.99", "8"),     // crosses 80%: warns
		change(ScopeKey, "alice", "8", "9"),        // already past: no
		change(ScopeTeam, "platform", "4", "4.99"), // below 50%: no
		change(ScopeTeam, "platform", "4.99", "6"), // crosses 50%: warns
		change(ScopeKey, "bob", "0", "10"),         // no threshold: never
	})
	if len(got) != 2 || got[0].Scope.Name != "alice" || got[0].Percent != 80 || got[1].Scope.Name != "platform" || got[1].Percent != 50 {
		t.Fatalf("got %+v", got)
	}
}

func mustUSD(t *testing.T, s string) Money {
	t.Helper()
	m, err := ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUsageKinds(t *testing.T) {
	u := llm.Usage{InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheWrite5mTokens: 4, CacheWrite1hTokens: 5, WebSearchRequests: 6, Complete: true}
	sum := u.Add(u)
	for i, k := range llm.TokenKinds {
		if u.Count(k) != int64(i+1) || sum.Count(k) != 2*int64(i+1) {
			t.Fatalf("%s: %d, sum %d", k, u.Count(k), sum.Count(k))
		}
	}
	if !sum.Complete || u.Add(llm.Usage{}).Complete || (llm.Usage{}).IsZero() != true || u.IsZero() {
		t.Fatal("flags")
	}
}
