package governance

import (
	"context"
	"fmt"
	"strings"
)

// pgColumns are a batch as one array per ledger column, the parameters of
// postgresInsertBatch. The writer reuses them.
type pgColumns struct {
	seq, timeNs, bucket                                 []int64
	key, team, customer, provider, model, reqModel, srf []string
	status                                              []int32
	stream                                              []bool
	in, out, cacheRead, cw5m, cw1h, web, cost           []int64
	complete, outEst, inEst                             []bool
	session                                             []string
	durUs                                               []int64
	priceModel, priceFrom, speed, geo                   []string
	reqID, provReqID, labels, ua                        []string
	ttftUs                                              []int64
	attempts                                            []int32
	rejection, errType                                  []string
	cacheHit                                            []bool
	saved                                               []int64
}

func (c *pgColumns) reset() {
	*c = pgColumns{
		c.seq[:0], c.timeNs[:0], c.bucket[:0],
		c.key[:0], c.team[:0], c.customer[:0], c.provider[:0], c.model[:0], c.reqModel[:0], c.srf[:0],
		c.status[:0], c.stream[:0],
		c.in[:0], c.out[:0], c.cacheRead[:0], c.cw5m[:0], c.cw1h[:0], c.web[:0], c.cost[:0],
		c.complete[:0], c.outEst[:0], c.inEst[:0],
		c.session[:0], c.durUs[:0],
		c.priceModel[:0], c.priceFrom[:0], c.speed[:0], c.geo[:0],
		c.reqID[:0], c.provReqID[:0], c.labels[:0], c.ua[:0],
		c.ttftUs[:0], c.attempts[:0], c.rejection[:0], c.errType[:0],
		c.cacheHit[:0], c.saved[:0],
	}
}

func (c *pgColumns) add(seq int64, r *Record) {
	ns := unixNanos(r.Time)
	u := &r.Usage
	c.seq = append(c.seq, seq)
	c.timeNs = append(c.timeNs, ns)
	c.bucket = append(c.bucket, bucketStart(ns))
	c.key = append(c.key, r.Key)
	c.team = append(c.team, r.Team)
	c.customer = append(c.customer, r.Customer)
	c.provider = append(c.provider, r.Provider)
	c.model = append(c.model, r.Model)
	c.reqModel = append(c.reqModel, r.RequestedModel)
	c.srf = append(c.srf, r.Surface)
	c.status = append(c.status, int32(r.Status))
	c.stream = append(c.stream, r.Stream)
	c.in = append(c.in, u.InputTokens)
	c.out = append(c.out, u.OutputTokens)
	c.cacheRead = append(c.cacheRead, u.CacheReadTokens)
	c.cw5m = append(c.cw5m, u.CacheWrite5mTokens)
	c.cw1h = append(c.cw1h, u.CacheWrite1hTokens)
	c.web = append(c.web, u.WebSearchRequests)
	c.cost = append(c.cost, int64(r.Cost))
	c.complete = append(c.complete, u.Complete)
	c.outEst = append(c.outEst, u.OutputEstimated)
	c.inEst = append(c.inEst, u.InputEstimated)
	c.session = append(c.session, r.SessionID)
	c.durUs = append(c.durUs, r.Duration.Microseconds())
	c.priceModel = append(c.priceModel, r.PriceModel)
	c.priceFrom = append(c.priceFrom, r.PriceEffectiveFrom)
	c.speed = append(c.speed, u.Speed)
	c.geo = append(c.geo, u.InferenceGeo)
	c.reqID = append(c.reqID, pgText(r.RequestID))
	c.provReqID = append(c.provReqID, pgText(r.ProviderRequestID))
	c.labels = append(c.labels, pgText(labelsJSON(r.Labels)))
	c.ua = append(c.ua, pgText(r.UserAgent))
	c.ttftUs = append(c.ttftUs, r.TTFT.Microseconds())
	c.attempts = append(c.attempts, int32(r.Attempts))
	c.rejection = append(c.rejection, r.Rejection)
	c.errType = append(c.errType, r.ErrorType)
	c.cacheHit = append(c.cacheHit, r.CacheHit)
	c.saved = append(c.saved, int64(r.Saved))
}

func (c *pgColumns) args(writerID int64) []any {
	return []any{writerID,
		c.seq, c.timeNs, c.bucket,
		c.key, c.team, c.customer, c.provider, c.model, c.reqModel, c.srf,
		c.status, c.stream,
		c.in, c.out, c.cacheRead, c.cw5m, c.cw1h, c.web, c.cost,
		c.complete, c.outEst, c.inEst,
		c.session, c.durUs,
		c.priceModel, c.priceFrom, c.speed, c.geo,
		c.reqID, c.provReqID, c.labels, c.ua,
		c.ttftUs, c.attempts, c.rejection, c.errType,
		c.cacheHit, c.saved,
	}
}

// pgText makes s storable in a PostgreSQL text column, which refuses NUL
// bytes (the gateway bounds client-sent text; this keeps a stray NUL from
// failing a whole batch forever).
func pgText(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// postgresLedgerColumns are the ledger's columns in the order of
// pgColumns.args after writer_id, with their array types.
var postgresLedgerColumns = [][2]string{
	{"seq", "bigint"}, {"time_ns", "bigint"}, {"bucket", "bigint"},
	{"key", "text"}, {"team", "text"}, {"customer", "text"}, {"provider", "text"},
	{"model", "text"}, {"requested_model", "text"}, {"surface", "text"},
	{"status", "integer"}, {"stream", "boolean"},
	{"input_tokens", "bigint"}, {"output_tokens", "bigint"}, {"cache_read_tokens", "bigint"},
	{"cache_write_5m_tokens", "bigint"}, {"cache_write_1h_tokens", "bigint"},
	{"web_search_requests", "bigint"}, {"cost_nano_usd", "bigint"},
	{"complete", "boolean"}, {"output_estimated", "boolean"}, {"input_estimated", "boolean"},
	{"session_id", "text"}, {"duration_us", "bigint"},
	{"price_model", "text"}, {"price_effective_from", "text"}, {"speed", "text"}, {"inference_geo", "text"},
	{"request_id", "text"}, {"provider_request_id", "text"}, {"labels", "text"}, {"user_agent", "text"},
	{"ttft_us", "bigint"}, {"attempts", "integer"}, {"rejection", "text"}, {"error_type", "text"},
	{"cache_hit", "boolean"}, {"saved_nano_usd", "bigint"},
}

// pgSumCols are the token and cost columns the ledger and the totals
// table share, in Totals order.
const pgSumCols = `input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd`

// pgTotalsCols are the totals table's sums in Totals order: requests,
// pgSumCols, cache hits, saved.
const pgTotalsCols = `requests, ` + pgSumCols + `, cache_hits, saved_nano_usd`

// pgLedgerSums are the aggregates of ledger rows in pgTotalsCols order.
var pgLedgerSums = func() string {
	out := []string{"COUNT(*)"}
	for _, c := range strings.Split(pgSumCols, ", ") {
		out = append(out, "COALESCE(SUM("+c+"), 0)::bigint")
	}
	return strings.Join(append(out, "COUNT(*) FILTER (WHERE cache_hit)", "COALESCE(SUM(saved_nano_usd), 0)::bigint"), ", ")
}()

// postgresInsertBatch writes a batch in one statement: the rows, from one
// array per column, skipping any already there (a retry after a lost
// commit reply), and the totals of the rows it did insert, pre-aggregated
// per (scope, bucket) and upserted in key order so that writers of a fleet
// never deadlock on the totals rows.
var postgresInsertBatch = func() string {
	var names, selects, params []string
	for i, c := range postgresLedgerColumns {
		names = append(names, c[0])
		params = append(params, fmt.Sprintf("$%d::%s[]", i+2, c[1]))
		if c[0] == "labels" {
			selects = append(selects, "u.labels::jsonb")
		} else {
			selects = append(selects, "u."+c[0])
		}
	}
	scoped := func(kind, col string) string {
		return `SELECT '` + kind + `' AS kind, ` + col + ` AS name, bucket, ` + pgSumCols +
			`, cache_hit, saved_nano_usd FROM ins WHERE ` + col + ` <> ''`
	}
	var updates []string
	for _, c := range strings.Split(pgTotalsCols, ", ") {
		updates = append(updates, c+" = t."+c+" + excluded."+c)
	}
	return `WITH ins AS (
	INSERT INTO llm_gateway_ledger (writer_id, ` + strings.Join(names, ", ") + `)
	SELECT $1::bigint, ` + strings.Join(selects, ", ") + `
	FROM unnest(` + strings.Join(params, ", ") + `) AS u(` + strings.Join(names, ", ") + `)
	ON CONFLICT (writer_id, seq) DO NOTHING
	RETURNING bucket, key, team, customer, ` + pgSumCols + `, cache_hit, saved_nano_usd
), scoped AS (
	` + scoped(ScopeKey.String(), "key") + `
	UNION ALL ` + scoped(ScopeTeam.String(), "team") + `
	UNION ALL ` + scoped(ScopeCustomer.String(), "customer") + `
), agg AS (
	SELECT kind, name, b.bucket, ` + pgLedgerSums + `
	FROM scoped CROSS JOIN LATERAL (VALUES (0::bigint),
		(CASE WHEN scoped.bucket = 0 THEN 1 ELSE scoped.bucket END)) AS b(bucket)
	GROUP BY kind, name, b.bucket
)
INSERT INTO llm_gateway_totals AS t (kind, name, bucket, ` + pgTotalsCols + `)
SELECT * FROM agg ORDER BY kind, name, bucket
ON CONFLICT (kind, name, bucket) DO UPDATE SET ` + strings.Join(updates, ", ")
}()

// write commits one batch in one statement (one implicit transaction).
func (s *PostgresStore) write(batch []pgOp) error {
	s.cols.reset()
	for i := range batch {
		s.cols.add(batch[i].seq, batch[i].rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresAttemptTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, postgresInsertBatch, s.cols.args(s.writerID)...)
	return err
}

// readTotals replaces Totals' fleet-wide figures with every scope's
// all-time row.
func (s *PostgresStore) readTotals(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT kind, name, `+pgTotalsCols+
		` FROM llm_gateway_totals WHERE bucket = 0`)
	if err != nil {
		return err
	}
	defer rows.Close()
	snap := map[Scope]Totals{}
	for rows.Next() {
		var kind, name string
		var t Totals
		if err := rows.Scan(append([]any{&kind, &name}, totalsDest(&t)...)...); err != nil {
			return err
		}
		if k, ok := parseScopeKind(kind); ok {
			snap[Scope{k, name}] = t
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.tot.replace(snap)
	return nil
}

// totalsDest are scan destinations for pgTotalsCols (or pgLedgerSums).
func totalsDest(t *Totals) []any {
	u := &t.Usage
	return []any{&t.Requests, &u.InputTokens, &u.OutputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens,
		&u.CacheWrite1hTokens, &u.WebSearchRequests, &t.Cost, &t.CacheHits, &t.Saved}
}
