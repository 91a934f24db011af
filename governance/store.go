package governance

import "context"

// Store keeps usage: running totals for every scope (what admission and the
// admin API read) and the ledger of every request (what usage reports read).
// A Store outlives configuration reloads; implementations are safe for
// concurrent use.
type Store interface {
	// Record adds a finished request to the totals of each scope on its path
	// and queues it for the ledger. It returns at once: durable writes are
	// batched off the request path.
	Record(r *Record)
	// Totals returns the running totals of one scope since the store began
	// (for a persistent store, since the ledger began).
	Totals(s Scope) Totals
	// Usage reports ledger totals grouped as asked.
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
	// Report answers a multi-dimensional usage query from the ledger rows.
	Report(ctx context.Context, q ReportQuery) (Report, error)
	// Flush returns once every record queued before the call is durable.
	Flush(ctx context.Context) error
	// Close flushes and releases the store.
	Close() error
}
