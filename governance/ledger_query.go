package governance

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OrderByTime sorts newest first: request rows by Time, session rows by
// LastSeen. Only Requests and Sessions take it.
const OrderByTime OrderBy = "time"

// ErrInvalidQuery is the error of a query a store cannot answer as asked
// (an order a report kind does not take); the admin API answers it 400.
var ErrInvalidQuery = errors.New("invalid query")

// Page sizes of Requests and Sessions.
const (
	// DefaultPageLimit is the page size of a RequestsQuery whose Limit is 0.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest Limit a RequestsQuery is answered with;
	// a larger one is cut to it.
	MaxPageLimit = 10_000
)

// RequestsQuery asks for ledger rows (the request log) over [From, To)
// (zero times are open ends), keeping the rows every filter matches (the
// filters of a ReportQuery, calendar buckets taken in Location).
//
// OrderBy is OrderByTime (the default, "") for newest first, OrderByCost or
// OrderByTokens for the most expensive first; ties are broken by Time, then
// by the order the store wrote the rows, newest first, so the order is
// total and stable. OrderByRequests is not an order of rows.
//
// Limit is the page size (0: DefaultPageLimit; more than MaxPageLimit is
// cut to it). Cursor, a previous page's NextCursor for the same query,
// asks for the rows after that page's last row in this order: a keyset,
// not an offset, so rows written since the first page neither repeat nor
// shift later pages (with OrderByTime they are newer and never appear).
type RequestsQuery struct {
	Filters  []Filter
	From, To time.Time
	Location *time.Location
	OrderBy  OrderBy
	Limit    int
	Cursor   string
}

// RequestPage is a RequestsQuery's answer: one page of rows in the query's
// order (Time in UTC; Duration and TTFT to the microsecond; Labels nil when
// a row has none). Total sums every row the query matches, on every page,
// to the nano-dollar (what a ReportQuery with no Dims and the same filters
// and range totals). NextCursor is "" on the last page.
type RequestPage struct {
	Rows       []Record
	Total      Totals
	NextCursor string
}

// SessionsQuery asks for Claude Code sessions (rows with a SessionID):
// the ledger rows in [From, To) that every filter matches, grouped by
// (SessionID, Key). A session id sent with two keys is two sessions.
//
// OrderBy is OrderByCost (the default, ""), OrderByRequests, OrderByTokens
// (descending) or OrderByTime (LastSeen, newest first); ties are broken by
// Session, then Key, ascending. MinCost > 0 keeps only the sessions whose
// Cost in the range and filters is at least MinCost ("sessions over $20").
// Limit > 0 cuts a page; Cursor, a previous page's NextCursor for the same
// query, asks for the page after it (an offset into the order).
type SessionsQuery struct {
	Filters  []Filter
	From, To time.Time
	Location *time.Location
	OrderBy  OrderBy
	MinCost  Money
	Limit    int
	Cursor   string
}

// SessionRow is one session within a SessionsQuery's range and filters.
type SessionRow struct {
	// Session is the X-Claude-Code-Session-Id; Key the key that sent it.
	Session, Key string
	// Team and Customer are those of the session's newest row.
	Team, Customer string
	// FirstSeen and LastSeen are the Times (UTC) of its oldest and newest row.
	FirstSeen, LastSeen time.Time
	// Models are the distinct models of its rows, sorted.
	Models []string
	// Totals sums its rows (Totals.CacheReadShare is the cache-read share).
	Totals Totals
}

// SessionPage is a SessionsQuery's answer. Total sums every session the
// query keeps (after MinCost), on every page; NextCursor is "" on the last
// page.
type SessionPage struct {
	Rows       []SessionRow
	Total      Totals
	NextCursor string
}

// pageLimit is a RequestsQuery's page size.
func (q *RequestsQuery) pageLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultPageLimit
	case q.Limit > MaxPageLimit:
		return MaxPageLimit
	}
	return q.Limit
}

// requestOrder validates and defaults a RequestsQuery's order.
func requestOrder(o OrderBy) (OrderBy, error) {
	switch o {
	case "", OrderByTime:
		return OrderByTime, nil
	case OrderByCost, OrderByTokens:
		return o, nil
	}
	return "", fmt.Errorf("%w: requests cannot be ordered by %q", ErrInvalidQuery, o)
}

// sessionOrder validates and defaults a SessionsQuery's order.
func sessionOrder(o OrderBy) (OrderBy, error) {
	switch o {
	case "", OrderByCost:
		return OrderByCost, nil
	case OrderByRequests, OrderByTokens, OrderByTime:
		return o, nil
	}
	return "", fmt.Errorf("%w: sessions cannot be ordered by %q", ErrInvalidQuery, o)
}

// requestKey is the sort key of a request row: rows sort by (k, ns, id)
// descending, k being the ordered value (time_ns, cost or tokens) and id
// the store's write order.
type requestKey struct{ k, ns, id int64 }

// less reports whether a sorts after b (a comes later on the page).
func (a requestKey) less(b requestKey) bool {
	if a.k != b.k {
		return a.k < b.k
	}
	if a.ns != b.ns {
		return a.ns < b.ns
	}
	return a.id < b.id
}

// orderValue is a record's ordered value under o.
func orderValue(o OrderBy, r *Record) int64 {
	switch o {
	case OrderByCost:
		return int64(r.Cost)
	case OrderByTokens:
		u := &r.Usage
		return u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens
	}
	return unixNanos(r.Time)
}

// A request cursor is the order and the sort key of a page's last row,
// opaque to clients: "r" + order initial + "k,ns,id".
func makeRequestCursor(o OrderBy, k requestKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r" + string(o)[:1] +
		strconv.FormatInt(k.k, 10) + "," + strconv.FormatInt(k.ns, 10) + "," + strconv.FormatInt(k.id, 10)))
}

// parseRequestCursor reads a request cursor made for order o; ok is false
// for "" (the first page).
func parseRequestCursor(o OrderBy, c string) (k requestKey, ok bool, err error) {
	if c == "" {
		return k, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 2 && b[0] == 'r' && b[1] == string(o)[0] {
		parts := strings.Split(string(b[2:]), ",")
		if len(parts) == 3 {
			var e [3]error
			k.k, e[0] = strconv.ParseInt(parts[0], 10, 64)
			k.ns, e[1] = strconv.ParseInt(parts[1], 10, 64)
			k.id, e[2] = strconv.ParseInt(parts[2], 10, 64)
			if e[0] == nil && e[1] == nil && e[2] == nil {
				return k, true, nil
			}
		}
	}
	return k, false, fmt.Errorf("%w %q", ErrInvalidCursor, c)
}

// requestBuilder pages request rows for a RequestsQuery from records given
// in any order, the same for every store that reads rows one by one.
type requestBuilder struct {
	q      RequestsQuery
	order  OrderBy
	loc    *time.Location
	after  requestKey
	cursor bool
	total  Totals
	rows   []keyedRecord
}

type keyedRecord struct {
	key requestKey
	rec Record
}

func newRequestBuilder(q RequestsQuery) (*requestBuilder, error) {
	o, err := requestOrder(q.OrderBy)
	if err != nil {
		return nil, err
	}
	after, ok, err := parseRequestCursor(o, q.Cursor)
	if err != nil {
		return nil, err
	}
	loc := q.Location
	if loc == nil {
		loc = timeUTC
	}
	return &requestBuilder{q: q, order: o, loc: loc, after: after, cursor: ok}, nil
}

// add considers record r, id being its place in the store's write order.
func (b *requestBuilder) add(r *Record, id int64) {
	lr := fromRecord(r)
	if !lr.matches(b.q.Filters, b.loc) {
		return
	}
	lr.addTo(&b.total)
	k := requestKey{orderValue(b.order, r), lr.ns, id}
	if b.cursor && !k.less(b.after) {
		return
	}
	b.rows = append(b.rows, keyedRecord{k, *r})
}

func (b *requestBuilder) page() RequestPage {
	sort.Slice(b.rows, func(i, j int) bool { return b.rows[j].key.less(b.rows[i].key) })
	p := RequestPage{Total: b.total, Rows: []Record{}}
	rows := b.rows
	if n := b.q.pageLimit(); len(rows) > n {
		rows = rows[:n]
		p.NextCursor = makeRequestCursor(b.order, rows[n-1].key)
	}
	for i := range rows {
		r := rows[i].rec
		r.Time = r.Time.UTC()
		r.Duration = r.Duration.Truncate(time.Microsecond)
		r.TTFT = r.TTFT.Truncate(time.Microsecond)
		if len(r.Labels) == 0 {
			r.Labels = nil
		}
		p.Rows = append(p.Rows, r)
	}
	return p
}

// sessionBuilder groups records into sessions for a SessionsQuery, the
// same for every store that reads rows one by one.
type sessionBuilder struct {
	q      SessionsQuery
	order  OrderBy
	loc    *time.Location
	groups map[[2]string]*sessionAcc
}

type sessionAcc struct {
	row         SessionRow
	first, last int64
	models      map[string]bool
}

func newSessionBuilder(q SessionsQuery) (*sessionBuilder, error) {
	o, err := sessionOrder(q.OrderBy)
	if err != nil {
		return nil, err
	}
	if _, err := parseCursor(q.Cursor); err != nil {
		return nil, err
	}
	loc := q.Location
	if loc == nil {
		loc = timeUTC
	}
	return &sessionBuilder{q: q, order: o, loc: loc, groups: map[[2]string]*sessionAcc{}}, nil
}

func (b *sessionBuilder) add(lr *ledgerRecord) {
	session, key := lr.cols[dimIndex[DimSession]], lr.cols[dimIndex[DimKey]]
	if session == "" || !lr.matches(b.q.Filters, b.loc) {
		return
	}
	g := b.groups[[2]string{session, key}]
	if g == nil {
		g = &sessionAcc{row: SessionRow{Session: session, Key: key}, first: lr.ns, last: lr.ns - 1, models: map[string]bool{}}
		b.groups[[2]string{session, key}] = g
	}
	if lr.ns >= g.last {
		g.last = lr.ns
		g.row.Team, g.row.Customer = lr.cols[dimIndex[DimTeam]], lr.cols[dimIndex[DimCustomer]]
	}
	g.first = min(g.first, lr.ns)
	g.models[lr.cols[dimIndex[DimModel]]] = true
	lr.addTo(&g.row.Totals)
}

// addAgg adds pre-aggregated rows of a session (one team, customer and
// model of it, its oldest and newest row's times) to the session.
func (b *sessionBuilder) addAgg(session, key, team, customer, model string, first, last int64, t *Totals) {
	g := b.groups[[2]string{session, key}]
	if g == nil {
		g = &sessionAcc{row: SessionRow{Session: session, Key: key}, first: first, last: last - 1, models: map[string]bool{}}
		b.groups[[2]string{session, key}] = g
	}
	if last >= g.last {
		g.last = last
		g.row.Team, g.row.Customer = team, customer
	}
	g.first = min(g.first, first)
	g.models[model] = true
	g.row.Totals.Add(*t)
}

// sortSessions sorts session rows in the order o, ties by session and key.
func sortSessions(rows []SessionRow, o OrderBy) {
	key := func(r *SessionRow) int64 {
		switch o {
		case OrderByRequests:
			return r.Totals.Requests
		case OrderByTokens:
			return r.Totals.Tokens()
		case OrderByTime:
			return unixNanos(r.LastSeen)
		}
		return int64(r.Totals.Cost)
	}
	sort.Slice(rows, func(i, j int) bool {
		if a, c := key(&rows[i]), key(&rows[j]); a != c {
			return a > c
		}
		if rows[i].Session != rows[j].Session {
			return rows[i].Session < rows[j].Session
		}
		return rows[i].Key < rows[j].Key
	})
}

// pageSessions applies MinCost, totals, sorts and cuts the page of a
// SessionsQuery from every session in its range and filters.
func pageSessions(q *SessionsQuery, o OrderBy, all []SessionRow) (SessionPage, error) {
	offset, err := parseCursor(q.Cursor)
	if err != nil {
		return SessionPage{}, err
	}
	rows := all[:0]
	var total Totals
	for _, r := range all {
		if r.Totals.Cost < q.MinCost {
			continue
		}
		total.Add(r.Totals)
		rows = append(rows, r)
	}
	sortSessions(rows, o)
	p := SessionPage{Total: total}
	offset = min(offset, len(rows))
	rows = rows[offset:]
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
		p.NextCursor = makeCursor(offset + q.Limit)
	}
	p.Rows = slices.Clip(rows)
	if p.Rows == nil {
		p.Rows = []SessionRow{}
	}
	return p, nil
}

func (b *sessionBuilder) page() (SessionPage, error) {
	all := make([]SessionRow, 0, len(b.groups))
	for _, g := range b.groups {
		r := g.row
		r.FirstSeen, r.LastSeen = time.Unix(0, g.first).UTC(), time.Unix(0, g.last).UTC()
		for m := range g.models {
			r.Models = append(r.Models, m)
		}
		sort.Strings(r.Models)
		all = append(all, r)
	}
	return pageSessions(&b.q, b.order, all)
}
