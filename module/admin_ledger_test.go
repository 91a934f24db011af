package module

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// ledgerTestGateway registers a gateway whose ledger holds two Claude Code
// sessions of alice, one of bob, a refused request and a cache hit.
func ledgerTestGateway(t *testing.T) {
	t.Helper()
	ledger := governance.NewMemoryStore()
	g := newTestGateway(t, http.DefaultTransport, testSecret, ledger)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	g.state.location = paris
	day, _ := time.ParseInLocation(time.DateOnly, "2026-12-01", paris)
	rec := func(min int, key, session, model string, cost governance.Money, r governance.Record) {
		r.Time, r.Key, r.Team, r.Provider, r.Model, r.Surface = day.Add(time.Duration(min)*time.Minute), key, "payments", "anthropic", model, "messages"
		r.SessionID, r.Cost, r.Status = session, cost, 200
		r.Usage = llm.Usage{InputTokens: 10, CacheReadTokens: 30, OutputTokens: 2, Complete: true}
		r.RequestID = "req-" + key + "-" + time.Duration(min).String()
		ledger.Record(&r)
	}
	rec(60, "alice", "s1", "claude-opus-4-5", 15*governance.Dollar, governance.Record{UserAgent: "claude-cli/2.1.328", Labels: map[string]string{"project": "apollo"}})
	rec(61, "alice", "s1", "claude-haiku-4-5", 6*governance.Dollar, governance.Record{Duration: 1500 * time.Microsecond, TTFT: time.Millisecond})
	rec(62, "alice", "s2", "claude-opus-4-5", 3*governance.Dollar, governance.Record{CacheHit: true, Saved: 3 * governance.Dollar})
	rec(63, "bob", "s3", "claude-sonnet-4-5", 25*governance.Dollar, governance.Record{})
	rec(64, "bob", "", "claude-sonnet-4-5", 0, governance.Record{Rejection: "budget"})
	activeGateways.add(g)
	t.Cleanup(func() { activeGateways.remove(g) })
}

func getLedger(t *testing.T, h caddy.AdminHandlerFunc, path string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h(w, httptest.NewRequest("GET", path, nil))
	return w, err
}

type ledgerAnswer struct {
	Rows  []map[string]any `json:"rows"`
	Total struct {
		Requests    int64 `json:"requests"`
		CostNanoUSD int64 `json:"cost_nano_usd"`
		CacheHits   int64 `json:"cache_hits"`
	} `json:"total"`
	NextCursor string `json:"next_cursor"`
}

func TestServeRequests(t *testing.T) {
	ledgerTestGateway(t)
	tests := []struct {
		query  string
		ids    []string
		total  int64
		paged  bool
		fields map[string]any // checked on the first row
	}{
		{"", []string{"req-bob-64ns", "req-bob-63ns", "req-alice-62ns", "req-alice-61ns", "req-alice-60ns"}, 49e9, false,
			map[string]any{"rejection": "budget", "status": 200.0, "key": "bob", "time": "2026-12-01T01:04:00+01:00"}},
		{"key=alice&order_by=cost&limit=2", []string{"req-alice-60ns", "req-alice-61ns"}, 24e9, true,
			map[string]any{"session": "s1", "user_agent": "claude-cli/2.1.328", "labels": map[string]any{"project": "apollo"}, "cost_usd": 15.0}},
		{"model=claude-haiku-*", []string{"req-alice-61ns"}, 6e9, false, map[string]any{"duration_ms": 1.5, "ttft_ms": 1.0}},
		{"rejection=?*", []string{"req-bob-64ns"}, 0, false, nil},
		{"session=s2", []string{"req-alice-62ns"}, 3e9, false, map[string]any{"cache_hit": true, "saved_nano_usd": 3e9}},
		{"label.project=apollo&from=2026-12-01&to=2026-12-02", []string{"req-alice-60ns"}, 15e9, false, nil},
	}
	for _, tt := range tests {
		w, err := getLedger(t, ServeRequests, "/llm_gateway/requests?"+tt.query)
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		var a ledgerAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range a.Rows {
			ids = append(ids, r["request_id"].(string))
		}
		if !reflect.DeepEqual(ids, tt.ids) || a.Total.CostNanoUSD != tt.total || (a.NextCursor != "") != tt.paged {
			t.Errorf("%q: ids %v total %d next %q", tt.query, ids, a.Total.CostNanoUSD, a.NextCursor)
		}
		for k, v := range tt.fields {
			if !reflect.DeepEqual(a.Rows[0][k], v) {
				t.Errorf("%q: %s = %#v, want %#v", tt.query, k, a.Rows[0][k], v)
			}
		}
		if tt.paged {
			w, err := getLedger(t, ServeRequests, "/llm_gateway/requests?"+tt.query+"&cursor="+a.NextCursor)
			var b ledgerAnswer
			if err != nil || json.Unmarshal(w.Body.Bytes(), &b) != nil || len(b.Rows) != 1 || b.Rows[0]["request_id"] != "req-alice-62ns" || b.NextCursor != "" {
				t.Errorf("%q page 2: %v %s", tt.query, err, w.Body)
			}
		}
	}

	w, err := getLedger(t, ServeRequests, "/llm_gateway/requests?key=bob&format=csv")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(w.Body).ReadAll()
	if err != nil || len(lines) != 3 || !reflect.DeepEqual(lines[0], requestCSVColumns) || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("csv %v %v", lines, err)
	}
	if l := lines[2]; l[1] != "req-bob-63ns" || l[25] != "25.000000000" || l[26] != "25000000000" {
		t.Errorf("csv line %v", l)
	}
}

func TestServeSessions(t *testing.T) {
	ledgerTestGateway(t)
	tests := []struct {
		query    string
		sessions []string
		total    int64
	}{
		{"", []string{"s3", "s1", "s2"}, 49e9},
		{"min_cost=20", []string{"s3", "s1"}, 46e9},
		{"min_cost=20&key=alice", []string{"s1"}, 21e9},
		{"order_by=time", []string{"s3", "s2", "s1"}, 49e9},
		{"order_by=requests&limit=1", []string{"s1"}, 49e9},
		{"model=claude-opus-*&min_cost=10", []string{"s1"}, 15e9},
	}
	for _, tt := range tests {
		w, err := getLedger(t, ServeSessions, "/llm_gateway/sessions?"+tt.query)
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		var a ledgerAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range a.Rows {
			got = append(got, r["session"].(string))
		}
		if !reflect.DeepEqual(got, tt.sessions) || a.Total.CostNanoUSD != tt.total {
			t.Errorf("%q: sessions %v total %d", tt.query, got, a.Total.CostNanoUSD)
		}
	}
	w, _ := getLedger(t, ServeSessions, "/llm_gateway/sessions?session=s1")
	var a ledgerAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a.Rows) != 1 {
		t.Fatalf("%s %v", w.Body, err)
	}
	want := map[string]any{"key": "alice", "team": "payments", "first_seen": "2026-12-01T01:00:00+01:00",
		"last_seen": "2026-12-01T01:01:00+01:00", "models": []any{"claude-haiku-4-5", "claude-opus-4-5"},
		"requests": 2.0, "cache_read_share": 0.75, "cost_usd": 21.0}
	for k, v := range want {
		if !reflect.DeepEqual(a.Rows[0][k], v) {
			t.Errorf("%s = %#v, want %#v", k, a.Rows[0][k], v)
		}
	}
	w, err := getLedger(t, ServeSessions, "/llm_gateway/sessions?format=csv&min_cost=20")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(w.Body).ReadAll()
	if err != nil || len(lines) != 3 || !reflect.DeepEqual(lines[0], sessionCSVColumns) || lines[1][0] != "s3" || lines[2][6] != "claude-haiku-4-5 claude-opus-4-5" {
		t.Errorf("csv %v %v", lines, err)
	}
}

func TestServeLedgerRefuses(t *testing.T) {
	ledgerTestGateway(t)
	for _, tt := range []struct {
		h          caddy.AdminHandlerFunc
		query, msg string
	}{
		{ServeRequests, "kee=alice", "unknown parameter(s): kee"},
		{ServeRequests, "min_cost=3", "unknown parameter(s): min_cost"},
		{ServeRequests, "order_by=requests", "order_by must be time, cost or tokens"},
		{ServeRequests, "limit=10001", "limit"},
		{ServeRequests, "limit=-1", "limit"},
		{ServeRequests, "format=xml", "format"},
		{ServeRequests, "cursor=nope", "invalid cursor"},
		{ServeRequests, "limit=1&limit=2", "given 2 times"},
		{ServeSessions, "order_by=latency", "order_by must be cost"},
		{ServeSessions, "min_cost=lots", "min_cost"},
		{ServeSessions, "to=tomorrow", "to"},
		{ServeSessions, "group_by=key", "unknown parameter(s): group_by"},
	} {
		_, err := getLedger(t, tt.h, "/llm_gateway/x?"+tt.query)
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusBadRequest || !strings.Contains(apiErr.Err.Error(), tt.msg) {
			t.Errorf("%q: err %v, want 400 with %q", tt.query, err, tt.msg)
		}
	}
	w := httptest.NewRecorder()
	err := ServeRequests(w, httptest.NewRequest("POST", "/llm_gateway/requests", nil))
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v", err)
	}
}
