package module

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// dashboardEndpoints are the admin API handlers a dashboard may read, by
// the name after /llm_gateway/. They are the admin API's own handlers, so a
// dashboard shows exactly the numbers the admin API answers.
var dashboardEndpoints = map[string]caddy.AdminHandlerFunc{
	"usage":     serveUsage,
	"keys":      serveEntities(governance.ScopeKey),
	"teams":     serveEntities(governance.ScopeTeam),
	"customers": serveEntities(governance.ScopeCustomer),
}

func init() { dashboardEndpoints["context"] = serveDashboardContext }

// RegisterDashboardEndpoint adds an admin API handler a dashboard may read
// (e.g. "requests"): the file that adds an admin endpoint registers it here
// from its init, so the dashboard needs no edit to show it.
func RegisterDashboardEndpoint(name string, h caddy.AdminHandlerFunc) {
	dashboardEndpoints[name] = h
}

// ServeDashboardAPI answers GET <endpoint> of the llm_gateway admin API
// (usage, keys, teams, customers and any registered endpoint) for a
// dashboard served on a site, with the request's query string, reading the
// same gateway the admin API reads (the newest configured llm_gateway),
// found at request time. "context" answers the gateway's calendar: its
// timezone, now, and the starts of today, this week and this month. Errors
// are answered as {"error": "…"} with the admin API's status. It reports
// false when endpoint is not one a dashboard may read.
func ServeDashboardAPI(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	h, ok := dashboardEndpoints[endpoint]
	if !ok {
		return false
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeDashboardError(w, http.StatusMethodNotAllowed, errors.New("method not allowed"))
		return true
	}
	// The admin handlers answer JSON or CSV and return their errors; record
	// nothing, stream the answer, and turn an error into the JSON shape the
	// page reads (nothing was written before an admin handler errs).
	if err := h(w, r); err != nil {
		status := http.StatusInternalServerError
		var apiErr caddy.APIError
		if errors.As(err, &apiErr) {
			if apiErr.HTTPStatus != 0 {
				status = apiErr.HTTPStatus
			}
			if apiErr.Err != nil {
				err = apiErr.Err
			}
		}
		writeDashboardError(w, status, err)
	}
	return true
}

func writeDashboardError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// serveDashboardContext answers the gateway's calendar, so a page picks
// "today" and "this month" as the ledger's reports bucket them.
func serveDashboardContext(w http.ResponseWriter, r *http.Request) error {
	st, err := newestGateway()
	if err != nil {
		return err
	}
	loc := st.location
	now := time.Now().In(loc)
	day := governance.PeriodDay.Start(now, loc)
	week := governance.PeriodWeek.Start(now, loc)
	month := governance.PeriodMonth.Start(now, loc)
	date := func(t time.Time) string { return t.In(loc).Format(time.DateOnly) }
	endpoints := make([]string, 0, len(dashboardEndpoints))
	for name := range dashboardEndpoints {
		endpoints = append(endpoints, name)
	}
	sort.Strings(endpoints)
	return writeAdminJSON(w, map[string]any{
		// endpoints are what the page may read (it hides what is missing).
		"endpoints":        endpoints,
		"timezone":         loc.String(),
		"now":              now.Format(time.RFC3339Nano),
		"today":            date(day),
		"tomorrow":         date(governance.PeriodDay.End(day)),
		"week_start":       date(week),
		"next_week_start":  date(governance.PeriodWeek.End(week)),
		"month_start":      date(month),
		"next_month_start": date(governance.PeriodMonth.End(month)),
		// The month's length and how much of it has passed, in seconds, for
		// a month-end projection at the current burn rate.
		"month_seconds":         governance.PeriodMonth.End(month).Sub(month).Seconds(),
		"month_elapsed_seconds": now.Sub(month).Seconds(),
	})
}
