package governance

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// sameReports checks that each query answers the same from s and from the
// memory store holding the same rows.
func sameReports(t *testing.T, step string, s *SQLiteStore, mem *MemoryStore, qs []ReportQuery) {
	t.Helper()
	ctx := context.Background()
	for _, q := range qs {
		want, err := mem.Report(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Report(ctx, q)
		if err != nil || !reflect.DeepEqual(want, got) {
			t.Errorf("%s: report %v from %v to %v: %v\n got %+v\nwant %+v", step, q.Dims, q.From, q.To, err, got.Total, want.Total)
		}
	}
}

// rolledUpStores records recs in a SQLite store at path, its day rollup in
// loc, and in a memory store, and rolls the SQLite store up to upTo.
func rolledUpStores(t *testing.T, path string, loc *time.Location, recs []Record, upTo time.Time) (*SQLiteStore, *MemoryStore) {
	t.Helper()
	s := openSQLite(t, path, SQLiteOptions{MaintainEvery: time.Hour})
	s.SetLocation(loc)
	mem := NewMemoryStore()
	for i := range recs {
		s.Record(&recs[i])
		mem.Record(&recs[i])
	}
	flush(t, s)
	if err := s.Maintain(context.Background(), upTo); err != nil {
		t.Fatal(err)
	}
	return s, mem
}

// TestSQLiteDayRollupHoldsToday rolls up to the middle of a day: the day
// rollup holds that day's closed quarter hours too, reports over whole days
// read it and the rest from the rows, and late rows on either side of its
// watermark are counted once.
func TestSQLiteDayRollupHoldsToday(t *testing.T) {
	ctx := context.Background()
	ny := mustLoad(t, "America/New_York")
	day0 := time.Date(2026, 11, 29, 0, 0, 0, 0, ny)
	now := day0.AddDate(0, 0, 2).Add(13*time.Hour + 20*time.Minute) // Dec 1, 13:20
	recs := randomRecords(21, 3000, day0, now.Sub(day0))
	s, mem := rolledUpStores(t, filepath.Join(t.TempDir(), "today.db"), ny, recs, now)
	wm15, err := watermark(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	bwm, ok, err := dayState(ctx, s.db, ny)
	if err != nil || !ok || bwm != wm15 || bwm != bucketIndex(unixNanos(now.Truncate(15*time.Minute))) {
		t.Fatalf("day rollup watermark %d (%v, %v), 15-minute watermark %d", bwm, ok, err, wm15)
	}
	var todayRows int
	today := localDay(unixNanos(now), ny)
	if err := s.db.QueryRow("SELECT COUNT(*) FROM rollup_day WHERE day = ?", today).Scan(&todayRows); err != nil || todayRows == 0 {
		t.Fatalf("no day-rollup rows for the day in progress: %d, %v", todayRows, err)
	}
	month := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	qs := []ReportQuery{
		{Dims: []Dim{DimTeam, DimModel, DimDay}, Location: ny, From: month, To: month.AddDate(0, 2, 0)},
		{Dims: []Dim{DimKey}, Location: ny, From: day0.AddDate(0, 0, 2), To: day0.AddDate(0, 0, 3)}, // today alone
		{Dims: []Dim{DimMonth, DimProvider}, Location: ny},
		{Dims: []Dim{DimCustomer}, Location: ny, From: day0.Add(6 * time.Hour), To: now},   // partial days: buckets and rows
		{Dims: []Dim{DimDay}, Location: time.UTC, From: month, To: month.AddDate(0, 2, 0)}, // another zone: no day rollup
	}
	sameReports(t, "rolled up to 13:15", s, mem, qs)

	// Late rows: one in a quarter hour the day rollup holds, one after its
	// watermark (still only in the rows).
	late := randomRecords(22, 2, day0, time.Hour)
	late[0].Time = now.Add(-3 * time.Hour)
	late[1].Time = now.Add(-2 * time.Minute)
	for i := range late {
		s.Record(&late[i])
		mem.Record(&late[i])
	}
	flush(t, s)
	sameReports(t, "late rows", s, mem, qs)

	// The rest of the day rolls up later: still the same, nothing twice.
	if err := s.Maintain(ctx, now.Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sameReports(t, "rolled up past midnight", s, mem, qs)
}

// TestSQLiteDayRollupFromSchema7 opens a schema-7 file, whose day rollup
// held whole days only and has no bucket watermark: its watermark day is
// read as that day's first bucket, and the next step carries on from there.
func TestSQLiteDayRollupFromSchema7(t *testing.T) {
	ctx := context.Background()
	ny := mustLoad(t, "America/New_York")
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, ny)
	recs := randomRecords(23, 2000, day0, 5*24*time.Hour)
	path := filepath.Join(t.TempDir(), "v7.db")
	s, mem := rolledUpStores(t, path, ny, recs, day0.AddDate(0, 0, 3)) // whole days only, as schema 7 kept
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER TABLE rollup_day_state DROP COLUMN bucket_wm", "PRAGMA user_version = 7"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s = openSQLite(t, path, SQLiteOptions{MaintainEvery: time.Hour})
	s.SetLocation(ny)
	var bucketWM sql.NullInt64
	if err := s.db.QueryRow("SELECT bucket_wm FROM rollup_day_state").Scan(&bucketWM); err != nil || bucketWM.Valid {
		t.Fatalf("migrated bucket_wm %v, %v; want NULL", bucketWM, err)
	}
	if bwm, ok, err := dayState(ctx, s.db, ny); err != nil || !ok || bwm != bucketIndex(unixNanos(day0.AddDate(0, 0, 3))) {
		t.Fatalf("schema-7 day watermark read as bucket %d (%v, %v)", bwm, ok, err)
	}
	qs := []ReportQuery{
		{Dims: []Dim{DimTeam, DimDay}, Location: ny, From: day0, To: day0.AddDate(0, 0, 6)},
		{Dims: []Dim{DimModel}, Location: ny},
	}
	sameReports(t, "schema 7", s, mem, qs)
	if err := s.Maintain(ctx, day0.AddDate(0, 0, 4).Add(7*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sameReports(t, "schema 7 rolled on", s, mem, qs)
}

// TestSQLiteDayRollupReportSnapshot rolls the day rollup on between a
// report's read of its watermark and its read of the rows: the report
// reads both in one snapshot, so the quarter hours the step added are
// counted once (from the 15-minute rollup), not twice.
func TestSQLiteDayRollupReportSnapshot(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(24, 2000, day, 20*time.Hour)
	var s *SQLiteStore
	step := 0
	s = openSQLite(t, filepath.Join(t.TempDir(), "snap.db"), SQLiteOptions{MaintainEvery: time.Hour, afterDayState: func() {
		if step++; step == 1 {
			if err := s.Maintain(ctx, day.Add(16*time.Hour)); err != nil {
				t.Error(err)
			}
		}
	}})
	s.SetLocation(time.UTC)
	mem := NewMemoryStore()
	for i := range recs {
		s.Record(&recs[i])
		mem.Record(&recs[i])
	}
	flush(t, s)
	if err := s.Maintain(ctx, day.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	q := ReportQuery{Dims: []Dim{DimTeam, DimDay}, Location: time.UTC, From: day, To: day.AddDate(0, 0, 1)}
	sameReports(t, "rolled on mid-report", s, mem, []ReportQuery{q})
	if step == 0 {
		t.Fatal("the report did not read the day rollup")
	}
	if bwm, _, _ := dayState(ctx, s.db, time.UTC); bwm != bucketIndex(unixNanos(day.Add(16*time.Hour))) {
		t.Errorf("the step mid-report did not roll on: watermark %d", bwm)
	}
	sameReports(t, "after", s, mem, []ReportQuery{q})
}
