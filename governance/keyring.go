package governance

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Keyring is how one config load finds keys: the Registry's keys (the
// config's, which win a name both define) and the Directory's live keys,
// linked to the Registry's teams and customers. Authentication, admission,
// metrics, the admin API and the ledger see both alike. A Keyring is safe
// for concurrent use; it follows the Directory as it changes.
type Keyring struct {
	reg *Registry
	dir *Directory // nil: config keys only

	mu    sync.Mutex // serialises rebuilds
	cache atomic.Pointer[ringCache]

	// OnShadowed, when set, is told once per rebuild about each live key
	// that a config key of the same name hides on this instance.
	OnShadowed func(name string)
}

// ringCache is the live keys of one directory snapshot, resolved.
type ringCache struct {
	snap   *dirSnapshot
	byName map[string]*Key
	// problems says why a live key is disabled (its team left the config).
	problems map[string]string
	keys     []*Key // config and live keys, sorted by name
}

// NewKeyring joins a config load's registry and the live keys (dir may be
// nil).
func NewKeyring(reg *Registry, dir *Directory) *Keyring {
	return &Keyring{reg: reg, dir: dir}
}

// Registry is the config load's registry.
func (r *Keyring) Registry() *Registry { return r.reg }

// Directory is the live key directory (nil without one).
func (r *Keyring) Directory() *Directory { return r.dir }

// Conflicts lists the live, active keys whose names the config also
// defines: a config load refuses them (docs/keys.md).
func (r *Keyring) Conflicts() []string {
	if r.dir == nil {
		return nil
	}
	var out []string
	for _, k := range r.dir.List() {
		if k.Active() && r.reg.keysByName[k.Name] != nil {
			out = append(out, k.Name)
		}
	}
	return out
}

// current returns the resolved live keys of the directory's snapshot.
func (r *Keyring) current() *ringCache {
	if r.dir == nil {
		return nil
	}
	snap := r.dir.snap.Load()
	if c := r.cache.Load(); c != nil && c.snap == snap {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	snap = r.dir.snap.Load()
	if c := r.cache.Load(); c != nil && c.snap == snap {
		return c
	}
	c := r.resolve(snap)
	r.cache.Store(c)
	return c
}

// resolve links every active live key of snap to the registry.
func (r *Keyring) resolve(snap *dirSnapshot) *ringCache {
	c := &ringCache{snap: snap, byName: make(map[string]*Key, len(snap.byName)), problems: map[string]string{}}
	for name, lk := range snap.byName {
		if !lk.Active() {
			continue
		}
		if r.reg.keysByName[name] != nil {
			if r.OnShadowed != nil {
				r.OnShadowed(name)
			}
			continue
		}
		k, problem := r.link(lk)
		if problem != "" {
			c.problems[name] = problem
		}
		c.byName[name] = k
	}
	c.keys = make([]*Key, 0, len(r.reg.keys)+len(c.byName))
	c.keys = append(c.keys, r.reg.keys...)
	for _, k := range c.byName {
		c.keys = append(c.keys, k)
	}
	sort.Slice(c.keys, func(i, j int) bool { return c.keys[i].Name < c.keys[j].Name })
	return c
}

// link builds the Key of a live key; a team or customer the config no
// longer has disables it, with the reason.
func (r *Keyring) link(lk *LiveKey) (*Key, string) {
	k := &Key{Name: lk.Name, Limits: lk.Limits, MaxTokensCap: lk.MaxTokensCap}
	if len(lk.Secrets) > 0 {
		k.Hash = lk.Secrets[0].Hash
	}
	var problem string
	if lk.Team != "" {
		if t := r.reg.teams[lk.Team]; t != nil {
			k.Team, k.Customer = t, t.Customer
		} else {
			problem = fmt.Sprintf("team %q is not in the configuration", lk.Team)
		}
	}
	if lk.Customer != "" && problem == "" {
		c := r.reg.customers[lk.Customer]
		switch {
		case c == nil:
			problem = fmt.Sprintf("customer %q is not in the configuration", lk.Customer)
		case k.Customer != nil && k.Customer != c:
			problem = fmt.Sprintf("customer %q differs from its team's customer %q", lk.Customer, k.Customer.Name)
		default:
			k.Customer = c
		}
	}
	if problem != "" {
		k.Team, k.Customer = nil, nil
		k.Disabled = true
	}
	linkLevels(k)
	return k, problem
}

// linkLevels computes a key's levels from its path.
func linkLevels(k *Key) {
	k.levels = append(k.levels[:0], Level{Scope: Scope{ScopeKey, k.Name}, Budgets: k.Budgets, RateLimits: k.RateLimits})
	if k.Team != nil {
		k.levels = append(k.levels, Level{Scope: Scope{ScopeTeam, k.Team.Name}, Budgets: k.Team.Budgets, RateLimits: k.Team.RateLimits})
	}
	if k.Customer != nil {
		k.levels = append(k.levels, Level{Scope: Scope{ScopeCustomer, k.Customer.Name}, Budgets: k.Customer.Budgets, RateLimits: k.Customer.RateLimits})
	}
}

// Authenticate finds the key whose secret is given: a config key, or a
// live key's current secret or a rotated-out one within its grace period
// (judged by the directory's clock). nil when none matches (revoked keys
// included).
func (r *Keyring) Authenticate(secret string) *Key {
	if secret == "" {
		return nil
	}
	h := HashSecret(secret)
	if k := r.reg.byHash[h]; k != nil {
		return k
	}
	if r.dir == nil {
		return nil
	}
	lk := r.dir.authenticate(h, r.dir.now())
	if lk == nil {
		return nil
	}
	return r.current().byName[lk.Name]
}

// Key returns a key by name: the config's, else an active live key.
func (r *Keyring) Key(name string) *Key {
	if k := r.reg.keysByName[name]; k != nil {
		return k
	}
	if c := r.current(); c != nil {
		return c.byName[name]
	}
	return nil
}

// Keys lists every usable key name's Key, config and live, sorted by name.
// The slice is shared: do not modify it.
func (r *Keyring) Keys() []*Key {
	if c := r.current(); c != nil {
		return c.keys
	}
	return r.reg.keys
}

// Source is where a key comes from: SourceConfig, SourceAPI, a
// provisioner's name, or "" for no such key.
func (r *Keyring) Source(name string) string {
	if r.reg.keysByName[name] != nil {
		return SourceConfig
	}
	if r.dir != nil {
		if lk := r.dir.Lookup(name); lk != nil {
			return lk.Source
		}
	}
	return ""
}

// Problem says why a live key is disabled on this config ("" when it is
// not).
func (r *Keyring) Problem(name string) string {
	if c := r.current(); c != nil {
		return c.problems[name]
	}
	return ""
}

// AllLevels is Registry.AllLevels plus the levels of active live keys.
func (r *Keyring) AllLevels() []Level {
	out := r.reg.AllLevels()
	c := r.current()
	if c == nil {
		return out
	}
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := c.byName[n]
		if len(k.Budgets) > 0 || len(k.RateLimits) > 0 {
			out = append(out, Level{Scope: Scope{ScopeKey, n}, Budgets: k.Budgets, RateLimits: k.RateLimits})
		}
	}
	return out
}

// BudgetWarnings is Registry.BudgetWarnings; live keys take the default
// budget_warn.
func (r *Keyring) BudgetWarnings(changes []BudgetChange) []BudgetWarning {
	return r.reg.BudgetWarnings(changes)
}

// LiveKeySpec describes a key to create through the admin API.
type LiveKeySpec struct {
	Name           string
	Team, Customer string
	Limits
	MaxTokensCap int64
}

// LiveKeyPatch changes some fields of a live key; nil fields stay.
type LiveKeyPatch struct {
	Team, Customer *string
	Models         *[]string
	Budgets        *[]Budget
	RateLimits     *[]RateLimit
	Expires        *time.Time
	Disabled       *bool
	MaxTokensCap   *int64
}

// KeyTemplate is what a key provisioned at its first call gets (the
// oidc/identity template): limits, and the customer when the developer's
// team names none.
type KeyTemplate struct {
	// Customer places keys without a team; ignored when the team has one.
	Customer string
	Limits
	MaxTokensCap int64
	// Source names the provisioner in the admin API and audit ("oidc",
	// "identity"); default SourceProvisioned.
	Source string
}

// invalid wraps ErrInvalidKey.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidKey, fmt.Sprintf(format, a...))
}

// check validates a live key against the config: name, team, customer,
// budgets within the budgets of the key's team and customer (the cap),
// max_tokens_cap.
func (r *Keyring) check(name, team, customer string, l *Limits, maxTokensCap int64) error {
	if err := CheckName("key", name); err != nil {
		return invalid("%v", err)
	}
	if len(name) > 200 {
		return invalid("key name is longer than 200 bytes")
	}
	if maxTokensCap < 0 {
		return invalid("max_tokens_cap must be positive")
	}
	var path []Scope
	var caps []*Limits
	if team != "" {
		t := r.reg.teams[team]
		if t == nil {
			return invalid("unknown team %q (teams come from the configuration: %s)", team, r.teamNames())
		}
		path, caps = append(path, Scope{ScopeTeam, t.Name}), append(caps, &t.Limits)
		if t.Customer != nil {
			if customer != "" && customer != t.Customer.Name {
				return invalid("customer %q differs from team %q's customer %q", customer, team, t.Customer.Name)
			}
			path, caps = append(path, Scope{ScopeCustomer, t.Customer.Name}), append(caps, &t.Customer.Limits)
		}
	}
	if customer != "" && (team == "" || r.reg.teams[team].Customer == nil) {
		c := r.reg.customers[customer]
		if c == nil {
			return invalid("unknown customer %q", customer)
		}
		path, caps = append(path, Scope{ScopeCustomer, c.Name}), append(caps, &c.Limits)
	}
	seen := map[Period]bool{}
	for _, b := range l.Budgets {
		if b.Limit <= 0 {
			return invalid("budget: amount must be positive")
		}
		if b.Limit > MaxBudget {
			return invalid("budget: %s is more than the largest budget, %s", FormatUSD(b.Limit), FormatUSD(MaxBudget))
		}
		if seen[b.Period] {
			return invalid("two %s budgets", b.Period)
		}
		seen[b.Period] = true
		for i, lim := range caps {
			for _, cb := range lim.Budgets {
				if cb.Period == b.Period && b.Limit > cb.Limit {
					return invalid("budget %s is over the cap: %s has a %s budget", b, path[i], cb)
				}
			}
		}
	}
	for _, rl := range l.RateLimits {
		if rl.Limit <= 0 {
			return invalid("rate_limit: limit must be positive")
		}
	}
	return nil
}

func (r *Keyring) teamNames() string {
	ts := r.reg.Teams()
	if len(ts) == 0 {
		return "none are defined"
	}
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		if i == 10 {
			s += "…"
			break
		}
		s += t.Name
	}
	return s
}

// errNoDirectory is returned by writes on a Keyring without a directory.
var errNoDirectory = fmt.Errorf("live keys are not available on this gateway")

// Create creates a live key with a fresh secret, returned once. A name the
// config or an active live key has is ErrKeyExists; a revoked live key's
// name may be reused.
func (r *Keyring) Create(ctx context.Context, spec LiveKeySpec, actor string) (*LiveKey, string, error) {
	if r.dir == nil {
		return nil, "", errNoDirectory
	}
	if err := r.check(spec.Name, spec.Team, spec.Customer, &spec.Limits, spec.MaxTokensCap); err != nil {
		return nil, "", err
	}
	if r.reg.keysByName[spec.Name] != nil {
		return nil, "", fmt.Errorf("%w: key %q is defined in the configuration", ErrKeyExists, spec.Name)
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	now := r.dir.now()
	k, err := r.dir.write(ctx, spec.Name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		if cur != nil && cur.Active() {
			return nil, nil, fmt.Errorf("%w: key %q exists (created %s)", ErrKeyExists, spec.Name, cur.Created.UTC().Format(time.RFC3339))
		}
		k := &LiveKey{
			Name: spec.Name, Team: spec.Team, Customer: spec.Customer, Limits: spec.Limits,
			MaxTokensCap: spec.MaxTokensCap, Source: SourceAPI,
			Secrets: []LiveSecret{{Hash: HashSecret(secret), Created: now}},
			Created: now, Updated: now, CreatedBy: actor,
		}
		return k, r.audit(now, actor, "create", spec.Name, k, nil), nil
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// Update changes a live key's fields. Config keys are ErrKeyReadOnly.
func (r *Keyring) Update(ctx context.Context, name string, p LiveKeyPatch, actor string) (*LiveKey, error) {
	if err := r.writable(name); err != nil {
		return nil, err
	}
	now := r.dir.now()
	return r.dir.write(ctx, name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		if cur == nil || !cur.Active() {
			return nil, nil, notFound(name, cur)
		}
		next := cur.clone()
		if p.Team != nil {
			next.Team = *p.Team
		}
		if p.Customer != nil {
			next.Customer = *p.Customer
		}
		if p.Models != nil {
			next.Models = globs(*p.Models)
		}
		if p.Budgets != nil {
			next.Budgets = *p.Budgets
		}
		if p.RateLimits != nil {
			next.RateLimits = *p.RateLimits
		}
		if p.Expires != nil {
			next.Expires = *p.Expires
		}
		if p.Disabled != nil {
			next.Disabled = *p.Disabled
		}
		if p.MaxTokensCap != nil {
			next.MaxTokensCap = *p.MaxTokensCap
		}
		if err := r.check(name, next.Team, next.Customer, &next.Limits, next.MaxTokensCap); err != nil {
			return nil, nil, err
		}
		next.Updated = now
		return next, r.audit(now, actor, "update", name, next, cur), nil
	})
}

// MaxSecrets bounds a key's secrets: its current one and the rotated-out
// ones still in their grace period.
const MaxSecrets = 4

// Rotate gives a live key a new secret, returned once; the current one
// keeps working for grace (0: it stops at once). Secrets whose grace is
// over are dropped.
func (r *Keyring) Rotate(ctx context.Context, name string, grace time.Duration, actor string) (*LiveKey, string, error) {
	if err := r.writable(name); err != nil {
		return nil, "", err
	}
	if grace < 0 {
		return nil, "", invalid("grace must not be negative")
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	now := r.dir.now()
	k, err := r.dir.write(ctx, name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		if cur == nil || !cur.Active() {
			return nil, nil, notFound(name, cur)
		}
		next := cur.clone()
		next.Secrets = []LiveSecret{{Hash: HashSecret(secret), Created: now}}
		for i, s := range cur.Secrets {
			if i == 0 && s.NotAfter.IsZero() {
				if grace == 0 {
					continue
				}
				s.NotAfter = now.Add(grace)
			}
			if !s.NotAfter.IsZero() && !now.Before(s.NotAfter) {
				continue
			}
			if len(next.Secrets) < MaxSecrets {
				next.Secrets = append(next.Secrets, s)
			}
		}
		next.Updated = now
		a := r.audit(now, actor, "rotate", name, nil, nil)
		a.Detail = mustJSON(map[string]any{"grace": grace.String(), "previous_secret_valid_until": now.Add(grace).UTC().Format(time.RFC3339)})
		return next, a, nil
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// Revoke ends a live key: every secret answers 401 at once, and the name
// is not provisioned again (an admin may create it anew).
func (r *Keyring) Revoke(ctx context.Context, name, actor string) (*LiveKey, error) {
	if err := r.writable(name); err != nil {
		return nil, err
	}
	now := r.dir.now()
	return r.dir.write(ctx, name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		if cur == nil || !cur.Active() {
			return nil, nil, notFound(name, cur)
		}
		next := cur.clone()
		next.Revoked, next.Updated, next.Secrets = now, now, nil
		return next, r.audit(now, actor, "revoke", name, nil, nil), nil
	})
}

// Provision returns the key of a developer identified at their first call
// (SSO, Caddy authentication), creating it from tmpl when unknown, with
// one store write; later calls find it without I/O. Idempotent per name:
// a config key of that name is returned as is (the Caddyfile may define a
// developer's limits); an existing provisioned key follows the team given
// (the identity provider decides), keeping its limits (an admin may have
// changed them); a revoked name is ErrKeyRevoked; an unknown team is
// ErrInvalidKey.
func (r *Keyring) Provision(ctx context.Context, name, team string, tmpl KeyTemplate) (*Key, error) {
	if k := r.reg.keysByName[name]; k != nil {
		return k, nil
	}
	if r.dir == nil {
		return nil, errNoDirectory
	}
	if lk := r.dir.Lookup(name); lk != nil {
		if !lk.Active() {
			return nil, fmt.Errorf("%w: key %q was revoked at %s", ErrKeyRevoked, name, lk.Revoked.UTC().Format(time.RFC3339))
		}
		if lk.Team == team || lk.Source == SourceAPI {
			if k := r.current().byName[name]; k != nil {
				return k, nil
			}
		}
	}
	source := tmpl.Source
	if source == "" {
		source = SourceProvisioned
	}
	customer := tmpl.Customer
	if t := r.reg.teams[team]; t != nil && t.Customer != nil {
		customer = ""
	}
	if err := r.check(name, team, customer, &tmpl.Limits, tmpl.MaxTokensCap); err != nil {
		return nil, err
	}
	now := r.dir.now()
	_, err := r.dir.write(ctx, name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		switch {
		case cur != nil && !cur.Active():
			return nil, nil, fmt.Errorf("%w: key %q was revoked at %s", ErrKeyRevoked, name, cur.Revoked.UTC().Format(time.RFC3339))
		case cur != nil && (cur.Team == team || cur.Source == SourceAPI):
			return nil, nil, nil // provisioned meanwhile (another instance)
		case cur != nil:
			next := cur.clone()
			next.Team, next.Updated = team, now
			if t := r.reg.teams[team]; t != nil && t.Customer != nil {
				next.Customer = ""
			}
			return next, r.audit(now, source, "update", name, next, cur), nil
		}
		k := &LiveKey{
			Name: name, Team: team, Customer: customer, Limits: tmpl.Limits, MaxTokensCap: tmpl.MaxTokensCap,
			Source: source, Created: now, Updated: now, CreatedBy: source,
		}
		return k, r.audit(now, source, "provision", name, k, nil), nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := r.dir.Refresh(ctx); err != nil {
		// The write is published; refreshing only catches up with others.
		_ = err
	}
	if k := r.current().byName[name]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: key %q", ErrKeyNotFound, name)
}

// writable refuses writes to config keys and without a directory.
func (r *Keyring) writable(name string) error {
	if r.reg.keysByName[name] != nil {
		return fmt.Errorf("%w: key %q", ErrKeyReadOnly, name)
	}
	if r.dir == nil {
		return errNoDirectory
	}
	return nil
}

func notFound(name string, cur *LiveKey) error {
	if cur != nil {
		return fmt.Errorf("%w: key %q was revoked at %s", ErrKeyNotFound, name, cur.Revoked.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%w: key %q", ErrKeyNotFound, name)
}

// audit builds an audit entry; with next, its detail is the key's fields
// after the change (and before, with prev). Never a secret.
func (r *Keyring) audit(now time.Time, actor, action, name string, next, prev *LiveKey) *AuditEntry {
	a := &AuditEntry{At: now, Actor: actor, Action: action, Key: name}
	if next != nil {
		d := map[string]any{"after": liveKeyFields(next)}
		if prev != nil {
			d["before"] = liveKeyFields(prev)
		}
		a.Detail = mustJSON(d)
	} else {
		a.Detail = "{}"
	}
	return a
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
