package module

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func init() {
	RegisterDashboardEndpoint("requests", ServeRequests)
	RegisterDashboardEndpoint("sessions", ServeSessions)
}

// Page sizes of /llm_gateway/requests and /llm_gateway/sessions.
const (
	adminDefaultLimit = 100
	adminMaxLimit     = governance.MaxPageLimit
)

// ledgerQuery is what usage, requests and sessions share: the gateway they
// read, and the filters, range, order, page and format of the request.
type ledgerQuery struct {
	st       *state
	q        url.Values
	filters  []governance.Filter
	from, to time.Time
	orderBy  string
	limit    int
	cursor   string
	format   string
}

// ledgerParams are the parameters every ledger endpoint takes besides a
// filter per dimension.
var ledgerParams = map[string]bool{"from": true, "to": true, "order_by": true, "limit": true, "cursor": true, "format": true}

// filterNames names the filters in error messages.
const filterNames = "key, team, customer, provider, model, surface, session, rejection, status, label.<name>, hour, day, week, month"

// parseLedgerQuery reads a GET of a ledger endpoint of the newest gateway:
// each parameter given once (filters aside), a filter per dimension (exact
// or glob, several on one dimension all apply), from and to, order_by
// (validated by the caller), limit (1…adminMaxLimit), cursor, format
// (json or csv). Parameters neither shared nor in extra are refused.
func parseLedgerQuery(r *http.Request, extra map[string]bool) (*ledgerQuery, error) {
	if r.Method != http.MethodGet {
		return nil, caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	st, err := newestGateway()
	if err != nil {
		return nil, err
	}
	lq := &ledgerQuery{st: st, q: r.URL.Query()}
	var unknown []string
	for name, vals := range lq.q {
		if ledgerParams[name] || extra[name] {
			if len(vals) > 1 {
				return nil, badRequest("parameter %s given %d times", name, len(vals))
			}
			continue
		}
		d, ok := governance.ParseDim(name)
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		for _, v := range vals {
			lq.filters = append(lq.filters, governance.Filter{Dim: d, Pattern: v})
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, badRequest("unknown parameter(s): %s (filters are %s)", strings.Join(unknown, ", "), filterNames)
	}
	// A stable filter order, so equal queries are equal.
	sort.SliceStable(lq.filters, func(i, j int) bool { return lq.filters[i].Dim < lq.filters[j].Dim })
	if lq.from, err = parseAdminTime(lq.q.Get("from"), lq.st.location); err != nil {
		return nil, badRequest("from: %v", err)
	}
	if lq.to, err = parseAdminTime(lq.q.Get("to"), lq.st.location); err != nil {
		return nil, badRequest("to: %v", err)
	}
	lq.orderBy = lq.q.Get("order_by")
	if s := lq.q.Get("limit"); s != "" {
		if lq.limit, err = strconv.Atoi(s); err != nil || lq.limit <= 0 || lq.limit > adminMaxLimit {
			return nil, badRequest("limit must be an integer from 1 to %d, got %q", adminMaxLimit, s)
		}
	}
	lq.cursor = lq.q.Get("cursor")
	lq.format = lq.q.Get("format")
	if lq.format != "" && lq.format != "json" && lq.format != "csv" {
		return nil, badRequest("format must be json or csv")
	}
	if err := lq.st.store.ledger.Flush(r.Context()); err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return lq, nil
}

// queryError turns a store's query error into the admin API's answer.
func queryError(err error) error {
	if errors.Is(err, governance.ErrInvalidCursor) || errors.Is(err, governance.ErrInvalidQuery) {
		return badRequest("%v", err)
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
}

// envelope is the JSON answer of a ledger endpoint.
func (lq *ledgerQuery) envelope(orderBy governance.OrderBy, rows any, total governance.Totals, next string) map[string]any {
	resp := map[string]any{"timezone": lq.st.location.String(), "order_by": orderBy,
		"rows": rows, "total": toUsageJSON(total), "next_cursor": next}
	if !lq.from.IsZero() {
		resp["from"] = lq.from.Format(time.RFC3339)
	}
	if !lq.to.IsZero() {
		resp["to"] = lq.to.Format(time.RFC3339)
	}
	return resp
}

// adminTime formats a row's time in the gateway's timezone.
func (lq *ledgerQuery) adminTime(t time.Time) string {
	return t.In(lq.st.location).Format(time.RFC3339Nano)
}

// requestOrders are the order_by values of /llm_gateway/requests.
var requestOrders = map[string]governance.OrderBy{"": governance.OrderByTime, "time": governance.OrderByTime,
	"cost": governance.OrderByCost, "tokens": governance.OrderByTokens}

// requestCSVColumns are the columns of a CSV request log, in order.
var requestCSVColumns = []string{"time", "request_id", "provider_request_id", "key", "team", "customer",
	"provider", "model", "requested_model", "surface", "status", "stream", "session", "user_agent",
	"rejection", "error_type", "attempts", "duration_ms", "ttft_ms", "input_tokens", "output_tokens",
	"cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "web_search_requests",
	"cost_usd", "cost_nano_usd", "complete", "cache_hit", "saved_usd", "saved_nano_usd", "price_row", "labels"}

// ServeRequests answers GET /llm_gateway/requests: the ledger rows (the
// request log, metadata only, never a prompt), newest first, with the
// filters, from/to, limit (default 100, at most 10,000), cursor and
// format of /llm_gateway/usage, and order_by=time|cost|tokens. It reads
// the newest configured gateway, so a dashboard can serve it too.
func ServeRequests(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseLedgerQuery(r, nil)
	if err != nil {
		return err
	}
	order, ok := requestOrders[lq.orderBy]
	if !ok {
		return badRequest("order_by must be time, cost or tokens")
	}
	limit := lq.limit
	if limit == 0 {
		limit = adminDefaultLimit
	}
	page, err := lq.st.store.ledger.Requests(r.Context(), governance.RequestsQuery{
		Filters: lq.filters, From: lq.from, To: lq.to, Location: lq.st.location,
		OrderBy: order, Limit: limit, Cursor: lq.cursor,
	})
	if err != nil {
		return queryError(err)
	}
	if lq.format == "csv" {
		return writeCSV(w, page.NextCursor, requestCSVColumns, len(page.Rows), func(i int) []string {
			return lq.requestCSV(&page.Rows[i])
		})
	}
	rows := make([]map[string]any, len(page.Rows))
	for i := range page.Rows {
		rows[i] = lq.requestJSON(&page.Rows[i])
	}
	return writeAdminJSON(w, lq.envelope(order, rows, page.Total, page.NextCursor))
}

func (lq *ledgerQuery) requestJSON(rec *governance.Record) map[string]any {
	m := usageFields(governance.Totals{Usage: rec.Usage, Cost: rec.Cost, Saved: rec.Saved})
	delete(m, "requests")
	delete(m, "cache_hits")
	m["time"] = lq.adminTime(rec.Time)
	m["request_id"] = rec.RequestID
	m["provider_request_id"] = rec.ProviderRequestID
	m["key"], m["team"], m["customer"] = rec.Key, rec.Team, rec.Customer
	m["provider"], m["model"], m["requested_model"] = rec.Provider, rec.Model, rec.RequestedModel
	m["surface"], m["status"], m["stream"] = rec.Surface, rec.Status, rec.Stream
	m["session"], m["user_agent"] = rec.SessionID, rec.UserAgent
	m["rejection"], m["error_type"], m["attempts"] = rec.Rejection, rec.ErrorType, rec.Attempts
	m["duration_ms"] = float64(rec.Duration.Microseconds()) / 1000
	m["ttft_ms"] = float64(rec.TTFT.Microseconds()) / 1000
	m["complete"] = rec.Usage.Complete
	m["cache_hit"] = rec.CacheHit
	m["price_row"] = rec.PriceRow()
	labels := rec.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	m["labels"] = labels
	return m
}

func (lq *ledgerQuery) requestCSV(rec *governance.Record) []string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
	u := &rec.Usage
	labels := make([]string, 0, len(rec.Labels))
	for k, v := range rec.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	return []string{lq.adminTime(rec.Time), rec.RequestID, rec.ProviderRequestID, rec.Key, rec.Team,
		rec.Customer, rec.Provider, rec.Model, rec.RequestedModel, rec.Surface, strconv.Itoa(rec.Status),
		strconv.FormatBool(rec.Stream), rec.SessionID, rec.UserAgent, rec.Rejection, rec.ErrorType,
		strconv.Itoa(rec.Attempts), ms(rec.Duration), ms(rec.TTFT), i(u.InputTokens), i(u.OutputTokens),
		i(u.CacheReadTokens), i(u.CacheWrite5mTokens), i(u.CacheWrite1hTokens), i(u.WebSearchRequests),
		rec.Cost.String(), i(int64(rec.Cost)), strconv.FormatBool(u.Complete), strconv.FormatBool(rec.CacheHit),
		rec.Saved.String(), i(int64(rec.Saved)), rec.PriceRow(), strings.Join(labels, ";")}
}

// sessionOrders are the order_by values of /llm_gateway/sessions.
var sessionOrders = map[string]governance.OrderBy{"": governance.OrderByCost, "cost": governance.OrderByCost,
	"requests": governance.OrderByRequests, "tokens": governance.OrderByTokens, "time": governance.OrderByTime}

// sessionCSVColumns are the columns of a CSV sessions report, in order.
var sessionCSVColumns = []string{"session", "key", "team", "customer", "first_seen", "last_seen", "models",
	"requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
	"cache_write_1h_tokens", "web_search_requests", "cost_usd", "cost_nano_usd", "cache_read_share",
	"cache_hits", "saved_usd", "saved_nano_usd"}

// ServeSessions answers GET /llm_gateway/sessions: Claude Code sessions
// (requests carrying X-Claude-Code-Session-Id, per session and key) with
// their first and last request, models, tokens, cost and cache-read share
// within the range and filters of /llm_gateway/usage; order_by=cost
// (default)|requests|tokens|time (last seen), min_cost=<usd> (sessions that
// cost at least that), limit (default 100), cursor, format.
func ServeSessions(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseLedgerQuery(r, map[string]bool{"min_cost": true})
	if err != nil {
		return err
	}
	order, ok := sessionOrders[lq.orderBy]
	if !ok {
		return badRequest("order_by must be cost, requests, tokens or time")
	}
	var minCost governance.Money
	if s := lq.q.Get("min_cost"); s != "" {
		if minCost, err = governance.ParseMoney(s); err != nil {
			return badRequest("min_cost: %v", err)
		}
	}
	limit := lq.limit
	if limit == 0 {
		limit = adminDefaultLimit
	}
	page, err := lq.st.store.ledger.Sessions(r.Context(), governance.SessionsQuery{
		Filters: lq.filters, From: lq.from, To: lq.to, Location: lq.st.location,
		OrderBy: order, MinCost: minCost, Limit: limit, Cursor: lq.cursor,
	})
	if err != nil {
		return queryError(err)
	}
	if lq.format == "csv" {
		return writeCSV(w, page.NextCursor, sessionCSVColumns, len(page.Rows), func(i int) []string {
			return lq.sessionCSV(&page.Rows[i])
		})
	}
	rows := make([]map[string]any, len(page.Rows))
	for i := range page.Rows {
		s := &page.Rows[i]
		m := usageFields(s.Totals)
		m["session"], m["key"], m["team"], m["customer"] = s.Session, s.Key, s.Team, s.Customer
		m["first_seen"], m["last_seen"] = lq.adminTime(s.FirstSeen), lq.adminTime(s.LastSeen)
		m["models"] = s.Models
		m["cache_read_share"] = s.Totals.CacheReadShare()
		rows[i] = m
	}
	resp := lq.envelope(order, rows, page.Total, page.NextCursor)
	if minCost > 0 {
		resp["min_cost_usd"] = minCost.USD()
	}
	return writeAdminJSON(w, resp)
}

func (lq *ledgerQuery) sessionCSV(s *governance.SessionRow) []string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	t := &s.Totals
	u := &t.Usage
	return []string{s.Session, s.Key, s.Team, s.Customer, lq.adminTime(s.FirstSeen), lq.adminTime(s.LastSeen),
		strings.Join(s.Models, " "), i(t.Requests), i(u.InputTokens), i(u.OutputTokens), i(u.CacheReadTokens),
		i(u.CacheWrite5mTokens), i(u.CacheWrite1hTokens), i(u.WebSearchRequests), t.Cost.String(),
		i(int64(t.Cost)), strconv.FormatFloat(t.CacheReadShare(), 'f', 4, 64), i(t.CacheHits),
		t.Saved.String(), i(int64(t.Saved))}
}

// writeCSV writes a header row and n lines as text/csv; the next page's
// cursor, if any, is the X-Next-Cursor header.
func writeCSV(w http.ResponseWriter, next string, header []string, n int, line func(i int) []string) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := cw.Write(line(i)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
