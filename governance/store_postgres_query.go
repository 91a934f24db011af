package governance

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SpendSince sums the scope's committed 15-minute buckets, written by every
// instance of the fleet, from the one containing since onwards (since is
// floored to 15 minutes, in UTC), exactly as SQLiteStore.SpendSince does.
// Records not yet committed are not included: Flush first.
func (s *PostgresStore) SpendSince(sc Scope, since time.Time) (Totals, error) {
	ctx, cancel := context.WithTimeout(context.Background(), postgresAttemptTimeout)
	defer cancel()
	var t Totals
	sums := make([]string, 0, 10)
	for _, c := range strings.Split(pgTotalsCols, ", ") {
		sums = append(sums, "COALESCE(SUM("+c+"), 0)::bigint")
	}
	err := s.pool.QueryRow(ctx, `SELECT `+strings.Join(sums, ", ")+` FROM llm_gateway_totals
		WHERE kind = $1 AND name = $2 AND bucket >= $3 AND bucket <> 0`,
		sc.Kind.String(), sc.Name, bucketStart(unixNanos(since))).Scan(totalsDest(&t)...)
	if err != nil {
		return Totals{}, fmt.Errorf("postgres store: spend of %s: %w", sc, s.scrub(err))
	}
	return t, nil
}

// pgWhere builds a WHERE clause and its positional arguments.
type pgWhere struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *pgWhere) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *pgWhere) sql() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}

// newPgWhere starts a WHERE clause with the time range [lo, hi] of ledger
// time_ns.
func newPgWhere(lo, hi int64) *pgWhere {
	w := &pgWhere{}
	w.conds = append(w.conds, "time_ns BETWEEN "+w.arg(lo)+" AND "+w.arg(hi))
	return w
}

// dimExpr is the SQL of a column or label dimension's value ("" for a
// calendar bucket); label names become arguments of w.
func (w *pgWhere) dimExpr(d Dim) string {
	if d == DimStatus {
		return "status::text" // an integer column, named in decimal
	}
	if col := d.column(); col != "" {
		return col
	}
	if name := d.Label(); name != "" {
		return "COALESCE(labels ->> " + w.arg(name) + ", '')"
	}
	return ""
}

// calendarDim reports whether d is a calendar bucket (hour, day, week,
// month).
func calendarDim(d Dim) bool { return d == DimHour || d == DimDay || d == DimWeek || d == DimMonth }

// likePattern is a Filter glob as a LIKE pattern: '*' is '%', '?' is '_',
// and LIKE's own '%', '_' and escape '\' match only themselves.
func likePattern(glob string) string {
	var b strings.Builder
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// filters pushes the column and label filters into w and returns the
// calendar-bucket ones, which the caller applies.
func (w *pgWhere) filters(fs []Filter) (calendar []Filter) {
	for _, f := range fs {
		e := w.dimExpr(f.Dim)
		switch {
		case e == "":
			calendar = append(calendar, f)
		case f.glob():
			w.conds = append(w.conds, e+" LIKE "+w.arg(likePattern(f.Pattern)))
		default:
			w.conds = append(w.conds, e+" = "+w.arg(f.Pattern))
		}
	}
	return calendar
}

// pgGroup is one row of an aggregate query: the group's values, its local
// hour or day index and zone offset when the query grouped by time (see
// pgCalendar), and its totals.
type pgGroup struct {
	vals   []string
	t, off int64
	totals Totals
}

// aggregate runs SELECT exprs…, [idx, off,] sums FROM the ledger WHERE w
// GROUP BY all but the sums; cal, when not nil, adds the calendar columns.
func (s *PostgresStore) aggregate(ctx context.Context, src pgSource, exprs []string, cal *pgCalendar, w *pgWhere, fn func(g *pgGroup)) error {
	sel := append([]string{}, exprs...)
	if cal != nil {
		sel = append(sel, cal.idx, cal.off)
	}
	group := ""
	if len(sel) > 0 {
		var n []string
		for i := range sel {
			n = append(n, strconv.Itoa(i+1))
		}
		group = " GROUP BY " + strings.Join(n, ", ")
	}
	sel = append(sel, src.sums)
	// The planner cannot tell how few groups a calendar or label
	// expression makes and would sort every row (on disk, past work_mem);
	// hashing the groups is several times faster, so the aggregation runs
	// with sorting discouraged.
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_sort = off"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+src.table+` WHERE `+w.sql()+group, w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		g := pgGroup{vals: make([]string, len(exprs))}
		dest := make([]any, 0, len(exprs)+12)
		for i := range g.vals {
			dest = append(dest, &g.vals[i])
		}
		if cal != nil {
			dest = append(dest, &g.t, &g.off)
		}
		dest = append(dest, totalsDest(&g.totals)...)
		for rows.Next() {
			g.totals = Totals{}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if group == "" && g.totals.Requests == 0 {
				continue // no rows: an aggregate without GROUP BY still answers one
			}
			fn(&g)
		}
		return rows.Err()
	})
}

// pgCalendar groups ledger rows by their local hour (hourly) or local day
// in a time zone, in SQL: each row's local seconds are its Unix seconds
// plus the zone's offset at that instant, the offsets being those of Go's
// zone data between the range's first and last row (looked up by
// width_bucket over the transitions), so days of 23 or 25 hours and offsets of any size come out
// exactly as MemoryStore's.
type pgCalendar struct {
	hourly bool
	loc    *time.Location
	// idx and off are the SQL of the local hour or day index and of the
	// offset (0 for days) of a row; arguments are in the query's pgWhere.
	idx, off string
}

// pgFloorDiv is the SQL of x / d rounded towards negative infinity.
func pgFloorDiv(x string, d int64) string {
	ds := strconv.FormatInt(d, 10)
	return "((" + x + ") - ((((" + x + ") % " + ds + ") + " + ds + ") % " + ds + ")) / " + ds
}

// pgMaxZoneSegments bounds the zone segments of a calendar query (a zone with a
// transition every few months has a few per year of data).
const pgMaxZoneSegments = 10_000

// calendar prepares a pgCalendar for the rows w selects; ok is false when
// there are none.
func (s *PostgresStore) calendar(ctx context.Context, w *pgWhere, loc *time.Location, hourly bool) (*pgCalendar, bool, error) {
	var lo, hi *int64
	if err := s.pool.QueryRow(ctx, `SELECT MIN(time_ns), MAX(time_ns) FROM llm_gateway_ledger WHERE `+w.sql(), w.args...).Scan(&lo, &hi); err != nil {
		return nil, false, err
	}
	if lo == nil || hi == nil {
		return nil, false, nil
	}
	var bounds, offs []int64
	t := time.Unix(0, *lo).In(loc)
	for {
		_, off := t.Zone()
		offs = append(offs, int64(off))
		_, end := t.ZoneBounds()
		if end.IsZero() || unixNanos(end) > *hi || len(offs) >= pgMaxZoneSegments {
			break
		}
		bounds = append(bounds, unixNanos(end))
		t = end.In(loc)
	}
	var off string
	if len(bounds) == 0 {
		off = w.arg(offs[0]) + "::bigint"
	} else {
		// The offset of the segment the row falls in: width_bucket counts
		// the transitions at or before it.
		off = "(" + w.arg(offs) + "::bigint[])[width_bucket(time_ns, " + w.arg(bounds) + "::bigint[]) + 1]"
	}
	local := pgFloorDiv("time_ns", 1_000_000_000) + " + " + off
	c := &pgCalendar{hourly: hourly, loc: loc}
	if hourly {
		c.idx, c.off = pgFloorDiv(local, 3600), off
	} else {
		c.idx, c.off = pgFloorDiv(local, 86400), "0::bigint"
	}
	return c, true, nil
}

// value is calendar dimension d of the group at local index idx, offset
// off.
func (c *pgCalendar) value(d Dim, idx, off int64) string {
	if c.hourly {
		lr := ledgerRecord{ns: (idx*3600 - off) * int64(time.Second)} // the local hour's start
		return lr.value(d, c.loc)
	}
	lr := ledgerRecord{ns: idx*86400*int64(time.Second) + 12*int64(time.Hour)} // noon of the local date
	return lr.value(d, timeUTC)
}

// Usage implements Store, summed by PostgreSQL: names grouped in SQL, days
// from 15-minute buckets folded into calendar days of q.Location (UTC when
// nil). The rows are sorted by group and equal SQLiteStore's.
func (s *PostgresStore) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return []UsageRow{}, nil
	}
	w := newPgWhere(lo, hi)
	var rows []UsageRow
	var err error
	if q.GroupBy == GroupByDay {
		loc := q.Location
		if loc == nil {
			loc = timeUTC
		}
		days := map[string]*Totals{}
		var cal *pgCalendar
		if cal, ok, err = s.calendar(ctx, w, loc, false); ok {
			err = s.aggregate(ctx, pgLedgerSource, nil, cal, w, func(g *pgGroup) {
				day := cal.value(DimDay, g.t, g.off)
				if days[day] == nil {
					days[day] = new(Totals)
				}
				days[day].Add(g.totals)
			})
		}
		rows = dayRows(days)
	} else {
		rows = []UsageRow{}
		err = s.aggregate(ctx, pgLedgerSource, []string{usageColumn(q.GroupBy)}, nil, w, func(g *pgGroup) {
			rows = append(rows, UsageRow{Group: g.vals[0], Totals: g.totals})
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres store: usage by %s: %w", q.GroupBy, s.scrub(err))
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
	return rows, nil
}

// usageColumn is the SQL of a UsageQuery grouping.
func usageColumn(g GroupBy) string {
	switch g {
	case GroupByKey, GroupByTeam, GroupByCustomer, GroupByModel, GroupByProvider, GroupBySpeed, GroupByInferenceGeo:
		return string(g)
	case GroupByPriceRow:
		return "CASE price_model WHEN '' THEN '' ELSE price_model || '@' || price_effective_from END"
	}
	return "''" // an unknown grouping puts everything in one group, as MemoryStore does
}

// Report implements Store. The rollup answers the whole 15-minute buckets
// of the range when it holds every dimension and filter (see
// store_postgres_rollup.go); otherwise, and for the partial buckets at the
// range's ends, PostgreSQL filters (exact and glob, columns and labels)
// and groups the ledger rows by every column and label dimension. Either
// groups by local hour or day of q.Location when a calendar dimension or
// filter is asked for (folded into weeks and months here); the groups are
// sorted and paged exactly as every other store does.
func (s *PostgresStore) Report(ctx context.Context, q ReportQuery) (Report, error) {
	b := newReportBuilder(q)
	if _, err := parseCursor(q.Cursor); err != nil {
		return Report{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return b.report()
	}
	if err := s.reportAll(ctx, b, lo, hi); err != nil {
		return Report{}, fmt.Errorf("postgres store: report: %w", s.scrub(err))
	}
	return b.report()
}

// reportAll adds [lo, hi] to b: whole local days from the day rollup when
// it holds the query, the rest through reportInto.
func (s *PostgresStore) reportAll(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	dlo, dhi, err := s.reportDays(ctx, b, lo, hi)
	if err != nil {
		return err
	}
	if dlo >= dhi {
		return s.reportInto(ctx, b, lo, hi)
	}
	if lo < dlo {
		if err := s.reportInto(ctx, b, lo, dlo-1); err != nil {
			return err
		}
	}
	if dhi <= hi {
		return s.reportInto(ctx, b, dhi, hi)
	}
	return nil
}

// reportRows adds the ledger rows of [lo, hi] to b.
func (s *PostgresStore) reportRows(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	w := newPgWhere(lo, hi)
	calFilters := w.filters(b.q.Filters)
	byTime, hourly := calendarNeeds(b.q.Dims, calFilters)
	// The calendar's range query reads the WHERE arguments only: it comes
	// before the label dimensions add theirs.
	var cal *pgCalendar
	if byTime {
		var ok bool
		var err error
		if cal, ok, err = s.calendar(ctx, w, b.loc, hourly); err != nil || !ok {
			return err
		}
	}
	return s.reportGroups(ctx, b, w, cal, calFilters, pgLedgerSource)
}

// reportGroups aggregates src WHERE w by b's dimensions (cal, when not
// nil, grouping by local hour or day) into b, checking the calendar
// filters on each group.
func (s *PostgresStore) reportGroups(ctx context.Context, b *reportBuilder, w *pgWhere, cal *pgCalendar, calFilters []Filter, src pgSource) error {
	var exprs []string
	pos := make([]int, len(b.q.Dims)) // index into exprs, or -1 for a calendar dim
	for i, d := range b.q.Dims {
		if e := w.dimExpr(d); e != "" {
			pos[i] = len(exprs)
			exprs = append(exprs, e)
		} else {
			pos[i] = -1
		}
	}
	add := func(g *pgGroup) {
		for _, f := range calFilters {
			if !f.match(cal.value(f.Dim, g.t, g.off)) {
				return
			}
		}
		vals := make([]string, len(b.q.Dims))
		for i, d := range b.q.Dims {
			if pos[i] >= 0 {
				vals[i] = g.vals[pos[i]]
			} else {
				vals[i] = cal.value(d, g.t, g.off)
			}
		}
		b.addGroup(vals, &g.totals)
	}
	return s.aggregate(ctx, src, exprs, cal, w, add)
}

// pgRecordColumns are the ledger columns scanRecordPg reads.
const pgRecordColumns = `id, time_ns, key, team, customer,
	provider, model, requested_model, surface, status, stream, input_tokens,
	output_tokens, cache_read_tokens, cache_write_5m_tokens,
	cache_write_1h_tokens, web_search_requests, cost_nano_usd, complete,
	output_estimated, session_id, duration_us, input_estimated,
	price_model, price_effective_from, speed, inference_geo,
	request_id, provider_request_id, labels::text, user_agent, ttft_us, attempts,
	rejection, error_type, cache_hit, saved_nano_usd`

// scanRecordPg reads a row of pgRecordColumns into r and returns its id.
func scanRecordPg(rows pgx.Rows, r *Record) (id int64, err error) {
	var ns, durUs, ttftUs int64
	var status, attempts int32
	var labels string
	u := &r.Usage
	if err := rows.Scan(&id, &ns, &r.Key, &r.Team, &r.Customer, &r.Provider, &r.Model,
		&r.RequestedModel, &r.Surface, &status, &r.Stream, &u.InputTokens,
		&u.OutputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens,
		&u.CacheWrite1hTokens, &u.WebSearchRequests, &r.Cost, &u.Complete,
		&u.OutputEstimated, &r.SessionID, &durUs, &u.InputEstimated,
		&r.PriceModel, &r.PriceEffectiveFrom, &u.Speed, &u.InferenceGeo,
		&r.RequestID, &r.ProviderRequestID, &labels, &r.UserAgent, &ttftUs, &attempts,
		&r.Rejection, &r.ErrorType, &r.CacheHit, &r.Saved); err != nil {
		return 0, err
	}
	if r.Labels, err = parseLabels(labels); err != nil {
		return 0, err
	}
	r.Status, r.Attempts = int(status), int(attempts)
	r.TTFT = time.Duration(ttftUs) * time.Microsecond
	r.Time = time.Unix(0, ns).UTC()
	r.Duration = time.Duration(durUs) * time.Microsecond
	return id, nil
}

// Records returns the ledger rows with from <= Time < to (zero times are
// open ends), oldest first (fleet-wide write order for equal times), at
// most limit of them when limit > 0, as SQLiteStore.Records does.
func (s *PostgresStore) Records(ctx context.Context, from, to time.Time, limit int) ([]Record, error) {
	lo, hi, ok := ledgerRange(from, to)
	if !ok {
		return []Record{}, nil
	}
	w := newPgWhere(lo, hi)
	sql := `SELECT ` + pgRecordColumns + ` FROM llm_gateway_ledger WHERE ` + w.sql() + ` ORDER BY time_ns, id`
	if limit > 0 {
		sql += ` LIMIT ` + w.arg(limit)
	}
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: ledger: %w", s.scrub(err))
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var r Record
		if _, err := scanRecordPg(rows, &r); err != nil {
			return nil, fmt.Errorf("postgres store: ledger: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: ledger: %w", s.scrub(err))
	}
	return out, nil
}

// requestOrderExpr is the SQL of a request order's sort value.
func requestOrderExpr(o OrderBy) string {
	switch o {
	case OrderByCost:
		return "cost_nano_usd"
	case OrderByTokens:
		return "(input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens)"
	}
	return "time_ns"
}

// Requests implements Store. PostgreSQL filters, totals, orders and cuts
// the page (a keyset on the order's value, time and the fleet-wide write
// order id). A filter on a calendar bucket is applied row by row here
// instead.
func (s *PostgresStore) Requests(ctx context.Context, q RequestsQuery) (RequestPage, error) {
	b, err := newRequestBuilder(q)
	if err != nil {
		return RequestPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return b.page(), nil
	}
	fail := func(err error) (RequestPage, error) {
		return RequestPage{}, fmt.Errorf("postgres store: requests: %w", s.scrub(err))
	}
	w := newPgWhere(lo, hi)
	if cal := w.filters(q.Filters); len(cal) > 0 {
		// Rare: read the rows the other filters keep, as SQLiteStore does.
		rows, err := s.pool.Query(ctx, `SELECT `+pgRecordColumns+` FROM llm_gateway_ledger WHERE `+w.sql(), w.args...)
		if err != nil {
			return fail(err)
		}
		defer rows.Close()
		for rows.Next() {
			var r Record
			id, err := scanRecordPg(rows, &r)
			if err != nil {
				return fail(err)
			}
			b.add(&r, id)
		}
		if err := rows.Err(); err != nil {
			return fail(err)
		}
		return b.page(), nil
	}
	p := RequestPage{Rows: []Record{}}
	// The total is a report's: the rollup's, where it holds the filters.
	tb := newReportBuilder(ReportQuery{Filters: q.Filters, Location: q.Location})
	if err := s.reportAll(ctx, tb, lo, hi); err != nil {
		return fail(err)
	}
	for _, g := range tb.groups {
		p.Total.Add(g.Totals)
	}
	k := requestOrderExpr(b.order)
	if b.cursor {
		w.conds = append(w.conds, "("+k+", time_ns, id) < ("+w.arg(b.after.k)+"::bigint, "+w.arg(b.after.ns)+"::bigint, "+w.arg(b.after.id)+"::bigint)")
	}
	limit := b.q.pageLimit()
	rows, err := s.pool.Query(ctx, `SELECT `+k+`, `+pgRecordColumns+` FROM llm_gateway_ledger WHERE `+w.sql()+
		` ORDER BY 1 DESC, time_ns DESC, id DESC LIMIT `+w.arg(limit+1), w.args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var last requestKey
	for rows.Next() {
		if len(p.Rows) == limit {
			p.NextCursor = makeRequestCursor(b.order, last)
			break
		}
		var r Record
		var kv int64
		id, err := scanRecordPg(prefixed{rows, &kv}, &r)
		if err != nil {
			return fail(err)
		}
		last = requestKey{kv, unixNanos(r.Time), id}
		p.Rows = append(p.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return p, nil
}

// prefixed is rows whose first column, scanned into first, precedes the
// columns the caller scans.
type prefixed struct {
	pgx.Rows
	first any
}

func (p prefixed) Scan(dest ...any) error { return p.Rows.Scan(append([]any{p.first}, dest...)...) }

// calendarMatch reports whether a group at local index idx, offset off
// passes every calendar filter.
func calendarMatch(c *pgCalendar, filters []Filter, idx, off int64) bool {
	for _, f := range filters {
		if !f.match(c.value(f.Dim, idx, off)) {
			return false
		}
	}
	return true
}
