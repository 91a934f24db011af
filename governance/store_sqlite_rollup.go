package governance

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sqliteSchemaV6 adds the rollup: the ledger's totals per 15-minute bucket
// (the SpendBucket every time-zone offset in use is a multiple of) and per
// combination of the low-cardinality columns a report groups and filters
// by: key, team, customer, provider, model, surface, session and rejection.
// first_ns and last_ns are the oldest and newest row of each combination
// (a session's first and last request).
//
// rollup_state.watermark is a bucket index (Unix time / 15 min): the
// rollup holds every ledger row of the buckets before it, and none of the
// buckets from it on. The writer moves it forward a step at a time,
// rolling closed buckets up from the rows (rollUp), and upserts a row that
// arrives for a bucket already rolled up into the rollup in the row's own
// transaction, so the invariant holds for every committed state. Reports
// read the rollup below the watermark and the rows above it; retention
// prunes only rows below it, so the rollup keeps their totals. The
// migration starts the watermark at the beginning of time: the writer then
// rolls up the rows already in the ledger in the background.
const sqliteSchemaV6 = `
CREATE TABLE rollup (
	bucket                INTEGER NOT NULL,
	key                   TEXT    NOT NULL,
	team                  TEXT    NOT NULL,
	customer              TEXT    NOT NULL,
	provider              TEXT    NOT NULL,
	model                 TEXT    NOT NULL,
	surface               TEXT    NOT NULL,
	session_id            TEXT    NOT NULL,
	rejection             TEXT    NOT NULL,
	requests              INTEGER NOT NULL,
	input_tokens          INTEGER NOT NULL,
	output_tokens         INTEGER NOT NULL,
	cache_read_tokens     INTEGER NOT NULL,
	cache_write_5m_tokens INTEGER NOT NULL,
	cache_write_1h_tokens INTEGER NOT NULL,
	web_search_requests   INTEGER NOT NULL,
	cost_nano_usd         INTEGER NOT NULL,
	cache_hits            INTEGER NOT NULL,
	saved_nano_usd        INTEGER NOT NULL,
	first_ns              INTEGER NOT NULL,
	last_ns               INTEGER NOT NULL,
	PRIMARY KEY (bucket, key, team, customer, provider, model, surface, session_id, rejection)
) WITHOUT ROWID;
CREATE INDEX rollup_session ON rollup (session_id, bucket) WHERE session_id != '';
CREATE TABLE rollup_state (watermark INTEGER NOT NULL);
INSERT INTO rollup_state VALUES (-9223372036854775807);
`

// sqliteUpsertRollupHead and sqliteUpsertRollupTail surround the rollup
// upsert's rows (a batch's rows are distinct, so no two rows of one
// statement conflict).
const (
	sqliteUpsertRollupHead = `INSERT INTO rollup (
	bucket, key, team, customer, provider, model, surface, session_id, rejection,
	requests, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,
	cache_write_1h_tokens, web_search_requests, cost_nano_usd, cache_hits,
	saved_nano_usd, first_ns, last_ns
) VALUES `
	sqliteUpsertRollupTail = `
ON CONFLICT (bucket, key, team, customer, provider, model, surface, session_id, rejection) DO UPDATE SET
	requests              = requests              + excluded.requests,
	input_tokens          = input_tokens          + excluded.input_tokens,
	output_tokens         = output_tokens         + excluded.output_tokens,
	cache_read_tokens     = cache_read_tokens     + excluded.cache_read_tokens,
	cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
	cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
	web_search_requests   = web_search_requests   + excluded.web_search_requests,
	cost_nano_usd         = cost_nano_usd         + excluded.cost_nano_usd,
	cache_hits            = cache_hits            + excluded.cache_hits,
	saved_nano_usd        = saved_nano_usd        + excluded.saved_nano_usd,
	first_ns              = MIN(first_ns, excluded.first_ns),
	last_ns               = MAX(last_ns, excluded.last_ns)`
)

// rollupCols are the rollup's key columns after bucket, in the order of
// ledgerRecord.cols (key team customer provider model surface session
// rejection).
var rollupCols = [...]string{"key", "team", "customer", "provider", "model", "surface", "session_id", "rejection"}

// rollupDims are the dimensions the rollup holds, besides the calendar ones.
var rollupDims = map[Dim]string{DimKey: "key", DimTeam: "team", DimCustomer: "customer", DimProvider: "provider",
	DimModel: "model", DimSurface: "surface", DimSession: "session_id", DimRejection: "rejection"}

// rollupKey is one rollup row's key.
type rollupKey struct {
	bucket int64
	cols   [8]string
}

// rollupAcc is one rollup row's sums within a batch.
type rollupAcc struct {
	t           Totals
	first, last int64
}

// aggregateRollup adds a record of a bucket already rolled up to the
// batch's rollup rows.
func (s *SQLiteStore) aggregateRollup(r *Record) {
	ns := unixNanos(r.Time)
	k := rollupKey{bucketStart(ns), [8]string{r.Key, r.Team, r.Customer, r.Provider, r.Model, r.Surface, r.SessionID, r.Rejection}}
	a := s.rollup[k]
	if a == nil {
		a = &rollupAcc{first: ns, last: ns}
		s.rollup[k] = a
	}
	a.t.add(r)
	a.first, a.last = min(a.first, ns), max(a.last, ns)
}

// rollupArgsN is the number of arguments of one rollup row.
const rollupArgsN = 21

// sqliteRollupRow is the placeholders of one rollup row.
var sqliteRollupRow = "(" + strings.Repeat("?, ", rollupArgsN-1) + "?)"

// sqliteRollupSizes are the row counts the writer's rollup upsert is
// prepared at (late rows only: a few per batch at most).
var sqliteRollupSizes = []int{32, 1}

// writeRollup upserts the batch's rollup rows on the writer's connection,
// in its transaction.
func (s *SQLiteStore) writeRollup(ctx context.Context, wc *sqliteWriterConn) error {
	s.rollupKeys = s.rollupKeys[:0]
	for k := range s.rollup {
		s.rollupKeys = append(s.rollupKeys, k)
	}
	return wc.conn.Raw(func(any) error {
		return wc.rollup.exec(ctx, len(s.rollupKeys), func(i int, args []driver.NamedValue) {
			k := s.rollupKeys[i]
			a := s.rollup[k]
			args[0].Value = k.bucket
			for j, c := range k.cols {
				args[1+j].Value = c
			}
			u := &a.t.Usage
			args[9].Value, args[10].Value, args[11].Value, args[12].Value = a.t.Requests, u.InputTokens, u.OutputTokens, u.CacheReadTokens
			args[13].Value, args[14].Value, args[15].Value = u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests
			args[16].Value, args[17].Value, args[18].Value = int64(a.t.Cost), a.t.CacheHits, int64(a.t.Saved)
			args[19].Value, args[20].Value = a.first, a.last
		})
	})
}

// sqliteRollUpStep rolls the rows of buckets [?, ?) up (as nanosecond
// bounds, inclusive), adding to rollup rows a late row may have begun.
const sqliteRollUpStep = `INSERT INTO rollup SELECT
	(time_ns / 900000000000 - (time_ns % 900000000000 < 0)) * 900,
	key, team, customer, provider, model, surface, session_id, rejection,
	COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
	SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(web_search_requests),
	SUM(cost_nano_usd), SUM(cache_hit), SUM(saved_nano_usd), MIN(time_ns), MAX(time_ns)
	FROM ledger WHERE time_ns BETWEEN ? AND ? GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
ON CONFLICT (bucket, key, team, customer, provider, model, surface, session_id, rejection) DO UPDATE SET
	requests              = requests              + excluded.requests,
	input_tokens          = input_tokens          + excluded.input_tokens,
	output_tokens         = output_tokens         + excluded.output_tokens,
	cache_read_tokens     = cache_read_tokens     + excluded.cache_read_tokens,
	cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
	cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
	web_search_requests   = web_search_requests   + excluded.web_search_requests,
	cost_nano_usd         = cost_nano_usd         + excluded.cost_nano_usd,
	cache_hits            = cache_hits            + excluded.cache_hits,
	saved_nano_usd        = saved_nano_usd        + excluded.saved_nano_usd,
	first_ns              = MIN(first_ns, excluded.first_ns),
	last_ns               = MAX(last_ns, excluded.last_ns)`

// Rollup maintenance.
const (
	// rollUpStepRows bounds the rows one roll-up step reads, so a step (and
	// the records queued behind it) waits tens of milliseconds, not seconds.
	rollUpStepRows = 50_000
	// rollUpGrace is how long after a bucket ends the writer waits before
	// rolling it up: most rows of it have arrived by then (a row arriving
	// later is upserted into the rollup directly).
	rollUpGrace = 2 * time.Minute
	// defaultMaintainEvery is how often the writer rolls up and prunes.
	defaultMaintainEvery = time.Minute
)

// bucketIndex is the index of the 15-minute bucket holding Unix nano ns.
func bucketIndex(ns int64) int64 { return floorDiv(ns, bucketNanos) }

// watermark reads the rollup's watermark (a bucket index) through q.
func watermark(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var wm int64
	err := q.QueryRowContext(ctx, "SELECT watermark FROM rollup_state").Scan(&wm)
	return wm, err
}

// rollUp rolls closed buckets below the bucket index target up, one step
// of at most about rollUpStepRows rows; done is true once the watermark
// has reached target.
func (s *SQLiteStore) rollUp(ctx context.Context, target int64) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	wm, err := watermark(ctx, tx)
	if err != nil {
		return false, err
	}
	if wm >= target {
		return true, nil
	}
	lo, _ := bucketNanoRange(wm)
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MIN(time_ns) FROM ledger WHERE time_ns >= ?", lo).Scan(&first); err != nil {
		return false, err
	}
	end := target
	if first.Valid && bucketIndex(first.Int64) < target {
		start := bucketIndex(first.Int64)
		var nth int64
		switch err := tx.QueryRowContext(ctx, "SELECT time_ns FROM ledger WHERE time_ns >= ? ORDER BY time_ns LIMIT 1 OFFSET ?",
			first.Int64, rollUpStepRows).Scan(&nth); {
		case err == nil:
			end = min(target, max(start+1, bucketIndex(nth)))
		case errors.Is(err, sql.ErrNoRows):
		default:
			return false, err
		}
		from, _ := bucketNanoRange(start)
		_, to := bucketNanoRange(end - 1)
		if _, err := tx.ExecContext(ctx, sqliteRollUpStep, from, to); err != nil {
			return false, fmt.Errorf("rolling up: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE rollup_state SET watermark = ?", end); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return end >= target, nil
}

// rollUpTarget is the bucket index the writer rolls up to at now: every
// bucket that ended rollUpGrace ago.
func rollUpTarget(now time.Time) int64 {
	return bucketIndex(unixNanos(now.Add(-rollUpGrace)))
}

// prune deletes up to pruneStepRows ledger rows older than before (Unix
// nano) and older than the watermark, oldest first; done is true when none
// are left.
func (s *SQLiteStore) prune(ctx context.Context, before int64) (done bool, n int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, 0, err
	}
	defer tx.Rollback()
	wm, err := watermark(ctx, tx)
	if err != nil {
		return false, 0, err
	}
	if wmStart, _ := bucketNanoRange(wm); wmStart < before {
		before = wmStart
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM ledger WHERE id IN
		(SELECT id FROM ledger WHERE time_ns < ? ORDER BY time_ns LIMIT ?)`, before, pruneStepRows)
	if err != nil {
		return false, 0, err
	}
	if n, err = res.RowsAffected(); err != nil {
		return false, 0, err
	}
	if err := tx.Commit(); err != nil {
		return false, 0, err
	}
	return n < pruneStepRows, n, nil
}

// pruneStepRows bounds the rows one prune step deletes.
const pruneStepRows = 20_000

// SetRetention sets how long ledger rows are kept (0 or less: for ever).
// The writer prunes older rows at its next maintenance; the rollup keeps
// their totals.
func (s *SQLiteStore) SetRetention(d time.Duration) { s.retention.Store(int64(max(d, 0))) }

// tick asks the writer for maintenance every MaintainEvery until Close.
func (s *SQLiteStore) tick() {
	t := time.NewTicker(s.opts.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			select {
			case s.queue <- sqliteOp{maint: &sqliteMaint{}}:
			default: // the writer is busy: the next tick asks again
			}
		}
	}
}

// maintain runs in the writer after each batch: synchronous requests in
// full, then one step of what the ticker asked for.
func (s *SQLiteStore) maintain(reqs []*sqliteMaint) {
	ctx := context.Background()
	for _, m := range reqs {
		if m.done == nil {
			s.rollPending, s.rollTarget = true, rollUpTarget(s.opts.now())
			s.dayPending = s.dayZoneNow() != nil
			if r := s.retention.Load(); r > 0 {
				s.prunePending, s.pruneBefore = true, unixNanos(s.opts.now().Add(-time.Duration(r)))
			}
			continue
		}
		var err error
		for done := false; err == nil && !done; {
			done, err = s.rollUp(ctx, m.rollTo)
		}
		if loc := s.dayZoneNow(); loc != nil {
			for done := false; err == nil && !done; {
				done, err = s.rollUpDays(ctx, loc)
			}
		}
		if r := s.retention.Load(); r > 0 && err == nil {
			before := unixNanos(s.opts.now().Add(-time.Duration(r)))
			for done := false; err == nil && !done; {
				var n int64
				done, n, err = s.prune(ctx, before)
				s.pruned.Add(n)
			}
		}
		m.done <- err
	}
	if s.rollPending {
		done, err := s.rollUp(ctx, s.rollTarget)
		if err != nil {
			s.report(fmt.Errorf("sqlite store: %w", err))
		}
		s.rollPending = !done && err == nil
	}
	if loc := s.dayZoneNow(); s.dayPending && !s.rollPending && loc != nil {
		done, err := s.rollUpDays(ctx, loc)
		if err != nil {
			s.report(fmt.Errorf("sqlite store: day rollup: %w", err))
		}
		s.dayPending = !done && err == nil
	}
	if s.prunePending && !s.rollPending {
		done, n, err := s.prune(ctx, s.pruneBefore)
		s.pruned.Add(n)
		if err != nil {
			s.report(fmt.Errorf("sqlite store: pruning: %w", err))
		}
		s.prunePending = !done && err == nil
	}
}

// Maintain rolls every bucket before upTo up and prunes what retention
// allows now, and returns when done (tests and benchmarks; the writer does
// the same by itself, a step a minute).
func (s *SQLiteStore) Maintain(ctx context.Context, upTo time.Time) error {
	done := make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrStoreClosed
	}
	select {
	case s.queue <- sqliteOp{maint: &sqliteMaint{rollTo: bucketIndex(unixNanos(upTo)), done: done}}:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
