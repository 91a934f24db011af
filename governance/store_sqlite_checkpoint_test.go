package governance

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteCheckpointer writes with the writer's automatic checkpoint off:
// the checkpointer copies the WAL into the database file after every
// checkpointRows rows and when the writer goes idle, restarts a WAL that
// grew past walRestartPages, and every row is there after a reopen.
func TestSQLiteCheckpointer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	results := make(chan checkpointResult, 1024)
	s := openSQLite(t, path, SQLiteOptions{
		MaintainEvery:       time.Hour,
		checkpointRows:      500,
		walRestartPages:     20,
		idleCheckpointEvery: -1,
		checkpointed:        func(r checkpointResult) { results <- r },
	})
	var auto int
	if err := s.db.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint %d, %v; want 0 (the checkpointer's job)", auto, err)
	}
	recs := randomRecords(31, 6000, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), time.Hour)
	for i := range recs {
		s.Record(&recs[i])
		if i%1000 == 999 {
			flush(t, s) // the writer goes idle: a checkpoint
		}
	}
	flush(t, s)
	// Wait for the checkpoint that began after the last commit: it finds
	// the WAL wholly copied (nothing was written after it) and, if the WAL
	// was still longer than 20 pages, is followed by a RESTART.
	modes := map[string]int{}
	for final := false; ; {
		r := <-results
		modes[r.Mode]++
		if final {
			break // the RESTART after the final PASSIVE
		}
		if r.Mode == "PASSIVE" && r.Committed == int64(len(recs)) && !r.Busy && r.Written == r.Log {
			if final = r.Log > 20; !final {
				break
			}
		}
	}
	if modes["PASSIVE"] == 0 || modes["RESTART"] == 0 {
		t.Errorf("checkpoints %v: want passive ones, and restarts of a WAL over 20 pages", modes)
	}
	if n := s.checkpoints.Load(); n < int64(modes["PASSIVE"]+modes["RESTART"]) {
		t.Errorf("checkpoints counted %d, seen %v", n, modes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path, SQLiteOptions{MaintainEvery: time.Hour})
	rows, err := s.Records(ctx, time.Time{}, time.Time{}, 0)
	if err != nil || len(rows) != len(recs) {
		t.Fatalf("%d rows after reopening, %v; want %d", len(rows), err, len(recs))
	}
}
