package governance

import (
	"fmt"
	"sort"

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

// Customer is the widest level: an organisation or business unit.
type Customer struct {
	Name string
	// Models, when not empty, is the allow-list every team and key of the
	// customer is intersected with.
	Models []llm.Glob
}

// Team groups keys, optionally under a customer.
type Team struct {
	Name     string
	Customer *Customer
	Models   []llm.Glob
}

// Key is one virtual key: a developer or a service.
type Key struct {
	Name string
	Hash SecretHash
	// Team and Customer place the key in the hierarchy; Customer is the
	// team's customer when the key belongs to a team.
	Team     *Team
	Customer *Customer
	Models   []llm.Glob
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
	byHash    map[SecretHash]*Key
	keys      []*Key
	teams     map[string]*Team
	customers map[string]*Customer
	Prices    *PriceTable
}

// CustomerSpec, TeamSpec and KeySpec describe the hierarchy to NewRegistry.
type (
	CustomerSpec struct {
		Name   string
		Models []llm.Glob
	}
	TeamSpec struct {
		Name, Customer string
		Models         []llm.Glob
	}
	KeySpec struct {
		Name           string
		Hash           SecretHash
		Team, Customer string
		Models         []llm.Glob
	}
)

// NewRegistry links keys to teams and customers, rejecting dangling
// references, duplicate names and two keys with the same secret.
func NewRegistry(customers []CustomerSpec, teams []TeamSpec, keys []KeySpec, prices *PriceTable) (*Registry, error) {
	r := &Registry{
		byHash:    make(map[SecretHash]*Key, len(keys)),
		teams:     make(map[string]*Team, len(teams)),
		customers: make(map[string]*Customer, len(customers)),
		Prices:    prices,
	}
	if r.Prices == nil {
		r.Prices = NewPriceTable(nil)
	}
	for _, c := range customers {
		if _, dup := r.customers[c.Name]; dup {
			return nil, fmt.Errorf("customer %q defined twice", c.Name)
		}
		r.customers[c.Name] = &Customer{Name: c.Name, Models: c.Models}
	}
	for _, t := range teams {
		if _, dup := r.teams[t.Name]; dup {
			return nil, fmt.Errorf("team %q defined twice", t.Name)
		}
		team := &Team{Name: t.Name, Models: t.Models}
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
		if names[ks.Name] {
			return nil, fmt.Errorf("key %q defined twice", ks.Name)
		}
		names[ks.Name] = true
		k := &Key{Name: ks.Name, Hash: ks.Hash, Models: ks.Models}
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

// Team returns a team by name.
func (r *Registry) Team(name string) *Team { return r.teams[name] }

// Customer returns a customer by name.
func (r *Registry) Customer(name string) *Customer { return r.customers[name] }
