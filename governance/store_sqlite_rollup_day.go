package governance

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// sqliteSchemaV7 adds the day rollup: the 15-minute rollup summed per
// calendar day of one time zone (the gateway's, SetLocation) and without
// the session, so that reports over weeks and months read a row per key,
// model and day instead of one per quarter hour. rollup_day_state.watermark
// is a day number (days since 1970-01-01 in zone): the day rollup holds
// every day before it, built from the 15-minute rollup once a day's buckets
// are all rolled up; a late row for a day already rolled is upserted into
// both in its own transaction.
const sqliteSchemaV7 = `
CREATE TABLE rollup_day (
	zone                  TEXT    NOT NULL,
	day                   INTEGER NOT NULL,
	key                   TEXT    NOT NULL,
	team                  TEXT    NOT NULL,
	customer              TEXT    NOT NULL,
	provider              TEXT    NOT NULL,
	model                 TEXT    NOT NULL,
	surface               TEXT    NOT NULL,
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
	PRIMARY KEY (zone, day, key, team, customer, provider, model, surface, rejection)
) WITHOUT ROWID;
CREATE TABLE rollup_day_state (zone TEXT PRIMARY KEY, watermark INTEGER NOT NULL);
`

// sqliteSchemaV8 lets the day rollup hold the current day too: every
// closed quarter hour the 15-minute rollup holds is added to its day's row
// as it is rolled up, instead of a day at a time once the day is over, so
// that a report over this month reads today from the day rollup as well
// (today's 15-minute rollup has a row per session, as many as the rows
// themselves for some traffic). rollup_day_state.bucket_wm is the
// 15-minute bucket index the day rollup holds everything before;
// watermark stays the first day not wholly held. NULL (a schema-7 file):
// the start of watermark's day, until the next step sets it.
const sqliteSchemaV8 = `
ALTER TABLE rollup_day_state ADD COLUMN bucket_wm INTEGER;
`

// dayRollupCols are the day rollup's key columns after zone and day.
const dayRollupCols = "key, team, customer, provider, model, surface, rejection"

const dayRollupSet = ` DO UPDATE SET
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

const sqliteUpsertDayRollup = `INSERT INTO rollup_day VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (zone, day, ` + dayRollupCols + `)` + dayRollupSet

// SetLocation makes loc the time zone of the day rollup (the gateway's
// timezone): reports in loc over whole days read it. Another zone than the
// one the file's day rollup has drops it, and the writer builds it again
// from the 15-minute rollup in the background.
func (s *SQLiteStore) SetLocation(loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	s.dayZone.Store(loc)
}

// dayZoneNow is the day rollup's zone (nil: none kept).
func (s *SQLiteStore) dayZoneNow() *time.Location { return s.dayZone.Load() }

// localDay is the day number in loc of Unix nano ns.
func localDay(ns int64, loc *time.Location) int64 {
	t := time.Unix(0, ns).In(loc)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dayStart is the Unix nano the day number day starts at in loc.
func dayStart(day int64, loc *time.Location) int64 {
	t := time.Unix(day*86400, 0).UTC()
	y, m, d := t.Date()
	return unixNanos(time.Date(y, m, d, 0, 0, 0, 0, loc))
}

// dayState reads the day rollup's watermark for loc: the 15-minute bucket
// index it holds every bucket before (ok false: none yet).
func dayState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, loc *time.Location) (bwm int64, ok bool, err error) {
	var day int64
	var b sql.NullInt64
	err = q.QueryRowContext(ctx, "SELECT watermark, bucket_wm FROM rollup_day_state WHERE zone = ?", loc.String()).Scan(&day, &b)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case b.Valid:
		return b.Int64, true, nil
	}
	return floorDiv(dayStart(day, loc), bucketNanos), true, nil
}

// rollUpDaysStep is how many buckets one day-rollup step adds (a week's).
const rollUpDaysStep = 7 * 24 * 4

// rollUpDays adds up to rollUpDaysStep of the 15-minute rollup's buckets
// not yet in the day rollup of loc to it; done when it holds every bucket
// the 15-minute rollup does.
func (s *SQLiteStore) rollUpDays(ctx context.Context, loc *time.Location) (done bool, err error) {
	zone := loc.String()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var other int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM rollup_day_state WHERE zone != ?", zone).Scan(&other); err != nil {
		return false, err
	}
	if other > 0 { // the gateway's zone changed: start over in the new one
		for _, q := range []string{"DELETE FROM rollup_day", "DELETE FROM rollup_day_state"} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return false, err
			}
		}
	}
	bwm, ok, err := dayState(ctx, tx, loc)
	if err != nil {
		return false, err
	}
	wm15, err := watermark(ctx, tx)
	if err != nil {
		return false, err
	}
	// Skip the buckets without rows at once (a ledger with a gap, or whose
	// watermark is far ahead of its rows).
	from := int64(math.MinInt64)
	if ok {
		from = bwm * bucketSeconds
	}
	var next sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MIN(bucket) FROM rollup WHERE bucket >= ?", from).Scan(&next); err != nil {
		return false, err
	}
	if !ok && !next.Valid {
		return true, nil // nothing rolled up yet
	}
	if ok && bwm >= wm15 {
		return true, tx.Commit()
	}
	stop := wm15
	if next.Valid && floorDiv(next.Int64, bucketSeconds) < wm15 {
		if !ok {
			bwm = floorDiv(next.Int64, bucketSeconds)
		}
		bwm = max(bwm, floorDiv(next.Int64, bucketSeconds))
		stop = min(wm15, bwm+rollUpDaysStep)
		for b := bwm; b < stop; {
			d := localDay(b*bucketNanos, loc)
			lo, hi := dayStart(d, loc), dayStart(d+1, loc)
			if lo%bucketNanos != 0 || hi%bucketNanos != 0 {
				return true, nil // a zone whose days are not whole buckets: no day rollup
			}
			end := min(stop, hi/bucketNanos)
			if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_day SELECT ?, ?, `+dayRollupCols+`, `+
				strings.ReplaceAll(rollupSumsPlain, "\n", " ")+` FROM rollup WHERE bucket BETWEEN ? AND ?
				GROUP BY `+dayRollupCols+` ON CONFLICT (zone, day, `+dayRollupCols+`)`+dayRollupSet,
				zone, d, b*bucketSeconds, (end-1)*bucketSeconds); err != nil {
				return false, err
			}
			b = end
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_day_state (zone, watermark, bucket_wm) VALUES (?, ?, ?)
		ON CONFLICT (zone) DO UPDATE SET watermark = excluded.watermark, bucket_wm = excluded.bucket_wm`,
		zone, localDay(stop*bucketNanos, loc), stop); err != nil {
		return false, err
	}
	return stop >= wm15, tx.Commit()
}

// rollupSumsPlain are the 15-minute rollup's sums, for INSERT … SELECT.
const rollupSumsPlain = `SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
	SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(web_search_requests),
	SUM(cost_nano_usd), SUM(cache_hits), SUM(saved_nano_usd)`

// writeLateDays upserts the batch's late rows whose bucket the day rollup
// already holds into it (rare: rows more than a quarter hour late).
func (s *SQLiteStore) writeLateDays(ctx context.Context, tx *sql.Tx, batch []*Record) error {
	loc := s.dayZoneNow()
	if loc == nil {
		return nil
	}
	bwm, ok, err := dayState(ctx, tx, loc)
	if err != nil || !ok {
		return err
	}
	var ups *sql.Stmt
	for _, r := range batch {
		ns := unixNanos(r.Time)
		if bucketIndex(ns) >= bwm {
			continue
		}
		d := localDay(ns, loc)
		if ups == nil {
			if ups, err = tx.PrepareContext(ctx, sqliteUpsertDayRollup); err != nil {
				return err
			}
			defer ups.Close()
		}
		u := &r.Usage
		if _, err := ups.ExecContext(ctx, loc.String(), d, r.Key, r.Team, r.Customer, r.Provider, r.Model, r.Surface,
			r.Rejection, 1, u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWrite5mTokens,
			u.CacheWrite1hTokens, u.WebSearchRequests, int64(r.Cost), boolInt(r.CacheHit), int64(r.Saved)); err != nil {
			return err
		}
	}
	return nil
}

// dayRollupable reports whether the day rollup holds every dimension and
// filter: those of the 15-minute rollup but session and hour.
func dayRollupable(dims []Dim, filters []Filter) bool {
	if !rollupable(dims, filters) {
		return false
	}
	for _, d := range dims {
		if d == DimSession || d == DimHour {
			return false
		}
	}
	for _, f := range filters {
		if f.Dim == DimSession || f.Dim == DimHour {
			return false
		}
	}
	return true
}

// reportDays adds the whole days of [lo, hi] the day rollup holds to b
// (the last of them perhaps only up to its watermark) and returns the
// nanosecond range [dlo, dhi) they cover (dlo == dhi: none).
func (s *SQLiteStore) reportDays(ctx context.Context, b *reportBuilder, lo, hi int64) (dlo, dhi int64, err error) {
	loc := s.dayZoneNow()
	if loc == nil || loc.String() != b.loc.String() || !dayRollupable(b.q.Dims, b.q.Filters) {
		return 0, 0, nil
	}
	// The watermark and the rows are read in one transaction, one snapshot:
	// the writer's next step adds the quarter hours after the watermark to
	// today's rows, which the caller reads from the 15-minute rollup.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	bwm, ok, err := dayState(ctx, tx, loc)
	if err != nil || !ok {
		return 0, 0, err
	}
	if s.opts.afterDayState != nil {
		s.opts.afterDayState()
	}
	d0 := localDay(lo, loc)
	if dayStart(d0, loc) < lo {
		d0++
	}
	d1 := localDay(hi, loc) // days before d1 end at or before hi's day start
	if dayStart(d1+1, loc)-1 == hi {
		d1++
	}
	// The day rollup holds the buckets before bwm: whole days, and the
	// closed quarter hours of the day bwm is in.
	held := bwm * bucketNanos
	dhi = min(dayStart(d1, loc), held)
	if dlo = dayStart(d0, loc); dlo >= dhi {
		return 0, 0, nil
	}
	if held < dayStart(d1, loc) {
		d1 = localDay(held, loc)
		if dayStart(d1, loc) < held {
			d1++ // the partial day
		}
	}
	var sel []string
	for _, d := range b.q.Dims {
		if col, ok := rollupDims[d]; ok {
			sel = append(sel, col)
		} else {
			sel = append(sel, dayCalendarExpr(d))
		}
	}
	var w sqlWhere
	w.add("zone = ?", loc.String())
	w.add("day BETWEEN ? AND ?", d0, d1-1)
	var cal []Filter
	for _, f := range b.q.Filters {
		if col, ok := rollupDims[f.Dim]; ok {
			pushColumnFilter(&w, col, f)
		} else {
			cal = append(cal, f)
			sel = append(sel, dayCalendarExpr(f.Dim))
		}
	}
	group := ""
	if len(sel) > 0 {
		n := make([]string, len(sel))
		for i := range n {
			n[i] = strconv.Itoa(i + 1)
		}
		group = " GROUP BY " + strings.Join(n, ", ")
	}
	rs, err := tx.QueryContext(ctx, "SELECT "+strings.Join(append(sel, rollupSums), ", ")+
		" FROM rollup_day WHERE "+w.String()+group, w.args...)
	if err != nil {
		return 0, 0, err
	}
	defer rs.Close()
	raw := make([]any, len(sel))
	var dest []any
	for i := range raw {
		dest = append(dest, &raw[i])
	}
	var t Totals
	dest = append(dest, sqliteTotalsDest(&t)...)
	dims := append(append([]Dim{}, b.q.Dims...), func() []Dim {
		var ds []Dim
		for _, f := range cal {
			ds = append(ds, f.Dim)
		}
		return ds
	}()...)
rows:
	for rs.Next() {
		t = Totals{}
		if err := rs.Scan(dest...); err != nil {
			return 0, 0, err
		}
		if t.Requests == 0 {
			continue
		}
		vals := make([]string, len(dims))
		for i, d := range dims {
			if isCalendarDim(d) {
				vals[i] = calendarValue(d, raw[i], loc)
			} else {
				switch v := raw[i].(type) {
				case string:
					vals[i] = v
				case []byte:
					vals[i] = string(v)
				}
			}
		}
		for i, f := range cal {
			if !f.match(vals[len(b.q.Dims)+i]) {
				continue rows
			}
		}
		b.addGroup(vals[:len(b.q.Dims)], &t)
	}
	return dlo, dhi, rs.Err()
}

// dayCalendarExpr is the SQL of a calendar dimension from the day rollup's
// day number, formatted by calendarValue.
func dayCalendarExpr(d Dim) string {
	switch d {
	case DimDay:
		return "day"
	case DimWeek:
		return sqlFloorDiv("(day + 3)", 7)
	}
	return "strftime('%Y-%m', day * 86400, 'unixepoch')"
}
