package module

import (
	"encoding/json"
	"fmt"
	"net/http"
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
//	GET /llm_gateway/keys   every key with its team, customer and spend (never secrets)
//	GET /llm_gateway/usage?group_by=key|team|customer|model|provider|day[&from=…][&to=…]
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
		{Pattern: "/llm_gateway/keys", Handler: caddy.AdminHandlerFunc(serveKeys)},
		{Pattern: "/llm_gateway/usage", Handler: caddy.AdminHandlerFunc(serveUsage)},
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
	}
}

type keyJSON struct {
	Name     string    `json:"name"`
	Team     string    `json:"team,omitempty"`
	Customer string    `json:"customer,omitempty"`
	Models   []string  `json:"models,omitempty"`
	Spend    usageJSON `json:"spend"`
}

func serveKeys(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	keys := []keyJSON{}
	seen := map[string]bool{}
	for _, g := range activeGateways.list() {
		st := g.state
		for _, k := range st.registry.Keys() {
			if seen[k.Name] {
				continue
			}
			seen[k.Name] = true
			kj := keyJSON{Name: k.Name, Team: k.TeamName(), Customer: k.CustomerName()}
			for _, m := range k.Models {
				kj.Models = append(kj.Models, string(m))
			}
			kj.Spend = toUsageJSON(st.store.Totals(governance.Scope{Kind: governance.ScopeKey, Name: k.Name}))
			keys = append(keys, kj)
		}
	}
	return writeAdminJSON(w, map[string]any{"keys": keys})
}

type usageRowJSON struct {
	Group string `json:"group"`
	usageJSON
}

func serveUsage(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	gws := activeGateways.list()
	if len(gws) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no llm_gateway handler is configured")}
	}
	st := gws[0].state
	q := r.URL.Query()
	groupBy, ok := governance.ParseGroupBy(q.Get("group_by"))
	if !ok {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("group_by must be one of key, team, customer, model, provider, day")}
	}
	from, err := parseAdminTime(q.Get("from"), st.location)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("from: %v", err)}
	}
	to, err := parseAdminTime(q.Get("to"), st.location)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("to: %v", err)}
	}
	if err := st.store.Flush(r.Context()); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	rows, err := st.store.Usage(r.Context(), governance.UsageQuery{GroupBy: groupBy, From: from, To: to, Location: st.location})
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	out := make([]usageRowJSON, len(rows))
	var total governance.Totals
	for i, row := range rows {
		out[i] = usageRowJSON{Group: row.Group, usageJSON: toUsageJSON(row.Totals)}
		total.Requests += row.Totals.Requests
		total.Usage = total.Usage.Add(row.Totals.Usage)
		total.Cost += row.Totals.Cost
	}
	resp := map[string]any{"group_by": groupBy, "timezone": st.location.String(), "rows": out, "total": toUsageJSON(total)}
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
