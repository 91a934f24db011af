package governance

// A BudgetWarning is a settlement that carried a budget's spend across its
// budget_warn threshold.
type BudgetWarning struct {
	BudgetChange
	// Percent is the threshold crossed, in percent of the limit.
	Percent int
}

// BudgetWarnings returns the changes of one settlement that crossed their
// scope's budget_warn threshold (r.BudgetWarnFor): spend below the
// threshold before, at or above it after. A scope without a threshold
// never warns.
func (r *Registry) BudgetWarnings(changes []BudgetChange) []BudgetWarning {
	var out []BudgetWarning
	for _, c := range changes {
		pct := r.BudgetWarnFor(c.Scope)
		if pct <= 0 {
			continue
		}
		threshold := c.Budget.Limit * Money(pct) / 100
		if c.Before < threshold && c.After >= threshold {
			out = append(out, BudgetWarning{BudgetChange: c, Percent: pct})
		}
	}
	return out
}
