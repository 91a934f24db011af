package module

import (
	"fmt"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// limits converts the JSON form into governance limits, validating it.
func (c LimitsConfig) limits() (governance.Limits, error) {
	l := governance.Limits{Models: globs(c.Models), Disabled: c.Disabled, BudgetWarn: c.BudgetWarn}
	if c.BudgetWarn < 0 || c.BudgetWarn > 100 {
		return l, fmt.Errorf("budget_warn must be a percentage between 1 and 100")
	}
	seen := map[governance.Period]bool{}
	for _, b := range c.Budgets {
		amount, err := governance.ParseMoney(b.Amount)
		if err != nil {
			return l, fmt.Errorf("budget: %v", err)
		}
		if amount <= 0 {
			return l, fmt.Errorf("budget: amount must be positive")
		}
		if amount > governance.MaxBudget {
			return l, fmt.Errorf("budget: %s is more than the largest budget, %s", governance.FormatUSD(amount), governance.FormatUSD(governance.MaxBudget))
		}
		p, err := governance.ParsePeriod(b.Period)
		if err != nil {
			return l, fmt.Errorf("budget: %v", err)
		}
		if seen[p] {
			return l, fmt.Errorf("two %s budgets", p)
		}
		seen[p] = true
		l.Budgets = append(l.Budgets, governance.Budget{Limit: amount, Period: p})
	}
	for _, r := range c.RateLimits {
		if r.Limit <= 0 {
			return l, fmt.Errorf("rate_limit: limit must be positive")
		}
		var unit governance.RateUnit
		switch r.Unit {
		case "requests":
			unit = governance.RateRequests
		case "tokens":
			unit = governance.RateTokens
		default:
			return l, fmt.Errorf("rate_limit: unit must be requests or tokens, not %q", r.Unit)
		}
		w, err := governance.ParseWindow(r.Per)
		if err != nil {
			return l, fmt.Errorf("rate_limit: %v", err)
		}
		l.RateLimits = append(l.RateLimits, governance.RateLimit{Limit: r.Limit, Unit: unit, Window: w})
	}
	if c.Expires != "" {
		t, err := time.Parse(time.RFC3339, c.Expires)
		if err != nil {
			return l, fmt.Errorf("expires: want an RFC 3339 time such as 2026-12-31T23:59:59Z: %v", err)
		}
		l.Expires = t
	}
	return l, nil
}
