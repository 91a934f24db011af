package module

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
	"github.com/llmgateway/caddy-llm-gateway/providers"
)

// state is everything one config load serves requests with. It is built in
// Provision and never mutated afterwards, so ServeHTTP reads it without
// locks.
type state struct {
	registry *governance.Registry
	// cache is the response cache (cache.go); nil when off.
	cache *cacheState
	// keys finds keys: the registry's and the live ones (live_keys.go).
	keys     *governance.Keyring
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
	// notify sends alerts (nil: no notify lines).
	notify *notifier
	// sso identifies developers without a virtual key (nil: no oidc or
	// identity lines; sso.go).
	sso *ssoState
}

// storePool shares stores across config reloads: a reload that keeps the
// same store configuration keeps the same store, counters and all.
var storePool = caddy.NewUsagePool()

// ledgerPool shares ledgers by key (a SQLite ledger by file) across stores:
// a reload that changes the Redis options (prefix, URL, timeouts) makes new
// counters but keeps writing the one ledger, so its running totals stay
// whole.
var ledgerPool = caddy.NewUsagePool()

// sharedStore is the ledger and the counters of one store configuration,
// with a reference count: one reference for the pool, one for each
// in-flight request. Whoever drops the last one closes it, so a reload
// never closes a store under a stream that is still being metered.
type sharedStore struct {
	ledger   governance.Store
	counters governance.Counters
	// ledgerKey is the ledger's key in ledgerPool.
	ledgerKey string
	leases    *leaseTracker
	refs      atomic.Int64
	pooled    atomic.Bool // the pool's reference is still held
	logger    *zap.Logger
	desc      string // for logs: never holds a password
	// alerts remembers the alerts sent and the sessions' costs for the
	// notify lines (notify_events.go): like the counters, across reloads.
	alerts *alertState
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

// sharedLedger is a ledger in ledgerPool; the last store using it closes it
// (committing everything queued).
type sharedLedger struct{ governance.Store }

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

// storeModules are a configuration's counters and ledger modules,
// provisioned.
type storeModules struct {
	counters stores.Counters
	ledger   stores.Ledger
}

// ledgerKey identifies the ledger in ledgerPool.
func (s storeModules) ledgerKey() string {
	return string(s.ledger.CaddyModule().ID) + "|" + s.ledger.Key()
}

// key identifies the store in the pool: a reload that keeps every option of
// the counters and of the ledger (the modules' keys) keeps the store; one
// that changes the counters' options gets counters built with them over the
// same ledger.
func (s storeModules) key() string {
	return string(s.counters.CaddyModule().ID) + "|" + s.counters.Key() + "||" + s.ledgerKey()
}

// describe names the store for logs, without credentials: the ledger alone
// for in-process counters, which are its totals.
func (s storeModules) describe() string {
	if s.counters.Restores() {
		return s.ledger.String()
	}
	return s.counters.String() + " (ledger " + s.ledger.String() + ")"
}

// Default store modules: in-process counters over the SQLite ledger.
var (
	defaultCounters = json.RawMessage(`{"type":"memory"}`)
	defaultLedger   = json.RawMessage(`{"type":"sqlite"}`)
)

// loadStore loads the configuration's counters and ledger modules.
func (g *Gateway) loadStore(ctx caddy.Context) (storeModules, error) {
	var sm storeModules
	c := StoreConfig{}
	if g.Store != nil {
		c = *g.Store
	}
	if len(c.CountersRaw) == 0 {
		c.CountersRaw = defaultCounters
	}
	if len(c.LedgerRaw) == 0 {
		c.LedgerRaw = defaultLedger
	}
	mod, err := ctx.LoadModule(&c, "CountersRaw")
	if err != nil {
		return sm, fmt.Errorf("store counters: %v", err)
	}
	var ok bool
	if sm.counters, ok = mod.(stores.Counters); !ok {
		return sm, fmt.Errorf("store counters: module %T does not implement stores.Counters", mod)
	}
	if mod, err = ctx.LoadModule(&c, "LedgerRaw"); err != nil {
		return sm, fmt.Errorf("store ledger: %v", err)
	}
	if sm.ledger, ok = mod.(stores.Ledger); !ok {
		return sm, fmt.Errorf("store ledger: module %T does not implement stores.Ledger", mod)
	}
	return sm, nil
}

// acquireStore loads the store for spec from the pool, opening it on first use.
//
// A reload refuses one case, with a message saying why: new in-process
// counters restored from a ledger that a store still serving requests will
// write to after the restore (a reload from store redis to store sqlite on
// the same file while requests are in flight): their spend would be missing
// from the new counters until the next restart.
func acquireStore(spec storeModules, logger *zap.Logger, m *metrics) (*sharedStore, error) {
	v, _, err := storePool.LoadOrNew(spec.key(), func() (caddy.Destructor, error) {
		s := &sharedStore{logger: logger, desc: spec.describe(), ledgerKey: spec.ledgerKey(), alerts: newAlertState()}
		if spec.counters.Restores() {
			if other := liveStores.busy(s.ledgerKey); other != nil {
				return nil, fmt.Errorf("store %s: %d requests admitted under the previous store (%s) are still in flight and will be ledgered in this ledger after the new budget counters are restored from it; retry the reload once they have finished",
					s.desc, other.inFlight(), other.desc)
			}
		}
		env := stores.Env{
			Logger: logger,
			OnSettlementsDropped: func(n int, reason string) {
				m.settlementsDropped.Add(float64(n))
				logger.Error("budget store: settlements dropped, their spend will not reach the budget counters",
					zap.String("store", s.desc), zap.Int("settlements", n), zap.String("reason", reason))
			},
			OnSettlementsApplied: func(n int) {
				logger.Info("budget store answers again: queued settlements applied",
					zap.String("store", s.desc), zap.Int("settlements", n))
			},
		}
		lv, _, err := ledgerPool.LoadOrNew(s.ledgerKey, func() (caddy.Destructor, error) {
			l, err := spec.ledger.OpenLedger(env)
			if err != nil {
				return nil, err
			}
			return sharedLedger{l}, nil
		})
		if err != nil {
			return nil, err
		}
		s.ledger = lv.(sharedLedger).Store
		if s.counters, err = spec.counters.OpenCounters(env, s.ledger); err != nil {
			_, _ = ledgerPool.Delete(s.ledgerKey)
			return nil, err
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
