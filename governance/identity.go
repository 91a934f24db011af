package governance

import (
	"fmt"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// ScopeKind is a level of the spending hierarchy.
type ScopeKind uint8

// The levels, from the widest to the narrowest.
const (
	ScopeCustomer ScopeKind = iota + 1
	ScopeTeam
	ScopeKey
)

// String is the level's name as used in metrics, logs and the ledger.
func (k ScopeKind) String() string {
	switch k {
	case ScopeCustomer:
		return "customer"
	case ScopeTeam:
		return "team"
	case ScopeKey:
		return "key"
	}
	return "unknown"
}

// Scope names one entity of the hierarchy: "key alice", "team platform".
type Scope struct {
	Kind ScopeKind
	Name string
}

// String is "kind name", the form rejection messages use.
func (s Scope) String() string { return s.Kind.String() + " " + s.Name }

// Limits are the controls any level of the hierarchy may carry.
type Limits struct {
	// Models, when not empty, is an allow-list of canonical model globs;
	// allow-lists intersect down the path.
	Models []llm.Glob
	// Budgets are spending limits, several periods allowed.
	Budgets []Budget
	// RateLimits are request and token rate limits.
	RateLimits []RateLimit
	// Disabled refuses every request on the path.
	Disabled bool
	// Expires, when not zero, refuses requests from then on.
	Expires time.Time
	// BudgetWarn is the share of a budget (percent, 1–100) whose crossing
	// is logged and counted; 0 inherits Registry.DefaultBudgetWarn
	// (BudgetWarnFor), and no warnings when that is 0 too.
	BudgetWarn int
}

// Customer is the widest level: an organisation or business unit.
type Customer struct {
	Name string
	Limits
}

// Team groups keys, optionally under a customer.
type Team struct {
	Name     string
	Customer *Customer
	Limits
}

// Key is one virtual key: a developer or a service.
type Key struct {
	Name string
	Hash SecretHash
	// Team and Customer place the key in the hierarchy; Customer is the
	// team's customer when the key belongs to a team.
	Team     *Team
	Customer *Customer
	Limits
	// MaxTokensCap, when positive, refuses requests asking for more output
	// tokens than this (and bounds the worst case of those that omit it).
	MaxTokensCap int64

	levels []Level // precomputed: key, team, customer
}

// TeamName is the key's team, or "" when it has none.
func (k *Key) TeamName() string {
	if k.Team == nil {
		return ""
	}
	return k.Team.Name
}

// CustomerName is the key's customer, or "" when it has none.
func (k *Key) CustomerName() string {
	if k.Customer == nil {
		return ""
	}
	return k.Customer.Name
}

// Levels is the key's path with the limits of each level, narrowest first.
// The slice is shared: do not modify it.
func (k *Key) Levels() []Level { return k.levels }

// HasBudgets reports whether any level of the path has a budget.
func (k *Key) HasBudgets() bool {
	for _, l := range k.levels {
		if len(l.Budgets) > 0 {
			return true
		}
	}
	return false
}

// HasLimits reports whether any level of the path has a budget or a rate limit.
func (k *Key) HasLimits() bool {
	for _, l := range k.levels {
		if len(l.Budgets) > 0 || len(l.RateLimits) > 0 {
			return true
		}
	}
	return false
}

// Refusal says why a key may not be used at a given time, or "" when it may.
type Refusal struct {
	// Reason is "disabled" or "expired".
	Reason string
	Scope  Scope
	At     time.Time // expiry time, for "expired"
}

// Usable checks the disabled flags and expiry times along the path.
func (k *Key) Usable(now time.Time) *Refusal {
	check := func(s Scope, l *Limits) *Refusal {
		if l.Disabled {
			return &Refusal{Reason: "disabled", Scope: s}
		}
		if !l.Expires.IsZero() && !now.Before(l.Expires) {
			return &Refusal{Reason: "expired", Scope: s, At: l.Expires}
		}
		return nil
	}
	if r := check(Scope{ScopeKey, k.Name}, &k.Limits); r != nil {
		return r
	}
	if k.Team != nil {
		if r := check(Scope{ScopeTeam, k.Team.Name}, &k.Team.Limits); r != nil {
			return r
		}
	}
	if k.Customer != nil {
		if r := check(Scope{ScopeCustomer, k.Customer.Name}, &k.Customer.Limits); r != nil {
			return r
		}
	}
	return nil
}

// BudgetWarnFor is the warning threshold for a level: its own, else the
// registry default.
func (r *Registry) BudgetWarnFor(s Scope) int {
	var own int
	switch s.Kind {
	case ScopeKey:
		if k := r.keysByName[s.Name]; k != nil {
			own = k.BudgetWarn
		}
	case ScopeTeam:
		if t := r.teams[s.Name]; t != nil {
			own = t.BudgetWarn
		}
	case ScopeCustomer:
		if c := r.customers[s.Name]; c != nil {
			own = c.BudgetWarn
		}
	}
	if own > 0 {
		return own
	}
	return r.DefaultBudgetWarn
}

// Path is the key's chain of scopes, narrowest first: key, team, customer.
func (k *Key) Path() []Scope {
	p := make([]Scope, 0, 3)
	p = append(p, Scope{ScopeKey, k.Name})
	if k.Team != nil {
		p = append(p, Scope{ScopeTeam, k.Team.Name})
	}
	if k.Customer != nil {
		p = append(p, Scope{ScopeCustomer, k.Customer.Name})
	}
	return p
}

// Allows reports whether the key may use a canonical model: it must match
// every non-empty allow-list on the key's path (allow-lists intersect).
func (k *Key) Allows(model string) bool {
	if len(k.Models) > 0 && !llm.MatchAny(k.Models, model) {
		return false
	}
	if k.Team != nil && len(k.Team.Models) > 0 && !llm.MatchAny(k.Team.Models, model) {
		return false
	}
	if k.Customer != nil && len(k.Customer.Models) > 0 && !llm.MatchAny(k.Customer.Models, model) {
		return false
	}
	return true
}

// Registry is the identity and price configuration of one config load: every
// key by the hash of its secret, the teams and customers, and the prices.
// It is rebuilt on each load and immutable afterwards.
type Registry struct {
	byHash     map[SecretHash]*Key
	keys       []*Key
	keysByName map[string]*Key
	teams      map[string]*Team
	customers  map[string]*Customer
	Prices     *PriceTable
	// DefaultBudgetWarn applies to levels without their own budget_warn.
	DefaultBudgetWarn int
	// Unpriced is what billable requests for a model without a price get.
	Unpriced UnpricedPolicy
}

// UnpricedPolicy says what happens to a billable request for a model the
// price table does not price (its cost, and so its worst case, would be 0).
type UnpricedPolicy uint8

// The unpriced policies ("unpriced allow|refuse"; unset is the default).
const (
	// UnpricedDefault refuses on a path that has a budget (the budget could
	// not hold) and forwards elsewhere.
	UnpricedDefault UnpricedPolicy = iota
	// UnpricedAllow forwards, counted in tokens and charged 0.
	UnpricedAllow
	// UnpricedRefuse refuses on every path.
	UnpricedRefuse
)

// ParseUnpricedPolicy reads "allow" or "refuse" ("" is the default).
func ParseUnpricedPolicy(s string) (UnpricedPolicy, error) {
	switch s {
	case "":
		return UnpricedDefault, nil
	case "allow":
		return UnpricedAllow, nil
	case "refuse":
		return UnpricedRefuse, nil
	}
	return 0, fmt.Errorf("unpriced: want allow or refuse, got %q", s)
}

// RefusesUnpriced reports whether the key may not make billable requests
// for models without a price.
func (r *Registry) RefusesUnpriced(k *Key) bool {
	switch r.Unpriced {
	case UnpricedAllow:
		return false
	case UnpricedRefuse:
		return true
	}
	return k.HasBudgets()
}

// CustomerSpec, TeamSpec and KeySpec describe the hierarchy to NewRegistry.
type (
	CustomerSpec struct {
		Name string
		Limits
	}
	TeamSpec struct {
		Name, Customer string
		Limits
	}
	KeySpec struct {
		Name           string
		Hash           SecretHash
		Team, Customer string
		Limits
		MaxTokensCap int64
	}
)

// CheckName refuses a customer, team or key name that would corrupt what
// carries it (log lines, metric labels, reports): empty, not valid UTF-8, or
// holding a control character (a newline, a tab, DEL, C1 controls) or a
// line or paragraph separator. kind is "customer", "team" or "key". The
// error is the same whichever way the configuration arrived.
func CheckName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s without a name", kind)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s %q: the name is not valid UTF-8", kind, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%s %q: the name must not contain control characters", kind, name)
		}
	}
	return nil
}

// NewRegistry links keys to teams and customers, rejecting names CheckName
// refuses, dangling references, duplicate names and two keys with the same
// secret.
func NewRegistry(customers []CustomerSpec, teams []TeamSpec, keys []KeySpec, prices *PriceTable) (*Registry, error) {
	r := &Registry{
		byHash:     make(map[SecretHash]*Key, len(keys)),
		keysByName: make(map[string]*Key, len(keys)),
		teams:      make(map[string]*Team, len(teams)),
		customers:  make(map[string]*Customer, len(customers)),
		Prices:     prices,
	}
	if r.Prices == nil {
		r.Prices = NewPriceTable(nil)
	}
	for _, c := range customers {
		if err := CheckName("customer", c.Name); err != nil {
			return nil, err
		}
		if _, dup := r.customers[c.Name]; dup {
			return nil, fmt.Errorf("customer %q defined twice", c.Name)
		}
		r.customers[c.Name] = &Customer{Name: c.Name, Limits: c.Limits}
	}
	for _, t := range teams {
		if err := CheckName("team", t.Name); err != nil {
			return nil, err
		}
		if _, dup := r.teams[t.Name]; dup {
			return nil, fmt.Errorf("team %q defined twice", t.Name)
		}
		team := &Team{Name: t.Name, Limits: t.Limits}
		if t.Customer != "" {
			c, ok := r.customers[t.Customer]
			if !ok {
				return nil, fmt.Errorf("team %q: unknown customer %q", t.Name, t.Customer)
			}
			team.Customer = c
		}
		r.teams[t.Name] = team
	}
	names := make(map[string]bool, len(keys))
	for _, ks := range keys {
		if err := CheckName("key", ks.Name); err != nil {
			return nil, err
		}
		if names[ks.Name] {
			return nil, fmt.Errorf("key %q defined twice", ks.Name)
		}
		names[ks.Name] = true
		k := &Key{Name: ks.Name, Hash: ks.Hash, Limits: ks.Limits, MaxTokensCap: ks.MaxTokensCap}
		if ks.Team != "" {
			t, ok := r.teams[ks.Team]
			if !ok {
				return nil, fmt.Errorf("key %q: unknown team %q", ks.Name, ks.Team)
			}
			k.Team = t
			k.Customer = t.Customer
		}
		if ks.Customer != "" {
			c, ok := r.customers[ks.Customer]
			if !ok {
				return nil, fmt.Errorf("key %q: unknown customer %q", ks.Name, ks.Customer)
			}
			if k.Customer != nil && k.Customer != c {
				return nil, fmt.Errorf("key %q: customer %q differs from its team's customer %q", ks.Name, ks.Customer, k.Customer.Name)
			}
			k.Customer = c
		}
		if other, dup := r.byHash[ks.Hash]; dup {
			return nil, fmt.Errorf("keys %q and %q have the same secret", other.Name, ks.Name)
		}
		r.byHash[ks.Hash] = k
		r.keys = append(r.keys, k)
		r.keysByName[k.Name] = k
		k.levels = append(k.levels, Level{Scope: Scope{ScopeKey, k.Name}, Budgets: k.Budgets, RateLimits: k.RateLimits})
		if k.Team != nil {
			k.levels = append(k.levels, Level{Scope: Scope{ScopeTeam, k.Team.Name}, Budgets: k.Team.Budgets, RateLimits: k.Team.RateLimits})
		}
		if k.Customer != nil {
			k.levels = append(k.levels, Level{Scope: Scope{ScopeCustomer, k.Customer.Name}, Budgets: k.Customer.Budgets, RateLimits: k.Customer.RateLimits})
		}
	}
	sort.Slice(r.keys, func(i, j int) bool { return r.keys[i].Name < r.keys[j].Name })
	return r, nil
}

// Authenticate finds the key whose secret is given; nil when none matches.
// The lookup is by SHA-256, so its timing reveals nothing about the secret.
func (r *Registry) Authenticate(secret string) *Key {
	if secret == "" {
		return nil
	}
	return r.byHash[HashSecret(secret)]
}

// Keys lists every key, sorted by name.
func (r *Registry) Keys() []*Key { return r.keys }

// Key returns a key by name.
func (r *Registry) Key(name string) *Key { return r.keysByName[name] }

// Teams lists every team, sorted by name.
func (r *Registry) Teams() []*Team {
	out := make([]*Team, 0, len(r.teams))
	for _, t := range r.teams {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Customers lists every customer, sorted by name.
func (r *Registry) Customers() []*Customer {
	out := make([]*Customer, 0, len(r.customers))
	for _, c := range r.customers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AllLevels lists every level that has a budget or rate limit, each once:
// what Counters.Prepare and the budget gauges need.
func (r *Registry) AllLevels() []Level {
	var out []Level
	add := func(s Scope, l *Limits) {
		if len(l.Budgets) > 0 || len(l.RateLimits) > 0 {
			out = append(out, Level{Scope: s, Budgets: l.Budgets, RateLimits: l.RateLimits})
		}
	}
	for _, c := range r.Customers() {
		add(Scope{ScopeCustomer, c.Name}, &c.Limits)
	}
	for _, t := range r.Teams() {
		add(Scope{ScopeTeam, t.Name}, &t.Limits)
	}
	for _, k := range r.keys {
		add(Scope{ScopeKey, k.Name}, &k.Limits)
	}
	return out
}

// Team returns a team by name.
func (r *Registry) Team(name string) *Team { return r.teams[name] }

// Customer returns a customer by name.
func (r *Registry) Customer(name string) *Customer { return r.customers[name] }
