package governance

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// How the SQLite store answers Report, Requests and Sessions: the whole
// 15-minute buckets of the range below the rollup's watermark come from
// the rollup, when every dimension and filter is one the rollup holds
// (key, team, customer, provider, model, surface, session, rejection and
// the calendar buckets); the partial buckets at the range's ends and the
// buckets from the watermark on come from the ledger rows. Anything else
// (labels, status) reads the rows. The two never overlap: the rollup holds
// exactly the rows below the watermark.

// sqlWhere is a WHERE clause under construction.
type sqlWhere struct {
	conds []string
	args  []any
}

func (w *sqlWhere) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *sqlWhere) String() string {
	if len(w.conds) == 0 {
		return "1"
	}
	return strings.Join(w.conds, " AND ")
}

// clone copies w so conditions can be added to the copy only.
func (w *sqlWhere) clone() sqlWhere {
	return sqlWhere{conds: append([]string(nil), w.conds...), args: append([]any(nil), w.args...)}
}

// sqlGlob is a Filter glob as SQLite GLOB reads it: '*' and '?' as they
// are, '[' (GLOB's only other special character) escaped.
func sqlGlob(p string) string { return strings.ReplaceAll(p, "[", "[[]") }

// pushColumnFilter adds f on column col (exact or GLOB) to w.
func pushColumnFilter(w *sqlWhere, col string, f Filter) {
	if f.glob() {
		w.add(col+" GLOB ?", sqlGlob(f.Pattern))
	} else {
		w.add(col+" = ?", f.Pattern)
	}
}

// pushLedgerFilters adds to w what SQL can check of filters on ledger
// rows: columns exactly or by glob, an exact status, exact labels. The
// caller checks every filter again in Go, so what is pushed only narrows.
func pushLedgerFilters(w *sqlWhere, filters []Filter) {
	for _, f := range filters {
		switch col := f.Dim.column(); {
		case col != "":
			pushColumnFilter(w, col, f)
		case f.Dim == DimStatus && !f.glob():
			if n, err := strconv.Atoi(f.Pattern); err == nil {
				w.add("status = ?", n)
			}
		case f.Dim.Label() != "" && !f.glob() && !strings.ContainsAny(f.Dim.Label(), `"\`):
			w.add(`COALESCE(json_extract(labels, ?), '') = ?`, `$."`+f.Dim.Label()+`"`, f.Pattern)
		}
	}
}

// isCalendarDim reports whether d is a calendar bucket.
func isCalendarDim(d Dim) bool { return d == DimHour || d == DimDay || d == DimWeek || d == DimMonth }

// rollupable reports whether the rollup holds every dimension and filter.
func rollupable(dims []Dim, filters []Filter) bool {
	for _, d := range dims {
		if _, ok := rollupDims[d]; !ok && !isCalendarDim(d) {
			return false
		}
	}
	for _, f := range filters {
		if _, ok := rollupDims[f.Dim]; !ok && !isCalendarDim(f.Dim) {
			return false
		}
	}
	return true
}

// zoneSegments lists the UTC offsets loc has over the buckets [b0, b1)
// as CASE arms of an SQL expression of the rollup's bucket column (Unix
// seconds) giving local seconds; ok is false when an offset is not a
// multiple of 15 minutes or changes inside a bucket (the rows are read).
func zoneSegments(loc *time.Location, b0, b1 int64) (expr string, ok bool) {
	type seg struct{ from, off int64 }
	var segs []seg
	for t, end := b0*bucketSeconds, b1*bucketSeconds; ; {
		lt := time.Unix(t, 0).In(loc)
		_, off := lt.Zone()
		if int64(off)%bucketSeconds != 0 {
			return "", false
		}
		segs = append(segs, seg{t, int64(off)})
		_, next := lt.ZoneBounds()
		if next.IsZero() || next.Unix() >= end {
			break
		}
		if next.Unix()%bucketSeconds != 0 || len(segs) > 1000 {
			return "", false
		}
		t = next.Unix()
	}
	if len(segs) == 1 {
		return "(bucket + " + strconv.FormatInt(segs[0].off, 10) + ")", true
	}
	var b strings.Builder
	b.WriteString("(bucket + CASE")
	for i, sg := range segs[:len(segs)-1] {
		b.WriteString(" WHEN bucket < " + strconv.FormatInt(segs[i+1].from, 10) + " THEN " + strconv.FormatInt(sg.off, 10))
	}
	b.WriteString(" ELSE " + strconv.FormatInt(segs[len(segs)-1].off, 10) + " END)")
	return b.String(), true
}

// sqlFloorDiv is SQL for floor(x / n), n > 0.
func sqlFloorDiv(x string, n int64) string {
	ns := strconv.FormatInt(n, 10)
	return "(" + x + " / " + ns + " - (" + x + " % " + ns + " < 0))"
}

// calendarExpr is the SQL of calendar dimension d from local seconds l;
// calendarValue formats what it selects.
func calendarExpr(d Dim, l string) string {
	day := sqlFloorDiv(l, 86400)
	switch d {
	case DimHour: // the instant the local hour starts
		return "(bucket - ((" + l + " % 3600) + 3600) % 3600)"
	case DimDay:
		return day
	case DimWeek:
		return sqlFloorDiv("("+day+" + 3)", 7)
	}
	return "strftime('%Y-%m', " + l + ", 'unixepoch')"
}

func calendarValue(d Dim, v any, loc *time.Location) string {
	n, _ := v.(int64)
	switch d {
	case DimHour:
		return time.Unix(n, 0).In(loc).Format(time.RFC3339)
	case DimDay:
		return time.Unix(n*86400, 0).UTC().Format(time.DateOnly)
	case DimWeek:
		return time.Unix((n*7-3)*86400, 0).UTC().Format(time.DateOnly)
	}
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

// rollupSpan is the buckets [b0, b1) of the ledger range [lo, hi] that the
// rollup answers: whole buckets, below the watermark, within the rollup's
// own extent. ok is false when there are none.
func (s *SQLiteStore) rollupSpan(ctx context.Context, lo, hi int64) (b0, b1 int64, ok bool, err error) {
	wm, err := watermark(ctx, s.db)
	if err != nil {
		return 0, 0, false, err
	}
	// Two queries: SQLite answers a lone MIN or MAX of the key's first
	// column from the index's ends, but not both in one query.
	var minB, maxB sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MIN(bucket) FROM rollup").Scan(&minB); err != nil {
		return 0, 0, false, err
	}
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(bucket) FROM rollup").Scan(&maxB); err != nil {
		return 0, 0, false, err
	}
	if !minB.Valid || !maxB.Valid {
		return 0, 0, false, nil
	}
	b0 = bucketIndex(lo)
	if start, _ := bucketNanoRange(b0); start < lo {
		b0++
	}
	b1 = bucketIndex(hi)
	if _, end := bucketNanoRange(b1); end == hi {
		b1++
	}
	b0 = max(b0, minB.Int64/bucketSeconds)
	b1 = min(b1, wm, maxB.Int64/bucketSeconds+1)
	return b0, b1, b0 < b1, nil
}

// splitRange calls raw for the parts of [lo, hi] outside the buckets
// [b0, b1).
func splitRange(lo, hi, b0, b1 int64, raw func(lo, hi int64) error) error {
	r0, _ := bucketNanoRange(b0)
	_, r1 := bucketNanoRange(b1 - 1)
	if lo < r0 {
		if err := raw(lo, r0-1); err != nil {
			return err
		}
	}
	if r1 < hi {
		return raw(r1+1, hi)
	}
	return nil
}

// Report implements Store: rollup where it can, rows elsewhere (see the
// top of this file), grouped, sorted and paged exactly as MemoryStore does.
func (s *SQLiteStore) Report(ctx context.Context, q ReportQuery) (Report, error) {
	b := newReportBuilder(q)
	if _, err := parseCursor(q.Cursor); err != nil {
		return Report{}, err
	}
	if lo, hi, ok := ledgerRange(q.From, q.To); ok {
		if err := s.reportInto(ctx, b, lo, hi); err != nil {
			return Report{}, fmt.Errorf("sqlite store: report: %w", err)
		}
	}
	return b.report()
}

func (s *SQLiteStore) reportInto(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	dlo, dhi, err := s.reportDays(ctx, b, lo, hi)
	if err != nil {
		return err
	}
	if dlo < dhi {
		if lo < dlo {
			if err := s.reportBuckets(ctx, b, lo, dlo-1); err != nil {
				return err
			}
		}
		if dhi <= hi {
			return s.reportBuckets(ctx, b, dhi, hi)
		}
		return nil
	}
	return s.reportBuckets(ctx, b, lo, hi)
}

// reportBuckets adds [lo, hi] to b from the 15-minute rollup and the rows.
func (s *SQLiteStore) reportBuckets(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	if rollupable(b.q.Dims, b.q.Filters) {
		b0, b1, ok, err := s.rollupSpan(ctx, lo, hi)
		if err != nil {
			return err
		}
		if ok {
			if local, ok := zoneSegments(b.loc, b0, b1); ok {
				if err := s.reportRollup(ctx, b, local, b0, b1); err != nil {
					return err
				}
				return splitRange(lo, hi, b0, b1, func(lo, hi int64) error { return s.reportRows(ctx, b, lo, hi) })
			}
		}
	}
	return s.reportRows(ctx, b, lo, hi)
}

// rollupSums are the sums a rollup query selects, in scanRollupTotals order.
// (TOTAL would be a float; COALESCE keeps an ungrouped sum over no row an
// integer 0.)
const rollupSums = `COALESCE(SUM(requests), 0), COALESCE(SUM(input_tokens), 0),
	COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0),
	COALESCE(SUM(cache_write_5m_tokens), 0), COALESCE(SUM(cache_write_1h_tokens), 0),
	COALESCE(SUM(web_search_requests), 0), COALESCE(SUM(cost_nano_usd), 0),
	COALESCE(SUM(cache_hits), 0), COALESCE(SUM(saved_nano_usd), 0)`

func sqliteTotalsDest(t *Totals) []any {
	u := &t.Usage
	return []any{&t.Requests, &u.InputTokens, &u.OutputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens,
		&u.CacheWrite1hTokens, &u.WebSearchRequests, &t.Cost, &t.CacheHits, &t.Saved}
}

// rollupQuery is the SELECT of dims (plus the calendar dims of calendar
// filters) over the rollup's buckets [b0, b1), with the column filters in
// SQL; extra columns come after the dims, then rollupSums.
type rollupQuery struct {
	sel   []Dim    // the selected dims, query dims first
	exprs []string // their SQL
	cal   []Filter // calendar filters, checked in Go
	where sqlWhere
	from  string // the table, and the index for one session
}

func newRollupQuery(dims []Dim, filters []Filter, local string, b0, b1 int64) *rollupQuery {
	rq := &rollupQuery{from: "rollup"}
	add := func(d Dim) {
		for _, s := range rq.sel {
			if s == d {
				return
			}
		}
		rq.sel = append(rq.sel, d)
		if col, ok := rollupDims[d]; ok {
			rq.exprs = append(rq.exprs, col)
		} else {
			rq.exprs = append(rq.exprs, calendarExpr(d, local))
		}
	}
	for _, d := range dims {
		add(d)
	}
	rq.where.add("bucket BETWEEN ? AND ?", b0*bucketSeconds, (b1-1)*bucketSeconds)
	for _, f := range filters {
		if col, ok := rollupDims[f.Dim]; ok {
			pushColumnFilter(&rq.where, col, f)
			if f.Dim == DimSession && f.Pattern != "" && !f.glob() {
				rq.where.add("session_id != ''")
				rq.from = "rollup INDEXED BY rollup_session" // one session: its few buckets
			}
		} else {
			add(f.Dim)
			rq.cal = append(rq.cal, f)
		}
	}
	return rq
}

// values formats a scanned row's selected dims; ok is false when a
// calendar filter rejects it.
func (rq *rollupQuery) values(raw []any, loc *time.Location) (vals []string, ok bool) {
	vals = make([]string, len(rq.sel))
	for i, d := range rq.sel {
		if isCalendarDim(d) {
			vals[i] = calendarValue(d, raw[i], loc)
			continue
		}
		switch v := raw[i].(type) {
		case string:
			vals[i] = v
		case []byte:
			vals[i] = string(v)
		}
	}
	for _, f := range rq.cal {
		for i, d := range rq.sel {
			if d == f.Dim && !f.match(vals[i]) {
				return nil, false
			}
		}
	}
	return vals, true
}

func (s *SQLiteStore) reportRollup(ctx context.Context, b *reportBuilder, local string, b0, b1 int64) error {
	rq := newRollupQuery(b.q.Dims, b.q.Filters, local, b0, b1)
	sel := strings.Join(append(append([]string{}, rq.exprs...), rollupSums), ", ")
	group := ""
	if len(rq.exprs) > 0 {
		n := make([]string, len(rq.exprs))
		for i := range n {
			n[i] = strconv.Itoa(i + 1)
		}
		group = " GROUP BY " + strings.Join(n, ", ")
	}
	rs, err := s.db.QueryContext(ctx, "SELECT "+sel+" FROM "+rq.from+" WHERE "+rq.where.String()+group, rq.where.args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	raw := make([]any, len(rq.sel))
	dest := make([]any, 0, len(rq.sel)+10)
	for i := range raw {
		dest = append(dest, &raw[i])
	}
	var t Totals
	dest = append(dest, sqliteTotalsDest(&t)...)
	for rs.Next() {
		t = Totals{}
		if err := rs.Scan(dest...); err != nil {
			return err
		}
		if t.Requests == 0 { // no row matched and nothing is grouped
			continue
		}
		vals, ok := rq.values(raw, b.loc)
		if !ok {
			continue
		}
		b.addGroup(vals[:len(b.q.Dims)], &t)
	}
	return rs.Err()
}

// scanRows reads the ledger rows of where (time range included) into
// ledgerRecords for fn; labels only when asked for.
func (s *SQLiteStore) scanRows(ctx context.Context, where *sqlWhere, labels bool, fn func(*ledgerRecord)) error {
	lcol := "'{}'"
	if labels {
		lcol = "labels"
	}
	rs, err := s.db.QueryContext(ctx, `SELECT time_ns, key, team, customer, provider, model,
		surface, session_id, rejection, status, `+lcol+`, input_tokens, output_tokens, cache_read_tokens,
		cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd,
		cache_hit, saved_nano_usd FROM ledger WHERE `+where.String(), where.args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var lr ledgerRecord
		var lj string
		u := &lr.usage
		c := &lr.cols
		if err := rs.Scan(&lr.ns, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &lj,
			&u.InputTokens, &u.OutputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens,
			&u.CacheWrite1hTokens, &u.WebSearchRequests, &lr.cost, &lr.cacheHit, &lr.saved); err != nil {
			return err
		}
		if lr.labels, err = parseLabels(lj); err != nil {
			return err
		}
		fn(&lr)
	}
	return rs.Err()
}

// reportRows adds the ledger rows of [lo, hi] to b.
func (s *SQLiteStore) reportRows(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	var w sqlWhere
	w.add("time_ns BETWEEN ? AND ?", lo, hi)
	pushLedgerFilters(&w, b.q.Filters)
	return s.scanRows(ctx, &w, b.q.needsLabels(), b.add)
}

// Sessions implements Store: the rollup where it can, rows elsewhere.
func (s *SQLiteStore) Sessions(ctx context.Context, q SessionsQuery) (SessionPage, error) {
	b, err := newSessionBuilder(q)
	if err != nil {
		return SessionPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return b.page()
	}
	rows := func(lo, hi int64) error {
		var w sqlWhere
		w.add("time_ns BETWEEN ? AND ?", lo, hi)
		w.add("session_id != ''")
		pushLedgerFilters(&w, q.Filters)
		rq := ReportQuery{Filters: q.Filters}
		return s.scanRows(ctx, &w, rq.needsLabels(), b.add)
	}
	err = func() error {
		if rollupable(nil, q.Filters) {
			b0, b1, ok, err := s.rollupSpan(ctx, lo, hi)
			if err != nil {
				return err
			}
			if ok {
				if local, ok := zoneSegments(b.loc, b0, b1); ok {
					if err := s.sessionsRollup(ctx, b, local, b0, b1); err != nil {
						return err
					}
					return splitRange(lo, hi, b0, b1, rows)
				}
			}
		}
		return rows(lo, hi)
	}()
	if err != nil {
		return SessionPage{}, fmt.Errorf("sqlite store: sessions: %w", err)
	}
	return b.page()
}

func (s *SQLiteStore) sessionsRollup(ctx context.Context, b *sessionBuilder, local string, b0, b1 int64) error {
	rq := newRollupQuery([]Dim{DimSession, DimKey, DimTeam, DimCustomer, DimModel}, b.q.Filters, local, b0, b1)
	rq.where.add("session_id != ''")
	n := make([]string, len(rq.exprs))
	for i := range n {
		n[i] = strconv.Itoa(i + 1)
	}
	rs, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(rq.exprs, ", ")+", MIN(first_ns), MAX(last_ns), "+rollupSums+
		" FROM "+rq.from+" WHERE "+rq.where.String()+" GROUP BY "+strings.Join(n, ", "), rq.where.args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	raw := make([]any, len(rq.sel))
	var dest []any
	for i := range raw {
		dest = append(dest, &raw[i])
	}
	var first, last int64
	var t Totals
	dest = append(append(dest, &first, &last), sqliteTotalsDest(&t)...)
	for rs.Next() {
		t = Totals{}
		if err := rs.Scan(dest...); err != nil {
			return err
		}
		vals, ok := rq.values(raw, b.loc)
		if !ok {
			continue
		}
		b.addAgg(vals[0], vals[1], vals[2], vals[3], vals[4], first, last, &t)
	}
	return rs.Err()
}

// Requests implements Store. Newest first, the rows come from the buckets
// the rollup says hold matching rows, newest bucket first, so a page of a
// rare key or an old session reads a few buckets, not every row since;
// other orders sort the range's rows in SQL. Total is a Report's.
func (s *SQLiteStore) Requests(ctx context.Context, q RequestsQuery) (RequestPage, error) {
	o, err := requestOrder(q.OrderBy)
	if err != nil {
		return RequestPage{}, err
	}
	after, hasCursor, err := parseRequestCursor(o, q.Cursor)
	if err != nil {
		return RequestPage{}, err
	}
	page := RequestPage{Rows: []Record{}}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return page, nil
	}
	loc := q.Location
	if loc == nil {
		loc = timeUTC
	}
	tb := newReportBuilder(ReportQuery{Filters: q.Filters, Location: loc})
	if err := s.reportInto(ctx, tb, lo, hi); err != nil {
		return RequestPage{}, fmt.Errorf("sqlite store: requests: %w", err)
	}
	for _, g := range tb.groups {
		page.Total.Add(g.Totals)
	}
	n := q.pageLimit()
	var rows []keyedRecord
	var base sqlWhere
	pushLedgerFilters(&base, q.Filters)
	kexpr := map[OrderBy]string{OrderByTime: "time_ns", OrderByCost: "cost_nano_usd",
		OrderByTokens: "(input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens)"}[o]
	if hasCursor {
		if o == OrderByTime {
			base.add("(time_ns, id) < (?, ?)", after.ns, after.id)
			hi = min(hi, after.ns)
		} else {
			base.add("("+kexpr+", time_ns, id) < (?, ?, ?)", after.k, after.ns, after.id)
		}
	}
	// scan reads rows of [lo, hi] newest (or costliest) first until the
	// page has n+1; full reports whether it has.
	scan := func(lo, hi int64) (full bool, err error) {
		w := base.clone()
		w.add("time_ns BETWEEN ? AND ?", lo, hi)
		rs, err := s.db.QueryContext(ctx, `SELECT `+sqliteRecordColumns+` FROM ledger WHERE `+w.String()+
			` ORDER BY `+kexpr+` DESC, time_ns DESC, id DESC`, w.args...)
		if err != nil {
			return false, err
		}
		defer rs.Close()
		for rs.Next() {
			var r Record
			id, err := scanRecord(rs, &r)
			if err != nil {
				return false, err
			}
			lr := fromRecord(&r)
			if !lr.matches(q.Filters, loc) {
				continue
			}
			rows = append(rows, keyedRecord{requestKey{orderValue(o, &r), lr.ns, id}, r})
			if len(rows) > n {
				return true, nil
			}
		}
		return false, rs.Err()
	}
	if err := s.requestRows(ctx, q.Filters, o, lo, hi, scan); err != nil {
		return RequestPage{}, fmt.Errorf("sqlite store: requests: %w", err)
	}
	if len(rows) > n {
		rows = rows[:n]
		page.NextCursor = makeRequestCursor(o, rows[n-1].key)
	}
	for i := range rows {
		if len(rows[i].rec.Labels) == 0 {
			rows[i].rec.Labels = nil
		}
		page.Rows = append(page.Rows, rows[i].rec)
	}
	return page, nil
}

// requestRows calls scan over [lo, hi]: newest first with a filter the
// rollup holds, the range from the watermark on, then each rolled-up
// bucket with matching rows, newest first, until scan has a full page.
func (s *SQLiteStore) requestRows(ctx context.Context, filters []Filter, o OrderBy, lo, hi int64, scan func(lo, hi int64) (bool, error)) error {
	var rw sqlWhere
	table := "rollup"
	for _, f := range filters {
		if col, ok := rollupDims[f.Dim]; ok {
			pushColumnFilter(&rw, col, f)
			if f.Dim == DimSession && f.Pattern != "" && !f.glob() {
				rw.add("session_id != ''")
				table = "rollup INDEXED BY rollup_session"
			}
		}
	}
	if o != OrderByTime || len(rw.conds) == 0 {
		_, err := scan(lo, hi)
		return err
	}
	wm, err := watermark(ctx, s.db)
	if err != nil {
		return err
	}
	if tail, _ := bucketNanoRange(wm); tail <= hi {
		if full, err := scan(max(lo, tail), hi); full || err != nil || tail <= lo {
			return err
		}
		hi = tail - 1
	}
	top := bucketIndex(hi)
	for bottom := bucketIndex(lo); top >= bottom; {
		w := rw.clone()
		w.add("bucket BETWEEN ? AND ?", bottom*bucketSeconds, top*bucketSeconds)
		rs, err := s.db.QueryContext(ctx, "SELECT bucket FROM "+table+" WHERE "+w.String()+
			" GROUP BY bucket ORDER BY bucket DESC LIMIT 64", w.args...)
		if err != nil {
			return err
		}
		var buckets []int64
		for rs.Next() {
			var b int64
			if err := rs.Scan(&b); err != nil {
				rs.Close()
				return err
			}
			buckets = append(buckets, b/bucketSeconds)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for _, b := range buckets {
			blo, bhi := bucketNanoRange(b)
			if full, err := scan(max(lo, blo), min(hi, bhi)); full || err != nil {
				return err
			}
		}
		if len(buckets) < 64 {
			return nil
		}
		top = buckets[len(buckets)-1] - 1
	}
	return nil
}
