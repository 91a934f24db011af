package governance

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Dim is one dimension of a multi-dimensional usage report: a ledger column
// (key, team, customer, provider, model, surface, session, rejection,
// status), a label
// ("label.<name>"), or a calendar bucket in the query's Location (hour, day,
// week, month).
type Dim string

// The dimensions a Report groups and filters by, besides "label.<name>".
const (
	DimKey      Dim = "key"
	DimTeam     Dim = "team"
	DimCustomer Dim = "customer"
	DimProvider Dim = "provider"
	DimModel    Dim = "model"
	DimSurface  Dim = "surface"
	DimSession  Dim = "session"
	// DimRejection is why the gateway refused the request (Record.Rejection,
	// e.g. "budget"; "" for a request it did not refuse).
	DimRejection Dim = "rejection"
	// DimStatus is the HTTP status the client received, in decimal ("402").
	DimStatus Dim = "status"
	// DimHour is the hour's start in Location, RFC 3339 with its offset
	// (2026-12-01T14:00:00+01:00), so the two 01:00 hours of a fall-back
	// night stay apart.
	DimHour Dim = "hour"
	// DimDay is the calendar day, YYYY-MM-DD.
	DimDay Dim = "day"
	// DimWeek is the ISO week (Monday first), named by its Monday, YYYY-MM-DD.
	DimWeek Dim = "week"
	// DimMonth is the calendar month, YYYY-MM.
	DimMonth Dim = "month"
)

// LabelPrefix starts a label dimension's name.
const LabelPrefix = "label."

// ParseDim validates a dimension name.
func ParseDim(s string) (Dim, bool) {
	switch d := Dim(s); d {
	case DimKey, DimTeam, DimCustomer, DimProvider, DimModel, DimSurface, DimSession,
		DimRejection, DimStatus, DimHour, DimDay, DimWeek, DimMonth:
		return d, true
	}
	if name, ok := strings.CutPrefix(s, LabelPrefix); ok && name != "" {
		return Dim(s), true
	}
	return "", false
}

// Label is the label name of a label dimension ("" for any other).
func (d Dim) Label() string {
	name, _ := strings.CutPrefix(string(d), LabelPrefix)
	if name == string(d) {
		return ""
	}
	return name
}

// column is the ledger column of a column dimension ("" for labels and
// calendar buckets).
func (d Dim) column() string {
	switch d {
	case DimKey, DimTeam, DimCustomer, DimProvider, DimModel, DimSurface, DimRejection:
		return string(d)
	case DimSession:
		return "session_id"
	}
	return ""
}

// OrderBy is a report's sort order, always descending.
type OrderBy string

// The report orders.
const (
	OrderByCost     OrderBy = "cost"
	OrderByRequests OrderBy = "requests"
	OrderByTokens   OrderBy = "tokens"
)

// ParseOrderBy validates an order name ("" is cost).
func ParseOrderBy(s string) (OrderBy, bool) {
	switch o := OrderBy(s); o {
	case "":
		return OrderByCost, true
	case OrderByCost, OrderByRequests, OrderByTokens:
		return o, true
	}
	return "", false
}

// Filter keeps the records whose dimension value matches Pattern: exactly,
// or, when Pattern holds '*' or '?', as a glob in which '*' matches any run
// of characters (none included), '?' exactly one character (a UTF-8 code
// point, not a byte), and every other character, '[' and '\\' included,
// only itself. Matching is case-sensitive. (This is SQLite's GLOB with
// '[' escaped, and PostgreSQL's LIKE with '%' and '_' escaped and
// '*'/'?' mapped to '%'/'_'.) A filter on a dimension a record lacks (an
// absent label, an empty team) matches against "".
type Filter struct {
	Dim     Dim
	Pattern string
}

func (f Filter) glob() bool { return strings.ContainsAny(f.Pattern, "*?") }

func (f Filter) match(v string) bool {
	if f.glob() {
		return globRunes(f.Pattern, v)
	}
	return v == f.Pattern
}

// globRunes matches name against a '*'/'?' pattern, '?' being one code
// point: the classic iterative match with one backtracking point.
func globRunes(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		_, w := utf8.DecodeRuneInString(name[n:])
		switch {
		case p < len(pattern) && pattern[p] == '?':
			p++
			n += w
		case p < len(pattern) && pattern[p] == '*':
			starP, starN = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case starP >= 0:
			p = starP + 1
			_, sw := utf8.DecodeRuneInString(name[starN:])
			starN += sw
			n = starN
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ReportQuery asks the ledger for totals grouped by any combination of
// dimensions over [From, To) (zero times are open ends), keeping the
// records every filter matches. Rows are sorted by OrderBy descending, ties
// by their dimension values; Limit > 0 cuts a page, and Cursor (a previous
// report's NextCursor) asks for the page after it.
type ReportQuery struct {
	Dims     []Dim
	Filters  []Filter
	From, To time.Time
	Location *time.Location
	OrderBy  OrderBy
	Limit    int
	Cursor   string
}

// ReportRow is one group: its dimension values in the query's Dims order.
type ReportRow struct {
	Values []string
	Totals Totals
}

// Report is a ReportQuery's answer. Total sums every row of the query, on
// every page, to the nano-dollar; NextCursor is "" on the last page.
type Report struct {
	Rows       []ReportRow
	Total      Totals
	NextCursor string
}

// ledgerRecord is the part of a ledger row a report reads.
type ledgerRecord struct {
	ns       int64
	cols     [9]string // key team customer provider model surface session rejection status
	labels   map[string]string
	usage    llm.Usage
	cost     Money
	cacheHit bool
	saved    Money
}

// totals adds the record to t.
func (lr *ledgerRecord) addTo(t *Totals) {
	t.Requests++
	t.Usage.AddCounts(lr.usage)
	t.Cost += lr.cost
	if lr.cacheHit {
		t.CacheHits++
	}
	t.Saved += lr.saved
}

// matches reports whether the record passes every filter, calendar buckets
// taken in loc.
func (lr *ledgerRecord) matches(filters []Filter, loc *time.Location) bool {
	for _, f := range filters {
		if !f.match(lr.value(f.Dim, loc)) {
			return false
		}
	}
	return true
}

var dimIndex = map[Dim]int{DimKey: 0, DimTeam: 1, DimCustomer: 2, DimProvider: 3, DimModel: 4, DimSurface: 5, DimSession: 6,
	DimRejection: 7, DimStatus: 8}

func fromRecord(r *Record) ledgerRecord {
	return ledgerRecord{
		ns:       unixNanos(r.Time),
		cols:     [9]string{r.Key, r.Team, r.Customer, r.Provider, r.Model, r.Surface, r.SessionID, r.Rejection, strconv.Itoa(r.Status)},
		labels:   r.Labels,
		usage:    r.Usage,
		cost:     r.Cost,
		cacheHit: r.CacheHit,
		saved:    r.Saved,
	}
}

// value is the record's value of dimension d in loc.
func (lr *ledgerRecord) value(d Dim, loc *time.Location) string {
	if i, ok := dimIndex[d]; ok {
		return lr.cols[i]
	}
	if name := d.Label(); name != "" {
		return lr.labels[name]
	}
	t := time.Unix(0, lr.ns).In(loc)
	switch d {
	case DimHour:
		// Step back from the instant (not time.Date, which picks one of two
		// equal wall clocks) so the record keeps its own offset.
		h := t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
		return h.Format(time.RFC3339)
	case DimDay:
		return t.Format(time.DateOnly)
	case DimWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		y, m, day := t.Date()
		return time.Date(y, m, day-back, 12, 0, 0, 0, loc).Format(time.DateOnly)
	case DimMonth:
		return t.Format("2006-01")
	}
	return ""
}

// reportBuilder groups records for a ReportQuery, the same for every store.
type reportBuilder struct {
	q      ReportQuery
	loc    *time.Location
	groups map[string]*ReportRow
}

func newReportBuilder(q ReportQuery) *reportBuilder {
	loc := q.Location
	if loc == nil {
		loc = timeUTC
	}
	return &reportBuilder{q: q, loc: loc, groups: map[string]*ReportRow{}}
}

func (b *reportBuilder) add(lr *ledgerRecord) {
	if !lr.matches(b.q.Filters, b.loc) {
		return
	}
	vals := make([]string, len(b.q.Dims))
	for i, d := range b.q.Dims {
		vals[i] = lr.value(d, b.loc)
	}
	k := strings.Join(vals, "\x00")
	row := b.groups[k]
	if row == nil {
		row = &ReportRow{Values: vals}
		b.groups[k] = row
	}
	lr.addTo(&row.Totals)
}

// addGroup adds pre-aggregated totals to the group of vals (one value per
// query dimension).
func (b *reportBuilder) addGroup(vals []string, t *Totals) {
	k := strings.Join(vals, "\x00")
	row := b.groups[k]
	if row == nil {
		row = &ReportRow{Values: vals}
		b.groups[k] = row
	}
	row.Totals.Add(*t)
}

func (b *reportBuilder) report() (Report, error) {
	offset, err := parseCursor(b.q.Cursor)
	if err != nil {
		return Report{}, err
	}
	rows := make([]ReportRow, 0, len(b.groups))
	var total Totals
	for _, r := range b.groups {
		rows = append(rows, *r)
		total.Add(r.Totals)
	}
	key := func(t *Totals) int64 {
		switch b.q.OrderBy {
		case OrderByRequests:
			return t.Requests
		case OrderByTokens:
			return t.Tokens()
		}
		return int64(t.Cost)
	}
	sort.Slice(rows, func(i, j int) bool {
		if a, c := key(&rows[i].Totals), key(&rows[j].Totals); a != c {
			return a > c
		}
		return strings.Join(rows[i].Values, "\x00") < strings.Join(rows[j].Values, "\x00")
	})
	rep := Report{Total: total}
	if offset > len(rows) {
		offset = len(rows)
	}
	rows = rows[offset:]
	if b.q.Limit > 0 && len(rows) > b.q.Limit {
		rows = rows[:b.q.Limit]
		rep.NextCursor = makeCursor(offset + b.q.Limit)
	}
	rep.Rows = rows
	return rep, nil
}

// A cursor is the offset of the next page, opaque to clients.
func makeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(offset)))
}

func parseCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 'o' {
		if n, err := strconv.Atoi(string(b[1:])); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrInvalidCursor, c)
}

// ErrInvalidCursor is a Report's error for a cursor it did not make.
var ErrInvalidCursor = errors.New("invalid cursor")

// needsLabels reports whether the query reads the labels column.
func (q *ReportQuery) needsLabels() bool {
	for _, d := range q.Dims {
		if d.Label() != "" {
			return true
		}
	}
	for _, f := range q.Filters {
		if f.Dim.Label() != "" {
			return true
		}
	}
	return false
}
