package governance

import (
	"context"
	"fmt"
	"strings"
)

// Requests implements Store. The exact filters on ledger columns are pushed
// into SQL; the rest (globs, labels, calendar buckets) are applied row by
// row, exactly as MemoryStore does.
func (s *SQLiteStore) Requests(ctx context.Context, q RequestsQuery) (RequestPage, error) {
	b, err := newRequestBuilder(q)
	if err != nil {
		return RequestPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return b.page(), nil
	}
	where, args := sqliteExactFilters(q.Filters, lo, hi)
	rs, err := s.db.QueryContext(ctx, `SELECT `+sqliteRecordColumns+` FROM ledger WHERE `+where, args...)
	if err != nil {
		return RequestPage{}, fmt.Errorf("sqlite store: requests: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var r Record
		id, err := scanRecord(rs, &r)
		if err != nil {
			return RequestPage{}, fmt.Errorf("sqlite store: requests: %w", err)
		}
		b.add(&r, id)
	}
	if err := rs.Err(); err != nil {
		return RequestPage{}, fmt.Errorf("sqlite store: requests: %w", err)
	}
	return b.page(), nil
}

// Sessions implements Store, reading the rows with a session in range.
func (s *SQLiteStore) Sessions(ctx context.Context, q SessionsQuery) (SessionPage, error) {
	b, err := newSessionBuilder(q)
	if err != nil {
		return SessionPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	if !ok {
		return b.page()
	}
	where, args := sqliteExactFilters(q.Filters, lo, hi)
	rs, err := s.db.QueryContext(ctx, `SELECT time_ns, key, team, customer, provider, model,
		surface, session_id, rejection, status, labels, input_tokens, output_tokens, cache_read_tokens,
		cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests, cost_nano_usd,
		cache_hit, saved_nano_usd
		FROM ledger WHERE session_id != '' AND `+where, args...)
	if err != nil {
		return SessionPage{}, fmt.Errorf("sqlite store: sessions: %w", err)
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
			return SessionPage{}, fmt.Errorf("sqlite store: sessions: %w", err)
		}
		if lr.labels, err = parseLabels(lj); err != nil {
			return SessionPage{}, fmt.Errorf("sqlite store: sessions: %w", err)
		}
		b.add(&lr)
	}
	if err := rs.Err(); err != nil {
		return SessionPage{}, fmt.Errorf("sqlite store: sessions: %w", err)
	}
	return b.page()
}

// sqliteExactFilters is the WHERE clause of the time range [lo, hi] and the
// exact filters on ledger columns, with its arguments.
func sqliteExactFilters(filters []Filter, lo, hi int64) (string, []any) {
	where := []string{"time_ns BETWEEN ? AND ?"}
	args := []any{lo, hi}
	for _, f := range filters {
		if col := f.Dim.column(); col != "" && !f.glob() {
			where = append(where, col+" = ?")
			args = append(args, f.Pattern)
		}
	}
	return strings.Join(where, " AND "), args
}
