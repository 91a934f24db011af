package module

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// usageTestGateway registers a gateway whose ledger holds two keys' requests
// on two models over two days (in Europe/Paris), for the usage endpoint.
func usageTestGateway(t *testing.T) {
	t.Helper()
	ledger := governance.NewMemoryStore()
	g := newTestGateway(t, http.DefaultTransport, testSecret, ledger)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	g.state.location = paris
	rec := func(day string, hour int, key, model string, cost governance.Money, labels map[string]string) {
		d, _ := time.ParseInLocation(time.DateOnly, day, paris)
		ledger.Record(&governance.Record{Time: d.Add(time.Duration(hour) * time.Hour), Key: key, Team: "payments",
			Provider: "anthropic", Model: model, Surface: "messages", Cost: cost, Labels: labels,
			Usage: llm.Usage{InputTokens: 10, OutputTokens: 2}})
	}
	apollo := map[string]string{"project": "apollo"}
	rec("2026-12-01", 0, "alice", "claude-opus-4-5", 2*governance.Dollar+1, apollo) // 23:00 UTC the day before
	rec("2026-12-01", 10, "alice", "claude-sonnet-4-5", 3, nil)
	rec("2026-12-01", 11, "bob", "claude-opus-4-5", governance.Dollar, apollo)
	rec("2026-12-02", 9, "alice", "claude-opus-4-5", 5, apollo)
	rec("2026-12-02", 9, "bob", "claude-sonnet-4-5", 7*governance.Dollar, nil)
	activeGateways.add(g)
	t.Cleanup(func() { activeGateways.remove(g) })
}

func getUsage(t *testing.T, query string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := serveUsage(w, httptest.NewRequest("GET", "/llm_gateway/usage?"+query, nil))
	return w, err
}

func TestServeUsageQueries(t *testing.T) {
	usageTestGateway(t)
	tests := []struct {
		query string
		rows  []map[string]any // the fields checked of each row, in order
		total int64
	}{
		{"group_by=key,model&model=claude-opus-*", []map[string]any{
			{"key": "alice", "model": "claude-opus-4-5", "requests": 2.0, "cost_nano_usd": 2e9 + 6},
			{"key": "bob", "model": "claude-opus-4-5", "requests": 1.0, "cost_nano_usd": 1e9},
		}, 3e9 + 6},
		{"group_by=key,day&team=payments&model=claude-opus-*&order_by=requests", []map[string]any{
			{"key": "alice", "day": "2026-12-01", "requests": 1.0},
			{"key": "alice", "day": "2026-12-02", "requests": 1.0},
			{"key": "bob", "day": "2026-12-01", "requests": 1.0},
		}, 3e9 + 6},
		{"group_by=day&from=2026-12-02&to=2026-12-03", []map[string]any{
			{"day": "2026-12-02", "group": "2026-12-02", "requests": 2.0, "cost_nano_usd": 7e9 + 5},
		}, 7e9 + 5},
		{"group_by=label.project&label.project=apollo", []map[string]any{
			{"label.project": "apollo", "group": "apollo", "requests": 3.0},
		}, 3e9 + 6},
		{"group_by=month,team", []map[string]any{
			{"month": "2026-12", "team": "payments", "requests": 5.0, "cost_nano_usd": 10e9 + 9},
		}, 10e9 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w, err := getUsage(t, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Rows  []map[string]any `json:"rows"`
				Total struct {
					CostNanoUSD int64 `json:"cost_nano_usd"`
				} `json:"total"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Rows) != len(tt.rows) {
				t.Fatalf("rows %v, want %d", doc.Rows, len(tt.rows))
			}
			for i, want := range tt.rows {
				for k, v := range want {
					if doc.Rows[i][k] != v {
						t.Errorf("row %d %s = %v, want %v", i, k, doc.Rows[i][k], v)
					}
				}
			}
			if doc.Total.CostNanoUSD != tt.total || doc.NextCursor == nil {
				t.Errorf("total %d (want %d), next_cursor %v", doc.Total.CostNanoUSD, tt.total, doc.NextCursor)
			}
		})
	}
}

func TestServeUsagePagesAndCSV(t *testing.T) {
	usageTestGateway(t)
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		w, err := getUsage(t, "group_by=key,model&limit=1&cursor="+cursor)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Rows []struct {
				Key   string `json:"key"`
				Model string `json:"model"`
			} `json:"rows"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, r := range doc.Rows {
			seen = append(seen, r.Key+"/"+r.Model)
		}
		if cursor = doc.NextCursor; cursor == "" {
			break
		}
	}
	want := "bob/claude-sonnet-4-5 alice/claude-opus-4-5 bob/claude-opus-4-5 alice/claude-sonnet-4-5"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("pages = %s, want %s", got, want)
	}

	w, err := getUsage(t, "group_by=team,model&format=csv")
	if err != nil {
		t.Fatal(err)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	wantCSV := "team,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_5m_tokens,cache_write_1h_tokens,web_search_requests,cost_usd,cost_nano_usd,cache_hits,saved_usd,saved_nano_usd\n" +
		"payments,claude-sonnet-4-5,2,20,4,0,0,0,0,7.000000003,7000000003,0,0.000000000,0\n" +
		"payments,claude-opus-4-5,3,30,6,0,0,0,0,3.000000006,3000000006,0,0.000000000,0\n"
	if got := w.Body.String(); got != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", got, wantCSV)
	}
}

func TestServeUsageRefuses(t *testing.T) {
	usageTestGateway(t)
	for _, tt := range []struct{ query, msg string }{
		{"group_by=key&kee=alice&colour=red", "unknown parameter(s): colour, kee"},
		{"group_by=key,speed", `unknown dimension "speed"`},
		{"", "group_by is required"},
		{"group_by=key&order_by=latency", "order_by"},
		{"group_by=key&limit=0", "limit"},
		{"group_by=key&format=xml", "format"},
		{"group_by=key&cursor=nope", "invalid cursor"},
		{"group_by=key&from=yesterday", "from"},
		{"group_by=price_row&key=alice", "does not take filters"},
		{"group_by=key,key", "given twice"},
	} {
		_, err := getUsage(t, tt.query)
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusBadRequest || !strings.Contains(apiErr.Err.Error(), tt.msg) {
			t.Errorf("%q: err %v, want 400 with %q", tt.query, err, tt.msg)
		}
	}
	// Today's single groupings still answer.
	if _, err := getUsage(t, "group_by=price_row"); err != nil {
		t.Errorf("group_by=price_row: %v", err)
	}
}
