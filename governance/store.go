package governance

import "context"

// Store keeps usage: running totals for every scope (what admission and the
// admin API read) and the ledger of every request (what usage reports read).
// A Store outlives configuration reloads; implementations are safe for
// concurrent use.
//
// The ledger queries (Report, Requests, Sessions) share their semantics in
// every implementation, so that a SQLite, memory and PostgreSQL ledger
// holding the same rows answer alike:
//   - the range is half-open, From <= Time < To, zero times open ends;
//   - filters are those of Filter (exact, or '*'/'?' globs, case-sensitive),
//     every one must match, several on one dimension included;
//   - calendar dimensions and filters (hour, day, week, month) are taken in
//     the query's Location (UTC when nil);
//   - totals are exact sums of the matching rows to the nano-dollar, and a
//     page's Total is the same on every page;
//   - orders are total (ties broken as each query documents) so pages never
//     overlap or skip.
//
// Queries see what was committed: Flush first to include every record
// given so far.
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
	// Requests pages the ledger rows themselves (the request log), newest
	// first by default; see RequestsQuery for the order and the cursor.
	// An order it does not take is ErrInvalidQuery, a cursor it did not
	// make ErrInvalidCursor.
	Requests(ctx context.Context, q RequestsQuery) (RequestPage, error)
	// Sessions totals the ledger rows per Claude Code session (SessionID,
	// Key); see SessionsQuery. Errors as Requests.
	Sessions(ctx context.Context, q SessionsQuery) (SessionPage, error)
	// Flush returns once every record queued before the call is durable.
	Flush(ctx context.Context) error
	// Close flushes and releases the store.
	Close() error
}
