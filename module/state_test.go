package module

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// TestStoreOptionsShareTheLedger: a reload that changes a Redis store's
// options (prefix, URL and its timeouts) gets counters built with them but
// keeps writing the same ledger, so its running totals stay whole; the
// ledger closes with the last store that uses it.
func TestStoreOptionsShareTheLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	m := newMetrics(baseLabels)
	ledgerJSON := `{"type":"sqlite","path":"` + path + `"}`
	specs := []storeModules{
		storeOf(t, `{"type":"redis","url":"redis://127.0.0.1:1/0","prefix":"a"}`, ledgerJSON),
		storeOf(t, `{"type":"redis","url":"redis://127.0.0.1:1/0?dial_timeout=1s","prefix":"b","on_error":"open"}`, ledgerJSON),
	}
	var stores []*sharedStore
	for _, spec := range specs {
		s, err := acquireStore(spec, zap.NewNop(), m)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	if stores[0] == stores[1] || stores[0].counters == stores[1].counters {
		t.Fatal("changed options reused the counters")
	}
	if stores[0].ledger != stores[1].ledger {
		t.Fatal("changed Redis options opened a second ledger on the same file")
	}
	if _, ok := stores[0].counters.(*governance.QueuedCounters); !ok {
		t.Fatalf("redis counters are not queued: %T", stores[0].counters)
	}
	ledger := stores[0].ledger.(*governance.SQLiteStore)
	for _, spec := range specs[:1] {
		if _, err := storePool.Delete(spec.key()); err != nil {
			t.Fatal(err)
		}
	}
	ledger.Record(&governance.Record{Key: "k"})
	if err := ledger.Flush(t.Context()); err != nil {
		t.Fatalf("the ledger closed while a store still uses it: %v", err)
	}
	if _, err := storePool.Delete(specs[1].key()); err != nil {
		t.Fatal(err)
	}
	ledger.Record(&governance.Record{Key: "k"}) // after Close: dropped
	if st := ledger.Stats(); st.Committed != 1 || st.Dropped != 1 {
		t.Fatalf("the last store did not close the ledger: %+v", st)
	}
}

// TestReloadRefusesRestoreUnderInFlight: new in-process counters restored
// from a ledger that a store serving requests will still write to would
// miss their spend, so that reload is refused (with a message saying why)
// while they are in flight, and allowed once they finished.
func TestReloadRefusesRestoreUnderInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	m := newMetrics(baseLabels)
	ledgerJSON := `{"type":"sqlite","path":"` + path + `"}`
	redisSpec := storeOf(t, `{"type":"redis","url":"redis://127.0.0.1:1/0"}`, ledgerJSON)
	old, err := acquireStore(redisSpec, zap.NewNop(), m)
	if err != nil {
		t.Fatal(err)
	}
	if !old.tryAcquire() { // a request in flight
		t.Fatal("acquire")
	}
	sqliteSpec := storeOf(t, "", ledgerJSON)
	if _, err := acquireStore(sqliteSpec, zap.NewNop(), m); err == nil || !strings.Contains(err.Error(), "1 requests admitted under the previous store") ||
		!strings.Contains(err.Error(), "retry the reload") {
		t.Fatalf("reload under a request in flight: %v", err)
	}
	// The old config goes; its request finishes; the reload goes through.
	if _, err := storePool.Delete(redisSpec.key()); err != nil {
		t.Fatal(err)
	}
	old.release()
	s, err := acquireStore(sqliteSpec, zap.NewNop(), m)
	if err != nil {
		t.Fatalf("reload with nothing in flight: %v", err)
	}
	if _, err := storePool.Delete(sqliteSpec.key()); err != nil || s.refs.Load() != 0 {
		t.Fatal(err, s.refs.Load())
	}
}

// storeOf loads the store modules of a JSON store configuration.
func storeOf(t *testing.T, counters, ledger string) storeModules {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	sm, err := (&Gateway{Store: &StoreConfig{CountersRaw: json.RawMessage(counters), LedgerRaw: json.RawMessage(ledger)}}).loadStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sm
}
