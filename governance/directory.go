package governance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Key sources, as the admin API marks them.
const (
	// SourceConfig is a key from the Caddyfile or the JSON config.
	SourceConfig = "config"
	// SourceAPI is a key created through the admin API.
	SourceAPI = "api"
	// SourceProvisioned is the default source of a key provisioned at its
	// first call (KeyTemplate.Source names the provisioner, e.g. "oidc").
	SourceProvisioned = "provisioned"
)

// Errors of the live key layer; wrapped with a message naming the key.
var (
	// ErrKeyNotFound: no key has that name.
	ErrKeyNotFound = errors.New("no such key")
	// ErrKeyExists: a key (live or from the config) already has that name.
	ErrKeyExists = errors.New("a key with that name exists")
	// ErrKeyRevoked: the key was revoked; it is not provisioned again.
	ErrKeyRevoked = errors.New("the key is revoked")
	// ErrKeyReadOnly: the key comes from the config and cannot be changed
	// through the API.
	ErrKeyReadOnly = errors.New("the key is defined in the configuration and is read-only through the API")
	// ErrInvalidKey: the request describes an invalid key (unknown team,
	// budget over its cap, bad name …).
	ErrInvalidKey = errors.New("invalid key")
)

// LiveKey is a key managed while the gateway runs: created through the
// admin API or provisioned at its first call. Only SHA-256 hashes of its
// secrets are kept. A LiveKey held by a Directory is never modified.
type LiveKey struct {
	Name string
	// Team and Customer place the key in the configuration's hierarchy;
	// they name a team and customer of the config (checked on every write,
	// and a key whose team later disappears from the config is disabled).
	Team, Customer string
	Limits
	// MaxTokensCap, when positive, caps max_tokens.
	MaxTokensCap int64
	// Source is SourceAPI or what provisioned the key (KeyTemplate.Source).
	Source string
	// Secrets are the key's secrets, the current one first; a rotated-out
	// secret has a NotAfter. A provisioned key may have none.
	Secrets []LiveSecret
	// Created and Updated are when the key was created and last changed;
	// CreatedBy is the admin identity that created it.
	Created, Updated time.Time
	CreatedBy        string
	// Revoked, when not zero, is when the key was revoked: it answers 401.
	Revoked time.Time
	// Version is the store's change counter at the key's last write.
	Version int64
}

// LiveSecret is one secret of a live key, by its hash.
type LiveSecret struct {
	Hash    SecretHash
	Created time.Time
	// NotAfter, when not zero, is when this (rotated-out) secret stops
	// working.
	NotAfter time.Time
}

// Active reports whether the key is not revoked.
func (k *LiveKey) Active() bool { return k.Revoked.IsZero() }

// clone is a deep enough copy for a writer to change.
func (k *LiveKey) clone() *LiveKey {
	c := *k
	c.Secrets = append([]LiveSecret(nil), k.Secrets...)
	c.Models = append(c.Models[:0:0], k.Models...)
	c.Budgets = append(c.Budgets[:0:0], k.Budgets...)
	c.RateLimits = append(c.RateLimits[:0:0], k.RateLimits...)
	return &c
}

// AuditEntry is one change to a live key.
type AuditEntry struct {
	ID int64
	At time.Time
	// Actor is the admin identity (from the authenticating proxy's header)
	// or the provisioner; "" when unknown.
	Actor string
	// Action is create, update, rotate, revoke or provision.
	Action string
	Key    string
	// Detail is a JSON object describing the change; never a secret.
	Detail string
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	// Key, when not empty, keeps one key's entries.
	Key string
	// Before, when positive, keeps entries with a smaller ID (paging).
	Before int64
	// Limit bounds the entries returned (default 100, at most 1000).
	Limit int
}

// KeyStore persists live keys and their audit trail. A fleet shares one
// (PostgreSQL); every write takes a new value of a store-wide version
// counter, which instances poll to see each other's changes.
type KeyStore interface {
	// Changes returns the keys (revoked ones included) written with a
	// version above since, and the store's current version.
	Changes(ctx context.Context, since int64) ([]*LiveKey, int64, error)
	// Update runs fn on the stored key named name (nil when none) under a
	// lock that excludes every other writer of the store. When fn returns
	// a key, it is written with the next version together with the audit
	// entry, atomically, and returned with its version set; when fn
	// returns nil, nothing is written and Update returns cur. An error of
	// fn is returned as is and nothing is written.
	Update(ctx context.Context, name string, fn func(cur *LiveKey) (*LiveKey, *AuditEntry, error)) (*LiveKey, error)
	// Audit lists audit entries.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// Close releases the store (not the database it shares with a ledger).
	Close() error
}

// Directory is the live key layer: every live key of a KeyStore, held in
// an immutable snapshot that authentication reads without locks. It
// outlives config reloads; each config load looks keys up through a
// Keyring built over its Registry and the Directory.
type Directory struct {
	store KeyStore
	now   func() time.Time

	refreshMu sync.Mutex
	// writeMu orders the publication of local writes and refreshes.
	writeMu sync.Mutex
	snap    atomic.Pointer[dirSnapshot]

	// Prepare, when set, is called with the levels (key scope, budgets) of
	// keys about to be published whose budgets are new or changed, so that
	// their counters restore the spend so far before a request is admitted
	// under them. Errors are returned by the write or refresh that
	// published them, after publishing.
	Prepare func(ctx context.Context, levels []Level) error
}

// dirSnapshot is one immutable state of the directory.
type dirSnapshot struct {
	// version is the store version the snapshot has read up to.
	version int64
	byName  map[string]*LiveKey
	// byHash holds the secrets of active keys.
	byHash map[SecretHash]*LiveKey
}

// NewDirectory opens a directory over a store, loading every key. now is
// the clock grace periods and expiry are judged by (nil: time.Now).
func NewDirectory(ctx context.Context, store KeyStore, now func() time.Time) (*Directory, error) {
	if now == nil {
		now = time.Now
	}
	d := &Directory{store: store, now: now}
	d.snap.Store(&dirSnapshot{byName: map[string]*LiveKey{}, byHash: map[SecretHash]*LiveKey{}})
	if _, err := d.Refresh(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Now is the directory's clock.
func (d *Directory) Now() time.Time { return d.now() }

// Store is the directory's key store.
func (d *Directory) Store() KeyStore { return d.store }

// Refresh reads the changes other writers (other instances of a fleet)
// made since the last refresh and publishes them. It reports whether
// anything changed.
func (d *Directory) Refresh(ctx context.Context) (bool, error) {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	since := d.snap.Load().version
	changed, version, err := d.store.Changes(ctx, since)
	if err != nil {
		return false, err
	}
	if len(changed) == 0 && version == since {
		return false, nil
	}
	perr := d.publish(ctx, changed, version)
	return len(changed) > 0, perr
}

// publish installs changed keys (each only if newer than what the snapshot
// holds) and raises the snapshot's version to at least version.
func (d *Directory) publish(ctx context.Context, changed []*LiveKey, version int64) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	old := d.snap.Load()
	var fresh []*LiveKey
	var levels []Level
	for _, k := range changed {
		prev := old.byName[k.Name]
		if prev != nil && prev.Version >= k.Version {
			continue
		}
		fresh = append(fresh, k)
		if k.Active() && len(k.Budgets) > 0 && (prev == nil || !prev.Active() || !sameBudgets(prev.Budgets, k.Budgets)) {
			levels = append(levels, Level{Scope: Scope{ScopeKey, k.Name}, Budgets: k.Budgets, RateLimits: k.RateLimits})
		}
	}
	var err error
	if len(levels) > 0 && d.Prepare != nil {
		err = d.Prepare(ctx, levels)
	}
	if len(fresh) == 0 && version <= old.version {
		return err
	}
	next := &dirSnapshot{
		version: max(old.version, version),
		byName:  make(map[string]*LiveKey, len(old.byName)+len(fresh)),
		byHash:  make(map[SecretHash]*LiveKey, len(old.byHash)+len(fresh)),
	}
	for n, k := range old.byName {
		next.byName[n] = k
	}
	for _, k := range fresh {
		next.byName[k.Name] = k
	}
	if len(fresh) == 0 {
		next.byHash = old.byHash
	} else {
		for _, k := range next.byName {
			if !k.Active() {
				continue
			}
			for _, s := range k.Secrets {
				next.byHash[s.Hash] = k
			}
		}
	}
	d.snap.Store(next)
	return err
}

func sameBudgets(a, b []Budget) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Lookup returns a live key by name (revoked ones included); nil when none.
func (d *Directory) Lookup(name string) *LiveKey { return d.snap.Load().byName[name] }

// List returns every live key, revoked ones included, sorted by name.
func (d *Directory) List() []*LiveKey {
	s := d.snap.Load()
	out := make([]*LiveKey, 0, len(s.byName))
	for _, k := range s.byName {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// authenticate finds the active key holding secret hash h at now: its
// current secret, or a rotated-out one still in its grace period.
func (d *Directory) authenticate(h SecretHash, now time.Time) *LiveKey {
	k := d.snap.Load().byHash[h]
	if k == nil {
		return nil
	}
	for i := range k.Secrets {
		s := &k.Secrets[i]
		if s.Hash == h {
			if !s.NotAfter.IsZero() && !now.Before(s.NotAfter) {
				return nil
			}
			return k
		}
	}
	return nil
}

// write runs a store update and publishes its result at once, so the
// writer's next request sees it.
func (d *Directory) write(ctx context.Context, name string, fn func(cur *LiveKey) (*LiveKey, *AuditEntry, error)) (*LiveKey, error) {
	wrote := false
	k, err := d.store.Update(ctx, name, func(cur *LiveKey) (*LiveKey, *AuditEntry, error) {
		next, a, err := fn(cur)
		wrote = next != nil && err == nil
		return next, a, err
	})
	if err != nil {
		return nil, err
	}
	if wrote && k != nil {
		if perr := d.publish(ctx, []*LiveKey{k}, 0); perr != nil {
			return k, fmt.Errorf("key %q saved, but preparing its budget counters failed: %w", name, perr)
		}
	}
	return k, nil
}
