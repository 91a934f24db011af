package integration

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestRequestsAndSessionsAPI: Claude Code sessions of two keys through a
// real Caddy with the official SDK, then the admin request log (newest
// first, filtered, paged by cursor, CSV) and the sessions report (by cost,
// min_cost, order), each refusing unknown parameters.
func TestRequestsAndSessionsAPI(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/ledger.db", "")})
	send := func(key, model, session string) string {
		t.Helper()
		var resp *http.Response
		c := newClient(g, "", option.WithAPIKey(key), option.WithHeader("X-Claude-Code-Session-Id", session),
			option.WithHeader("User-Agent", "claude-cli/2.1.328 (external, cli)"), option.WithResponseInto(&resp))
		_, err := c.Messages.New(context.Background(), messageParams(model))
		must(t, err)
		return resp.Header.Get("x-llm-gateway-request-id")
	}
	ids := []string{
		send(aliceKey, "claude-opus-4-5", "sess-a1"),
		send(aliceKey, "claude-haiku-4-5", "sess-a1"),
		send(aliceKey, "claude-sonnet-4-5", "sess-a2"),
		send(bobKey, "claude-haiku-4-5", "sess-b1"),
	}
	for _, id := range ids {
		if id == "" {
			t.Fatal("a response without x-llm-gateway-request-id")
		}
	}

	type reqRow struct {
		RequestID   string            `json:"request_id"`
		Key         string            `json:"key"`
		Model       string            `json:"model"`
		Session     string            `json:"session"`
		Status      int               `json:"status"`
		UserAgent   string            `json:"user_agent"`
		Labels      map[string]string `json:"labels"`
		InputTokens int64             `json:"input_tokens"`
		CostNanoUSD int64             `json:"cost_nano_usd"`
	}
	type reqDoc struct {
		Rows  []reqRow `json:"rows"`
		Total struct {
			Requests    int64 `json:"requests"`
			CostNanoUSD int64 `json:"cost_nano_usd"`
		} `json:"total"`
		NextCursor string `json:"next_cursor"`
	}
	var all reqDoc
	g.adminGet("/llm_gateway/requests", &all)
	if len(all.Rows) != 4 || all.Total.Requests != 4 || all.NextCursor != "" {
		t.Fatalf("requests: %+v", all)
	}
	var sum int64
	for i, r := range all.Rows {
		if r.RequestID != ids[len(ids)-1-i] { // newest first
			t.Errorf("row %d is %s, want %s", i, r.RequestID, ids[len(ids)-1-i])
		}
		if r.Status != 200 || r.UserAgent != "claude-cli/2.1.328 (external, cli)" || r.InputTokens != mockInput || r.Labels == nil {
			t.Errorf("row %d: %+v", i, r)
		}
		sum += r.CostNanoUSD
	}
	if sum != all.Total.CostNanoUSD {
		t.Errorf("rows sum to %d, total %d", sum, all.Total.CostNanoUSD)
	}
	var opus reqDoc
	g.adminGet("/llm_gateway/requests?model=claude-opus-*&key=alice", &opus)
	if len(opus.Rows) != 1 || opus.Rows[0].RequestID != ids[0] || opus.Rows[0].Session != "sess-a1" {
		t.Errorf("alice on opus: %+v", opus)
	}
	var paged []string
	for q := "/llm_gateway/requests?key=alice&limit=2"; ; {
		var d reqDoc
		g.adminGet(q, &d)
		for _, r := range d.Rows {
			paged = append(paged, r.RequestID)
		}
		if d.NextCursor == "" {
			break
		}
		q = "/llm_gateway/requests?key=alice&limit=2&cursor=" + d.NextCursor
	}
	if strings.Join(paged, ",") != strings.Join([]string{ids[2], ids[1], ids[0]}, ",") {
		t.Errorf("alice's pages: %v", paged)
	}

	type sessRow struct {
		Session        string   `json:"session"`
		Key            string   `json:"key"`
		Models         []string `json:"models"`
		Requests       int64    `json:"requests"`
		CostNanoUSD    int64    `json:"cost_nano_usd"`
		CostUSD        float64  `json:"cost_usd"`
		FirstSeen      string   `json:"first_seen"`
		LastSeen       string   `json:"last_seen"`
		CacheReadShare *float64 `json:"cache_read_share"`
	}
	type sessDoc struct {
		Rows  []sessRow `json:"rows"`
		Total struct {
			Requests    int64 `json:"requests"`
			CostNanoUSD int64 `json:"cost_nano_usd"`
		} `json:"total"`
	}
	var sessions sessDoc
	g.adminGet("/llm_gateway/sessions", &sessions)
	if len(sessions.Rows) != 3 || sessions.Total.CostNanoUSD != all.Total.CostNanoUSD || sessions.Total.Requests != 4 {
		t.Fatalf("sessions: %+v", sessions)
	}
	for i := 1; i < len(sessions.Rows); i++ {
		if sessions.Rows[i].CostNanoUSD > sessions.Rows[i-1].CostNanoUSD {
			t.Errorf("sessions not by cost: %+v", sessions.Rows)
		}
	}
	var a1 sessDoc
	g.adminGet("/llm_gateway/sessions?session=sess-a1", &a1)
	if len(a1.Rows) != 1 || a1.Rows[0].Key != "alice" || a1.Rows[0].Requests != 2 ||
		strings.Join(a1.Rows[0].Models, ",") != "claude-haiku-4-5,claude-opus-4-5" || a1.Rows[0].FirstSeen > a1.Rows[0].LastSeen ||
		a1.Rows[0].CacheReadShare == nil {
		t.Errorf("session sess-a1: %+v", a1)
	}
	top := sessions.Rows[0]
	var over sessDoc
	g.adminGet("/llm_gateway/sessions?min_cost="+strings.TrimRight(strings.TrimRight(formatUSD(top.CostNanoUSD), "0"), "."), &over)
	if len(over.Rows) != 1 || over.Rows[0].Session != top.Session || over.Total.CostNanoUSD != top.CostNanoUSD {
		t.Errorf("min_cost %d nano: %+v", top.CostNanoUSD, over)
	}

	resp, err := http.Get(g.AdminURL + "/llm_gateway/sessions?format=csv&order_by=requests")
	must(t, err)
	lines, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	must(t, err)
	if len(lines) != 4 || lines[0][0] != "session" || lines[1][0] != "sess-a1" || lines[1][6] != "claude-haiku-4-5 claude-opus-4-5" {
		t.Errorf("sessions csv: %v", lines)
	}
	for _, path := range []string{"/llm_gateway/requests?colour=red", "/llm_gateway/sessions?group_by=key", "/llm_gateway/requests?order_by=requests"} {
		resp, err := http.Get(g.AdminURL + path)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// formatUSD is nano-dollars as a decimal dollar amount ("0.012345678").
func formatUSD(nano int64) string {
	s := fmt.Sprintf("%010d", nano)
	return s[:len(s)-9] + "." + s[len(s)-9:]
}
