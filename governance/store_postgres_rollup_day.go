package governance

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL ledger's day rollup: the ledger's totals per calendar day
// of a time zone (the gateway's, SetLocation) and per team, customer,
// provider, model, surface, status and rejection — not per key, so a month
// by team, model and day reads a few thousand rows whatever the number of
// keys. The zone's UTC offsets and transitions, as Go knows them, are
// stored in llm_gateway_rollup_day_zone (bounds: the transitions in Unix
// nanoseconds after a first element of -2^63; offs: the offset in seconds
// from each bound), so the trigger that keeps the 15-minute rollup puts
// each row in exactly the local day Go's calendar does, whatever time
// zone data PostgreSQL has. A zone is registered by the store's
// maintenance goroutine: the day rollup of it is built from the 15-minute
// rollup (which has every row, pruned or not) in the transaction that
// registers it, while writers wait, and kept by the trigger from then on.
// Only zones whose offsets are multiples of 15 minutes and change on
// quarter hours are registered (every zone in use today).
var postgresRollupDaySchema = func() string {
	var updates []string
	for _, c := range strings.Split(pgTotalsCols, ", ") {
		updates = append(updates, c+" = r."+c+" + excluded."+c)
	}
	day := pgFloorDiv(pgFloorDiv("n.time_ns", 1_000_000_000)+" + z.offs[width_bucket(n.time_ns, z.bounds)]", 86400)
	return `CREATE TABLE llm_gateway_rollup_day (
		zone                  TEXT    NOT NULL,
		day                   BIGINT  NOT NULL,
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
		PRIMARY KEY (zone, day, ` + pgDayRollupKey + `)
	);
	CREATE TABLE llm_gateway_rollup_day_zone (
		zone   TEXT     PRIMARY KEY,
		bounds BIGINT[] NOT NULL,
		offs   BIGINT[] NOT NULL
	);
	CREATE OR REPLACE FUNCTION llm_gateway_rollup_rows() RETURNS trigger LANGUAGE plpgsql AS $fn$
	BEGIN
		` + strings.Replace(postgresRollupUpsert, "%s", "llm_gateway_new_rows", 1) + `;
		INSERT INTO llm_gateway_rollup_day AS r (zone, day, ` + pgDayRollupKey + `, ` + pgTotalsCols + `)
		SELECT z.zone, ` + day + `, ` + pgDayRollupKey + `, ` + postgresRollupSums + `
		FROM llm_gateway_new_rows n CROSS JOIN llm_gateway_rollup_day_zone z
		GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9
		ON CONFLICT (zone, day, ` + pgDayRollupKey + `) DO UPDATE SET ` + strings.Join(updates, ", ") + `;
		RETURN NULL;
	END
	$fn$;`
}()

// pgDayRollupKey is the day rollup's key after zone and day.
const pgDayRollupKey = `team, customer, provider, model, surface, status, rejection`

// pgDayRollupDims are the dimensions the day rollup holds, besides day,
// week and month.
var pgDayRollupDims = map[Dim]bool{DimTeam: true, DimCustomer: true, DimProvider: true,
	DimModel: true, DimSurface: true, DimStatus: true, DimRejection: true}

// pgDayRollupable reports whether the day rollup holds every dimension and
// filter.
func pgDayRollupable(dims []Dim, filters []Filter) bool {
	for _, d := range dims {
		if !pgDayRollupDims[d] && d != DimDay && d != DimWeek && d != DimMonth {
			return false
		}
	}
	for _, f := range filters {
		if !pgDayRollupDims[f.Dim] && f.Dim != DimDay && f.Dim != DimWeek && f.Dim != DimMonth {
			return false
		}
	}
	return true
}

// pgZoneSpan is the span of time a day-rollup zone's transitions cover.
var pgZoneSpan = [2]time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}

// pgZoneTable is loc's transitions and offsets as the day-rollup zone
// table holds them; ok is false for a zone the day rollup cannot hold.
func pgZoneTable(loc *time.Location) (bounds, offs []int64, ok bool) {
	_, off := time.Unix(0, 0).In(loc).Zone()
	key := loc.String() + "\x00" + strconv.Itoa(off) // a reloaded config's zone is a new *Location
	if z, hit := pgZoneTables.Load(key); hit {
		c := z.(*pgZoneCache)
		return c.bounds, c.offs, c.bounds != nil
	}
	bounds, offs, ok = buildPgZoneTable(loc)
	pgZoneTables.Store(key, &pgZoneCache{zone: loc.String(), bounds: bounds, offs: offs})
	return bounds, offs, ok
}

// pgZoneTables caches pgZoneTable per zone name (a few hundred
// transitions, slow to walk).
var pgZoneTables sync.Map

func buildPgZoneTable(loc *time.Location) (bounds, offs []int64, ok bool) {
	bounds = []int64{math.MinInt64}
	for t := pgZoneSpan[0].In(loc); ; {
		_, off := t.Zone()
		if int64(off)%bucketSeconds != 0 {
			return nil, nil, false
		}
		if len(offs) == 0 || offs[len(offs)-1] != int64(off) {
			if len(offs) > 0 {
				if t.Unix()%bucketSeconds != 0 || len(offs) > 5000 {
					return nil, nil, false
				}
				bounds = append(bounds, unixNanos(t))
			}
			offs = append(offs, int64(off))
		}
		// Go may report a bound where nothing changes (the end of a zone
		// file's explicit transitions): such bounds are skipped above.
		_, next := t.ZoneBounds()
		if next.IsZero() || next.After(pgZoneSpan[1]) {
			return bounds, offs, true
		}
		if !next.After(t) {
			next = t.Add(time.Second) // a bound Go reports at t itself: step past it
		}
		t = next.In(loc)
	}
}

// SetLocation makes loc (the gateway's timezone) a zone of the day
// rollup: the store's maintenance goroutine registers it (building its
// day rollup) within PruneEvery; until then, and for a zone it cannot
// hold, reports read the 15-minute rollup.
func (s *PostgresStore) SetLocation(loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	s.dayZone.Store(loc)
	select {
	case s.zoneKick <- struct{}{}:
	default:
	}
}

// registerZone registers the SetLocation zone if PostgreSQL does not have
// it yet (with the same transitions): in one transaction that holds
// writers off, its day rollup is rebuilt from the 15-minute rollup.
func (s *PostgresStore) registerZone(ctx context.Context) error {
	loc := s.dayZone.Load()
	if loc == nil {
		return nil
	}
	bounds, offs, ok := pgZoneTable(loc)
	if !ok {
		return nil
	}
	if have, err := s.dayZoneReady(ctx, loc); err != nil || have {
		return err
	}
	defer func() {
		// Fresh statistics, so the planner knows the new days' groups.
		_, _ = s.pool.Exec(ctx, `ANALYZE llm_gateway_rollup_day`)
	}()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The trigger's writers wait; rows already committed are in the
		// 15-minute rollup the day rollup is built from.
		if _, err := tx.Exec(ctx, `LOCK TABLE llm_gateway_ledger IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		zone := loc.String()
		if _, err := tx.Exec(ctx, `DELETE FROM llm_gateway_rollup_day WHERE zone = $1`, zone); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO llm_gateway_rollup_day_zone VALUES ($1, $2, $3)
			ON CONFLICT (zone) DO UPDATE SET bounds = excluded.bounds, offs = excluded.offs`, zone, bounds, offs); err != nil {
			return err
		}
		day := pgFloorDiv("b.bucket * 900 + z.offs[width_bucket(b.bucket * 900000000000, z.bounds)]", 86400)
		_, err := tx.Exec(ctx, `INSERT INTO llm_gateway_rollup_day (zone, day, `+pgDayRollupKey+`, `+pgTotalsCols+`)
			SELECT z.zone, `+day+`, `+pgDayRollupKey+`, `+pgPlainSums+`
			FROM llm_gateway_rollup b CROSS JOIN llm_gateway_rollup_day_zone z WHERE z.zone = $1
			GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`, zone)
		if err == nil {
			s.zoneCache.Store(&pgZoneCache{zone: zone, offs: offs, bounds: bounds})
		}
		return err
	})
}

// pgPlainSums are SUMs of pgTotalsCols, for INSERT … SELECT.
var pgPlainSums = "SUM(" + strings.ReplaceAll(pgTotalsCols, ", ", "), SUM(") + ")"

// pgZoneCache is a zone the store saw registered with Go's transitions.
type pgZoneCache struct {
	zone         string
	bounds, offs []int64
}

// dayZoneReady reports whether loc is registered in PostgreSQL with the
// transitions Go has for it.
func (s *PostgresStore) dayZoneReady(ctx context.Context, loc *time.Location) (bool, error) {
	bounds, offs, ok := pgZoneTable(loc)
	if !ok {
		return false, nil
	}
	if c := s.zoneCache.Load(); c != nil && c.zone == loc.String() && slices.Equal(c.bounds, bounds) && slices.Equal(c.offs, offs) {
		return true, nil
	}
	var gb, go_ []int64
	err := s.pool.QueryRow(ctx, `SELECT bounds, offs FROM llm_gateway_rollup_day_zone WHERE zone = $1`, loc.String()).Scan(&gb, &go_)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !slices.Equal(gb, bounds) || !slices.Equal(go_, offs) {
		return false, nil
	}
	s.zoneCache.Store(&pgZoneCache{zone: loc.String(), bounds: bounds, offs: offs})
	return true, nil
}

// reportDays adds the whole local days of [lo, hi] to b from the day
// rollup and returns the range [dlo, dhi) they cover (dlo == dhi: none).
func (s *PostgresStore) reportDays(ctx context.Context, b *reportBuilder, lo, hi int64) (dlo, dhi int64, err error) {
	if !pgDayRollupable(b.q.Dims, b.q.Filters) {
		return 0, 0, nil
	}
	if ok, err := s.dayZoneReady(ctx, b.loc); err != nil || !ok {
		return 0, 0, err
	}
	// Keep the days within the rollup's extent (open ranges included).
	var minB, maxB *int64
	if err := s.pool.QueryRow(ctx, `SELECT MIN(bucket), MAX(bucket) FROM llm_gateway_rollup`).Scan(&minB, &maxB); err != nil || minB == nil || maxB == nil {
		return 0, 0, err
	}
	elo, _ := bucketNanoRange(*minB)
	_, ehi := bucketNanoRange(*maxB)
	elo = max(elo, unixNanos(pgZoneSpan[0].AddDate(0, 0, 2))) // days the zone table covers
	var d0, d1 int64
	if lo <= elo {
		d0 = localDay(elo, b.loc) + 1 // elo's day may begin before the zone table
	} else if d0 = localDay(lo, b.loc); dayStart(d0, b.loc) < lo {
		d0++
	}
	if hi >= ehi {
		d1 = localDay(ehi, b.loc) + 1
	} else if d1 = localDay(hi, b.loc); dayStart(d1+1, b.loc)-1 == hi {
		d1++
	}
	if d0 >= d1 {
		return 0, 0, nil
	}
	w := &pgWhere{}
	w.conds = append(w.conds, "zone = "+w.arg(b.loc.String()), "day BETWEEN "+w.arg(d0)+" AND "+w.arg(d1-1))
	calFilters := w.filters(b.q.Filters)
	cal := &pgCalendar{loc: b.loc, idx: "day", off: "0::bigint"}
	if err := s.reportGroups(ctx, b, w, cal, calFilters, pgSource{"llm_gateway_rollup_day", pgRollupSource.sums}); err != nil {
		return 0, 0, err
	}
	return dayStart(d0, b.loc), dayStart(d1, b.loc), nil
}
