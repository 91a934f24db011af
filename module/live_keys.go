package module

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/internal/clock"
)

// LiveKeyPollInterval is how often an instance reads the changes other
// instances made to the live keys of a shared ledger.
const LiveKeyPollInterval = 2 * time.Second

// directoryPool shares live key directories across config reloads, one per
// ledger (the key store lives in the ledger's database).
var directoryPool = caddy.NewUsagePool()

// liveDirectory is a pooled directory and its poller.
type liveDirectory struct {
	dir    *governance.Directory
	store  governance.KeyStore
	logger *zap.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Destruct implements caddy.Destructor: the last config using the ledger is
// gone.
func (l *liveDirectory) Destruct() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return l.store.Close()
}

// keyStoreOpener is a ledger whose database also keeps live keys.
type keyStoreOpener interface {
	OpenKeyStore() (governance.KeyStore, error)
}

// acquireDirectory returns the live key directory of a ledger, opening it
// (and its key store in the ledger's database) on first use. A ledger
// without a key store (the memory ledger) gets keys in process memory.
func acquireDirectory(ledgerKey string, ledger governance.Store, logger *zap.Logger) (*liveDirectory, error) {
	v, _, err := directoryPool.LoadOrNew(ledgerKey, func() (caddy.Destructor, error) {
		var ks governance.KeyStore = governance.NewMemoryKeyStore()
		if o, ok := ledger.(keyStoreOpener); ok {
			var err error
			if ks, err = o.OpenKeyStore(); err != nil {
				return nil, fmt.Errorf("opening the live key store: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dir, err := governance.NewDirectory(ctx, ks, clock.Now)
		if err != nil {
			ks.Close()
			return nil, fmt.Errorf("loading live keys: %v", err)
		}
		l := &liveDirectory{dir: dir, store: ks, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
		dir.Prepare = func(ctx context.Context, levels []governance.Level) error { return prepareLiveLevels(ctx, dir, levels) }
		go l.poll()
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*liveDirectory), nil
}

// poll refreshes the directory every LiveKeyPollInterval until stopped.
func (l *liveDirectory) poll() {
	defer close(l.done)
	t := time.NewTicker(LiveKeyPollInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := l.dir.Refresh(ctx)
		cancel()
		switch {
		case err != nil && err.Error() != lastErr:
			lastErr = err.Error()
			l.logger.Error("reading live key changes (retrying)", zap.Error(err))
		case err == nil && lastErr != "":
			lastErr = ""
			l.logger.Info("reading live key changes again")
		}
	}
}

// prepareLiveLevels prepares the budget counters of live keys on every
// store of the gateways using dir, before the keys are published.
func prepareLiveLevels(ctx context.Context, dir *governance.Directory, levels []governance.Level) error {
	var errs []string
	seen := map[*sharedStore]bool{}
	for _, g := range activeGateways.list() {
		st := g.state
		if st == nil || st.keys == nil || st.keys.Directory() != dir || seen[st.store] {
			continue
		}
		seen[st.store] = true
		if err := st.store.counters.Prepare(ctx, levels, time.Now(), st.location); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// buildKeyring joins the registry and the ledger's live keys; a name both
// define is an error at load.
func (g *Gateway) buildKeyring(reg *governance.Registry, ledgerKey string, ledger governance.Store) (*governance.Keyring, error) {
	l, err := acquireDirectory(ledgerKey, ledger, g.logger)
	if err != nil {
		return nil, err
	}
	g.dirKey = ledgerKey
	kr := governance.NewKeyring(reg, l.dir)
	if names := kr.Conflicts(); len(names) > 0 {
		return nil, fmt.Errorf("key %q is defined in the configuration and was also created through the admin API; revoke the API key (DELETE /llm_gateway/keys/<name>) or rename one of them (docs/keys.md)", names[0])
	}
	logger := g.logger
	kr.OnShadowed = func(name string) {
		logger.Warn("a live key has the name of a key of this configuration, which wins on this instance; revoke or rename one of them", zap.String("key", name))
	}
	return kr, nil
}

// releaseDirectory drops this config's reference on its directory.
func (g *Gateway) releaseDirectory() {
	if g.dirKey == "" {
		return
	}
	if _, err := directoryPool.Delete(g.dirKey); err != nil && g.logger != nil {
		g.logger.Error("closing the live key store", zap.Error(err))
	}
	g.dirKey = ""
}

// provisionKey returns the key of a developer identified at their first
// call (SSO, Caddy authentication), creating it from tmpl when unknown;
// see governance.Keyring.Provision.
func (st *state) provisionKey(ctx context.Context, name, team string, tmpl governance.KeyTemplate) (*governance.Key, error) {
	return st.keys.Provision(ctx, name, team, tmpl)
}

// fillKey adds a key's place and source to its admin API entry.
func fillKey(st *state, k *governance.Key, e *entityJSON) {
	e.Team, e.Customer = k.TeamName(), k.CustomerName()
	e.Source = st.keys.Source(k.Name)
}
