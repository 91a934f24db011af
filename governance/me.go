package governance

import (
	"strconv"
	"strings"
)

// MeLine is what the one-line developer view (GET …/llm_gateway/me?format=text,
// the Claude Code status line) shows: the key, its spend today, the budget
// with the least left on its path, and the Claude Code session's cost.
type MeLine struct {
	// Key is the key's name.
	Key string
	// Today is the key's spend since midnight in the gateway's timezone.
	Today Money
	// Budgets are every budget on the key's path (key, team, customer).
	Budgets []BudgetStatus
	// Session is the session's cost so far; HasSession says whether the
	// request named a session.
	Session    Money
	HasSession bool
}

// Remaining is what a new request can still get from a budget: limit −
// spent − reserved, never below zero.
func Remaining(s BudgetStatus) Money {
	return max(s.Budget.Limit-s.Spent-s.Reserved, 0)
}

// Tightest is the budget with the least remaining (the first of equals, so
// the narrowest level wins a tie), and false when there is none.
func Tightest(budgets []BudgetStatus) (BudgetStatus, bool) {
	if len(budgets) == 0 {
		return BudgetStatus{}, false
	}
	best := budgets[0]
	for _, b := range budgets[1:] {
		if Remaining(b) < Remaining(best) {
			best = b
		}
	}
	return best, true
}

// String renders the line: "alice · today $1.23 · $3.77 left of $5/day ·
// session $0.41". The budget part names the scope when the tightest
// budget is not the key's own ("$120.00 left of $1000/month for team
// platform"); it and the session part are left out when there is no budget
// or no session. Spend is rounded half up to the cent, what is left is
// rounded down (the line never promises money that is not there).
func (l MeLine) String() string {
	var b strings.Builder
	b.WriteString(l.Key)
	b.WriteString(" · today ")
	b.WriteString(Cents(l.Today, false))
	if t, ok := Tightest(l.Budgets); ok {
		b.WriteString(" · ")
		b.WriteString(Cents(Remaining(t), true))
		b.WriteString(" left of ")
		b.WriteString(BudgetShort(t.Budget))
		if t.Scope.Kind != ScopeKey || t.Scope.Name != l.Key {
			b.WriteString(" for ")
			b.WriteString(t.Scope.String())
		}
	}
	if l.HasSession {
		b.WriteString(" · session ")
		b.WriteString(Cents(l.Session, false))
	}
	return b.String()
}

// Cents writes an amount to the cent, "$1.23": rounded half up, or down
// when floor is set. Negative amounts are written as $0.00.
func Cents(m Money, floor bool) string {
	if m < 0 {
		m = 0
	}
	const cent = Dollar / 100
	c := m / cent
	if !floor && m%cent >= cent/2 {
		c++
	}
	frac := strconv.FormatInt(int64(c%100), 10)
	if len(frac) == 1 {
		frac = "0" + frac
	}
	return "$" + strconv.FormatInt(int64(c/100), 10) + "." + frac
}

// BudgetShort writes a budget the short way: "$5/day", "$0.50/hour",
// "$100 total" (whole dollars without decimals, otherwise cents, more
// decimals only when they are not zero).
func BudgetShort(b Budget) string {
	amount := "$" + strconv.FormatInt(int64(b.Limit/Dollar), 10)
	if b.Limit%Dollar != 0 {
		amount = FormatUSD(b.Limit)
	}
	if b.Period == PeriodTotal {
		return amount + " total"
	}
	return amount + "/" + b.Period.String()
}
