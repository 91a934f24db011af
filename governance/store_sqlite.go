package governance

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// SpendBucket is the width of the time buckets the SQLite store keeps running
// totals in. Every time-zone offset in use today is a multiple of it, so the
// spend of any calendar period (hour, day, week, month, in any zone) is a sum
// of whole buckets.
const SpendBucket = 15 * time.Minute

// ErrStoreClosed is reported (through SQLiteOptions.OnError) for a record
// given to a store after Close, and wraps the error of a Flush after Close
// when records were lost.
var ErrStoreClosed = errors.New("governance: usage store is closed")

// SQLite store defaults.
const (
	defaultSQLiteMaxBatch    = 2048
	defaultSQLiteQueueSize   = 65_536
	defaultSQLiteBusyTimeout = 5 * time.Second
	sqliteMinBackoff         = 50 * time.Millisecond
	sqliteMaxBackoff         = 5 * time.Second
	sqliteMaxConns           = 4
	sqliteSchemaVersion      = 8
	bucketSeconds            = int64(SpendBucket / time.Second)
	bucketNanos              = int64(SpendBucket)
)

// SQLiteOptions tunes OpenSQLiteStore. The zero value is ready to use.
type SQLiteOptions struct {
	// MaxBatch is the most records written in one transaction (default 2,048).
	MaxBatch int
	// QueueSize is how many records may wait for the writer before Record
	// blocks (default 65,536). Record never drops usage while the store is
	// open: when the queue is full it waits.
	QueueSize int
	// BusyTimeout is how long a statement waits for a lock another connection
	// or process holds, e.g. the previous instance during a reload
	// (default 5 s).
	BusyTimeout time.Duration
	// OnError, when not nil, is told about every failed write attempt (the
	// batch is kept and retried) and about records given after Close. It is
	// called from the writer goroutine or from Record's caller, possibly
	// concurrently, and must not call back into the store's Flush or Close.
	OnError func(error)

	// Retention, when positive, is how long ledger rows are kept: the
	// writer prunes older rows (a step at a time, between batches) while
	// the rollup keeps their totals. SetRetention changes it later.
	Retention time.Duration
	// MaintainEvery is how often the writer rolls closed buckets up and
	// prunes (default 1 minute).
	MaintainEvery time.Duration

	// now, a test hook, replaces time.Now for roll-up and retention.
	now func() time.Time
	// beforeCommit, a test hook, runs inside every write transaction with the
	// batch size just before COMMIT; an error fails the attempt.
	beforeCommit func(n int) error
	// sleep, a test hook, replaces the retry backoff wait; it must return
	// early when stop is closed.
	sleep func(d time.Duration, stop <-chan struct{})
	// checkpointRows, walRestartPages and idleCheckpointEvery, test hooks,
	// replace sqliteCheckpointRows, sqliteWALRestartPages and
	// sqliteIdleCheckpointEvery (a negative idleCheckpointEvery: no limit);
	// checkpointed, when set, is told about every checkpoint.
	checkpointRows      int
	walRestartPages     int
	idleCheckpointEvery time.Duration
	checkpointed        func(checkpointResult)
	// afterDayState, a test hook, runs in a report between its read of the
	// day rollup's watermark and its read of the day rollup.
	afterDayState func()
}

// SQLiteStats are the SQLite store's counters, for tests and metrics.
type SQLiteStats struct {
	// Committed is the number of records written to the ledger.
	Committed int64
	// Batches is the number of write transactions committed.
	Batches int64
	// WriteErrors is the number of failed write attempts (each is retried).
	WriteErrors int64
	// Dropped is the number of records lost: given after Close, or still
	// unwritable when Close gave up.
	Dropped int64
	// Queued is the number of entries waiting for the writer right now.
	Queued int
}

// SQLiteStore is the embedded, persistent Store: a usage ledger (one row per
// request) and running totals per scope, all-time and per 15-minute bucket,
// in one SQLite file in WAL mode.
//
// Record updates in-memory totals at once and hands a copy of the record to
// a single writer goroutine, which commits whatever has queued up (at most
// MaxBatch records) in one transaction, with no timer: under light load each
// record commits immediately, under heavy load batches grow by themselves.
// Opening the store restores every scope's all-time totals, so Totals
// survives a restart.
type SQLiteStore struct {
	db   *sql.DB
	c    *counters
	opts SQLiteOptions

	// mu orders Record and Flush (read side) against Close (write side), so
	// nothing is queued after the writer's stop marker.
	mu     sync.RWMutex
	closed bool

	queue   chan sqliteOp
	closing chan struct{} // closed when Close begins: the writer stops retrying
	done    chan struct{} // closed when the writer has exited

	pool sync.Pool // *Record copies travelling through the queue

	// writer-owned state
	agg        map[totalsKey]*Totals
	rollup     map[rollupKey]*rollupAcc
	rollupKeys []rollupKey
	aggKeys    []totalsKey
	// wc is the writer's own connection (nil until the first write and
	// after a failed one).
	wc *sqliteWriterConn
	// uncheckpointed counts the rows committed since the checkpointer was
	// last nudged, at lastNudge.
	uncheckpointed int
	lastNudge      time.Time

	// The checkpointer's channels, and how many checkpoints it ran.
	nudge            chan struct{}
	stopCheckpointer chan struct{}
	checkpointerDone chan struct{}
	checkpoints      atomic.Int64
	// writeErr is the first write the writer gave up on and lost the
	// number of records it gave up on; written by the writer before done is
	// closed, read after.
	writeErr error
	lost     int64

	// retention is SetRetention's duration in nanoseconds (0: keep all).
	retention atomic.Int64
	// dayZone is SetLocation's zone: the day rollup's (nil: none kept).
	dayZone    atomic.Pointer[time.Location]
	dayPending bool
	// writer-owned maintenance state: work the ticker asked for.
	rollPending, prunePending bool
	rollTarget, pruneBefore   int64
	pruned                    atomic.Int64

	committed   atomic.Int64
	batches     atomic.Int64
	writeErrors atomic.Int64
	dropped     atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLiteStore)(nil)

// sqliteOp is one queue entry: a record, a flush marker (ack) or the stop
// marker Close sends last.
type sqliteOp struct {
	rec   *Record
	ack   chan error
	maint *sqliteMaint
	stop  bool
}

// sqliteMaint asks the writer to roll up and prune: from the ticker, a
// step at a time between batches; with done set (tests, the benchmark),
// all of it at once up to rollTo (a bucket index), then done is sent the
// outcome.
type sqliteMaint struct {
	rollTo int64
	done   chan error
}

type totalsKey struct {
	kind   ScopeKind
	name   string
	bucket int64
}

const sqliteSchemaV1 = `
CREATE TABLE IF NOT EXISTS ledger (
	id                    INTEGER PRIMARY KEY,
	time_ns               INTEGER NOT NULL,
	key                   TEXT    NOT NULL,
	team                  TEXT    NOT NULL,
	customer              TEXT    NOT NULL,
	provider              TEXT    NOT NULL,
	model                 TEXT    NOT NULL,
	requested_model       TEXT    NOT NULL,
	surface               TEXT    NOT NULL,
	status                INTEGER NOT NULL,
	stream                INTEGER NOT NULL,
	input_tokens          INTEGER NOT NULL,
	output_tokens         INTEGER NOT NULL,
	cache_read_tokens     INTEGER NOT NULL,
	cache_write_5m_tokens INTEGER NOT NULL,
	cache_write_1h_tokens INTEGER NOT NULL,
	web_search_requests   INTEGER NOT NULL,
	cost_nano_usd         INTEGER NOT NULL,
	complete              INTEGER NOT NULL,
	output_estimated      INTEGER NOT NULL,
	session_id            TEXT    NOT NULL,
	duration_us           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_time ON ledger (time_ns);
CREATE TABLE IF NOT EXISTS totals (
	kind                  TEXT    NOT NULL,
	name                  TEXT    NOT NULL,
	bucket                INTEGER NOT NULL,
	requests              INTEGER NOT NULL,
	input_tokens          INTEGER NOT NULL,
	output_tokens         INTEGER NOT NULL,
	cache_read_tokens     INTEGER NOT NULL,
	cache_write_5m_tokens INTEGER NOT NULL,
	cache_write_1h_tokens INTEGER NOT NULL,
	web_search_requests   INTEGER NOT NULL,
	cost_nano_usd         INTEGER NOT NULL,
	PRIMARY KEY (kind, name, bucket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS totals_all_time ON totals (kind, name) WHERE bucket = 0;
`

// sqliteSchemaV2 marks ledger rows whose input tokens were estimated from
// the request (the provider's usage never arrived).
const sqliteSchemaV2 = `ALTER TABLE ledger ADD COLUMN input_estimated INTEGER NOT NULL DEFAULT 0;`

// sqliteSchemaV3 records which price row priced each request (its model and
// effective_from date) and the speed and inference geography it was billed
// with; rows written before it keep empty values.
const sqliteSchemaV3 = `
ALTER TABLE ledger ADD COLUMN price_model          TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN price_effective_from TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN speed                TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN inference_geo        TEXT NOT NULL DEFAULT '';
`

// sqliteSchemaV4 makes a ledger row traceable: the gateway's and the
// provider's request ids, the metrics_label values uncapped (a JSON object),
// the client's User-Agent, time to first token, attempts, the rejection
// reason and the error type; rows written before it keep empty values.
const sqliteSchemaV4 = `
ALTER TABLE ledger ADD COLUMN request_id          TEXT    NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN provider_request_id TEXT    NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN labels              TEXT    NOT NULL DEFAULT '{}';
ALTER TABLE ledger ADD COLUMN user_agent          TEXT    NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN ttft_us             INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN attempts            INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN rejection           TEXT    NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN error_type          TEXT    NOT NULL DEFAULT '';
`

// sqliteSchemaV5 records response-cache hits: whether the cache answered
// the request and what it saved (the original response's cost), in the
// ledger and in the per-scope totals; rows written before it keep 0.
const sqliteSchemaV5 = `
ALTER TABLE ledger ADD COLUMN cache_hit      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN saved_nano_usd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE totals ADD COLUMN cache_hits     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE totals ADD COLUMN saved_nano_usd INTEGER NOT NULL DEFAULT 0;
`

// sqliteInsertLedgerHead is the ledger INSERT up to its rows.
const sqliteInsertLedgerHead = `INSERT INTO ledger (
	time_ns, key, team, customer, provider, model, requested_model, surface,
	status, stream, input_tokens, output_tokens, cache_read_tokens,
	cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests,
	cost_nano_usd, complete, output_estimated, session_id, duration_us,
	input_estimated, price_model, price_effective_from, speed, inference_geo,
	request_id, provider_request_id, labels, user_agent, ttft_us, attempts,
	rejection, error_type, cache_hit, saved_nano_usd
) VALUES `

// sqliteLedgerArgs is the number of arguments of one ledger row.
const sqliteLedgerArgs = 36

// sqliteLedgerUsuallyEmpty are the ledger columns (by argument index) that
// are empty in most rows, with their empty value: customer, speed,
// inference_geo, labels, rejection and error_type. ledgerArgs binds NULL
// for an empty one and the row turns it back into the empty value, because
// binding a string costs the driver a C string allocated, copied, unbound
// and freed, and a NULL costs nothing.
var sqliteLedgerUsuallyEmpty = [...]struct {
	arg   int
	empty string
}{{3, ""}, {24, ""}, {25, ""}, {28, "{}"}, {32, ""}, {33, ""}}

// noLabels is the labels column of a row without labels, boxed once.
var noLabels any = "{}"

// sqliteLedgerRow is the placeholders of one ledger row.
var sqliteLedgerRow = func() string {
	ph := make([]string, sqliteLedgerArgs)
	for i := range ph {
		ph[i] = "?"
	}
	for _, c := range sqliteLedgerUsuallyEmpty {
		ph[c.arg] = "COALESCE(?, '" + c.empty + "')"
	}
	return "(" + strings.Join(ph, ", ") + ")"
}()

// sqliteTotalsArgs is the number of arguments of one totals row.
const sqliteTotalsArgs = 13

// sqliteTotalsRow is the placeholders of one totals row.
var sqliteTotalsRow = "(" + strings.Repeat("?, ", sqliteTotalsArgs-1) + "?)"

// sqliteUpsertTotalsHead and sqliteUpsertTotalsTail surround the totals
// upsert's rows (a batch's rows are distinct, so no two rows of one
// statement conflict).
const (
	sqliteUpsertTotalsHead = `INSERT INTO totals (
	kind, name, bucket, requests, input_tokens, output_tokens,
	cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
	web_search_requests, cost_nano_usd, cache_hits, saved_nano_usd
) VALUES `
	sqliteUpsertTotalsTail = `
ON CONFLICT (kind, name, bucket) DO UPDATE SET
	requests              = requests              + excluded.requests,
	input_tokens          = input_tokens          + excluded.input_tokens,
	output_tokens         = output_tokens         + excluded.output_tokens,
	cache_read_tokens     = cache_read_tokens     + excluded.cache_read_tokens,
	cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
	cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
	web_search_requests   = web_search_requests   + excluded.web_search_requests,
	cost_nano_usd         = cost_nano_usd         + excluded.cost_nano_usd,
	cache_hits            = cache_hits            + excluded.cache_hits,
	saved_nano_usd        = saved_nano_usd        + excluded.saved_nano_usd`
)

// sqliteSums are the aggregate columns every totals query selects, in the
// order scanTotals reads them after the group column.
const sqliteSums = `COUNT(*), SUM(input_tokens), SUM(output_tokens),
	SUM(cache_read_tokens), SUM(cache_write_5m_tokens),
	SUM(cache_write_1h_tokens), SUM(web_search_requests), SUM(cost_nano_usd),
	SUM(cache_hit), SUM(saved_nano_usd)`

// OpenSQLiteStore opens (creating it and its parent directories if needed)
// the SQLite database at path, brings its schema up to date, loads every
// scope's all-time totals and starts the writer. Close releases it.
//
// Several stores, in this process or others, may have the same file open at
// once (a Caddy reload briefly overlaps two): writes wait for each other up
// to BusyTimeout and are retried after that. Each store's Totals only count
// what was on disk when it opened plus what it recorded itself.
func OpenSQLiteStore(path string, opts SQLiteOptions) (*SQLiteStore, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite store: %q is not a file path", path)
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite store: path %q must not contain '?'", path)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultSQLiteMaxBatch
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultSQLiteQueueSize
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = defaultSQLiteBusyTimeout
	}
	if opts.sleep == nil {
		opts.sleep = sleepUnlessStopped
	}
	if opts.MaintainEvery <= 0 {
		opts.MaintainEvery = defaultMaintainEvery
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.checkpointRows <= 0 {
		opts.checkpointRows = sqliteCheckpointRows
	}
	if opts.walRestartPages <= 0 {
		opts.walRestartPages = sqliteWALRestartPages
	}
	if opts.idleCheckpointEvery == 0 {
		opts.idleCheckpointEvery = sqliteIdleCheckpointEvery
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	busyMs := max(opts.BusyTimeout.Milliseconds(), 1)
	dsn := path + "?_pragma=busy_timeout(" + strconv.FormatInt(busyMs, 10) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate" +
		// Reports read the rollup and the ledger's time index: a 64 MB page
		// cache per connection keeps them in
		// memory rather than reading the file a page at a time.
		"&_pragma=cache_size(-65536)" +
		// The checkpointer, not the writer's COMMIT, checkpoints the WAL
		// (store_sqlite_checkpoint.go).
		"&_pragma=wal_autocheckpoint(0)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	s := &SQLiteStore{
		db:      db,
		c:       newCounters(),
		opts:    opts,
		queue:   make(chan sqliteOp, opts.QueueSize),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		agg:     make(map[totalsKey]*Totals),
		rollup:  make(map[rollupKey]*rollupAcc),

		nudge:            make(chan struct{}, 1),
		stopCheckpointer: make(chan struct{}),
		checkpointerDone: make(chan struct{}),
	}
	s.pool.New = func() any { return new(Record) }
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	s.retention.Store(int64(max(opts.Retention, 0)))
	go s.run()
	go s.tick()
	go s.checkpointer()
	return s, nil
}

// init migrates the schema and loads totals (the writer prepares its
// statements on its own connection, store_sqlite_writer_conn.go).
func (s *SQLiteStore) init() error {
	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
		return err
	}
	return s.loadTotals(ctx)
}

// migrate creates the schema in an empty database and refuses one written by
// a newer version. PRAGMA user_version records the schema version.
func (s *SQLiteStore) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	switch {
	case version == sqliteSchemaVersion:
		return tx.Commit()
	case version > sqliteSchemaVersion:
		return fmt.Errorf("schema version %d is newer than this build understands (%d)", version, sqliteSchemaVersion)
	}
	// Migrate step by step: version 0 is a new database.
	for v, ddl := range []string{sqliteSchemaV1, sqliteSchemaV2, sqliteSchemaV3, sqliteSchemaV4, sqliteSchemaV5, sqliteSchemaV6, sqliteSchemaV7, sqliteSchemaV8}[version:] {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("migrating the schema to version %d: %w", version+v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(sqliteSchemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// loadTotals seeds the in-memory counters with every scope's all-time row.
func (s *SQLiteStore) loadTotals(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, name, requests, input_tokens,
		output_tokens, cache_read_tokens, cache_write_5m_tokens,
		cache_write_1h_tokens, web_search_requests, cost_nano_usd, cache_hits,
		saved_nano_usd
		FROM totals WHERE bucket = 0`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name string
		var t Totals
		if err := rows.Scan(&kind, &name, &t.Requests, &t.Usage.InputTokens,
			&t.Usage.OutputTokens, &t.Usage.CacheReadTokens, &t.Usage.CacheWrite5mTokens,
			&t.Usage.CacheWrite1hTokens, &t.Usage.WebSearchRequests, &t.Cost, &t.CacheHits,
			&t.Saved); err != nil {
			return err
		}
		if k, ok := parseScopeKind(kind); ok {
			s.c.set(Scope{k, name}, t)
		}
	}
	return rows.Err()
}

func parseScopeKind(s string) (ScopeKind, bool) {
	for _, k := range [...]ScopeKind{ScopeCustomer, ScopeTeam, ScopeKey} {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// Record implements Store: it adds r to the in-memory totals and queues a
// copy for the writer, blocking only when the queue is full. After Close the
// record is dropped and reported as ErrStoreClosed.
func (s *SQLiteStore) Record(r *Record) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.dropped.Add(1)
		s.report(fmt.Errorf("sqlite store: record of key %q dropped: %w", r.Key, ErrStoreClosed))
		return
	}
	s.c.record(r)
	cp := s.pool.Get().(*Record)
	*cp = *r
	s.queue <- sqliteOp{rec: cp}
	s.mu.RUnlock()
}

// Totals implements Store. After a restart it includes everything committed
// before.
func (s *SQLiteStore) Totals(sc Scope) Totals { return s.c.get(sc) }

// Flush implements Store: it returns once every record queued before the
// call is committed, or with ctx's error. After Close it returns at once
// (with an error wrapping ErrStoreClosed if Close lost records).
func (s *SQLiteStore) Flush(ctx context.Context) error {
	ack := make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		select {
		case <-s.done:
			if s.writeErr != nil {
				return fmt.Errorf("%w: %w", ErrStoreClosed, s.writeErr)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case s.queue <- sqliteOp{ack: ack}:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements Store: it commits everything queued, stops the writer and
// closes the database. If a batch still cannot be written once Close has
// begun (each gets one more attempt), those records are lost and Close
// returns the error. Close is idempotent.
func (s *SQLiteStore) Close() error {
	s.closeOnce.Do(func() {
		// Stop retrying first: a Record blocked on a full queue holds the
		// read lock, and only the writer moving on can free it.
		close(s.closing)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.queue <- sqliteOp{stop: true}
		<-s.done
		close(s.stopCheckpointer)
		<-s.checkpointerDone
		err := s.writeErr
		if err != nil {
			err = fmt.Errorf("sqlite store: %d usage records lost: %w", s.lost, err)
		}
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// Stats returns the store's counters.
func (s *SQLiteStore) Stats() SQLiteStats {
	return SQLiteStats{
		Committed:   s.committed.Load(),
		Batches:     s.batches.Load(),
		WriteErrors: s.writeErrors.Load(),
		Dropped:     s.dropped.Load(),
		Queued:      len(s.queue),
	}
}

func (s *SQLiteStore) report(err error) {
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
}

// run is the writer: take one entry, drain what else is queued up to
// MaxBatch records without waiting, write it all in one transaction,
// acknowledge the flush markers, repeat.
func (s *SQLiteStore) run() {
	defer close(s.done)
	defer func() {
		if err := s.dropWriterConn(); err != nil {
			s.report(fmt.Errorf("sqlite store: closing the writer's connection: %w", err))
		}
	}()
	batch := make([]*Record, 0, s.opts.MaxBatch)
	var acks []chan error
	var maints []*sqliteMaint
	for stop := false; !stop; {
		batch, acks, maints = batch[:0], acks[:0], maints[:0]
		take := func(op sqliteOp) {
			switch {
			case op.rec != nil:
				batch = append(batch, op.rec)
			case op.ack != nil:
				acks = append(acks, op.ack)
			case op.maint != nil:
				maints = append(maints, op.maint)
			default:
				stop = true
			}
		}
		if s.rollPending || s.prunePending || s.dayPending {
			select {
			case op := <-s.queue:
				take(op)
			default:
			}
		} else {
			take(<-s.queue)
		}
	drain:
		for !stop && len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.queue:
				take(op)
			default:
				break drain
			}
		}
		var err error
		if len(batch) > 0 {
			err = s.writeRetrying(batch)
		}
		committed := 0
		if err == nil {
			committed = len(batch)
		}
		if err == nil {
			err = s.writeErr // an earlier batch was given up on at Close
		}
		for _, a := range acks {
			a <- err
		}
		for i, r := range batch {
			*r = Record{}
			s.pool.Put(r)
			batch[i] = nil
		}
		maintaining := len(maints) > 0 || s.rollPending || s.prunePending || s.dayPending
		if !stop {
			s.maintain(maints)
		}
		s.noteCommitted(committed, maintaining && !stop, len(s.queue) == 0)
	}
}

// writeRetrying writes a batch, retrying with capped exponential backoff
// until it succeeds. Once Close has begun a failure is final: the batch is
// counted as dropped and its error kept for Close.
func (s *SQLiteStore) writeRetrying(batch []*Record) error {
	backoff := sqliteMinBackoff
	for attempt := 1; ; attempt++ {
		err := s.write(batch)
		if err == nil {
			s.committed.Add(int64(len(batch)))
			s.batches.Add(1)
			return nil
		}
		s.writeErrors.Add(1)
		err = fmt.Errorf("sqlite store: writing %d usage records (attempt %d): %w", len(batch), attempt, err)
		s.report(err)
		select {
		case <-s.closing:
			s.dropped.Add(int64(len(batch)))
			s.lost += int64(len(batch))
			if s.writeErr == nil {
				s.writeErr = err
			}
			return err
		default:
		}
		s.opts.sleep(backoff, s.closing)
		backoff = min(2*backoff, sqliteMaxBackoff)
	}
}

// write commits one batch on the writer's connection: every ledger row,
// then the batch's totals pre-aggregated so each (scope, bucket) is upserted
// once. A failed write drops the connection; the retry opens a new one.
func (s *SQLiteStore) write(batch []*Record) (err error) {
	ctx := context.Background()
	wc, err := s.writerConn(ctx)
	if err != nil {
		return err
	}
	tx, err := wc.conn.BeginTx(ctx, nil)
	if err != nil {
		s.dropWriterConn()
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			s.dropWriterConn()
		}
	}()
	clear(s.agg)
	clear(s.rollup)
	wm, err := watermark(ctx, tx)
	if err != nil {
		return err
	}
	if err := s.writeLedgerRows(ctx, wc, batch); err != nil {
		return err
	}
	for _, r := range batch {
		s.aggregate(r)
		if bucketIndex(unixNanos(r.Time)) < wm {
			s.aggregateRollup(r) // a bucket already rolled up
		}
	}
	if len(s.rollup) > 0 {
		if err := s.writeRollup(ctx, wc); err != nil {
			return err
		}
		if err := s.writeLateDays(ctx, tx, batch); err != nil {
			return err
		}
	}
	if err := s.writeTotals(ctx, wc); err != nil {
		return err
	}
	if s.opts.beforeCommit != nil {
		if err := s.opts.beforeCommit(len(batch)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ledgerArgs fills a (sqliteLedgerArgs long) with one row's values.
func ledgerArgs(a []driver.NamedValue, r *Record) {
	u := &r.Usage
	a[0].Value = unixNanos(r.Time)
	a[1].Value, a[2].Value, a[3].Value = r.Key, r.Team, r.Customer
	a[4].Value, a[5].Value, a[6].Value, a[7].Value = r.Provider, r.Model, r.RequestedModel, r.Surface
	a[8].Value, a[9].Value = int64(r.Status), boolInt(r.Stream)
	a[10].Value, a[11].Value, a[12].Value = u.InputTokens, u.OutputTokens, u.CacheReadTokens
	a[13].Value, a[14].Value, a[15].Value = u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests
	a[16].Value, a[17].Value, a[18].Value = int64(r.Cost), boolInt(u.Complete), boolInt(u.OutputEstimated)
	a[19].Value, a[20].Value = r.SessionID, r.Duration.Microseconds()
	a[21].Value = boolInt(u.InputEstimated)
	a[22].Value, a[23].Value, a[24].Value, a[25].Value = r.PriceModel, r.PriceEffectiveFrom, u.Speed, u.InferenceGeo
	a[26].Value, a[27].Value, a[28].Value, a[29].Value = r.RequestID, r.ProviderRequestID, noLabels, r.UserAgent
	if len(r.Labels) > 0 {
		a[28].Value = labelsJSON(r.Labels)
	}
	a[30].Value, a[31].Value, a[32].Value, a[33].Value = r.TTFT.Microseconds(), int64(r.Attempts), r.Rejection, r.ErrorType
	a[34].Value, a[35].Value = boolInt(r.CacheHit), int64(r.Saved)
	for _, c := range sqliteLedgerUsuallyEmpty {
		if a[c.arg].Value == c.empty {
			a[c.arg].Value = nil
		}
	}
}

// parseLabels reads the labels column back (nil for an empty object).
func parseLabels(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("labels %q: %w", s, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func (s *SQLiteStore) aggregate(r *Record) {
	bucket := recordBucket(unixNanos(r.Time))
	for _, sc := range [...]Scope{{ScopeKey, r.Key}, {ScopeTeam, r.Team}, {ScopeCustomer, r.Customer}} {
		if sc.Name == "" {
			continue
		}
		for _, b := range [...]int64{0, bucket} {
			k := totalsKey{sc.Kind, sc.Name, b}
			t := s.agg[k]
			if t == nil {
				t = new(Totals)
				s.agg[k] = t
			}
			t.add(r)
		}
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unixNanos is t in Unix nanoseconds, saturated to the years 1677–2262 that
// an int64 can hold (the ledger stores times this way).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// floorDiv is a/b rounded towards negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// bucketStart is the Unix second the 15-minute bucket containing the Unix
// nanosecond ns starts at.
func bucketStart(ns int64) int64 { return floorDiv(ns, bucketNanos) * bucketSeconds }

// recordBucket is the totals bucket a record at Unix nanosecond ns adds to.
// Bucket 0 means all-time, so the quarter hour that starts at the Unix epoch
// is keyed 1 instead (still below the next bucket, 900).
func recordBucket(ns int64) int64 {
	if b := bucketStart(ns); b != 0 {
		return b
	}
	return 1
}

// SpendSince sums the scope's committed 15-minute buckets from the one
// containing since onwards (since is floored to 15 minutes, in UTC, which is
// the same boundary in every real time zone). Records not yet committed are
// not included: Flush first to count everything recorded so far.
func (s *SQLiteStore) SpendSince(sc Scope, since time.Time) (Totals, error) {
	var t Totals
	err := s.db.QueryRow(`SELECT COALESCE(SUM(requests), 0),
		COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
		COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_5m_tokens), 0),
		COALESCE(SUM(cache_write_1h_tokens), 0), COALESCE(SUM(web_search_requests), 0),
		COALESCE(SUM(cost_nano_usd), 0), COALESCE(SUM(cache_hits), 0),
		COALESCE(SUM(saved_nano_usd), 0)
		FROM totals WHERE kind = ? AND name = ? AND bucket >= ? AND bucket != 0`,
		sc.Kind.String(), sc.Name, bucketStart(unixNanos(since)),
	).Scan(&t.Requests, &t.Usage.InputTokens, &t.Usage.OutputTokens,
		&t.Usage.CacheReadTokens, &t.Usage.CacheWrite5mTokens, &t.Usage.CacheWrite1hTokens,
		&t.Usage.WebSearchRequests, &t.Cost, &t.CacheHits, &t.Saved)
	if err != nil {
		return Totals{}, fmt.Errorf("sqlite store: spend of %s: %w", sc, err)
	}
	return t, nil
}

// ledgerRange turns [from, to) into an inclusive range of ledger time_ns
// values; ok is false when the range is empty. Zero times are open ends.
func ledgerRange(from, to time.Time) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !from.IsZero() {
		lo = unixNanos(from)
	}
	if !to.IsZero() {
		switch end := unixNanos(to); end {
		case math.MinInt64:
			return 0, 0, false
		case math.MaxInt64: // past 2262: as good as open
		default:
			hi = end - 1
		}
	}
	return lo, hi, lo <= hi
}

// Usage implements Store. Name groupings are summed by SQL; days are summed
// by SQL per 15-minute bucket and the buckets folded into calendar days of
// q.Location (UTC when nil), so days of 23 or 25 hours come out right. The
// rows are sorted by group and equal MemoryStore's for the same records.
func (s *SQLiteStore) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return []UsageRow{}, nil
	}
	var rows []UsageRow
	var err error
	if q.GroupBy == GroupByDay {
		rows, err = s.usageByDay(ctx, lo, hi, q.Location)
	} else {
		rows, err = s.usageByName(ctx, lo, hi, q.GroupBy)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: usage by %s: %w", q.GroupBy, err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
	return rows, nil
}

func (s *SQLiteStore) usageByName(ctx context.Context, lo, hi int64, g GroupBy) ([]UsageRow, error) {
	col := "''" // an unknown grouping puts everything in one group, as MemoryStore does
	switch g {
	case GroupByKey:
		col = "key"
	case GroupByTeam:
		col = "team"
	case GroupByCustomer:
		col = "customer"
	case GroupByModel:
		col = "model"
	case GroupByProvider:
		col = "provider"
	case GroupBySpeed:
		col = "speed"
	case GroupByInferenceGeo:
		col = "inference_geo"
	case GroupByPriceRow:
		col = "CASE price_model WHEN '' THEN '' ELSE price_model || '@' || price_effective_from END"
	}
	rs, err := s.db.QueryContext(ctx, `SELECT `+col+`, `+sqliteSums+`
		FROM ledger WHERE time_ns BETWEEN ? AND ? GROUP BY 1`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	rows := []UsageRow{}
	for rs.Next() {
		var row UsageRow
		if err := scanTotals(rs, &row.Group, &row.Totals); err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, rs.Err()
}

func (s *SQLiteStore) usageByDay(ctx context.Context, lo, hi int64, loc *time.Location) ([]UsageRow, error) {
	if loc == nil {
		loc = timeUTC
	}
	days := map[string]*Totals{}
	add := func(day string, t *Totals) {
		d := days[day]
		if d == nil {
			d = new(Totals)
			days[day] = d
		}
		d.Add(*t)
	}
	// The bucket index floor(time_ns / 15 min), with SQLite's truncating
	// division corrected for times before 1970.
	rs, err := s.db.QueryContext(ctx, `SELECT time_ns / 900000000000 - (time_ns % 900000000000 < 0), `+
		sqliteSums+` FROM ledger WHERE time_ns BETWEEN ? AND ? GROUP BY 1`, lo, hi)
	if err != nil {
		return nil, err
	}
	var buckets []int64       // every bucket with rows
	split := map[int64]bool{} // buckets that may straddle a day boundary in loc
	for rs.Next() {
		var idx int64
		var t Totals
		if err := scanTotals(rs, &idx, &t); err != nil {
			rs.Close()
			return nil, err
		}
		buckets = append(buckets, idx)
		start := time.Unix(idx*bucketSeconds, 0)
		if day, whole := bucketDay(start, loc); whole {
			add(day, &t)
		} else {
			split[idx] = true
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, err
	}
	if len(split) == 0 {
		return dayRows(days), nil
	}
	// A bucket whose offset is not a multiple of 15 minutes (local mean
	// time before 1900, a made-up fixed zone) is folded row by row, one
	// query per run of such buckets with no other bucket in between.
	slices.Sort(buckets)
	for i := 0; i < len(buckets); {
		if !split[buckets[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(buckets) && split[buckets[j+1]] {
			j++
		}
		runLo, _ := bucketNanoRange(buckets[i])
		_, runHi := bucketNanoRange(buckets[j])
		i = j + 1
		rs, err := s.db.QueryContext(ctx, `SELECT time_ns, `+sqliteSums+`
			FROM ledger WHERE time_ns BETWEEN ? AND ? GROUP BY 1`, max(lo, runLo), min(hi, runHi))
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var ns int64
			var t Totals
			if err := scanTotals(rs, &ns, &t); err != nil {
				rs.Close()
				return nil, err
			}
			add(time.Unix(0, ns).In(loc).Format(time.DateOnly), &t)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return dayRows(days), nil
}

// dayRows lists the days' totals, unsorted.
func dayRows(days map[string]*Totals) []UsageRow {
	rows := make([]UsageRow, 0, len(days))
	for day, t := range days {
		rows = append(rows, UsageRow{Group: day, Totals: *t})
	}
	return rows
}

// bucketDay is the calendar day in loc of the 15-minute bucket starting at
// start; whole is false when the bucket might span two days there (its zone
// offset is not a multiple of 15 minutes or changes inside the bucket).
func bucketDay(start time.Time, loc *time.Location) (day string, whole bool) {
	local := start.In(loc)
	_, offset := local.Zone()
	if offset%int(bucketSeconds) != 0 {
		return "", false
	}
	if _, zoneEnd := local.ZoneBounds(); !zoneEnd.IsZero() && zoneEnd.Before(start.Add(SpendBucket)) {
		return "", false
	}
	return local.Format(time.DateOnly), true
}

// bucketNanoRange is the inclusive range of Unix nanoseconds in bucket idx,
// saturated to int64.
func bucketNanoRange(idx int64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if idx > math.MinInt64/bucketNanos {
		lo = idx * bucketNanos
	}
	if idx < math.MaxInt64/bucketNanos {
		hi = lo + bucketNanos - 1
	}
	return lo, hi
}

// scanTotals reads a group column and the sqliteSums columns (integer SUMs,
// never NULL since every group has a row).
func scanTotals(rs *sql.Rows, group any, t *Totals) error {
	u := &t.Usage
	return rs.Scan(group, &t.Requests, &u.InputTokens, &u.OutputTokens, &u.CacheReadTokens,
		&u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.WebSearchRequests, &t.Cost,
		&t.CacheHits, &t.Saved)
}

// Records returns the ledger rows with from <= Time < to (zero times are
// open ends), oldest first, at most limit of them when limit > 0. Times come
// back in UTC; durations and TTFT are kept to the microsecond; Labels is nil
// for a row without labels.
func (s *SQLiteStore) Records(ctx context.Context, from, to time.Time, limit int) ([]Record, error) {
	lo, hi, ok := ledgerRange(from, to)
	if !ok {
		return []Record{}, nil
	}
	if limit <= 0 {
		limit = -1
	}
	rs, err := s.db.QueryContext(ctx, `SELECT `+sqliteRecordColumns+`
		FROM ledger WHERE time_ns BETWEEN ? AND ? ORDER BY time_ns, id LIMIT ?`, lo, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: ledger: %w", err)
	}
	defer rs.Close()
	out := []Record{}
	for rs.Next() {
		var r Record
		if _, err := scanRecord(rs, &r); err != nil {
			return nil, fmt.Errorf("sqlite store: ledger: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: ledger: %w", err)
	}
	return out, nil
}

// sqliteRecordColumns are the ledger columns scanRecord reads, in order.
const sqliteRecordColumns = `id, time_ns, key, team, customer,
	provider, model, requested_model, surface, status, stream, input_tokens,
	output_tokens, cache_read_tokens, cache_write_5m_tokens,
	cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
	output_estimated, session_id, duration_us, input_estimated,
	price_model, price_effective_from, speed, inference_geo,
	request_id, provider_request_id, labels, user_agent, ttft_us, attempts,
	rejection, error_type, cache_hit, saved_nano_usd`

// scanRecord reads a row of sqliteRecordColumns into r and returns its id.
func scanRecord(rs *sql.Rows, r *Record) (id int64, err error) {
	var ns, durUs, ttftUs int64
	var labels string
	u := &r.Usage
	if err := rs.Scan(&id, &ns, &r.Key, &r.Team, &r.Customer, &r.Provider, &r.Model,
		&r.RequestedModel, &r.Surface, &r.Status, &r.Stream, &u.InputTokens,
		&u.OutputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens,
		&u.CacheWrite1hTokens, &u.WebSearchRequests, &r.Cost, &u.Complete,
		&u.OutputEstimated, &r.SessionID, &durUs, &u.InputEstimated,
		&r.PriceModel, &r.PriceEffectiveFrom, &u.Speed, &u.InferenceGeo,
		&r.RequestID, &r.ProviderRequestID, &labels, &r.UserAgent, &ttftUs, &r.Attempts,
		&r.Rejection, &r.ErrorType, &r.CacheHit, &r.Saved); err != nil {
		return 0, err
	}
	if r.Labels, err = parseLabels(labels); err != nil {
		return 0, err
	}
	r.TTFT = time.Duration(ttftUs) * time.Microsecond
	r.Time = time.Unix(0, ns).UTC()
	r.Duration = time.Duration(durUs) * time.Microsecond
	return id, nil
}

// sleepUnlessStopped waits d, or less if stop is closed.
func sleepUnlessStopped(d time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}
