package governance

import (
	"context"
	"fmt"
	"time"
)

// PostgreSQL retention: rows older than the retention (SetRetention) are
// deleted by a goroutine of the store, off the request path and beside the
// writer, a bounded batch per transaction, every PruneEvery. The rollup
// and the per-scope totals are never pruned, so reports over whole
// 15-minute buckets and the spend restored at start keep every row's
// totals. The cut is floored to a 15-minute bucket, so a bucket is pruned
// whole. In a fleet every instance prunes; an advisory lock makes one
// do each batch while the others skip.

const (
	// defaultPostgresPruneEvery is how often the store prunes.
	defaultPostgresPruneEvery = time.Minute
	// pgPruneStepRows bounds the rows one prune transaction deletes.
	pgPruneStepRows = 20_000
	// postgresPruneLock is the transaction advisory lock a prune batch
	// takes ("llmgw_pr").
	postgresPruneLock int64 = 0x6c6c6d67775f7072
)

// SetRetention sets how long ledger rows are kept (0 or less: for ever).
// The store prunes older rows at its next round (every PruneEvery); the
// rollup keeps their totals.
func (s *PostgresStore) SetRetention(d time.Duration) { s.retention.Store(int64(max(d, 0))) }

// reportZone reports a failed day-rollup zone registration (retried at
// the next round).
func (s *PostgresStore) reportZone(err error) {
	if err != nil && s.pruneCtx.Err() == nil {
		s.report(fmt.Errorf("postgres store: building the day rollup (reports read the 15-minute rollup meanwhile): %w", s.scrub(err)))
	}
}

// pruneLoop registers the day rollup's zone (at SetLocation, and retried
// every PruneEvery) and prunes every PruneEvery, until Close.
func (s *PostgresStore) pruneLoop() {
	defer close(s.pruneDone)
	t := time.NewTicker(s.opts.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-s.zoneKick:
			s.reportZone(s.registerZone(s.pruneCtx))
		case <-t.C:
			s.reportZone(s.registerZone(s.pruneCtx))
			if _, err := s.prune(s.pruneCtx); err != nil && s.pruneCtx.Err() == nil {
				s.report(fmt.Errorf("postgres store: pruning rows older than the retention: %w", s.scrub(err)))
			}
		}
	}
}

// Prune deletes now every ledger row older than the retention (floored
// to 15 minutes) and returns how many it deleted (tests, benchmarks; the
// store does the same by itself every PruneEvery). Without a retention it
// does nothing.
func (s *PostgresStore) Prune(ctx context.Context) (int64, error) {
	n, err := s.prune(ctx)
	if err != nil {
		return n, fmt.Errorf("postgres store: pruning: %w", s.scrub(err))
	}
	return n, nil
}

func (s *PostgresStore) prune(ctx context.Context) (int64, error) {
	r := time.Duration(s.retention.Load())
	if r <= 0 {
		return 0, nil
	}
	before, _ := bucketNanoRange(bucketIndex(unixNanos(s.opts.now().Add(-r))))
	var total int64
	for {
		n, err := s.pruneStep(ctx, before)
		total += n
		s.pruned.Add(n)
		if err != nil || n < int64(s.opts.pruneRows) {
			return total, err
		}
	}
}

// pruneStep deletes up to pgPruneStepRows (the pruneRows hook) rows older than before (Unix
// nano), oldest first, in one transaction; 0 when another instance holds
// the prune lock.
func (s *PostgresStore) pruneStep(ctx context.Context, before int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, postgresAttemptTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, postgresPruneLock).Scan(&locked); err != nil || !locked {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM llm_gateway_ledger WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM llm_gateway_ledger WHERE time_ns < $1 ORDER BY time_ns LIMIT $2))`, before, s.opts.pruneRows)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// The module hands the retention line to ledgers with SetRetention.
var _ interface{ SetRetention(time.Duration) } = (*PostgresStore)(nil)
