package governance

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// postgresLedgerColumns are the ledger columns a batch is copied into, in
// the order of pgRowValues.
var postgresLedgerColumns = []string{
	"writer_id", "seq", "time_ns", "bucket",
	"key", "team", "customer", "provider", "model", "requested_model", "surface",
	"status", "stream",
	"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
	"web_search_requests", "cost_nano_usd",
	"complete", "output_estimated", "input_estimated",
	"session_id", "duration_us",
	"price_model", "price_effective_from", "speed", "inference_geo",
	"request_id", "provider_request_id", "labels", "user_agent",
	"ttft_us", "attempts", "rejection", "error_type",
	"cache_hit", "saved_nano_usd",
}

// pgRowValues fills v (len(postgresLedgerColumns) long) with one row.
func pgRowValues(v []any, writerID, seq int64, r *Record) {
	ns := unixNanos(r.Time)
	u := &r.Usage
	v[0], v[1], v[2], v[3] = writerID, seq, ns, bucketStart(ns)
	v[4], v[5], v[6], v[7] = pgText(r.Key), pgText(r.Team), pgText(r.Customer), pgText(r.Provider)
	v[8], v[9], v[10] = pgText(r.Model), pgText(r.RequestedModel), pgText(r.Surface)
	v[11], v[12] = int32(r.Status), r.Stream
	v[13], v[14], v[15], v[16], v[17] = u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens
	v[18], v[19] = u.WebSearchRequests, int64(r.Cost)
	v[20], v[21], v[22] = u.Complete, u.OutputEstimated, u.InputEstimated
	v[23], v[24] = pgText(r.SessionID), r.Duration.Microseconds()
	v[25], v[26], v[27], v[28] = pgText(r.PriceModel), pgText(r.PriceEffectiveFrom), pgText(u.Speed), pgText(u.InferenceGeo)
	v[29], v[30], v[31], v[32] = pgText(r.RequestID), pgText(r.ProviderRequestID), pgText(labelsJSON(r.Labels)), pgText(r.UserAgent)
	v[33], v[34], v[35], v[36] = r.TTFT.Microseconds(), int32(r.Attempts), pgText(r.Rejection), pgText(r.ErrorType)
	v[37], v[38] = r.CacheHit, int64(r.Saved)
}

// pgText makes s storable in a PostgreSQL text column, which refuses NUL
// bytes and invalid UTF-8 (the gateway bounds client-sent text; this keeps
// one stray byte from failing a whole batch forever).
func pgText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
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

// postgresUpsertTotals adds a batch's totals, pre-aggregated per (scope,
// bucket) and given in key order so that the writers of a fleet take the
// rows' locks in one order and never deadlock.
var postgresUpsertTotals = func() string {
	var updates []string
	for _, c := range strings.Split(pgTotalsCols, ", ") {
		updates = append(updates, c+" = t."+c+" + excluded."+c)
	}
	return `INSERT INTO llm_gateway_totals AS t (kind, name, bucket, ` + pgTotalsCols + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
		$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
	ON CONFLICT (kind, name, bucket) DO UPDATE SET ` + strings.Join(updates, ", ")
}()

// pgBatch is the writer's reusable state for one batch.
type pgBatch struct {
	row  []any
	agg  map[totalsKey]*Totals
	keys []totalsKey
	cols [13]any
}

// write commits one batch in one transaction: the rows by COPY, then the
// totals they add. A retry first looks for the batch's first row: batches
// commit whole, so if it is there the previous attempt committed (its
// reply was lost) and nothing is written twice; the primary key on
// (writer_id, seq) refuses a duplicate in any case.
func (s *PostgresStore) write(batch []pgOp, retry bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), postgresAttemptTimeout)
	defer cancel()
	if retry {
		var there bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM llm_gateway_ledger WHERE writer_id = $1 AND seq = $2)`,
			s.writerID, batch[0].seq).Scan(&there); err != nil {
			return err
		}
		if there {
			return nil
		}
	}
	b := &s.wb
	if b.row == nil {
		b.row = make([]any, len(postgresLedgerColumns))
		b.agg = map[totalsKey]*Totals{}
	}
	clear(b.agg)
	for i := range batch {
		aggregateTotals(b.agg, batch[i].rec)
	}
	b.keys = b.keys[:0]
	for k := range b.agg {
		b.keys = append(b.keys, k)
	}
	slices.SortFunc(b.keys, func(x, y totalsKey) int {
		return cmp.Or(strings.Compare(x.kind.String(), y.kind.String()), strings.Compare(x.name, y.name), cmp.Compare(x.bucket, y.bucket))
	})
	n := len(b.keys)
	kinds, names := make([]string, n), make([]string, n)
	nums := make([][]int64, 11)
	for j := range nums {
		nums[j] = make([]int64, n)
	}
	for i, k := range b.keys {
		t := b.agg[k]
		kinds[i], names[i] = k.kind.String(), pgText(k.name)
		u := &t.Usage
		for j, v := range [...]int64{k.bucket, t.Requests, u.InputTokens, u.OutputTokens, u.CacheReadTokens,
			u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.WebSearchRequests, int64(t.Cost), t.CacheHits, int64(t.Saved)} {
			nums[j][i] = v
		}
	}
	args := []any{kinds, names}
	for _, col := range nums {
		args = append(args, col)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"llm_gateway_ledger"}, postgresLedgerColumns,
			pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
				pgRowValues(b.row, s.writerID, batch[i].seq, batch[i].rec)
				return b.row, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, postgresUpsertTotals, args...)
		return err
	})
}

// aggregateTotals adds r to the all-time and 15-minute totals of each of
// its scopes.
func aggregateTotals(agg map[totalsKey]*Totals, r *Record) {
	bucket := recordBucket(unixNanos(r.Time))
	for _, sc := range [...]Scope{{ScopeKey, r.Key}, {ScopeTeam, r.Team}, {ScopeCustomer, r.Customer}} {
		if sc.Name == "" {
			continue
		}
		for _, bk := range [...]int64{0, bucket} {
			k := totalsKey{sc.Kind, sc.Name, bk}
			t := agg[k]
			if t == nil {
				t = new(Totals)
				agg[k] = t
			}
			t.add(r)
		}
	}
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
