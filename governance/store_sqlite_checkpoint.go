package governance

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The writer does not checkpoint the WAL (the store's connections run with
// wal_autocheckpoint 0): SQLite's automatic checkpoint runs inside the
// COMMIT that crosses 1,000 WAL pages, so the writer itself copied every
// page into the database file and waited for its fsync, a fifth to a third
// of its time at 100,000 rows a second and the part that varied most with
// the disk. The checkpointer goroutine does it instead, beside the writer:
// a PASSIVE checkpoint (it never blocks the writer) after every
// sqliteCheckpointRows committed rows and whenever the writer goes idle.
// A PASSIVE checkpoint cannot restart the WAL while the writer keeps
// appending to it, so once one leaves more than sqliteWALRestartPages in it,
// a RESTART checkpoint (a brief wait for the writer and the readers)
// starts it over and keeps the file bounded.

const (
	// sqliteCheckpointRows is how many committed rows nudge the
	// checkpointer (about the 1,000 pages SQLite's own default waits for).
	sqliteCheckpointRows = 8192
	// sqliteWALRestartPages is how long the WAL may grow (64 MB of 4 KB
	// pages) before a checkpoint restarts it.
	sqliteWALRestartPages = 16384
	// sqliteIdleCheckpointEvery is how often at most an idle writer nudges
	// the checkpointer (light traffic commits a few rows at a time).
	sqliteIdleCheckpointEvery = time.Second
)

// checkpointResult is what one checkpoint did: SQLite's answer to PRAGMA
// wal_checkpoint, the WAL's length in pages and how many of them are now
// in the database file.
type checkpointResult struct {
	Mode         string // PASSIVE or RESTART
	Busy         bool   // it could not finish: another connection held a lock
	Log, Written int
	// Committed is the store's committed row count when it began.
	Committed int64
}

// noteCommitted tells the checkpointer, from the writer, that rows were
// committed (or maintenance wrote) and whether the queue is now empty.
func (s *SQLiteStore) noteCommitted(rows int, wrote, idle bool) {
	s.uncheckpointed += rows
	if wrote && rows == 0 {
		s.uncheckpointed++
	}
	if s.uncheckpointed == 0 {
		return
	}
	if s.uncheckpointed < s.opts.checkpointRows {
		if !idle || (s.opts.idleCheckpointEvery > 0 && time.Since(s.lastNudge) < s.opts.idleCheckpointEvery) {
			return
		}
	}
	select {
	case s.nudge <- struct{}{}:
	default: // a checkpoint is pending: it will take these pages too
	}
	s.uncheckpointed, s.lastNudge = 0, time.Now()
}

// checkpointer runs checkpoints when nudged until stop is closed.
func (s *SQLiteStore) checkpointer() {
	defer close(s.checkpointerDone)
	ctx := context.Background()
	for {
		select {
		case <-s.stopCheckpointer:
			return
		case <-s.nudge:
		}
		r, err := s.checkpoint(ctx, "PASSIVE")
		if err == nil && r.Log > s.opts.walRestartPages {
			r, err = s.checkpoint(ctx, "RESTART")
		}
		if err != nil {
			s.report(fmt.Errorf("sqlite store: checkpoint: %w", err))
		}
	}
}

// sqliteRestartBusyTimeout is how long a RESTART checkpoint waits for the
// writer's transaction and the readers before it gives up (to try again
// after the next nudge): the writer waits for it meanwhile.
const sqliteRestartBusyTimeout = 200 * time.Millisecond

// checkpoint runs one checkpoint of mode.
func (s *SQLiteStore) checkpoint(ctx context.Context, mode string) (checkpointResult, error) {
	r := checkpointResult{Mode: mode, Committed: s.committed.Load()}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	if mode == "RESTART" {
		if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(sqliteRestartBusyTimeout.Milliseconds(), 10)); err != nil {
			return r, err
		}
		defer conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(max(s.opts.BusyTimeout.Milliseconds(), 1), 10))
	}
	var busy int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &r.Log, &r.Written); err != nil {
		return r, err
	}
	r.Busy = busy != 0
	s.checkpoints.Add(1)
	if s.opts.checkpointed != nil {
		s.opts.checkpointed(r)
	}
	return r, nil
}
