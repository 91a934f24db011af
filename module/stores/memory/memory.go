// Package memory holds the in-process store modules: the memory counters
// (http.handlers.llm_gateway.counters.memory, the default: budgets,
// reservations and rate limits in this process, restored from the ledger
// when a store opens) and the memory ledger
// (http.handlers.llm_gateway.ledgers.memory: tests and throwaway set-ups;
// usage is lost when Caddy stops). `store memory` is both.
package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
)

func init() {
	caddy.RegisterModule(Counters{})
	caddy.RegisterModule(Ledger{})
}

// Counters keeps the counters in this process. They are restored from the
// ledger when the store opens, so with a persistent ledger (sqlite) a
// restart restores every budget.
type Counters struct{}

// CaddyModule returns the Caddy module information.
func (Counters) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  stores.CountersNamespace + ".memory",
		New: func() caddy.Module { return new(Counters) },
	}
}

// UnmarshalCaddyfile reads `store memory` (no argument, no block).
func (c *Counters) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return noArgs(d) }

// Key implements stores.Counters.
func (*Counters) Key() string { return "memory" }

// String implements stores.Counters.
func (*Counters) String() string { return "memory" }

// Restores implements stores.Counters: the counters are restored from the
// ledger.
func (*Counters) Restores() bool { return true }

// FailOpen implements stores.Counters: in-process counters are always
// reachable.
func (*Counters) FailOpen() bool { return false }

// OpenCounters implements stores.Counters.
func (*Counters) OpenCounters(_ stores.Env, ledger governance.Store) (governance.Counters, error) {
	src, ok := ledger.(stores.SpendSource)
	if !ok {
		return nil, fmt.Errorf("memory counters: the ledger (%T) cannot restore spend; use counters that keep their own (redis)", ledger)
	}
	return governance.NewMemoryCounters(restoreFrom(src)), nil
}

// restoreFrom restores budget counters from a ledger: flush what is queued
// once, then sum the 15-minute buckets of the period.
func restoreFrom(l stores.SpendSource) governance.RestoreFunc {
	return func(ctx context.Context, s governance.Scope, since time.Time) (governance.Money, error) {
		if err := l.Flush(ctx); err != nil {
			return 0, err
		}
		t, err := l.SpendSince(s, since)
		return t.Cost, err
	}
}

// Ledger keeps usage records in this process: totals and reports work,
// nothing survives a stop.
type Ledger struct{}

// CaddyModule returns the Caddy module information.
func (Ledger) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  stores.LedgersNamespace + ".memory",
		New: func() caddy.Module { return new(Ledger) },
	}
}

// UnmarshalCaddyfile reads `store memory` (or `ledger memory` in a store
// block): no argument, no block.
func (l *Ledger) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return noArgs(d) }

// Key implements stores.Ledger: there is one memory ledger per process.
func (*Ledger) Key() string { return "memory" }

// String implements stores.Ledger.
func (*Ledger) String() string { return "memory" }

// OpenLedger implements stores.Ledger.
func (*Ledger) OpenLedger(stores.Env) (governance.Store, error) {
	return governance.NewMemoryStore(), nil
}

func noArgs(d *caddyfile.Dispenser) error {
	d.Next() // store or ledger
	directive := d.Val()
	d.Next() // memory
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s memory takes no block", directive)
	}
	return nil
}

// Interface guards
var (
	_ stores.Counters       = (*Counters)(nil)
	_ stores.Ledger         = (*Ledger)(nil)
	_ caddyfile.Unmarshaler = (*Counters)(nil)
	_ caddyfile.Unmarshaler = (*Ledger)(nil)
	_ stores.SpendSource    = (*governance.MemoryStore)(nil)
)
