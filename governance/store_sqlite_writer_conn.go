package governance

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// The writer's hot statements — ledger rows and per-scope totals — bind
// hundreds of arguments per execution. Through database/sql every argument
// is checked, converted and copied into a fresh slice on each call, a tenth
// of the writer's time at 100,000 rows a second; so the writer keeps one
// connection of its own and runs those statements on the driver directly,
// with argument slices it reuses (and so do late rows' rollup upserts).
// The rest of the write transaction (the watermark, late days) stays on
// database/sql, on the same connection and transaction.

// sqliteMultiRow is one INSERT prepared at several row counts on the
// writer's connection: n rows are written in statements of the largest
// count that fits, down to single rows.
type sqliteMultiRow struct {
	sizes []int // row counts, descending, the last 1
	stmts []driver.StmtExecContext
	width int                 // arguments per row
	args  []driver.NamedValue // sizes[0]*width, ordinals set once
}

// prepareMultiRow prepares head (an INSERT … VALUES without rows), one row
// of placeholders row repeated sizes[i] times, then tail (an ON CONFLICT
// clause or ""), for every size.
func prepareMultiRow(ctx context.Context, dc any, head, row, tail string, width int, sizes []int) (*sqliteMultiRow, error) {
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("sqlite driver connection %T cannot prepare with a context", dc)
	}
	m := &sqliteMultiRow{sizes: sizes, width: width, args: make([]driver.NamedValue, sizes[0]*width)}
	for i := range m.args {
		m.args[i].Ordinal = i + 1
	}
	for _, n := range sizes {
		st, err := pc.PrepareContext(ctx, head+row+strings.Repeat(", "+row, n-1)+tail)
		if err != nil {
			m.close()
			return nil, err
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			st.Close()
			m.close()
			return nil, fmt.Errorf("sqlite driver statement %T cannot execute with a context", st)
		}
		m.stmts = append(m.stmts, ex)
	}
	return m, nil
}

// exec writes n rows, fill putting row i's values into a (width long).
// It must run inside the writer connection's Raw.
func (m *sqliteMultiRow) exec(ctx context.Context, n int, fill func(i int, a []driver.NamedValue)) error {
	row := 0
	for k, size := range m.sizes {
		for n-row >= size {
			args := m.args[:size*m.width]
			for j := range size {
				fill(row+j, args[j*m.width:(j+1)*m.width])
			}
			if _, err := m.stmts[k].ExecContext(ctx, args); err != nil {
				return err
			}
			row += size
		}
	}
	return nil
}

// close closes every statement (inside the connection's Raw).
func (m *sqliteMultiRow) close() error {
	var errs []error
	for _, st := range m.stmts {
		if c, ok := st.(driver.Stmt); ok {
			errs = append(errs, c.Close())
		}
	}
	m.stmts = nil
	return errors.Join(errs...)
}

// sqliteWriterConn is the writer's own connection and the statements
// prepared on it.
type sqliteWriterConn struct {
	conn   *sql.Conn
	ledger *sqliteMultiRow
	totals *sqliteMultiRow
	rollup *sqliteMultiRow // late rows of buckets already rolled up
}

// sqliteLedgerSizes and sqliteTotalsSizes are the row counts the ledger and
// totals statements are prepared at. 64 ledger rows bind 2,304 arguments,
// well under SQLite's limit of 32,766.
var (
	sqliteLedgerSizes = []int{64, 16, 4, 1}
	sqliteTotalsSizes = []int{32, 8, 1}
)

// writerConn returns the writer's connection, opening it and preparing its
// statements the first time and after a failed write dropped it.
func (s *SQLiteStore) writerConn(ctx context.Context) (*sqliteWriterConn, error) {
	if s.wc != nil {
		return s.wc, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	wc := &sqliteWriterConn{conn: conn}
	err = conn.Raw(func(dc any) error {
		var err error
		if wc.ledger, err = prepareMultiRow(ctx, dc, sqliteInsertLedgerHead, sqliteLedgerRow, "", sqliteLedgerArgs, sqliteLedgerSizes); err != nil {
			return err
		}
		if wc.totals, err = prepareMultiRow(ctx, dc, sqliteUpsertTotalsHead, sqliteTotalsRow, sqliteUpsertTotalsTail, sqliteTotalsArgs, sqliteTotalsSizes); err != nil {
			return err
		}
		wc.rollup, err = prepareMultiRow(ctx, dc, sqliteUpsertRollupHead, sqliteRollupRow, sqliteUpsertRollupTail, rollupArgsN, sqliteRollupSizes)
		return err
	})
	if err != nil {
		wc.close()
		return nil, err
	}
	s.wc = wc
	return wc, nil
}

// dropWriterConn closes the writer's connection (after a failed write, and
// when the writer stops); the next write opens a new one.
func (s *SQLiteStore) dropWriterConn() error {
	if s.wc == nil {
		return nil
	}
	err := s.wc.close()
	s.wc = nil
	return err
}

func (wc *sqliteWriterConn) close() error {
	err := wc.conn.Raw(func(any) error {
		var errs []error
		for _, m := range []*sqliteMultiRow{wc.ledger, wc.totals, wc.rollup} {
			if m != nil {
				errs = append(errs, m.close())
			}
		}
		return errors.Join(errs...)
	})
	if errors.Is(err, sql.ErrConnDone) {
		err = nil // database/sql already closed the driver connection
	}
	return errors.Join(err, wc.conn.Close())
}

// writeLedgerRows inserts the batch's ledger rows.
func (s *SQLiteStore) writeLedgerRows(ctx context.Context, wc *sqliteWriterConn, batch []*Record) error {
	return wc.conn.Raw(func(any) error {
		return wc.ledger.exec(ctx, len(batch), func(i int, a []driver.NamedValue) { ledgerArgs(a, batch[i]) })
	})
}

// writeTotals upserts the batch's pre-aggregated totals, one row per
// (scope, bucket).
func (s *SQLiteStore) writeTotals(ctx context.Context, wc *sqliteWriterConn) error {
	s.aggKeys = s.aggKeys[:0]
	for k := range s.agg {
		s.aggKeys = append(s.aggKeys, k)
	}
	return wc.conn.Raw(func(any) error {
		return wc.totals.exec(ctx, len(s.aggKeys), func(i int, a []driver.NamedValue) {
			k := s.aggKeys[i]
			t := s.agg[k]
			u := &t.Usage
			a[0].Value, a[1].Value, a[2].Value, a[3].Value = k.kind.String(), k.name, k.bucket, t.Requests
			a[4].Value, a[5].Value, a[6].Value = u.InputTokens, u.OutputTokens, u.CacheReadTokens
			a[7].Value, a[8].Value, a[9].Value = u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests
			a[10].Value, a[11].Value, a[12].Value = int64(t.Cost), t.CacheHits, int64(t.Saved)
		})
	})
}
