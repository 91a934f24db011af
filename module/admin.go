package module

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves llm_gateway's read-only endpoints on Caddy's admin
// listener:
//
//	GET /llm_gateway/keys        every key: team, customer, limits, each budget's
//	                             spent/reserved/remaining and reset time, spend (never secrets)
//	GET /llm_gateway/teams       the same for teams
//	GET /llm_gateway/customers   the same for customers
//	GET /llm_gateway/usage?group_by=<dim>[,<dim>…][&<dim>=<value or glob>…][&from=…][&to=…]
//	                             [&order_by=cost|requests|tokens][&limit=N][&cursor=…][&format=json|csv]
//	                             dims: key team customer provider model surface session rejection
//	                             status label.<name> hour day week month; or
//	                             group_by=speed|inference_geo|price_row alone
//	GET /llm_gateway/requests?[<dim>=<value or glob>…][&from=…][&to=…][&order_by=time|cost|tokens]
//	                             [&limit=N][&cursor=…][&format=json|csv]
//	                             the ledger rows (request log), newest first
//	GET /llm_gateway/sessions?[<dim>=…][&from=…][&to=…][&min_cost=<usd>]
//	                             [&order_by=cost|requests|tokens|time][&limit=N][&cursor=…][&format=json|csv]
//	                             Claude Code sessions, most expensive first
//	GET /llm_gateway/prices[?model=<id>][&all=1][&at=<time>]
//	                             the price table in force (built-in merged with prices_file
//	                             and price lines), in the prices-file format
//
// from and to are RFC 3339 times or YYYY-MM-DD dates in the gateway's
// timezone; from is inclusive, to exclusive.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.llm_gateway",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/llm_gateway/keys", Handler: caddy.AdminHandlerFunc(serveKeys)}, // GET lists, POST creates (admin_keys.go)
		{Pattern: "/llm_gateway/keys/", Handler: caddy.AdminHandlerFunc(serveKey)},
		{Pattern: "/llm_gateway/audit", Handler: caddy.AdminHandlerFunc(serveAudit)},
		{Pattern: "/llm_gateway/teams", Handler: serveEntities(governance.ScopeTeam)},
		{Pattern: "/llm_gateway/customers", Handler: serveEntities(governance.ScopeCustomer)},
		{Pattern: "/llm_gateway/usage", Handler: caddy.AdminHandlerFunc(serveUsage)},
		{Pattern: "/llm_gateway/requests", Handler: caddy.AdminHandlerFunc(ServeRequests)},
		{Pattern: "/llm_gateway/sessions", Handler: caddy.AdminHandlerFunc(ServeSessions)},
		{Pattern: "/llm_gateway/prices", Handler: caddy.AdminHandlerFunc(servePrices)},
		{Pattern: "/llm_gateway/cache_insight", Handler: caddy.AdminHandlerFunc(serveCacheInsight)}, // cache_admin.go
	}
}

// usageJSON is a Totals as the admin API shows it.
type usageJSON struct {
	Requests           int64   `json:"requests"`
	InputTokens        int64   `json:"input_tokens"`
	OutputTokens       int64   `json:"output_tokens"`
	CacheReadTokens    int64   `json:"cache_read_tokens"`
	CacheWrite5mTokens int64   `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64   `json:"cache_write_1h_tokens"`
	WebSearchRequests  int64   `json:"web_search_requests"`
	CostUSD            float64 `json:"cost_usd"`
	CostNanoUSD        int64   `json:"cost_nano_usd"`
	// CacheHits counts requests the response cache answered; SavedUSD and
	// SavedNanoUSD are what those hits saved (the original responses' cost).
	CacheHits    int64   `json:"cache_hits"`
	SavedUSD     float64 `json:"saved_usd"`
	SavedNanoUSD int64   `json:"saved_nano_usd"`
}

func toUsageJSON(t governance.Totals) usageJSON {
	return usageJSON{
		Requests:           t.Requests,
		InputTokens:        t.Usage.InputTokens,
		OutputTokens:       t.Usage.OutputTokens,
		CacheReadTokens:    t.Usage.CacheReadTokens,
		CacheWrite5mTokens: t.Usage.CacheWrite5mTokens,
		CacheWrite1hTokens: t.Usage.CacheWrite1hTokens,
		WebSearchRequests:  t.Usage.WebSearchRequests,
		CostUSD:            t.Cost.USD(),
		CostNanoUSD:        int64(t.Cost),
		CacheHits:          t.CacheHits,
		SavedUSD:           t.Saved.USD(),
		SavedNanoUSD:       int64(t.Saved),
	}
}

// budgetJSON is one budget's state in the admin API.
type budgetJSON struct {
	Period string `json:"period"`
	// LimitUSD, SpentUSD, ReservedUSD and RemainingUSD are dollars;
	// remaining is limit − spent − reserved (what a new request can get).
	LimitUSD     float64 `json:"limit_usd"`
	SpentUSD     float64 `json:"spent_usd"`
	ReservedUSD  float64 `json:"reserved_usd"`
	RemainingUSD float64 `json:"remaining_usd"`
	// The same in nano-dollars, exact.
	LimitNanoUSD    int64  `json:"limit_nano_usd"`
	SpentNanoUSD    int64  `json:"spent_nano_usd"`
	ReservedNanoUSD int64  `json:"reserved_nano_usd"`
	PeriodStart     string `json:"period_start,omitempty"`
	ResetsAt        string `json:"resets_at,omitempty"`
}

type rateLimitJSON struct {
	Limit int64  `json:"limit"`
	Unit  string `json:"unit"`
	Per   string `json:"per"`
}

// entityJSON is a key, team or customer in the admin API. Never a secret.
type entityJSON struct {
	Name       string          `json:"name"`
	Team       string          `json:"team,omitempty"`
	Customer   string          `json:"customer,omitempty"`
	Source     string          `json:"source,omitempty"` // keys: config, api, or the provisioner
	Models     []string        `json:"models,omitempty"`
	Disabled   bool            `json:"disabled,omitempty"`
	Expires    string          `json:"expires,omitempty"`
	Budgets    []budgetJSON    `json:"budgets,omitempty"`
	RateLimits []rateLimitJSON `json:"rate_limits,omitempty"`
	// Spend is this instance's ledger totals since the ledger began.
	Spend usageJSON `json:"spend"`
}

func toBudgetJSON(s governance.BudgetStatus) budgetJSON {
	b := budgetJSON{
		Period:          s.Budget.Period.String(),
		LimitUSD:        s.Budget.Limit.USD(),
		SpentUSD:        s.Spent.USD(),
		ReservedUSD:     s.Reserved.USD(),
		LimitNanoUSD:    int64(s.Budget.Limit),
		SpentNanoUSD:    int64(s.Spent),
		ReservedNanoUSD: int64(s.Reserved),
	}
	if r := s.Budget.Limit - s.Spent - s.Reserved; r > 0 {
		b.RemainingUSD = r.USD()
	}
	if s.Budget.Period != governance.PeriodTotal {
		b.PeriodStart = s.PeriodStart.Format(time.RFC3339)
		b.ResetsAt = s.ResetAt.Format(time.RFC3339)
	}
	return b
}

// entity renders one level of the hierarchy with its budgets' state.
func entity(ctx context.Context, st *state, scope governance.Scope, l *governance.Limits) (entityJSON, error) {
	e := entityJSON{Name: scope.Name, Disabled: l.Disabled}
	for _, m := range l.Models {
		e.Models = append(e.Models, string(m))
	}
	if !l.Expires.IsZero() {
		e.Expires = l.Expires.Format(time.RFC3339)
	}
	for _, r := range l.RateLimits {
		e.RateLimits = append(e.RateLimits, rateLimitJSON{r.Limit, r.Unit.String(), strings.TrimPrefix(r.String(), fmt.Sprintf("%d %s per ", r.Limit, r.Unit))})
	}
	if len(l.Budgets) > 0 {
		statuses, err := st.store.counters.Status(ctx, []governance.Level{{Scope: scope, Budgets: l.Budgets}}, time.Now(), st.location)
		if err != nil {
			st.metrics.storeErrors.WithLabelValues("status").Inc()
			return e, err
		}
		for _, s := range statuses {
			e.Budgets = append(e.Budgets, toBudgetJSON(s))
		}
	}
	e.Spend = toUsageJSON(st.store.ledger.Totals(scope))
	return e, nil
}

// serveEntities lists keys, teams or customers of every active gateway
// (the newest config wins a name both define).
func serveEntities(kind governance.ScopeKind) caddy.AdminHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet {
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
		}
		out := []entityJSON{}
		seen := map[string]bool{}
		add := func(st *state, name string, l *governance.Limits, fill func(*entityJSON)) error {
			if seen[name] {
				return nil
			}
			seen[name] = true
			e, err := entity(r.Context(), st, governance.Scope{Kind: kind, Name: name}, l)
			if err != nil {
				return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("reading budgets: %v", err)}
			}
			if fill != nil {
				fill(&e)
			}
			out = append(out, e)
			return nil
		}
		for _, g := range activeGateways.list() {
			st := g.state
			switch kind {
			case governance.ScopeKey:
				for _, k := range st.keys.Keys() {
					if err := add(st, k.Name, &k.Limits, func(e *entityJSON) { fillKey(st, k, e) }); err != nil {
						return err
					}
				}
			case governance.ScopeTeam:
				for _, t := range st.registry.Teams() {
					fill := func(e *entityJSON) {
						if t.Customer != nil {
							e.Customer = t.Customer.Name
						}
					}
					if err := add(st, t.Name, &t.Limits, fill); err != nil {
						return err
					}
				}
			case governance.ScopeCustomer:
				for _, c := range st.registry.Customers() {
					if err := add(st, c.Name, &c.Limits, nil); err != nil {
						return err
					}
				}
			}
		}
		return writeAdminJSON(w, map[string]any{kind.String() + "s": out})
	}
}

type usageRowJSON struct {
	Group string `json:"group"`
	usageJSON
}

// legacyGroupBy are the single groupings only today's one-dimension report
// knows (no filters, order, pages or CSV).
var legacyGroupBy = map[string]bool{"speed": true, "inference_geo": true, "price_row": true}

// usageCSVColumns are the total columns of a CSV usage report, after the
// dimensions in group_by order.
var usageCSVColumns = []string{"requests", "input_tokens", "output_tokens", "cache_read_tokens",
	"cache_write_5m_tokens", "cache_write_1h_tokens", "web_search_requests", "cost_usd", "cost_nano_usd",
	"cache_hits", "saved_usd", "saved_nano_usd"}

// newestGateway is the gateway the admin API answers for: the newest
// config's (404 when none is configured).
func newestGateway() (*state, error) {
	gws := activeGateways.list()
	if len(gws) == 0 {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no llm_gateway handler is configured")}
	}
	return gws[0].state, nil
}

func badRequest(format string, a ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(format, a...)}
}

// serveUsage answers GET /llm_gateway/usage: totals grouped by any
// combination of dimensions (group_by=team,model,day), a filter per
// dimension (exact or glob: model=claude-opus-*), from/to, order_by,
// limit, cursor and format=json|csv. Unknown parameters are refused.
func serveUsage(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseLedgerQuery(r, map[string]bool{"group_by": true})
	if err != nil {
		return err
	}
	st, q, filters, from, to := lq.st, lq.q, lq.filters, lq.from, lq.to
	groupBy := q.Get("group_by")
	if legacyGroupBy[groupBy] {
		for _, p := range []string{"order_by", "limit", "cursor", "format"} {
			if q.Has(p) {
				return badRequest("group_by=%s does not take %s", groupBy, p)
			}
		}
		if len(filters) > 0 {
			return badRequest("group_by=%s does not take filters", groupBy)
		}
		return serveLegacyUsage(w, r, st, governance.GroupBy(groupBy), from, to)
	}
	var dims []governance.Dim
	seen := map[governance.Dim]bool{}
	if groupBy != "" {
		for _, name := range strings.Split(groupBy, ",") {
			d, ok := governance.ParseDim(strings.TrimSpace(name))
			if !ok {
				return badRequest("group_by: unknown dimension %q (want %s, or one of speed, inference_geo, price_row alone)", name, filterNames)
			}
			if seen[d] {
				return badRequest("group_by: %s given twice", d)
			}
			seen[d] = true
			dims = append(dims, d)
		}
	}
	if len(dims) == 0 {
		return badRequest("group_by is required: one or more of %s", filterNames)
	}
	orderBy, ok := governance.ParseOrderBy(lq.orderBy)
	if !ok {
		return badRequest("order_by must be cost, requests or tokens")
	}
	rep, err := st.store.ledger.Report(r.Context(), governance.ReportQuery{
		Dims: dims, Filters: filters, From: from, To: to, Location: st.location,
		OrderBy: orderBy, Limit: lq.limit, Cursor: lq.cursor,
	})
	if err != nil {
		return queryError(err)
	}
	if lq.format == "csv" {
		return writeUsageCSV(w, dims, rep)
	}
	rows := make([]map[string]any, len(rep.Rows))
	for i, row := range rep.Rows {
		m := usageFields(row.Totals)
		for j, d := range dims {
			m[string(d)] = row.Values[j]
		}
		if len(dims) == 1 {
			m["group"] = row.Values[0]
		}
		rows[i] = m
	}
	resp := map[string]any{"group_by": groupBy, "timezone": st.location.String(), "order_by": orderBy,
		"rows": rows, "total": toUsageJSON(rep.Total), "next_cursor": rep.NextCursor}
	if !from.IsZero() {
		resp["from"] = from.Format(time.RFC3339)
	}
	if !to.IsZero() {
		resp["to"] = to.Format(time.RFC3339)
	}
	return writeAdminJSON(w, resp)
}

// usageFields is a Totals as the fields of a report row.
func usageFields(t governance.Totals) map[string]any {
	u := toUsageJSON(t)
	return map[string]any{
		"requests": u.Requests, "input_tokens": u.InputTokens, "output_tokens": u.OutputTokens,
		"cache_read_tokens": u.CacheReadTokens, "cache_write_5m_tokens": u.CacheWrite5mTokens,
		"cache_write_1h_tokens": u.CacheWrite1hTokens, "web_search_requests": u.WebSearchRequests,
		"cost_usd": u.CostUSD, "cost_nano_usd": u.CostNanoUSD,
		"cache_hits": u.CacheHits, "saved_usd": u.SavedUSD, "saved_nano_usd": u.SavedNanoUSD,
	}
}

// writeUsageCSV writes a report as CSV: a header row (the dimensions in
// group_by order, then usageCSVColumns), one line a row, and cost_usd as an
// exact decimal with nine places. The total is not a line: finance tools sum
// the column themselves.
func writeUsageCSV(w http.ResponseWriter, dims []governance.Dim, rep governance.Report) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if rep.NextCursor != "" {
		w.Header().Set("X-Next-Cursor", rep.NextCursor)
	}
	cw := csv.NewWriter(w)
	header := make([]string, 0, len(dims)+len(usageCSVColumns))
	for _, d := range dims {
		header = append(header, string(d))
	}
	if err := cw.Write(append(header, usageCSVColumns...)); err != nil {
		return err
	}
	for _, row := range rep.Rows {
		t := row.Totals
		i := func(n int64) string { return strconv.FormatInt(n, 10) }
		line := append(append([]string{}, row.Values...),
			i(t.Requests), i(t.Usage.InputTokens), i(t.Usage.OutputTokens), i(t.Usage.CacheReadTokens),
			i(t.Usage.CacheWrite5mTokens), i(t.Usage.CacheWrite1hTokens), i(t.Usage.WebSearchRequests),
			t.Cost.String(), i(int64(t.Cost)), i(t.CacheHits), t.Saved.String(), i(int64(t.Saved)))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// serveLegacyUsage is today's one-dimension report for the groupings only
// it knows (speed, inference_geo, price_row), sorted by group.
func serveLegacyUsage(w http.ResponseWriter, r *http.Request, st *state, groupBy governance.GroupBy, from, to time.Time) error {
	if err := st.store.ledger.Flush(r.Context()); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	rows, err := st.store.ledger.Usage(r.Context(), governance.UsageQuery{GroupBy: groupBy, From: from, To: to, Location: st.location})
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	out := make([]usageRowJSON, len(rows))
	var total governance.Totals
	for i, row := range rows {
		out[i] = usageRowJSON{Group: row.Group, usageJSON: toUsageJSON(row.Totals)}
		total.Add(row.Totals)
	}
	resp := map[string]any{"group_by": groupBy, "timezone": st.location.String(), "rows": out, "total": toUsageJSON(total), "next_cursor": ""}
	if !from.IsZero() {
		resp["from"] = from.Format(time.RFC3339)
	}
	if !to.IsZero() {
		resp["to"] = to.Format(time.RFC3339)
	}
	return writeAdminJSON(w, resp)
}

// parseAdminTime reads an RFC 3339 time or a YYYY-MM-DD date (midnight in loc).
func parseAdminTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 or YYYY-MM-DD, got %q", s)
	}
	return t, nil
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Interface guard
var _ caddy.AdminRouter = AdminAPI{}
