package module

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
)

// state is everything one config load serves requests with. It is built in
// Provision and never mutated afterwards, so ServeHTTP reads it without
// locks.
type state struct {
	registry *governance.Registry
	router   *providers.Router
	store    *sharedStore
	metrics  *metrics
	location *time.Location
	maxBody  int64
	logger   *zap.Logger
	labels   *labelResolver
	// lease is the reservation lease admissions take.
	lease time.Duration
	// countCacheReads makes token rate limits count cache reads.
	countCacheReads bool
	// multipliers are the providers' price_multiplier values.
	multipliers map[string]governance.Money
	// failOpen serves requests unchecked when the counters are unreachable
	// (store redis on_error open). It belongs to the config, not the store:
	// a reload that changes on_error applies to the next request.
	failOpen bool
}

// storePool shares stores across config reloads: a reload that keeps the
// same store configuration keeps the same store, counters and all.
var storePool = caddy.NewUsagePool()

// ledgerPool shares SQLite ledgers by file across stores: a reload that
// changes the Redis options (prefix, URL, timeouts) makes new counters but
// keeps writing the one ledger, so its running totals stay whole.
var ledgerPool = caddy.NewUsagePool()

// sharedStore is the ledger and the counters of one store configuration,
// with a reference count: one reference for the pool, one for each
// in-flight request. Whoever drops the last one closes it, so a reload
// never closes a store under a stream that is still being metered.
type sharedStore struct {
	ledger   governance.Store
	counters governance.Counters
	// ledgerKey is the ledger's key in ledgerPool ("" for a memory store,
	// whose ledger is its own).
	ledgerKey string
	leases    *leaseTracker
	refs      atomic.Int64
	pooled    atomic.Bool // the pool's reference is still held
	logger    *zap.Logger
	desc      string // for logs: never holds a password
}

// inFlight is how many requests hold the store.
func (s *sharedStore) inFlight() int64 {
	n := s.refs.Load()
	if s.pooled.Load() {
		n--
	}
	return max(n, 0)
}

// tryAcquire takes a request's reference; false once the store is closed.
func (s *sharedStore) tryAcquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and closes the store with the last one.
func (s *sharedStore) release() {
	if s.refs.Add(-1) == 0 {
		s.leases.stop()
		if err := s.counters.Close(); err != nil {
			s.logger.Error("closing usage counters", zap.String("store", s.desc), zap.Error(err))
		}
		liveStores.remove(s)
		if s.ledgerKey == "" {
			if err := s.ledger.Close(); err != nil {
				s.logger.Error("closing usage ledger", zap.String("store", s.desc), zap.Error(err))
			}
		} else if _, err := ledgerPool.Delete(s.ledgerKey); err != nil {
			s.logger.Error("closing usage ledger", zap.String("store", s.desc), zap.Error(err))
		}
	}
}

// Destruct implements caddy.Destructor: the pool's reference goes away when
// no loaded config uses the store any more.
func (s *sharedStore) Destruct() error {
	s.pooled.Store(false)
	s.release()
	return nil
}

// sharedLedger is a SQLite ledger in ledgerPool; the last store using it
// closes it (committing everything queued).
type sharedLedger struct{ *governance.SQLiteStore }

// Destruct implements caddy.Destructor.
func (l sharedLedger) Destruct() error { return l.Close() }

// liveStores are the stores not closed yet, by ledger, so that a reload can
// tell when new in-process counters would miss spend still on its way to
// their ledger.
var liveStores = &storeSet{m: map[string]map[*sharedStore]struct{}{}}

type storeSet struct {
	mu sync.Mutex
	m  map[string]map[*sharedStore]struct{}
}

func (ss *storeSet) add(s *sharedStore) {
	if s.ledgerKey == "" {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m[s.ledgerKey] == nil {
		ss.m[s.ledgerKey] = map[*sharedStore]struct{}{}
	}
	ss.m[s.ledgerKey][s] = struct{}{}
}

func (ss *storeSet) remove(s *sharedStore) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if set := ss.m[s.ledgerKey]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(ss.m, s.ledgerKey)
		}
	}
}

// busy returns another store on the same ledger with requests in flight.
func (ss *storeSet) busy(ledgerKey string) *sharedStore {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.m[ledgerKey] {
		if s.inFlight() > 0 {
			return s
		}
	}
	return nil
}

// storeSpec is a store configuration with placeholders resolved.
type storeSpec struct {
	typ      string // sqlite, memory, redis
	path     string // SQLite ledger file (absolute)
	url      string // Redis URL
	prefix   string
	failOpen bool
}

// key identifies the store in the pool. Every option that changes how the
// store behaves is part of it (on_error is not a store option: it is read
// from each config), so a reload that changes one gets a store built with
// it; the Redis URL carries the timeouts (?dial_timeout=…).
func (s storeSpec) key() string {
	switch s.typ {
	case "memory":
		return "memory"
	case "redis":
		return "redis:" + s.url + "|" + s.prefix + "|" + s.path
	}
	return "sqlite:" + s.path
}

// describe names the store for logs, without credentials.
func (s storeSpec) describe() string {
	switch s.typ {
	case "memory":
		return "memory"
	case "redis":
		u := s.url
		if parsed, err := url.Parse(u); err == nil {
			u = parsed.Redacted()
		}
		return "redis " + u + " (ledger " + s.path + ")"
	}
	return "sqlite " + s.path
}

// resolveStore validates a store configuration and resolves its
// placeholders and default paths.
func resolveStore(c *StoreConfig, repl *caddy.Replacer) (storeSpec, error) {
	if c == nil {
		c = &StoreConfig{Type: "sqlite"}
	}
	spec := storeSpec{typ: c.Type}
	if spec.typ == "" {
		spec.typ = "sqlite"
	}
	switch spec.typ {
	case "memory":
		return spec, nil
	case "sqlite", "redis":
	default:
		return spec, fmt.Errorf("unknown store type %q (want sqlite, memory or redis)", c.Type)
	}
	path := c.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "llm_gateway", "usage.db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return spec, fmt.Errorf("store ledger path: %v", err)
	}
	spec.path = abs
	if spec.typ == "redis" {
		u, err := repl.ReplaceOrErr(c.URL, true, true)
		if err != nil {
			return spec, fmt.Errorf("store redis url: %v", err)
		}
		if u == "" {
			return spec, fmt.Errorf("store redis needs a url")
		}
		spec.url = u
		spec.prefix = c.Prefix
		if spec.prefix == "" {
			spec.prefix = "llmgw"
		}
		switch c.OnError {
		case "", "closed":
		case "open":
			spec.failOpen = true
		default:
			return spec, fmt.Errorf("store on_error: want open or closed, got %q", c.OnError)
		}
	} else if c.URL != "" || c.OnError != "" || c.Prefix != "" {
		return spec, fmt.Errorf("store %s: url, on_error and prefix are for store redis", spec.typ)
	}
	return spec, nil
}

// acquireStore loads the store for spec from the pool, opening it on first use.
//
// A reload refuses one case, with a message saying why: new in-process
// counters (store sqlite) restored from a ledger that a store still serving
// requests will write to after the restore (a reload from store redis to
// store sqlite on the same file while requests are in flight): their spend
// would be missing from the new counters until the next restart.
func acquireStore(spec storeSpec, logger *zap.Logger, m *metrics) (*sharedStore, error) {
	v, _, err := storePool.LoadOrNew(spec.key(), func() (caddy.Destructor, error) {
		s := &sharedStore{logger: logger, desc: spec.describe()}
		switch spec.typ {
		case "memory":
			ms := governance.NewMemoryStore()
			s.ledger = ms
			s.counters = governance.NewMemoryCounters(restoreFrom(ms))
		default:
			if spec.typ == "sqlite" {
				if other := liveStores.busy(spec.path); other != nil {
					return nil, fmt.Errorf("store sqlite %s: %d requests admitted under the previous store (%s) are still in flight and will be ledgered in this file after the new budget counters are restored from it; retry the reload once they have finished",
						spec.path, other.inFlight(), other.desc)
				}
			}
			lv, _, err := ledgerPool.LoadOrNew(spec.path, func() (caddy.Destructor, error) {
				ls, err := governance.OpenSQLiteStore(spec.path, governance.SQLiteOptions{
					OnError: func(err error) {
						logger.Error("writing usage ledger (will retry)", zap.String("path", spec.path), zap.Error(err))
					},
				})
				if err != nil {
					return nil, fmt.Errorf("opening sqlite ledger %s: %v", spec.path, err)
				}
				return sharedLedger{ls}, nil
			})
			if err != nil {
				return nil, err
			}
			ls := lv.(sharedLedger).SQLiteStore
			s.ledger, s.ledgerKey = ls, spec.path
			if spec.typ == "redis" {
				rc, err := governance.NewRedisCounters(governance.RedisOptions{URL: spec.url, Prefix: spec.prefix})
				if err != nil {
					_, _ = ledgerPool.Delete(spec.path)
					return nil, fmt.Errorf("store redis: %v", err)
				}
				s.counters = queuedCounters(rc, s.desc, logger, m)
			} else {
				s.counters = governance.NewMemoryCounters(restoreFrom(ls))
			}
		}
		s.leases = newLeaseTracker(s, logger, m)
		s.refs.Store(1)
		s.pooled.Store(true)
		liveStores.add(s)
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}

// queuedCounters wraps Redis counters so that spend they could not take
// (served unchecked under on_error open, or a settlement that failed) is
// applied when Redis answers again; drops are logged and counted.
func queuedCounters(rc *governance.RedisCounters, desc string, logger *zap.Logger, m *metrics) *governance.QueuedCounters {
	return governance.NewQueuedCounters(rc, governance.QueuedOptions{
		OnDrop: func(n int, reason string) {
			m.settlementsDropped.Add(float64(n))
			logger.Error("budget store: settlements dropped, their spend will not reach the budget counters",
				zap.String("store", desc), zap.Int("settlements", n), zap.String("reason", reason))
		},
		OnApplied: func(n int) {
			logger.Info("budget store answers again: queued settlements applied",
				zap.String("store", desc), zap.Int("settlements", n))
		},
	})
}

// spendSource is a ledger that can sum a scope's spend since a time.
type spendSource interface {
	governance.Store
	SpendSince(s governance.Scope, since time.Time) (governance.Totals, error)
}

// restoreFrom restores budget counters from a ledger: flush what is queued
// once, then sum the 15-minute buckets of the period.
func restoreFrom(l spendSource) governance.RestoreFunc {
	return func(ctx context.Context, s governance.Scope, since time.Time) (governance.Money, error) {
		if err := l.Flush(ctx); err != nil {
			return 0, err
		}
		t, err := l.SpendSince(s, since)
		return t.Cost, err
	}
}

// activeGateways are the provisioned handlers, for the admin API.
var activeGateways = &gatewaySet{m: map[*Gateway]uint64{}}

type gatewaySet struct {
	mu   sync.Mutex
	m    map[*Gateway]uint64
	next uint64
}

func (s *gatewaySet) add(g *Gateway) {
	s.mu.Lock()
	s.next++
	s.m[g] = s.next
	s.mu.Unlock()
}

func (s *gatewaySet) remove(g *Gateway) {
	s.mu.Lock()
	delete(s.m, g)
	s.mu.Unlock()
}

// list returns the active gateways, newest first.
func (s *gatewaySet) list() []*Gateway {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Gateway, 0, len(s.m))
	for g := range s.m {
		out = append(out, g)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && s.m[out[j]] > s.m[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
