package module

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestServeDashboardAPI: the dashboard's endpoints answer exactly what the
// admin API answers, errors in {"error": …} with the admin API's status,
// and only to GET.
func TestServeDashboardAPI(t *testing.T) {
	usageTestGateway(t)
	for _, tc := range []struct {
		name, method, endpoint, query string
		handled                       bool
		status                        int
		body                          string
	}{
		{name: "usage", method: "GET", endpoint: "usage", query: "group_by=key", handled: true, status: 200, body: `"rows"`},
		{name: "bad query", method: "GET", endpoint: "usage", query: "group_by=key&nope=1", handled: true, status: 400,
			body: `{"error":"unknown parameter(s): nope`},
		{name: "keys", method: "GET", endpoint: "keys", handled: true, status: 200, body: `"keys"`},
		{name: "teams", method: "GET", endpoint: "teams", handled: true, status: 200, body: `"teams"`},
		{name: "customers", method: "GET", endpoint: "customers", handled: true, status: 200, body: `"customers"`},
		{name: "context", method: "GET", endpoint: "context", handled: true, status: 200, body: `"timezone": "Europe/Paris"`},
		{name: "post", method: "POST", endpoint: "usage", query: "group_by=key", handled: true, status: 405, body: `{"error":"method not allowed"}`},
		{name: "unknown", method: "GET", endpoint: "prices", handled: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, "/spend/api/"+tc.endpoint+"?"+tc.query, nil)
			if got := ServeDashboardAPI(w, r, tc.endpoint); got != tc.handled {
				t.Fatalf("handled %v, want %v", got, tc.handled)
			}
			if !tc.handled {
				return
			}
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tc.status, tc.body)
			}
		})
	}

	// The same report as the admin endpoint, byte for byte.
	admin, err := getUsage(t, "group_by=team,model&order_by=requests")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	ServeDashboardAPI(w, httptest.NewRequest("GET", "/api/usage?group_by=team,model&order_by=requests", nil), "usage")
	if w.Body.String() != admin.Body.String() {
		t.Errorf("dashboard answered\n%s\nthe admin API\n%s", w.Body, admin.Body)
	}

	var ctx struct {
		Endpoints                    []string
		Today, WeekStart, MonthStart string
	}
	w = httptest.NewRecorder()
	ServeDashboardAPI(w, httptest.NewRequest("GET", "/api/context", nil), "context")
	if err := json.Unmarshal(w.Body.Bytes(), &ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"context", "customers", "keys", "requests", "sessions", "teams", "usage"} {
		if !slices.Contains(ctx.Endpoints, want) {
			t.Errorf("context endpoints %v lack %s", ctx.Endpoints, want)
		}
	}
}
