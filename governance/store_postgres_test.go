package governance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// The PostgreSQL store's tests run against a real PostgreSQL server that
// each top-level test starts for itself (testkit.StartPostgres); subtests
// share its cluster, each with a database of its own.

// openPostgres opens a store on dsn, closing it when the test ends.
func openPostgres(t testing.TB, dsn string, opts PostgresOptions) *PostgresStore {
	t.Helper()
	s, err := OpenPostgresStore(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("OpenPostgresStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var pgDBSeq atomic.Int64

// newPgDatabase makes a fresh database on the cluster.
func newPgDatabase(t testing.TB, pg *testkit.PostgresServer) string {
	t.Helper()
	return pg.CreateDatabase(fmt.Sprintf("t%d", pgDBSeq.Add(1)))
}

func refresh(t testing.TB, s *PostgresStore) {
	t.Helper()
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

// TestPostgresStore: one cluster, one database per subtest.
func TestPostgresStore(t *testing.T) {
	pg := testkit.StartPostgres(t)

	t.Run("RoundTripAndTotals", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		recs := randomRecords(7, 700, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 48*time.Hour)
		recs[0].Labels = map[string]string{"q": "it's \"quoted\" \\ ünïcode"}
		recs[1].UserAgent = "nul\x00byte"
		s := openPostgres(t, dsn, PostgresOptions{MaxBatch: 64})
		mem := NewMemoryStore()
		for i := range recs {
			s.Record(&recs[i])
			mem.Record(&recs[i])
		}
		// Before the writer commits, Totals already counts every record.
		for _, sc := range scopesOf(recs) {
			if got, want := s.Totals(sc), mem.Totals(sc); got != want {
				t.Fatalf("Totals(%s) before flush = %+v, want %+v", sc, got, want)
			}
		}
		flush(t, s)
		got, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%d rows, want %d", len(got), len(recs))
		}
		want := slices.Clone(recs)
		want[1].UserAgent = "nul\uFFFDbyte"
		slices.SortStableFunc(want, func(a, b Record) int { return a.Time.Compare(b.Time) })
		for i := range got {
			if !sameRecord(got[i], want[i]) {
				t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		if st := s.Stats(); st.Committed != int64(len(recs)) || st.Dropped != 0 || st.Batches < int64(len(recs)/64) {
			t.Fatalf("stats %+v", st)
		}
		// A second store (a restart, or another instance) reads the same
		// totals and spend from the database.
		again := openPostgres(t, dsn, PostgresOptions{})
		since := time.Date(2026, 12, 1, 0, 7, 0, 0, time.UTC)
		for _, sc := range scopesOf(recs) {
			if got, want := again.Totals(sc), mem.Totals(sc); got != want {
				t.Fatalf("reopened Totals(%s) = %+v, want %+v", sc, got, want)
			}
			got, err := again.SpendSince(sc, since)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := mem.SpendSince(sc, since)
			if got != want {
				t.Fatalf("SpendSince(%s) = %+v, want %+v", sc, got, want)
			}
		}
	})

	t.Run("QueriesMatchMemory", func(t *testing.T) {
		s := openPostgres(t, newPgDatabase(t, pg), PostgresOptions{})
		recs := usageDataset(t)
		recs = append(recs, reportFixture(t)...)
		mem := NewMemoryStore()
		for i := range recs {
			s.Record(&recs[i])
			mem.Record(&recs[i])
		}
		flush(t, s)
		ctx := context.Background()
		ny := mustLoad(t, "America/New_York")
		paris := mustLoad(t, "Europe/Paris")
		locs := []*time.Location{nil, ny, mustLoad(t, "Asia/Kathmandu"), mustLoad(t, "Europe/Amsterdam"),
			time.FixedZone("odd", 5*3600+17*60+13)}
		for _, g := range []GroupBy{GroupByKey, GroupByTeam, GroupByModel, GroupByPriceRow, GroupByDay, "bogus"} {
			for _, loc := range locs {
				q := UsageQuery{GroupBy: g, Location: loc,
					From: time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 11, 3, 12, 0, 0, 0, ny)}
				want, _ := mem.Usage(ctx, q)
				got, err := s.Usage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Usage %s %v:\n got %+v\nwant %+v", g, loc, got, want)
				}
			}
		}
		reports := []ReportQuery{
			{Dims: []Dim{DimTeam, DimModel, DimDay}, Location: paris},
			{Dims: []Dim{DimKey}, Filters: []Filter{{DimModel, "claude-opus-*"}, {DimTeam, "payments"}}},
			{Dims: []Dim{"label.project", DimWeek}, Location: ny, OrderBy: OrderByTokens},
			{Dims: []Dim{DimHour}, Location: mustLoad(t, "Asia/Kathmandu"), Limit: 7},
			{Dims: []Dim{DimMonth, DimCustomer}, Location: time.FixedZone("odd", 5*3600+17*60+13)},
			{Dims: []Dim{DimSession, DimSurface}, Filters: []Filter{{DimDay, "2025-03-0?"}}, OrderBy: OrderByRequests},
			{Dims: []Dim{DimKey}, Filters: []Filter{{"label.env", "prod"}, {DimProvider, "?edrock"}}},
			{Dims: nil, Filters: []Filter{{DimKey, "edge-%"}}},
			{Dims: []Dim{DimKey, DimProvider}, From: recs[10].Time, To: recs[900].Time, Limit: 3, Cursor: makeCursor(3)},
			{Dims: []Dim{"label.nope"}},
			{Dims: []Dim{DimStatus, DimRejection}, Filters: []Filter{{DimStatus, "4?9"}}},
			{Dims: []Dim{DimRejection}, Filters: []Filter{{DimRejection, "?*"}, {DimStatus, "200"}}},
		}
		for i, q := range reports {
			want, err := mem.Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Report(ctx, q)
			if err != nil {
				t.Fatalf("report %d: %v", i, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("report %d %+v:\n got %+v\nwant %+v", i, q, got, want)
			}
		}
		if _, err := s.Report(ctx, ReportQuery{Cursor: "nope"}); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("bad cursor: %v", err)
		}
		requests := []RequestsQuery{
			{Limit: 50},
			{OrderBy: OrderByCost, Limit: 17, Filters: []Filter{{DimTeam, "platform"}}},
			{OrderBy: OrderByTokens, Limit: 100, From: recs[3].Time},
			{Filters: []Filter{{DimDay, "2025-11-0*"}, {"label.project", "apollo"}}, Location: ny, Limit: 20},
		}
		for i, q := range requests {
			for page := 0; ; page++ {
				want, err := mem.Requests(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Requests(ctx, q)
				if err != nil {
					t.Fatalf("requests %d: %v", i, err)
				}
				if got.Total != want.Total || len(got.Rows) != len(want.Rows) || (got.NextCursor == "") != (want.NextCursor == "") {
					t.Fatalf("requests %d page %d: total %+v want %+v, %d rows want %d", i, page, got.Total, want.Total, len(got.Rows), len(want.Rows))
				}
				for j := range got.Rows {
					// Row order may differ only between rows with the same
					// sort key and time (the stores' write orders differ).
					if orderValue(OrderBy(q.OrderBy), &got.Rows[j]) != orderValue(OrderBy(q.OrderBy), &want.Rows[j]) ||
						!got.Rows[j].Time.Equal(want.Rows[j].Time) {
						t.Fatalf("requests %d page %d row %d:\n got %+v\nwant %+v", i, page, j, got.Rows[j], want.Rows[j])
					}
				}
				if got.NextCursor == "" || page > 3 {
					break
				}
				q.Cursor = got.NextCursor
			}
		}
		sessions := []SessionsQuery{
			{},
			{OrderBy: OrderByTime, Limit: 5},
			{MinCost: 20 * Dollar, Filters: []Filter{{DimKey, "alice"}}},
			{Filters: []Filter{{DimDay, "2025-03-1?"}}, Location: ny, OrderBy: OrderByRequests},
		}
		// The page's details by session name, and for every session of the
		// range (a page above pgSessionDetailsAll).
		defer func(n int) { pgSessionDetailsAll = n }(pgSessionDetailsAll)
		for _, byName := range []int{1000, 0} {
			pgSessionDetailsAll = byName
			for i, q := range sessions {
				want, err := mem.Sessions(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Sessions(ctx, q)
				if err != nil {
					t.Fatalf("sessions %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("sessions %d (details by name up to %d):\n got %+v\nwant %+v", i, byName, got, want)
				}
			}
		}
	})

	t.Run("Fleet", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		a := openPostgres(t, dsn, PostgresOptions{})
		b := openPostgres(t, dsn, PostgresOptions{})
		recs := randomRecords(9, 400, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour)
		mem := NewMemoryStore()
		for i := range recs {
			mem.Record(&recs[i])
			if i%3 == 0 {
				b.Record(&recs[i])
			} else {
				a.Record(&recs[i])
			}
		}
		flush(t, a)
		flush(t, b)
		// After both have flushed, a Flush (or a refresh) reads the other's
		// rows; nothing is counted twice.
		flush(t, a)
		for _, s := range []*PostgresStore{a, b} {
			for _, sc := range scopesOf(recs) {
				if got, want := s.Totals(sc), mem.Totals(sc); got != want {
					t.Fatalf("Totals(%s) = %+v, want %+v", sc, got, want)
				}
			}
			q := ReportQuery{Dims: []Dim{DimKey, DimDay}}
			got, _ := s.Report(context.Background(), q)
			want, _ := mem.Report(context.Background(), q)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fleet report:\n got %+v\nwant %+v", got, want)
			}
		}
		// Records this instance has not committed yet count at once, the
		// other's after the next refresh.
		extra := Record{Time: recs[0].Time, Key: "alice", Team: "platform", Cost: 5, Usage: llm.Usage{InputTokens: 3}}
		before := a.Totals(Scope{ScopeKey, "alice"})
		b.Record(&extra)
		flush(t, b)
		if got := a.Totals(Scope{ScopeKey, "alice"}); got != before {
			t.Fatalf("before refresh: %+v, want %+v", got, before)
		}
		refresh(t, a)
		if got := a.Totals(Scope{ScopeKey, "alice"}); got.Requests != before.Requests+1 || got.Cost != before.Cost+5 {
			t.Fatalf("after refresh: %+v, before %+v", got, before)
		}
	})

	t.Run("RetriedBatchCountsOnce", func(t *testing.T) {
		// A batch whose commit reply was lost is written again: the rows
		// and totals it already added are not added twice.
		s := openPostgres(t, newPgDatabase(t, pg), PostgresOptions{})
		recs := randomRecords(11, 20, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Hour)
		mem := NewMemoryStore()
		batch := make([]pgOp, len(recs))
		for i := range recs {
			mem.Record(&recs[i])
			batch[i] = pgOp{rec: &recs[i], seq: int64(1000 + i)}
		}
		for _, retry := range []bool{false, true, true} {
			if err := s.write(batch, retry); err != nil {
				t.Fatal(err)
			}
		}
		// Without the check, the primary key refuses the duplicate.
		if err := s.write(batch, false); err == nil || !strings.Contains(err.Error(), "llm_gateway_ledger_pkey") {
			t.Fatalf("duplicate batch: %v", err)
		}
		refresh(t, s)
		rows, _ := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
		if len(rows) != len(recs) {
			t.Fatalf("%d rows, want %d", len(rows), len(recs))
		}
		for _, sc := range scopesOf(recs) {
			if got, want := s.Totals(sc), mem.Totals(sc); got != want {
				t.Fatalf("Totals(%s) = %+v, want %+v", sc, got, want)
			}
		}
	})

	t.Run("MigrationsConcurrentAndVersioned", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := OpenPostgresStore(context.Background(), dsn, PostgresOptions{})
				if err == nil {
					s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("concurrent open: %v", err)
			}
		}
		s := openPostgres(t, dsn, PostgresOptions{})
		v, err := postgresSchemaVersion(context.Background(), s.Pool(), PostgresLedgerComponent)
		if err != nil || v != len(postgresLedgerSchema) {
			t.Fatalf("version %d, %v", v, err)
		}
		// Another component migrates beside the ledger in the same table.
		steps := []string{`CREATE TABLE other_things (id int)`, `ALTER TABLE other_things ADD COLUMN name text`}
		for range 2 {
			if err := PostgresMigrate(context.Background(), s.Pool(), "other", steps); err != nil {
				t.Fatal(err)
			}
		}
		if err := PostgresMigrate(context.Background(), s.Pool(), "other", steps[:1]); err == nil ||
			!strings.Contains(err.Error(), "newer than this build") {
			t.Fatalf("newer schema: %v", err)
		}
		if _, err := s.Pool().Exec(context.Background(), `INSERT INTO `+PostgresMigrationsTable+
			` (component, version) VALUES ('ledger', 99)`); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenPostgresStore(context.Background(), dsn, PostgresOptions{}); err == nil ||
			!strings.Contains(err.Error(), "newer than this build") {
			t.Fatalf("open on a newer ledger schema: %v", err)
		}
	})

	t.Run("SecretsStayOut", func(t *testing.T) {
		bad := strings.Replace(pg.DSN, testkit.PostgresPassword, "wrong-secret-pw", 1)
		_, err := OpenPostgresStore(context.Background(), bad, PostgresOptions{})
		if err == nil || strings.Contains(err.Error(), "wrong-secret-pw") || !strings.Contains(err.Error(), "xxxxx") {
			t.Fatalf("error with a wrong password: %v", err)
		}
		if _, err := OpenPostgresStore(context.Background(), "postgres://u:s3cr%zzt@127.0.0.1:1/x", PostgresOptions{}); err == nil ||
			strings.Contains(err.Error(), "s3cr") {
			t.Fatalf("unparsable DSN: %v", err)
		}
	})

	t.Run("CloseAndFlushLifecycle", func(t *testing.T) {
		var reported []error
		var mu sync.Mutex
		s := openPostgres(t, newPgDatabase(t, pg), PostgresOptions{OnError: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		}})
		s.Record(&Record{Time: time.Now(), Key: "k"})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Record(&Record{Time: time.Now(), Key: "k"})
		if st := s.Stats(); st.Committed != 1 || st.Dropped != 1 {
			t.Fatalf("stats %+v", st)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(reported) != 1 || !errors.Is(reported[0], ErrStoreClosed) {
			t.Fatalf("reported %v", reported)
		}
	})
}

// TestPostgresStoreOutage: PostgreSQL stops while requests are recorded
// and starts again; Record never blocks, and every row arrives exactly
// once.
func TestPostgresStoreOutage(t *testing.T) {
	pg := testkit.StartPostgres(t)
	var errCount atomic.Int64
	opts := PostgresOptions{MaxBatch: 50, OnError: func(err error) {
		errCount.Add(1)
		if strings.Contains(err.Error(), testkit.PostgresPassword) {
			t.Errorf("password in error: %v", err)
		}
	}}
	// No real backoff waits: retries are driven by the test's restart.
	retry := make(chan struct{}, 1)
	opts.sleep = func(_ time.Duration, stop <-chan struct{}) {
		select {
		case <-retry:
		case <-stop:
		}
	}
	s := openPostgres(t, pg.DSN, opts)
	recs := randomRecords(5, 3000, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour)
	mem := NewMemoryStore()
	for i := range recs {
		mem.Record(&recs[i])
	}
	var next atomic.Int64
	record := func(n int) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 4 {
					i := next.Add(1) - 1
					s.Record(&recs[i])
				}
			}()
		}
		wg.Wait()
	}
	record(1000)
	pg.Stop() // mid-load: part of the first thousand may still be queued
	record(1000)
	if st := s.Stats(); st.Dropped != 0 {
		t.Fatalf("dropped %+v", st)
	}
	pg.Restart()
	record(1000)
	// Let the writer retry until it gets through.
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush(context.Background()) }()
	for done := false; !done; {
		select {
		case err := <-flushed:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		case retry <- struct{}{}:
		}
	}
	refresh(t, s)
	st := s.Stats()
	if st.Committed != int64(len(recs)) || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	rows, err := s.Records(context.Background(), time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(rows), len(recs))
	}
	for _, sc := range scopesOf(recs) {
		if got, want := s.Totals(sc), mem.Totals(sc); got != want {
			t.Fatalf("Totals(%s) = %+v, want %+v", sc, got, want)
		}
	}
	t.Logf("%d write errors while PostgreSQL was down", errCount.Load())

	t.Run("QueueFullDrops", func(t *testing.T) {
		var reported atomic.Int64
		small := openPostgres(t, pg.DSN, PostgresOptions{QueueSize: 10, MaxBatch: 5, OnError: func(err error) {
			if strings.Contains(err.Error(), "queue full") {
				reported.Add(1)
			}
		}, sleep: opts.sleep})
		pg.Stop()
		extra := randomRecords(6, 100, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Hour)
		for i := range extra {
			small.Record(&extra[i]) // never blocks
		}
		st := small.Stats()
		// At most QueueSize wait in the queue and MaxBatch in the writer.
		if st.Dropped < int64(len(extra)-10-5) || st.Dropped > int64(len(extra)) || reported.Load() != 1 {
			t.Fatalf("stats %+v, %d reports", st, reported.Load())
		}
		pg.Restart()
		flushed := make(chan error, 1)
		go func() { flushed <- small.Flush(context.Background()) }()
		for done := false; !done; {
			select {
			case err := <-flushed:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			case retry <- struct{}{}:
			}
		}
		if st := small.Stats(); st.Committed+st.Dropped != int64(len(extra)) {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"postgres://u:%zz@h/db", "(unparsable postgres url)"},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
