package governance

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// rollupMismatches counts the rollup rows that differ from the ledger's
// rows rolled up afresh (both ways), and returns the rollup's row count.
func rollupMismatches(t *testing.T, pool *pgxpool.Pool) (mismatches, rows int) {
	t.Helper()
	ctx := context.Background()
	fresh := postgresRollupSelect("llm_gateway_ledger")
	stored := `SELECT bucket, ` + postgresRollupKey + `, ` + pgTotalsCols + ` FROM llm_gateway_rollup`
	if err := pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM ((`+fresh+`) EXCEPT (`+stored+`)) a)
		+ (SELECT COUNT(*) FROM ((`+stored+`) EXCEPT (`+fresh+`)) b), (SELECT COUNT(*) FROM llm_gateway_rollup)`).Scan(&mismatches, &rows); err != nil {
		t.Fatal(err)
	}
	return mismatches, rows
}

// reportsMatch checks reports the rollup answers (and some it does not)
// against a MemoryStore holding want.
// With pruned, queries the rollups cannot answer (odd's) are left out.
func reportsMatch(t *testing.T, s *PostgresStore, want []Record, from, to time.Time, pruned bool) {
	t.Helper()
	mem := NewMemoryStore()
	for i := range want {
		mem.Record(&want[i])
	}
	ctx := context.Background()
	ny, kathmandu := mustLoad(t, "America/New_York"), mustLoad(t, "Asia/Kathmandu")
	odd := time.FixedZone("odd", 5*3600+17*60+13)
	// Day rollups in UTC, New York and Kathmandu (not in odd: not whole
	// quarter hours).
	for _, z := range []*time.Location{time.UTC, kathmandu, odd, ny} {
		s.SetLocation(z)
		if err := s.registerZone(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var zones int
	if err := s.Pool().QueryRow(ctx, `SELECT COUNT(*) FROM llm_gateway_rollup_day_zone`).Scan(&zones); err != nil || zones != 3 {
		t.Fatalf("%d day-rollup zones, %v", zones, err)
	}
	for i, q := range []ReportQuery{
		{Dims: []Dim{DimModel, DimMonth}, Location: kathmandu},
		{Dims: []Dim{DimCustomer, DimDay}, Location: odd},
		{Dims: []Dim{DimTeam}, Filters: []Filter{{DimWeek, "2026-11-*"}, {DimModel, "gpt-5"}}, Location: ny},
		{Dims: []Dim{DimTeam, DimModel, DimDay}},
		{Dims: []Dim{DimTeam, DimModel, DimDay}, Location: ny},
		{Dims: []Dim{DimKey, DimHour}, Location: kathmandu, Filters: []Filter{{DimModel, "claude-*"}}},
		{Dims: []Dim{DimMonth, DimCustomer, DimStatus}, Location: ny, OrderBy: OrderByTokens},
		{Dims: []Dim{DimWeek, DimRejection}, Filters: []Filter{{DimDay, "2026-11-2?"}}, Location: ny},
		{Dims: nil, Filters: []Filter{{DimTeam, "platform"}}},
	} {
		if pruned && q.Location == odd {
			continue
		}
		q.From, q.To = from, to
		w, err := mem.Report(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Report(ctx, q)
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("report %d %+v:\n got %+v\nwant %+v", i, q, got, w)
		}
	}
}

func TestPostgresRollup(t *testing.T) {
	pg := testkit.StartPostgres(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

	t.Run("TwoWritersKeepItExact", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		a := openPostgres(t, dsn, PostgresOptions{MaxBatch: 37})
		b := openPostgres(t, dsn, PostgresOptions{MaxBatch: 53})
		// Both write the same names in the same buckets at once, so their
		// upserts meet on the same rollup rows.
		ra := randomRecords(11, 3000, base, 6*time.Hour)
		rb := randomRecords(12, 3000, base, 6*time.Hour)
		var wg sync.WaitGroup
		for _, w := range []struct {
			s    *PostgresStore
			recs []Record
		}{{a, ra}, {b, rb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range w.recs {
					w.s.Record(&w.recs[i])
				}
			}()
		}
		wg.Wait()
		flush(t, a)
		flush(t, b)
		if m, n := rollupMismatches(t, a.Pool()); m != 0 || n == 0 {
			t.Fatalf("rollup: %d mismatching rows of %d", m, n)
		}
		reportsMatch(t, a, append(ra, rb...), time.Time{}, time.Time{}, false)
		// A range cutting buckets: whole ones from the rollup, the ends from rows.
		from, to := base.Add(17*time.Minute+3), base.Add(5*time.Hour+44*time.Minute)
		var in []Record
		for _, r := range append(ra, rb...) {
			if !r.Time.Before(from) && r.Time.Before(to) {
				in = append(in, r)
			}
		}
		reportsMatch(t, a, in, from, to, false)
	})

	t.Run("Retention", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		now := base.Add(10*24*time.Hour + 7*time.Minute)
		s := openPostgres(t, dsn, PostgresOptions{now: func() time.Time { return now }, pruneRows: 97})
		recs := randomRecords(21, 2000, base, 10*24*time.Hour)
		for i := range recs {
			s.Record(&recs[i])
		}
		flush(t, s)
		if n, err := s.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("Prune without a retention: %d, %v", n, err)
		}
		s.SetRetention(72 * time.Hour)
		cut := time.Unix(0, bucketStart(unixNanos(now.Add(-72*time.Hour)))*int64(time.Second))
		var kept int
		for _, r := range recs {
			if !r.Time.Before(cut) {
				kept++
			}
		}
		n, err := s.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if int(n) != len(recs)-kept || s.Stats().Pruned != n {
			t.Fatalf("pruned %d (stats %d), want %d", n, s.Stats().Pruned, len(recs)-kept)
		}
		rows, err := s.Records(ctx, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != kept || rows[0].Time.Before(cut) {
			t.Fatalf("%d rows left (first %v), want %d from %v", len(rows), rows[0].Time, kept, cut)
		}
		// The rollup still answers for every row, pruned or not.
		reportsMatch(t, s, recs, time.Time{}, time.Time{}, true)
		if n, err := s.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("second Prune: %d, %v", n, err)
		}
	})

	t.Run("UpgradeFromSchema1", func(t *testing.T) {
		dsn := newPgDatabase(t, pg)
		recs := randomRecords(31, 1500, base, 3*24*time.Hour)
		old := openPostgres(t, dsn, PostgresOptions{})
		for i := range recs[:1000] {
			old.Record(&recs[i])
		}
		flush(t, old)
		// Back to what the previous release left: schema 1, no rollup.
		if _, err := old.Pool().Exec(ctx, `DROP TABLE llm_gateway_rollup, llm_gateway_rollup_day, llm_gateway_rollup_day_zone;
			DROP TRIGGER llm_gateway_ledger_rollup ON llm_gateway_ledger; DROP FUNCTION llm_gateway_rollup_rows();
			DELETE FROM `+PostgresMigrationsTable+` WHERE component = 'ledger' AND version >= 2`); err != nil {
			t.Fatal(err)
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s := openPostgres(t, dsn, PostgresOptions{})
		if v, err := postgresSchemaVersion(ctx, s.Pool(), PostgresLedgerComponent); err != nil || v != len(postgresLedgerSchema) {
			t.Fatalf("schema version %d, %v", v, err)
		}
		for i := range recs[1000:] {
			s.Record(&recs[1000+i])
		}
		flush(t, s)
		if m, n := rollupMismatches(t, s.Pool()); m != 0 || n == 0 {
			t.Fatalf("rollup: %d mismatching rows of %d", m, n)
		}
		reportsMatch(t, s, recs, time.Time{}, time.Time{}, false)
	})
}
