package governance

import "testing"

func TestCents(t *testing.T) {
	for _, c := range []struct {
		m     Money
		floor bool
		want  string
	}{
		{0, false, "$0.00"},
		{1_230_000_000, false, "$1.23"},
		{1_234_999_999, false, "$1.23"},
		{1_235_000_000, false, "$1.24"},
		{1_239_999_999, true, "$1.23"},
		{5 * Dollar, true, "$5.00"},
		{4_999_999, false, "$0.00"},
		{5_000_000, false, "$0.01"},
		{-3, false, "$0.00"},
		{1234 * Dollar, false, "$1234.00"},
	} {
		if got := Cents(c.m, c.floor); got != c.want {
			t.Errorf("Cents(%d, %v) = %q, want %q", c.m, c.floor, got, c.want)
		}
	}
}

func TestBudgetShort(t *testing.T) {
	for _, c := range []struct {
		b    Budget
		want string
	}{
		{Budget{5 * Dollar, PeriodDay}, "$5/day"},
		{Budget{Dollar / 2, PeriodHour}, "$0.50/hour"},
		{Budget{1000 * Dollar, PeriodMonth}, "$1000/month"},
		{Budget{100 * Dollar, PeriodTotal}, "$100 total"},
		{Budget{12_345_000_000, PeriodWeek}, "$12.345/week"},
	} {
		if got := BudgetShort(c.b); got != c.want {
			t.Errorf("BudgetShort(%v) = %q, want %q", c.b, got, c.want)
		}
	}
}

func TestMeLine(t *testing.T) {
	alice := Scope{ScopeKey, "alice"}
	team := Scope{ScopeTeam, "platform"}
	day := BudgetStatus{Scope: alice, Budget: Budget{5 * Dollar, PeriodDay}, Spent: 1_230_000_000}
	month := BudgetStatus{Scope: team, Budget: Budget{1000 * Dollar, PeriodMonth}, Spent: 998 * Dollar, Reserved: Dollar / 2}
	for _, c := range []struct {
		name string
		line MeLine
		want string
	}{
		{"no budget, no session", MeLine{Key: "alice", Today: 1_230_000_000}, "alice · today $1.23"},
		{"the issue's example", MeLine{Key: "alice", Today: 1_230_000_000, Budgets: []BudgetStatus{day}, Session: 410_000_000, HasSession: true},
			"alice · today $1.23 · $3.77 left of $5/day · session $0.41"},
		{"reserved counts against what is left", MeLine{Key: "alice", Budgets: []BudgetStatus{{Scope: alice, Budget: day.Budget, Spent: Dollar, Reserved: 1_005_000_000}}},
			"alice · today $0.00 · $2.99 left of $5/day"},
		{"the team's budget is tighter", MeLine{Key: "alice", Today: 1_230_000_000, Budgets: []BudgetStatus{day, month}},
			"alice · today $1.23 · $1.50 left of $1000/month for team platform"},
		{"overspent", MeLine{Key: "alice", Budgets: []BudgetStatus{{Scope: alice, Budget: day.Budget, Spent: 6 * Dollar}}, HasSession: true},
			"alice · today $0.00 · $0.00 left of $5/day · session $0.00"},
		{"a tie goes to the narrowest level", MeLine{Key: "alice", Budgets: []BudgetStatus{
			{Scope: alice, Budget: Budget{2 * Dollar, PeriodDay}, Spent: Dollar},
			{Scope: team, Budget: Budget{3 * Dollar, PeriodDay}, Spent: 2 * Dollar}}},
			"alice · today $0.00 · $1.00 left of $2/day"},
	} {
		if got := c.line.String(); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func BenchmarkMeLine(b *testing.B) {
	l := MeLine{Key: "alice", Today: 1_230_000_000, HasSession: true, Session: 410_000_000, Budgets: []BudgetStatus{
		{Scope: Scope{ScopeKey, "alice"}, Budget: Budget{5 * Dollar, PeriodDay}, Spent: 1_230_000_000},
		{Scope: Scope{ScopeTeam, "platform"}, Budget: Budget{1000 * Dollar, PeriodMonth}, Spent: 100 * Dollar},
	}}
	b.ReportAllocs()
	for b.Loop() {
		_ = l.String()
	}
}
