package governance

import (
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestHashSecret(t *testing.T) {
	// SHA-256("test"), the value in DESIGN.md's example.
	h := HashSecret("test")
	if got := h.String(); got != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Fatalf("hash = %s", got)
	}
	p, err := ParseSecretHash(strings.ToUpper(h.String()))
	if err != nil || p != h {
		t.Fatalf("ParseSecretHash round trip: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("z", 64), strings.Repeat("a", 62)} {
		if _, err := ParseSecretHash(bad); err == nil {
			t.Errorf("ParseSecretHash(%q) accepted", bad)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+43 {
		t.Fatalf("bad secrets %q %q", a, b)
	}
	if base62(make([]byte, 32)) != strings.Repeat("0", 43) {
		t.Fatal("base62 of zero")
	}
}

func TestRegistry(t *testing.T) {
	r, err := NewRegistry(
		[]CustomerSpec{{Name: "acme", Limits: Limits{Models: []llm.Glob{"claude-*"}}}},
		[]TeamSpec{{Name: "platform", Customer: "acme", Limits: Limits{Models: []llm.Glob{"claude-sonnet-*", "claude-haiku-*", "gpt-*"}}}},
		[]KeySpec{
			{Name: "alice", Hash: HashSecret("a"), Team: "platform", Limits: Limits{Models: []llm.Glob{"claude-sonnet-*", "gpt-4o"}}},
			{Name: "bob", Hash: HashSecret("b"), Customer: "acme"},
			{Name: "carol", Hash: HashSecret("c")},
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := r.Authenticate("a")
	if alice == nil || alice.TeamName() != "platform" || alice.CustomerName() != "acme" {
		t.Fatalf("alice = %+v", alice)
	}
	if got := alice.Path(); len(got) != 3 || got[0].String() != "key alice" || got[2].String() != "customer acme" {
		t.Fatalf("path %v", got)
	}
	for model, want := range map[string]bool{
		"claude-sonnet-4-5": true,  // every list allows it
		"claude-haiku-4-5":  false, // key does not
		"gpt-4o":            false, // customer does not
		"claude-opus-4-5":   false,
	} {
		if got := alice.Allows(model); got != want {
			t.Errorf("alice.Allows(%s) = %v", model, got)
		}
	}
	if bob := r.Authenticate("b"); bob == nil || bob.TeamName() != "" || bob.CustomerName() != "acme" || !bob.Allows("claude-opus-4-5") || bob.Allows("gpt-5") {
		t.Fatalf("bob = %+v", bob)
	}
	if carol := r.Authenticate("c"); carol == nil || !carol.Allows("anything") || len(carol.Path()) != 1 {
		t.Fatal("carol")
	}
	if r.Authenticate("") != nil || r.Authenticate("zzz") != nil {
		t.Fatal("unknown secret authenticated")
	}
	if len(r.Keys()) != 3 || r.Keys()[0].Name != "alice" {
		t.Fatal("keys not sorted")
	}
}

func TestRegistryErrors(t *testing.T) {
	h := HashSecret
	for _, tc := range []struct {
		name      string
		customers []CustomerSpec
		teams     []TeamSpec
		keys      []KeySpec
		want      string
	}{
		{"dup customer", []CustomerSpec{{Name: "a"}, {Name: "a"}}, nil, nil, `customer "a" defined twice`},
		{"dup team", nil, []TeamSpec{{Name: "t"}, {Name: "t"}}, nil, `team "t" defined twice`},
		{"team unknown customer", nil, []TeamSpec{{Name: "t", Customer: "x"}}, nil, `unknown customer "x"`},
		{"dup key", nil, nil, []KeySpec{{Name: "k", Hash: h("1")}, {Name: "k", Hash: h("2")}}, `key "k" defined twice`},
		{"key unknown team", nil, nil, []KeySpec{{Name: "k", Team: "t"}}, `unknown team "t"`},
		{"key unknown customer", nil, nil, []KeySpec{{Name: "k", Customer: "c"}}, `unknown customer "c"`},
		{"same secret", nil, nil, []KeySpec{{Name: "a", Hash: h("s")}, {Name: "b", Hash: h("s")}}, `same secret`},
		{"customer conflict", []CustomerSpec{{Name: "c1"}, {Name: "c2"}}, []TeamSpec{{Name: "t", Customer: "c1"}},
			[]KeySpec{{Name: "k", Team: "t", Customer: "c2"}}, `differs from its team's customer`},
	} {
		_, err := NewRegistry(tc.customers, tc.teams, tc.keys, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestKeyLimitsAndUsable(t *testing.T) {
	day := Budget{Limit: 5 * Dollar, Period: PeriodDay}
	month := Budget{Limit: 400 * Dollar, Period: PeriodMonth}
	rpm := RateLimit{Limit: 600, Unit: RateRequests, Window: time.Minute}
	exp := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r, err := NewRegistry(
		[]CustomerSpec{{Name: "acme", Limits: Limits{Budgets: []Budget{month}, BudgetWarn: 90}}},
		[]TeamSpec{{Name: "platform", Customer: "acme", Limits: Limits{RateLimits: []RateLimit{rpm}}}, {Name: "off", Limits: Limits{Disabled: true}}},
		[]KeySpec{
			{Name: "alice", Hash: HashSecret("a"), Team: "platform", Limits: Limits{Budgets: []Budget{day, month}, Expires: exp}},
			{Name: "bob", Hash: HashSecret("b"), Team: "off"},
			{Name: "carol", Hash: HashSecret("c")},
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.DefaultBudgetWarn = 80
	alice := r.Key("alice")
	lv := alice.Levels()
	if len(lv) != 3 || len(lv[0].Budgets) != 2 || len(lv[1].RateLimits) != 1 || lv[2].Budgets[0] != month || !alice.HasBudgets() || !alice.HasLimits() {
		t.Fatalf("levels %+v", lv)
	}
	if r.Key("carol").HasLimits() {
		t.Fatal("carol has no limits")
	}
	if u := alice.Usable(exp.Add(-time.Second)); u != nil {
		t.Fatalf("usable before expiry: %+v", u)
	}
	if u := alice.Usable(exp); u == nil || u.Reason != "expired" || !u.At.Equal(exp) || u.Scope.String() != "key alice" {
		t.Fatalf("expired: %+v", u)
	}
	if u := r.Key("bob").Usable(exp); u == nil || u.Reason != "disabled" || u.Scope.String() != "team off" {
		t.Fatalf("disabled team: %+v", u)
	}
	if got := r.BudgetWarnFor(Scope{ScopeCustomer, "acme"}); got != 90 {
		t.Errorf("acme warn %d", got)
	}
	if got := r.BudgetWarnFor(Scope{ScopeKey, "alice"}); got != 80 {
		t.Errorf("alice warn %d", got)
	}
	all := r.AllLevels()
	if len(all) != 3 || all[0].Scope.String() != "customer acme" || all[1].Scope.String() != "team platform" || all[2].Scope.String() != "key alice" {
		t.Fatalf("all levels %+v", all)
	}
}

// TestRegistryRefusesUnsafeNames: a name with a control character would
// split log lines and corrupt reports; one that is not UTF-8 would break
// /metrics. Both are refused when the configuration loads.
func TestRegistryRefusesUnsafeNames(t *testing.T) {
	for _, tc := range []struct {
		customers []CustomerSpec
		teams     []TeamSpec
		keys      []KeySpec
		want      string
	}{
		{keys: []KeySpec{{Name: "alice\nbob", Hash: HashSecret("a")}}, want: `key "alice\nbob": the name must not contain control characters`},
		{keys: []KeySpec{{Name: "tab\there", Hash: HashSecret("a")}}, want: "control characters"},
		{keys: []KeySpec{{Name: "del\x7f", Hash: HashSecret("a")}}, want: "control characters"},
		{keys: []KeySpec{{Name: "c1\u0085", Hash: HashSecret("a")}}, want: "control characters"},
		{keys: []KeySpec{{Name: "sep\u2028", Hash: HashSecret("a")}}, want: "control characters"},
		{keys: []KeySpec{{Name: "bad\xff", Hash: HashSecret("a")}}, want: "not valid UTF-8"},
		{keys: []KeySpec{{Name: "", Hash: HashSecret("a")}}, want: "key without a name"},
		{teams: []TeamSpec{{Name: "plat\rform"}}, want: `team "plat\rform": the name must not contain control characters`},
		{customers: []CustomerSpec{{Name: "ac\x00me"}}, want: `customer "ac\x00me": the name must not contain control characters`},
	} {
		_, err := NewRegistry(tc.customers, tc.teams, tc.keys, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	// Letters of any script, spaces and punctuation are fine.
	if _, err := NewRegistry([]CustomerSpec{{Name: "Société Générale"}}, []TeamSpec{{Name: "チーム"}},
		[]KeySpec{{Name: "alice@example.com (laptop)", Hash: HashSecret("a")}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesUnpriced(t *testing.T) {
	r, err := NewRegistry(nil, []TeamSpec{{Name: "capped", Limits: Limits{Budgets: []Budget{{Limit: Dollar, Period: PeriodDay}}}}},
		[]KeySpec{{Name: "free", Hash: HashSecret("f")}, {Name: "budgeted", Hash: HashSecret("b"), Team: "capped"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	free, budgeted := r.Key("free"), r.Key("budgeted")
	for _, tc := range []struct {
		policy         string
		free, budgeted bool
	}{{"", false, true}, {"allow", false, false}, {"refuse", true, true}} {
		p, err := ParseUnpricedPolicy(tc.policy)
		if err != nil {
			t.Fatal(err)
		}
		r.Unpriced = p
		if r.RefusesUnpriced(free) != tc.free || r.RefusesUnpriced(budgeted) != tc.budgeted {
			t.Errorf("unpriced %q: free %v budgeted %v", tc.policy, r.RefusesUnpriced(free), r.RefusesUnpriced(budgeted))
		}
	}
	if _, err := ParseUnpricedPolicy("maybe"); err == nil {
		t.Error("unpriced maybe accepted")
	}
}
