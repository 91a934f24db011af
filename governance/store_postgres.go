package governance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL store defaults.
const (
	defaultPostgresMaxBatch        = 1024
	defaultPostgresQueueSize       = 65_536
	defaultPostgresRefreshInterval = 2 * time.Second
	defaultPostgresMaxConns        = 4
	defaultPostgresConnectTimeout  = 5 * time.Second
	postgresAttemptTimeout         = 30 * time.Second
	postgresRefreshTimeout         = 5 * time.Second
	postgresMinBackoff             = 50 * time.Millisecond
	postgresMaxBackoff             = 5 * time.Second
)

// PostgresOptions tunes OpenPostgresStore. The zero value is ready to use.
type PostgresOptions struct {
	// MaxBatch is the most records written in one statement (default 1,024).
	MaxBatch int
	// QueueSize is how many records may wait for the writer (default
	// 65,536). Record never blocks: while PostgreSQL is unreachable records
	// queue, and once the queue is full further records are dropped and
	// counted (PostgresStats.Dropped).
	QueueSize int
	// RefreshInterval is how often Totals' fleet-wide figures are re-read
	// from PostgreSQL (default 2 s). A Flush re-reads them too.
	RefreshInterval time.Duration
	// MaxConns caps the connection pool (default 4).
	MaxConns int32
	// OnError, when not nil, is told about failed write attempts (the batch
	// is kept and retried), failed refreshes, the first record dropped
	// while the queue is full, and records given after Close. Its errors
	// never hold the DSN's password. It is called from the writer goroutine
	// or from Record's caller, possibly concurrently, and must not call
	// back into the store's Flush or Close.
	OnError func(error)
	// OnClose, when not nil, is called once at the end of Close with the
	// store's final counters (for metrics that outlive the store).
	OnClose func(PostgresStats)
	// PruneEvery is how often rows older than the retention (SetRetention)
	// are pruned (default 1 minute).
	PruneEvery time.Duration

	// now, a test hook, replaces time.Now for retention.
	now func() time.Time
	// pruneRows, a test hook, replaces pgPruneStepRows.
	pruneRows int
	// sleep, a test hook, replaces the retry backoff wait; it must return
	// early when stop is closed.
	sleep func(d time.Duration, stop <-chan struct{})
}

// PostgresStats are the PostgreSQL store's counters, for tests and metrics.
type PostgresStats struct {
	// Committed is the number of records this store wrote to the ledger.
	Committed int64
	// Batches is the number of write statements committed.
	Batches int64
	// WriteErrors is the number of failed write attempts (each is retried).
	WriteErrors int64
	// Dropped is the number of records lost: the queue was full (PostgreSQL
	// unreachable for long), given after Close, or still unwritable when
	// Close gave up.
	Dropped int64
	// Queued is the number of entries waiting for the writer right now.
	Queued int
	// Pruned is the number of rows this store deleted for the retention.
	Pruned int64
}

// PostgresStore is the fleet's Store: every instance writes one PostgreSQL
// ledger (one row per request) and its running totals per scope, all-time
// and per 15-minute bucket; usage reports and restores read them, so they
// answer for the whole fleet.
//
// Record updates this instance's pending totals and hands a copy of the
// record to a single writer goroutine, which writes whatever has queued up
// (at most MaxBatch records) in one statement: the rows and the totals
// they add, so a batch counts once or not at all. Each row carries the
// store's random writer id and a sequence number; a batch retried after a
// lost commit reply inserts nothing twice and adds nothing twice.
//
// Totals is answered from memory: the fleet-wide all-time totals the writer
// last read from PostgreSQL (every RefreshInterval, and on Flush), plus what
// this instance recorded since (committed after that read, or still
// queued). The writer reads between its own writes, so what it reads holds
// exactly this instance's committed rows and nothing is counted twice;
// other instances' rows appear at the next read.
type PostgresStore struct {
	pool     *pgxpool.Pool
	opts     PostgresOptions
	redactor *strings.Replacer
	writerID int64
	seq      atomic.Int64

	mu     sync.RWMutex // orders Record and Flush against Close
	closed bool

	queue   chan pgOp
	refresh chan chan error
	closing chan struct{}
	done    chan struct{}

	pool2 sync.Pool // *Record copies travelling through the queue

	tot pgTotals

	// writer-owned state
	wb       pgBatch
	giveUp   bool // Close has begun and a write failed: drop the rest
	writeErr error
	lost     int64

	committed   atomic.Int64
	batches     atomic.Int64
	writeErrors atomic.Int64
	dropped     atomic.Int64
	dropping    atomic.Bool // a drop was reported since the last commit

	closeOnce sync.Once
	closeErr  error

	retention   atomic.Int64 // nanoseconds; 0 keeps rows for ever
	pruned      atomic.Int64
	pruneCtx    context.Context
	pruneCancel context.CancelFunc
	pruneDone   chan struct{}

	dayZone   atomic.Pointer[time.Location] // SetLocation's zone
	zoneKick  chan struct{}
	zoneCache atomic.Pointer[pgZoneCache]
}

var _ Store = (*PostgresStore)(nil)

// pgOp is one queue entry: a record (with its sequence number), a flush
// marker (ack) or the stop marker Close sends last.
type pgOp struct {
	rec  *Record
	seq  int64
	ack  chan error
	stop bool
}

// OpenPostgresStore connects to the PostgreSQL database dsn (a URL,
// postgres://user:password@host:port/db?sslmode=…, or key=value pairs),
// brings the ledger's schema up to date, reads the fleet's totals and
// starts the writer. The database must be reachable now; later outages
// only queue records. Close releases it. Errors never hold the password.
func OpenPostgresStore(ctx context.Context, dsn string, opts PostgresOptions) (*PostgresStore, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultPostgresMaxBatch
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultPostgresQueueSize
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = defaultPostgresRefreshInterval
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = defaultPostgresMaxConns
	}
	if opts.sleep == nil {
		opts.sleep = sleepUnlessStopped
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = defaultPostgresPruneEvery
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.pruneRows <= 0 {
		opts.pruneRows = pgPruneStepRows
	}
	red := dsnRedactor(dsn)
	fail := func(err error) error {
		return fmt.Errorf("postgres store %s: %s", RedactDSN(dsn), red.Replace(err.Error()))
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fail(err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultPostgresConnectTimeout
	}
	// Session settings for the ledger's aggregations, unless the DSN sets
	// them: enough work_mem for the planner to hash a month of groups in
	// memory rather than sort them on disk, and no JIT (it costs more than
	// it saves on these queries). An unknown setting fails the open.
	for k, v := range map[string]string{"application_name": "llm_gateway", "work_mem": "64MB", "jit": "off"} {
		if cfg.ConnConfig.RuntimeParams[k] == "" {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	if pw := cfg.ConnConfig.Password; pw != "" {
		red = strings.NewReplacer(pw, "xxxxx")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	s := &PostgresStore{
		pool:     pool,
		opts:     opts,
		redactor: red,
		writerID: int64(binary.LittleEndian.Uint64(idb[:]) >> 1),
		queue:    make(chan pgOp, opts.QueueSize),
		refresh:  make(chan chan error),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		tot:      newPgTotals(),
	}
	s.pool2.New = func() any { return new(Record) }
	s.pruneCtx, s.pruneCancel = context.WithCancel(context.Background())
	s.pruneDone = make(chan struct{})
	s.zoneKick = make(chan struct{}, 1)
	if err := PostgresMigrate(ctx, pool, PostgresLedgerComponent, postgresLedgerSchema); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	if err := s.readTotals(ctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	go s.run()
	go s.pruneLoop()
	return s, nil
}

// Pool is the store's connection pool, for other features that keep their
// tables in the ledger's database (the live keys). It is closed with the
// store.
func (s *PostgresStore) Pool() *pgxpool.Pool { return s.pool }

// Record implements Store: it adds r to this instance's pending totals and
// queues a copy for the writer. It never blocks: when the queue is full
// (PostgreSQL unreachable for long) the record is dropped and counted.
// After Close the record is dropped and reported as ErrStoreClosed.
func (s *PostgresStore) Record(r *Record) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		s.report(fmt.Errorf("postgres store: record of key %q dropped: %w", r.Key, ErrStoreClosed))
		return
	}
	cp := s.pool2.Get().(*Record)
	*cp = *r
	s.tot.pend(cp, 1)
	select {
	case s.queue <- pgOp{rec: cp, seq: s.seq.Add(1)}:
	default:
		s.tot.pend(cp, -1)
		*cp = Record{}
		s.pool2.Put(cp)
		s.dropped.Add(1)
		if !s.dropping.Swap(true) {
			s.report(fmt.Errorf("postgres store: ledger queue full (%d records waiting for PostgreSQL): dropping records until it catches up", s.opts.QueueSize))
		}
	}
}

// Totals implements Store: the fleet's all-time totals of the scope as last
// read from PostgreSQL, plus what this instance recorded since.
func (s *PostgresStore) Totals(sc Scope) Totals { return s.tot.get(sc) }

// Flush implements Store: it returns once every record queued before the
// call is committed (and the fleet's totals re-read), or with ctx's error.
// While PostgreSQL is unreachable it waits. After Close it returns at once
// (with an error wrapping ErrStoreClosed if Close lost records).
func (s *PostgresStore) Flush(ctx context.Context) error {
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
	case s.queue <- pgOp{ack: ack}:
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

// Refresh re-reads the fleet's totals from PostgreSQL now (between two of
// the writer's writes), for Totals.
func (s *PostgresStore) Refresh(ctx context.Context) error {
	ack := make(chan error, 1)
	select {
	case s.refresh <- ack:
	case <-s.done:
		return ErrStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements Store: it commits everything queued, stops the writer
// and closes the pool. Once Close has begun a batch that fails is not
// retried: it and everything still queued are lost, counted as dropped,
// and Close returns the error. Close is idempotent.
func (s *PostgresStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.queue <- pgOp{stop: true} // Record never blocks, so the queue drains
		<-s.done
		s.pruneCancel()
		<-s.pruneDone
		s.pool.Close()
		if s.writeErr != nil {
			s.closeErr = fmt.Errorf("postgres store: %d usage records lost: %w", s.lost, s.writeErr)
		}
		if s.opts.OnClose != nil {
			s.opts.OnClose(s.Stats())
		}
	})
	return s.closeErr
}

// Stats returns the store's counters.
func (s *PostgresStore) Stats() PostgresStats {
	return PostgresStats{
		Committed:   s.committed.Load(),
		Batches:     s.batches.Load(),
		WriteErrors: s.writeErrors.Load(),
		Dropped:     s.dropped.Load(),
		Queued:      len(s.queue),
		Pruned:      s.pruned.Load(),
	}
}

func (s *PostgresStore) report(err error) {
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
}

// scrub takes the password out of a database error.
func (s *PostgresStore) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := s.redactor.Replace(msg); clean != msg {
		return errors.New(clean)
	}
	return err
}

// run is the writer: take one entry, drain what else is queued up to
// MaxBatch records without waiting, write it all in one statement,
// acknowledge the flush markers (after re-reading the fleet's totals),
// repeat; re-read the totals every RefreshInterval while idle or busy.
func (s *PostgresStore) run() {
	defer close(s.done)
	batch := make([]pgOp, 0, s.opts.MaxBatch)
	var acks []chan error
	ticker := time.NewTicker(s.opts.RefreshInterval)
	defer ticker.Stop()
	lastRead := time.Now()
	for stop := false; !stop; {
		batch, acks = batch[:0], acks[:0]
		take := func(op pgOp) {
			switch {
			case op.rec != nil:
				batch = append(batch, op)
			case op.ack != nil:
				acks = append(acks, op.ack)
			default:
				stop = true
			}
		}
		select {
		case op := <-s.queue:
			take(op)
		case ack := <-s.refresh:
			ack <- s.refreshTotals()
			lastRead = time.Now()
			continue
		case <-ticker.C:
			s.reportRefresh(s.refreshTotals())
			lastRead = time.Now()
			continue
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
		if err == nil {
			err = s.writeErr // an earlier batch was given up on at Close
		}
		if len(acks) > 0 && err == nil && !stop {
			s.reportRefresh(s.refreshTotals())
			lastRead = time.Now()
		} else if time.Since(lastRead) >= s.opts.RefreshInterval && !stop {
			// Busy: the ticker's ticks may all land mid-write.
			s.reportRefresh(s.refreshTotals())
			lastRead = time.Now()
		}
		for _, a := range acks {
			a <- err
		}
		for i := range batch {
			r := batch[i].rec
			*r = Record{}
			s.pool2.Put(r)
			batch[i] = pgOp{}
		}
	}
}

func (s *PostgresStore) reportRefresh(err error) {
	if err != nil {
		s.report(fmt.Errorf("postgres store: reading the fleet's totals (Totals keeps the last figures): %w", err))
	}
}

// refreshTotals re-reads the fleet's all-time totals. Only the writer calls
// it, between writes.
func (s *PostgresStore) refreshTotals() error {
	ctx, cancel := context.WithTimeout(context.Background(), postgresRefreshTimeout)
	defer cancel()
	return s.readTotals(ctx)
}

// writeRetrying writes a batch, retrying with capped exponential backoff
// until it succeeds. Once Close has begun a failure is final: the batch,
// and every later one, is counted as dropped and its error kept for Close.
func (s *PostgresStore) writeRetrying(batch []pgOp) error {
	if s.giveUp {
		s.lose(batch, nil)
		return s.writeErr
	}
	backoff := postgresMinBackoff
	for attempt := 1; ; attempt++ {
		err := s.write(batch, attempt > 1)
		if err == nil {
			s.committed.Add(int64(len(batch)))
			s.batches.Add(1)
			s.dropping.Store(false)
			s.tot.committed(batch)
			return nil
		}
		s.writeErrors.Add(1)
		err = fmt.Errorf("postgres store: writing %d usage records (attempt %d): %w", len(batch), attempt, s.scrub(err))
		s.report(err)
		select {
		case <-s.closing:
			s.lose(batch, err)
			return err
		default:
		}
		s.opts.sleep(backoff, s.closing)
		backoff = min(2*backoff, postgresMaxBackoff)
	}
}

// lose counts a batch given up on at Close.
func (s *PostgresStore) lose(batch []pgOp, err error) {
	s.giveUp = true
	s.dropped.Add(int64(len(batch)))
	s.lost += int64(len(batch))
	if s.writeErr == nil {
		s.writeErr = err
	}
}

// RedactDSN is dsn fit for a log line: a URL's password becomes xxxxx, a
// key=value string's password=… value too.
func RedactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			return u.Redacted()
		}
		return "(unparsable postgres url)"
	}
	f := strings.Fields(dsn)
	for i, kv := range f {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.EqualFold(strings.TrimSpace(k), "password") {
			f[i] = k + "=xxxxx"
		}
	}
	return strings.Join(f, " ")
}

// dsnRedactor replaces the DSN's password (as the URL or key=value string
// spells it) in error messages, before the pool's config is parsed.
func dsnRedactor(dsn string) *strings.Replacer {
	var pw string
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil && u.User != nil {
			pw, _ = u.User.Password()
		}
	} else {
		for _, kv := range strings.Fields(dsn) {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "password") {
				pw = strings.Trim(v, "'")
			}
		}
	}
	if pw == "" {
		return strings.NewReplacer()
	}
	return strings.NewReplacer(pw, "xxxxx", url.QueryEscape(pw), "xxxxx")
}

// pgTotals is Totals' answer: the fleet's totals as last read (snap), this
// instance's records committed after that read (since) and those not yet
// committed (pending).
type pgTotals struct {
	mu      sync.RWMutex
	snap    map[Scope]Totals
	since   map[Scope]*Totals
	pending map[Scope]*Totals
}

func newPgTotals() pgTotals {
	return pgTotals{snap: map[Scope]Totals{}, since: map[Scope]*Totals{}, pending: map[Scope]*Totals{}}
}

// pgScopesOf lists the record's scopes.
func pgScopesOf(r *Record, out *[3]Scope) []Scope {
	n := 0
	if r.Key != "" {
		out[n] = Scope{ScopeKey, r.Key}
		n++
	}
	if r.Team != "" {
		out[n] = Scope{ScopeTeam, r.Team}
		n++
	}
	if r.Customer != "" {
		out[n] = Scope{ScopeCustomer, r.Customer}
		n++
	}
	return out[:n]
}

// addSigned adds (sign 1) or takes away (sign -1) one record.
func addSigned(m map[Scope]*Totals, sc Scope, r *Record, sign int64) {
	t := m[sc]
	if t == nil {
		t = new(Totals)
		m[sc] = t
	}
	u := &t.Usage
	t.Requests += sign
	u.InputTokens += sign * r.Usage.InputTokens
	u.OutputTokens += sign * r.Usage.OutputTokens
	u.CacheReadTokens += sign * r.Usage.CacheReadTokens
	u.CacheWrite5mTokens += sign * r.Usage.CacheWrite5mTokens
	u.CacheWrite1hTokens += sign * r.Usage.CacheWrite1hTokens
	u.WebSearchRequests += sign * r.Usage.WebSearchRequests
	t.Cost += Money(sign) * r.Cost
	if r.CacheHit {
		t.CacheHits += sign
	}
	t.Saved += Money(sign) * r.Saved
	if *t == (Totals{}) {
		delete(m, sc)
	}
}

func (p *pgTotals) pend(r *Record, sign int64) {
	var buf [3]Scope
	p.mu.Lock()
	for _, sc := range pgScopesOf(r, &buf) {
		addSigned(p.pending, sc, r, sign)
	}
	p.mu.Unlock()
}

// committed moves a written batch from pending to since.
func (p *pgTotals) committed(batch []pgOp) {
	var buf [3]Scope
	p.mu.Lock()
	for i := range batch {
		r := batch[i].rec
		for _, sc := range pgScopesOf(r, &buf) {
			addSigned(p.pending, sc, r, -1)
			addSigned(p.since, sc, r, 1)
		}
	}
	p.mu.Unlock()
}

// replace installs a fresh read, which holds everything in since.
func (p *pgTotals) replace(snap map[Scope]Totals) {
	p.mu.Lock()
	p.snap = snap
	clear(p.since)
	p.mu.Unlock()
}

func (p *pgTotals) get(sc Scope) Totals {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t := p.snap[sc]
	for _, m := range [...]map[Scope]*Totals{p.since, p.pending} {
		if x := m[sc]; x != nil {
			t.Add(*x)
		}
	}
	return t
}
