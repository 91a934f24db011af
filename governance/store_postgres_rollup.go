package governance

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// The PostgreSQL ledger's rollup: the ledger's totals per 15-minute bucket
// (the granularity every common time-zone offset is a multiple of) and per
// combination of the columns a report groups and filters by, except the
// session and the labels: key, team, customer, provider, model, surface,
// status and rejection. A statement trigger on the ledger keeps it: every
// batch's COPY adds its rows' sums, grouped in SQL, in the same
// transaction (one upsert per group, in key order so that the writers of
// a fleet lock rows in one order), so the rollup holds exactly the
// committed rows at every instant, whichever instance (or release) wrote
// them. Reports whose dimensions and filters it holds read its whole
// buckets and the ledger rows only for the partial buckets at the range's
// ends; retention prunes rows, never the rollup.

// postgresRollupSums are the ledger sums, in pgTotalsCols order, a
// rollup row holds.
const postgresRollupSums = `COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
		SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(web_search_requests), SUM(cost_nano_usd),
		COUNT(*) FILTER (WHERE cache_hit), SUM(saved_nano_usd)`

// postgresRollupKey is the rollup's key after bucket.
const postgresRollupKey = `key, team, customer, provider, model, surface, status, rejection`

// postgresRollupSelect groups rows of a table (the ledger, or a batch's
// new rows) into rollup rows, in key order.
var postgresRollupSelect = func(table string) string {
	return `SELECT ` + pgFloorDiv("time_ns", bucketNanos) + `, ` + postgresRollupKey + `, ` + postgresRollupSums +
		` FROM ` + table + ` GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9`
}

// postgresRollupUpsert adds the rows of a table (%s) to the rollup.
var postgresRollupUpsert = func() string {
	var updates []string
	for _, c := range strings.Split(pgTotalsCols, ", ") {
		updates = append(updates, c+" = r."+c+" + excluded."+c)
	}
	return `INSERT INTO llm_gateway_rollup AS r (bucket, ` + postgresRollupKey + `, ` + pgTotalsCols + `)
		` + postgresRollupSelect("%s") + `
		ON CONFLICT (bucket, ` + postgresRollupKey + `) DO UPDATE SET ` + strings.Join(updates, ", ")
}()

// postgresRollupSchema is ledger schema step 2: the rollup table (bucket
// is the 15-minute bucket's index, Unix time / 15 min; a (key, bucket)
// index for one key's reports and request totals), the trigger that
// keeps it, and the rows already in the ledger rolled up. Creating the
// trigger locks out concurrent writers until the step commits, so no row
// is missed or counted twice.
var postgresRollupSchema = func() string {
	upsert := postgresRollupUpsert
	return `CREATE TABLE llm_gateway_rollup (
		bucket                BIGINT  NOT NULL,
		key                   TEXT    NOT NULL,
		team                  TEXT    NOT NULL,
		customer              TEXT    NOT NULL,
		provider              TEXT    NOT NULL,
		model                 TEXT    NOT NULL,
		surface               TEXT    NOT NULL,
		status                INTEGER NOT NULL,
		rejection             TEXT    NOT NULL,
		requests              BIGINT  NOT NULL,
		input_tokens          BIGINT  NOT NULL,
		output_tokens         BIGINT  NOT NULL,
		cache_read_tokens     BIGINT  NOT NULL,
		cache_write_5m_tokens BIGINT  NOT NULL,
		cache_write_1h_tokens BIGINT  NOT NULL,
		web_search_requests   BIGINT  NOT NULL,
		cost_nano_usd         BIGINT  NOT NULL,
		cache_hits            BIGINT  NOT NULL,
		saved_nano_usd        BIGINT  NOT NULL,
		PRIMARY KEY (bucket, ` + postgresRollupKey + `)
	);
	CREATE INDEX llm_gateway_rollup_key ON llm_gateway_rollup (key, bucket);
	CREATE FUNCTION llm_gateway_rollup_rows() RETURNS trigger LANGUAGE plpgsql AS $fn$
	BEGIN
		` + strings.Replace(upsert, "%s", "llm_gateway_new_rows", 1) + `;
		RETURN NULL;
	END
	$fn$;
	CREATE TRIGGER llm_gateway_ledger_rollup AFTER INSERT ON llm_gateway_ledger
		REFERENCING NEW TABLE AS llm_gateway_new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION llm_gateway_rollup_rows();
	` + strings.Replace(upsert, "%s", "llm_gateway_ledger", 1) + `;`
}()

// pgRollupDims are the dimensions the rollup holds, besides the calendar
// ones.
var pgRollupDims = map[Dim]bool{DimKey: true, DimTeam: true, DimCustomer: true, DimProvider: true,
	DimModel: true, DimSurface: true, DimStatus: true, DimRejection: true}

// pgRollupable reports whether the rollup holds every dimension and filter.
func pgRollupable(dims []Dim, filters []Filter) bool {
	for _, d := range dims {
		if !pgRollupDims[d] && !calendarDim(d) {
			return false
		}
	}
	for _, f := range filters {
		if !pgRollupDims[f.Dim] && !calendarDim(f.Dim) {
			return false
		}
	}
	return true
}

// rollupSpan is the buckets [b0, b1) of the ledger range [lo, hi] that the
// rollup answers: whole buckets within the rollup's extent; ok is false
// when there are none.
func (s *PostgresStore) rollupSpan(ctx context.Context, lo, hi int64) (b0, b1 int64, ok bool, err error) {
	var minB, maxB *int64
	if err := s.pool.QueryRow(ctx, `SELECT MIN(bucket), MAX(bucket) FROM llm_gateway_rollup`).Scan(&minB, &maxB); err != nil {
		return 0, 0, false, err
	}
	if minB == nil || maxB == nil {
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
	b0, b1 = max(b0, *minB), min(b1, *maxB+1)
	return b0, b1, b0 < b1, nil
}

// rollupCalendar is a pgCalendar over the rollup's buckets [b0, b1): each
// bucket's local seconds are its start plus the zone's offset then. ok is
// false when the zone has an offset that is not a multiple of 15 minutes,
// or changes inside a bucket, over the span (the rows are read instead).
func rollupCalendar(w *pgWhere, loc *time.Location, hourly bool, b0, b1 int64) (*pgCalendar, bool) {
	var bounds, offs []int64
	for t, end := b0*bucketSeconds, b1*bucketSeconds; ; {
		lt := time.Unix(t, 0).In(loc)
		_, off := lt.Zone()
		if int64(off)%bucketSeconds != 0 {
			return nil, false
		}
		offs = append(offs, int64(off))
		_, next := lt.ZoneBounds()
		if next.IsZero() || next.Unix() >= end {
			break
		}
		if next.Unix()%bucketSeconds != 0 || len(offs) >= pgMaxZoneSegments {
			return nil, false
		}
		bounds = append(bounds, next.Unix()/bucketSeconds)
		t = next.Unix()
	}
	var off string
	if len(bounds) == 0 {
		off = w.arg(offs[0]) + "::bigint"
	} else {
		off = "(" + w.arg(offs) + "::bigint[])[width_bucket(bucket, " + w.arg(bounds) + "::bigint[]) + 1]"
	}
	local := "bucket * " + strconv.FormatInt(bucketSeconds, 10) + " + " + off
	c := &pgCalendar{hourly: hourly, loc: loc}
	if hourly {
		c.idx, c.off = pgFloorDiv(local, 3600), off
	} else {
		c.idx, c.off = pgFloorDiv(local, 86400), "0::bigint"
	}
	return c, true
}

// reportInto adds [lo, hi] to b: the rollup's whole buckets when it holds
// every dimension and filter (and the zone's offsets fit its buckets), the
// ledger rows for the rest.
func (s *PostgresStore) reportInto(ctx context.Context, b *reportBuilder, lo, hi int64) error {
	if !pgRollupable(b.q.Dims, b.q.Filters) {
		return s.reportRows(ctx, b, lo, hi)
	}
	b0, b1, ok, err := s.rollupSpan(ctx, lo, hi)
	if err != nil {
		return err
	}
	if !ok {
		return s.reportRows(ctx, b, lo, hi)
	}
	w := &pgWhere{}
	w.conds = append(w.conds, "bucket BETWEEN "+w.arg(b0)+" AND "+w.arg(b1-1))
	calFilters := w.filters(b.q.Filters)
	var cal *pgCalendar
	if byTime, hourly := calendarNeeds(b.q.Dims, calFilters); byTime {
		if cal, ok = rollupCalendar(w, b.loc, hourly, b0, b1); !ok {
			return s.reportRows(ctx, b, lo, hi)
		}
	}
	if err := s.reportGroups(ctx, b, w, cal, calFilters, pgRollupSource); err != nil {
		return err
	}
	return splitRange(lo, hi, b0, b1, func(lo, hi int64) error { return s.reportRows(ctx, b, lo, hi) })
}

// calendarNeeds reports whether a query with dims and calendar filters
// groups by time, and by hour.
func calendarNeeds(dims []Dim, calFilters []Filter) (byTime, hourly bool) {
	byTime = len(calFilters) > 0
	for _, f := range calFilters {
		hourly = hourly || f.Dim == DimHour
	}
	for _, d := range dims {
		byTime = byTime || calendarDim(d)
		hourly = hourly || d == DimHour
	}
	return byTime, hourly
}

// pgSource is a table aggregate reads and the SQL of its sums in
// pgTotalsCols order.
type pgSource struct{ table, sums string }

var (
	pgLedgerSource = pgSource{"llm_gateway_ledger", pgLedgerSums}
	pgRollupSource = pgSource{"llm_gateway_rollup", func() string {
		var out []string
		for _, c := range strings.Split(pgTotalsCols, ", ") {
			out = append(out, "COALESCE(SUM("+c+"), 0)::bigint")
		}
		return strings.Join(out, ", ")
	}()}
)
