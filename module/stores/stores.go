// Package stores is the seam between the llm_gateway handler and its
// stores, which are Caddy modules of two kinds: the counters (budgets,
// reservations, rate limits: memory, redis), in CountersNamespace, and the
// usage ledger (sqlite, memory), in LedgersNamespace. The gateway's JSON
// names one of each:
//
//	"store": {"counters": {"type": "redis", "url": "…"}, "ledger": {"type": "sqlite", "path": "…"}}
//
// (defaults: memory counters, the sqlite ledger in Caddy's data directory),
// and its Caddyfile `store <type> …` line names either: a ledger type
// (`store sqlite [<path>]`, `store memory`) keeps the counters in memory; a
// counters type (`store redis <url> { … }`) takes its ledger from the
// block's `ledger [<type>] <args>` line (a bare path: sqlite).
//
// The gateway shares a store (counters and ledger) across config reloads
// while its configuration keeps the same keys, shares a ledger among the
// stores that name the same ledger key, and closes each with its last
// user. This package knows no store: it holds the interfaces the modules
// implement and what the gateway gives them.
package stores

import (
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// The namespaces of the store modules.
const (
	CountersNamespace = "http.handlers.llm_gateway.counters"
	LedgersNamespace  = "http.handlers.llm_gateway.ledgers"
)

// Env is what the gateway gives a store module to open with.
type Env struct {
	// Logger is the gateway's logger.
	Logger *zap.Logger
	// OnSettlementsDropped logs and counts settlements that counters which
	// queue what they cannot take (governance.QueuedCounters) had to drop.
	OnSettlementsDropped func(n int, reason string)
	// OnSettlementsApplied logs queued settlements applied once the
	// counters answer again.
	OnSettlementsApplied func(n int)
}

// Counters is a counters module.
type Counters interface {
	caddy.Module
	// Key identifies the counters' configuration, placeholders resolved:
	// a reload whose counters and ledger keep their keys keeps the store,
	// counters and all. Every option that changes how the counters behave
	// is part of it.
	Key() string
	// String names the counters in logs, never with a credential.
	String() string
	// Restores reports whether the counters live in this process and are
	// restored from the ledger when opened. The gateway then refuses a
	// reload that would restore them while requests admitted under another
	// store are still to be ledgered in the same ledger (their spend would
	// be missing until the next restart).
	Restores() bool
	// FailOpen reports whether requests are served unchecked (true) or
	// refused with 503 (false) while the counters cannot be reached. It is
	// read from each configuration, not from the store a reload keeps.
	FailOpen() bool
	// OpenCounters opens the counters over the store's ledger.
	OpenCounters(env Env, ledger governance.Store) (governance.Counters, error)
}

// Ledger is a usage ledger module.
type Ledger interface {
	caddy.Module
	// Key identifies the ledger, placeholders resolved: stores whose
	// ledgers have the same key write one ledger, opened once.
	Key() string
	// String names the ledger in logs, never with a credential.
	String() string
	// OpenLedger opens the ledger. The gateway closes it with its last
	// user.
	OpenLedger(env Env) (governance.Store, error)
}

// SpendSource is a ledger in-process counters can restore from: it sums a
// scope's spend since a time.
type SpendSource interface {
	governance.Store
	SpendSince(s governance.Scope, since time.Time) (governance.Totals, error)
}

// Types are the registered module names of a namespace, sorted.
func Types(namespace string) []string {
	var out []string
	for _, m := range caddy.GetModules(namespace) {
		out = append(out, m.ID.Name())
	}
	sort.Strings(out)
	return out
}
