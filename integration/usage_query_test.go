package integration

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestUsageQueryAPI: requests of two keys on three models through a real
// Caddy, then the admin usage endpoint grouped by key,model with filters,
// by a label, by day with from/to, paged, as CSV, and refusing unknown
// parameters.
func TestUsageQueryAPI(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/ledger.db", "")})
	send := func(key, model, project string) {
		t.Helper()
		c := newClient(g, "", option.WithAPIKey(key), option.WithHeader("X-Project", project))
		_, err := c.Messages.New(context.Background(), messageParams(model))
		must(t, err)
	}
	send(aliceKey, "claude-sonnet-4-5", "apollo")
	send(aliceKey, "claude-sonnet-4-5", "zeus")
	send(aliceKey, "claude-opus-4-5", "apollo")
	send(bobKey, "claude-haiku-4-5", "apollo")

	type row struct {
		Key          string `json:"key"`
		Model        string `json:"model"`
		Project      string `json:"label.project"`
		Day          string `json:"day"`
		Group        string `json:"group"`
		Requests     int64  `json:"requests"`
		InputTokens  int64  `json:"input_tokens"`
		CostNanoUSD  int64  `json:"cost_nano_usd"`
		OutputTokens int64  `json:"output_tokens"`
	}
	type doc struct {
		Rows  []row `json:"rows"`
		Total struct {
			Requests    int64 `json:"requests"`
			CostNanoUSD int64 `json:"cost_nano_usd"`
		} `json:"total"`
		NextCursor string `json:"next_cursor"`
	}
	get := func(q string) doc {
		t.Helper()
		var d doc
		g.adminGet("/llm_gateway/usage?"+q, &d)
		var sum int64
		for _, r := range d.Rows {
			sum += r.CostNanoUSD
		}
		if d.NextCursor == "" && !strings.Contains(q, "cursor=") && sum != d.Total.CostNanoUSD {
			t.Errorf("%s: rows sum to %d, total %d", q, sum, d.Total.CostNanoUSD)
		}
		return d
	}

	all := get("group_by=key,model&order_by=requests")
	if len(all.Rows) != 3 || all.Rows[0].Key != "alice" || all.Rows[0].Model != "claude-sonnet-4-5" || all.Rows[0].Requests != 2 ||
		all.Rows[0].InputTokens != 2*mockInput || all.Total.Requests != 4 {
		t.Errorf("group_by=key,model: %+v", all)
	}
	if d := get("group_by=key,model&key=alice&model=claude-s*"); len(d.Rows) != 1 || d.Rows[0].Requests != 2 || d.Total.Requests != 2 {
		t.Errorf("filtered: %+v", d)
	}
	if d := get("group_by=label.project&label.project=apollo"); len(d.Rows) != 1 || d.Rows[0].Project != "apollo" ||
		d.Rows[0].Group != "apollo" || d.Rows[0].Requests != 3 {
		t.Errorf("by label: %+v", d)
	}
	today := time.Now().UTC().Format(time.DateOnly) // the gateway's timezone is UTC here
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if d := get("group_by=key,day&from=" + today + "&to=" + tomorrow); len(d.Rows) != 2 || d.Rows[0].Day != today || d.Total.Requests != 4 {
		t.Errorf("by day: %+v", d)
	}
	if d := get("group_by=day&from=" + tomorrow); len(d.Rows) != 0 || d.Total.Requests != 0 {
		t.Errorf("from tomorrow: %+v", d)
	}
	// Pages of one row cover every row once.
	var paged []string
	for q := "group_by=key,model&limit=1"; ; {
		d := get(q)
		for _, r := range d.Rows {
			paged = append(paged, r.Key+"/"+r.Model)
		}
		if d.NextCursor == "" {
			break
		}
		q = "group_by=key,model&limit=1&cursor=" + d.NextCursor
	}
	if len(paged) != 3 {
		t.Errorf("pages: %v", paged)
	}

	resp, err := http.Get(g.AdminURL + "/llm_gateway/usage?group_by=key,model&format=csv")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("csv Content-Type %q", resp.Header.Get("Content-Type"))
	}
	lines, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	must(t, err)
	if len(lines) != 4 || strings.Join(lines[0], ",") != "key,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_5m_tokens,cache_write_1h_tokens,web_search_requests,cost_usd,cost_nano_usd,cache_hits,saved_usd,saved_nano_usd" {
		t.Fatalf("csv:\n%s", body)
	}
	var csvSum int64
	for _, l := range lines[1:] {
		nano, err := strconv.ParseInt(l[10], 10, 64)
		must(t, err)
		csvSum += nano
		// cost_usd is the same amount as an exact 9-place decimal.
		if whole, frac, ok := strings.Cut(l[9], "."); !ok || len(frac) != 9 || strings.TrimLeft(whole+frac, "0") != strings.TrimLeft(l[10], "0") {
			t.Errorf("csv cost_usd %q for %q nano", l[9], l[10])
		}
	}
	if csvSum != all.Total.CostNanoUSD {
		t.Errorf("csv sums to %d, json total %d", csvSum, all.Total.CostNanoUSD)
	}

	resp, err = http.Get(g.AdminURL + "/llm_gateway/usage?group_by=key&kee=bob")
	must(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "kee") {
		t.Errorf("unknown parameter: %d %s", resp.StatusCode, body)
	}
}
