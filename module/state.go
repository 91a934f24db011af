package module

import (
	"fmt"
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
}

// storePool shares stores across config reloads: a reload that keeps the
// same store configuration keeps the same store, counters and all.
var storePool = caddy.NewUsagePool()

// sharedStore is a store with a reference count: one reference for the
// pool, one for each in-flight request. Whoever drops the last one closes
// it, so a reload never closes a store under a stream that is still being
// metered.
type sharedStore struct {
	governance.Store
	refs   atomic.Int64
	logger *zap.Logger
	desc   string
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
		if err := s.Store.Close(); err != nil {
			s.logger.Error("closing usage store", zap.String("store", s.desc), zap.Error(err))
		}
	}
}

// Destruct implements caddy.Destructor: the pool's reference goes away when
// no loaded config uses the store any more.
func (s *sharedStore) Destruct() error {
	s.release()
	return nil
}

// storeKey identifies a store configuration in the pool.
func storeKey(c *StoreConfig) (string, error) {
	typ, path := "sqlite", ""
	if c != nil {
		typ, path = c.Type, c.Path
	}
	switch typ {
	case "memory":
		return "memory", nil
	case "sqlite", "":
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "llm_gateway", "usage.db")
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("store sqlite path: %v", err)
		}
		return "sqlite:" + abs, nil
	}
	return "", fmt.Errorf("unknown store type %q (want sqlite or memory)", typ)
}

// acquireStore loads the store for key from the pool, opening it on first use.
func acquireStore(key string, _ *StoreConfig, logger *zap.Logger) (*sharedStore, error) {
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		var st governance.Store
		switch {
		case key == "memory":
			st = governance.NewMemoryStore()
		default:
			path := key[len("sqlite:"):]
			s, err := governance.OpenSQLiteStore(path, governance.SQLiteOptions{
				OnError: func(err error) {
					logger.Error("writing usage ledger (will retry)", zap.String("path", path), zap.Error(err))
				},
			})
			if err != nil {
				return nil, fmt.Errorf("opening sqlite store %s: %v", path, err)
			}
			st = s
		}
		s := &sharedStore{Store: st, logger: logger, desc: key}
		s.refs.Store(1)
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
