package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

const (
	aliceKey = "sk-llmgw-alice-virtual-key-ABCDEFGHIJ"
	bobKey   = "sk-llmgw-bob-virtual-key-KLMNOPQRST"
)

// mockCostSonnet is the canonical mock reply priced at claude-sonnet-4-5 list
// prices, by hand: 12×3 + 200×3.75 + 100×6 + 9000×0.30 + 42×15 = 4716 USD per
// million → $0.004716.
const mockCostSonnetNano = 4_716_000

func gatewayBlock(m *mockAnthropic, dbPath string, extra string) string {
	store := "store memory"
	if dbPath != "" {
		store = "store sqlite " + dbPath
	}
	return fmt.Sprintf(`%s
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
			models claude-* mystery-*
		}
		customer acme
		team platform {
			customer acme
		}
		key alice {
			secret %s
			team platform
		}
		key bob {
			secret_sha256 %s
			customer acme
			models claude-haiku-*
		}
		metrics_label project header X-Project max 2
		%s`, store, m.APIKey, m.URL(), aliceKey, sha256hex(bobKey), extra)
}

func newClient(g *gateway, prefix string, opts ...option.RequestOption) anthropic.Client {
	base := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(g.URL + prefix),
		option.WithMaxRetries(0),
	}
	return anthropic.NewClient(append(base, opts...)...)
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}
}

// TestAnthropicEndToEnd drives the official SDK through a real Caddy, plain
// and streaming, with both credential headers, with and without a path
// prefix, and checks the same exact cost everywhere it is reported.
func TestAnthropicEndToEnd(t *testing.T) {
	m := newMockAnthropic(t)
	db := t.TempDir() + "/usage.db"
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, db, "")})
	ctx := context.Background()
	before := g.metrics()

	// 1. Non-streaming, virtual key as x-api-key, with the /anthropic prefix.
	c := newClient(g, "/anthropic", option.WithAPIKey(aliceKey), option.WithHeader("X-Project", "apollo"),
		option.WithHeader("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"))
	msg, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5-20250929"))
	must(t, err)
	if msg.Usage.InputTokens != mockInput || msg.Usage.OutputTokens != mockOutput {
		t.Fatalf("client saw usage %+v", msg.Usage)
	}
	entry := g.waitLog()
	checkLogUsage(t, entry, "alice", "claude-sonnet-4-5", mockCostSonnetNano)

	// 2. Streaming, virtual key as Authorization: Bearer, no prefix.
	c2 := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Project", "apollo"))
	stream := c2.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
	var acc anthropic.Message
	var text strings.Builder
	for stream.Next() {
		ev := stream.Current()
		must(t, acc.Accumulate(ev))
		if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			text.WriteString(d.Delta.Text)
		}
	}
	must(t, stream.Err())
	if text.String() != mockText || acc.Usage.OutputTokens != mockOutput {
		t.Fatalf("stream text %q usage %+v", text.String(), acc.Usage)
	}
	entry = g.waitLog()
	checkLogUsage(t, entry, "alice", "claude-sonnet-4-5", mockCostSonnetNano)

	// The upstream saw the provider key, never the virtual key, and every
	// anthropic-* header and body field untouched.
	reqs := m.requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("X-Api-Key") != m.APIKey || r.Header.Get("Authorization") != "" {
			t.Errorf("upstream credentials: x-api-key=%q authorization=%q", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
		}
		if strings.Contains(fmt.Sprint(r.Header), aliceKey) || strings.Contains(string(r.Body), aliceKey) {
			t.Error("virtual key reached the upstream")
		}
		if r.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("upstream asked to compress: %q", r.Header.Get("Accept-Encoding"))
		}
	}
	if got := reqs[0].Header.Get("Anthropic-Beta"); got != "claude-code-20250219,interleaved-thinking-2025-05-14" {
		t.Errorf("anthropic-beta forwarded as %q", got)
	}
	if reqs[0].Path != "/v1/messages" {
		t.Errorf("upstream path %q", reqs[0].Path)
	}

	// Metrics, admin keys and the ledger agree to the nano-dollar.
	fams := g.metrics()
	labels := map[string]string{"key": "alice", "team": "platform", "customer": "acme", "provider": "anthropic", "model": "claude-sonnet-4-5", "project": "apollo"}
	if got := metricDelta(before, fams, "llm_gateway_requests_total", labels); got != 2 {
		t.Errorf("requests_total = %v", got)
	}
	// The cost counter is exact: 2 × 4,716,000 nano-dollars.
	if got := metricDelta(before, fams, "llm_gateway_cost_usd_total", labels); nanoUSD(got) != 2*mockCostSonnetNano {
		t.Errorf("cost_usd_total = %v", got)
	}
	for typ, want := range map[string]float64{"input": 2 * mockInput, "output": 2 * mockOutput, "cache_read": 2 * mockCacheRead, "cache_write_5m": 2 * mockCacheWrite5m, "cache_write_1h": 2 * mockCacheWrite1h} {
		l := map[string]string{"key": "alice", "project": "apollo", "type": typ}
		if got := metricDelta(before, fams, "llm_gateway_tokens_total", l); got != want {
			t.Errorf("tokens_total{type=%s} = %v, want %v", typ, got, want)
		}
	}
	for _, h := range []string{"llm_gateway_upstream_latency_seconds", "llm_gateway_time_to_first_token_seconds", "llm_gateway_overhead_seconds"} {
		if got := metricDelta(before, fams, h, map[string]string{"provider": "anthropic", "model": "claude-sonnet-4-5"}); got != 2 {
			t.Errorf("%s count = %v", h, got)
		}
	}
	keys := adminKeys(g)
	if k := keys["alice"]; k.Spend.CostNanoUSD != 2*mockCostSonnetNano || k.Spend.Requests != 2 || k.Team != "platform" || k.Customer != "acme" {
		t.Errorf("admin alice = %+v", k)
	}
	usage := adminUsage(g, "key")
	if row := usage["alice"]; row.CostNanoUSD != 2*mockCostSonnetNano || row.InputTokens != 2*mockInput || row.CacheWrite1hTokens != 2*mockCacheWrite1h {
		t.Errorf("usage report alice = %+v", row)
	}
	if row := adminUsage(g, "customer")["acme"]; row.CostNanoUSD != 2*mockCostSonnetNano {
		t.Errorf("usage report acme = %+v", row)
	}
	if row := adminUsage(g, "model")["claude-sonnet-4-5"]; row.Requests != 2 {
		t.Errorf("usage report by model = %+v", row)
	}

	// Nothing secret anywhere.
	assertNoSecrets(t, g, m)
}

func checkLogUsage(t *testing.T, e map[string]any, key, model string, costNano int64) {
	t.Helper()
	if e["llm.key"] != key || e["llm.model"] != model || e["llm.provider"] != "anthropic" {
		t.Errorf("log attribution: key=%v model=%v provider=%v", e["llm.key"], e["llm.model"], e["llm.provider"])
	}
	if num(e, "llm.input_tokens") != mockInput || num(e, "llm.output_tokens") != mockOutput ||
		num(e, "llm.cache_read_tokens") != mockCacheRead || num(e, "llm.cache_write_5m_tokens") != mockCacheWrite5m ||
		num(e, "llm.cache_write_1h_tokens") != mockCacheWrite1h {
		t.Errorf("log tokens: %v", e)
	}
	if int64(num(e, "llm.cost_nano_usd")) != costNano || num(e, "llm.cost_usd") != float64(costNano)/1e9 {
		t.Errorf("log cost: %v / %v, want %d nano", e["llm.cost_usd"], e["llm.cost_nano_usd"], costNano)
	}
}

func assertNoSecrets(t *testing.T, g *gateway, m *mockAnthropic) {
	t.Helper()
	logs, metrics := g.allLogText(), g.metricsText()
	var keysDoc, cfg map[string]any
	g.adminGet("/llm_gateway/keys", &keysDoc)
	_ = cfg
	adminText := fmt.Sprint(keysDoc)
	for _, secret := range []string{aliceKey, bobKey, m.APIKey} {
		for where, text := range map[string]string{"access log": logs, "metrics": metrics, "admin keys": adminText} {
			if strings.Contains(text, secret) {
				t.Errorf("secret %.12s… appears in the %s", secret, where)
				for _, l := range strings.Split(text, "\n") {
					if strings.Contains(l, secret) {
						t.Log(l[:min(len(l), 600)])
					}
				}
			}
		}
	}
}

// TestAnthropicClaudeCodeShape sends what Claude Code sends: ?beta=true, the
// beta header list, the session header, unknown body fields, HEAD probes.
func TestAnthropicClaudeCodeShape(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/u.db", "")})

	resp, _ := g.doRaw("HEAD", "/anthropic/api/hello", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD probe: %d", resp.StatusCode)
	}
	g.waitLog()
	body := `{"model":"claude-sonnet-4-5-20250929","max_tokens":32000,"stream":true,"thinking":{"type":"enabled","budget_tokens":31999},"context_management":{"edits":[]},"metadata":{"user_id":"{\"device_id\":\"d1\",\"session_id\":\"s1\"}"},"messages":[{"role":"user","content":"hi"}],"future_field":{"x":[1,2,3]}}`
	resp, out := g.doRaw("POST", "/anthropic/v1/messages?beta=true", map[string]string{
		"Authorization":            "Bearer " + aliceKey,
		"anthropic-version":        "2023-06-01",
		"anthropic-beta":           "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
		"X-Claude-Code-Session-Id": "0b5c2f6e-session",
		"User-Agent":               "claude-cli/2.1.3 (external, cli)",
		"x-app":                    "cli",
		"Content-Type":             "application/json",
	}, body)
	if resp.StatusCode != 200 || !strings.Contains(out, "event: message_stop") || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s\n%s", resp.StatusCode, resp.Header, out)
	}
	if resp.Header.Get("Request-Id") != "req_mock_1" {
		t.Errorf("request-id not forwarded: %v", resp.Header)
	}
	e := g.waitLog()
	checkLogUsage(t, e, "alice", "claude-sonnet-4-5", mockCostSonnetNano)
	r := m.requests()[0]
	if r.RawQuery != "beta=true" || string(r.Body) != body || r.Header.Get("X-Claude-Code-Session-Id") != "0b5c2f6e-session" ||
		r.Header.Get("Anthropic-Beta") != "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27" ||
		r.Header.Get("User-Agent") != "claude-cli/2.1.3 (external, cli)" || r.Header.Get("X-App") != "cli" {
		t.Errorf("upstream request altered: query=%q headers=%v body equal=%v", r.RawQuery, r.Header, string(r.Body) == body)
	}
	var sessions struct {
		Rows []struct {
			Group string `json:"group"`
		} `json:"rows"`
	}
	g.adminGet("/llm_gateway/usage?group_by=key", &sessions)
	if len(sessions.Rows) != 1 {
		t.Errorf("usage rows %+v", sessions.Rows)
	}
}

// TestAnthropicCutAndAbandonedStreams: a stream the upstream cuts, one that
// ends in an error event, and one the client abandons are all charged for
// what passed, never zero.
func TestAnthropicCutAndAbandonedStreams(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	ctx := context.Background()
	c := newClient(g, "", option.WithAuthToken(aliceKey))

	// Three deltas pass before each failure: "Hello from the " = 15 bytes → ceil(15/4) = 4 output tokens.
	const passedOutput = 4
	// 12×3 + 200×3.75 + 100×6 + 9000×0.30 + 4×15 = 4146 → $0.004146.
	const cutCost = 4_146_000

	for _, scenario := range []string{"cut", "error-event"} {
		t.Run(scenario, func(t *testing.T) {
			stream := c.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", scenario))
			for stream.Next() {
			}
			if stream.Err() == nil {
				t.Errorf("client saw no error")
			}
			e := g.waitLog()
			if num(e, "llm.input_tokens") != mockInput || num(e, "llm.output_tokens") != passedOutput || int64(num(e, "llm.cost_nano_usd")) != cutCost {
				t.Errorf("charged %v", e)
			}
			if e["llm.complete"] != false || e["llm.output_estimated"] != true {
				t.Errorf("flags: complete=%v estimated=%v", e["llm.complete"], e["llm.output_estimated"])
			}
			if scenario == "error-event" && e["llm.error_type"] != "overloaded_error" {
				t.Errorf("error type %v", e["llm.error_type"])
			}
		})
	}

	t.Run("client gone", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream := c.Messages.NewStreaming(cctx, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "hang"))
		deltas := 0
		for stream.Next() {
			if _, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				deltas++
				if deltas == 3 {
					cancel()
				}
			}
		}
		<-m.hangDone // the upstream saw the cancellation propagate
		e := g.waitLog()
		if num(e, "llm.input_tokens") != mockInput || num(e, "llm.output_tokens") != passedOutput || int64(num(e, "llm.cost_nano_usd")) != cutCost {
			t.Errorf("charged %v", e)
		}
		if e["llm.client_gone"] != true {
			t.Errorf("client_gone not logged: %v", e)
		}
	})
}

// TestAnthropicErrors covers every refusal and upstream error.
func TestAnthropicErrors(t *testing.T) {
	m := newMockAnthropic(t)
	dead := freePort(t)
	extra := fmt.Sprintf(`provider deadend {
			type anthropic
			api_key k
			base_url http://127.0.0.1:%d
			models deadend-*
		}
		max_request_body 4KB`, dead)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", extra)})
	auth := map[string]string{"x-api-key": aliceKey, "content-type": "application/json", "anthropic-version": "2023-06-01"}
	bobAuth := map[string]string{"x-api-key": bobKey, "content-type": "application/json"}
	ok := `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantType   string
		wantMsg    string
		logged     bool // attributed to a key in the access log
	}{
		{"missing key", "POST", "/v1/messages", map[string]string{"content-type": "application/json"}, ok, 401, "authentication_error", "virtual key", false},
		{"unknown key", "POST", "/v1/messages", map[string]string{"x-api-key": "sk-nope"}, ok, 401, "authentication_error", "virtual key", false},
		{"model not allowed", "POST", "/v1/messages", bobAuth, ok, 403, "permission_error", "may not use model claude-sonnet-4-5", true},
		{"malformed json", "POST", "/v1/messages", auth, `{"model":`, 400, "invalid_request_error", "malformed JSON", true},
		{"missing model", "POST", "/v1/messages", auth, `{"max_tokens":10}`, 400, "invalid_request_error", "model: field required", true},
		{"too large", "POST", "/v1/messages", auth, `{"model":"claude-sonnet-4-5","pad":"` + strings.Repeat("x", 5000) + `"}`, 413, "request_too_large", "exceeds", true},
		{"no provider", "POST", "/v1/messages", auth, `{"model":"gpt-4o","max_tokens":10}`, 404, "not_found_error", "no provider serves model gpt-4o", true},
		{"unreachable", "POST", "/v1/messages", auth, `{"model":"deadend-1","max_tokens":10}`, 502, "api_error", "provider deadend unreachable (request id ", true},
		{"unknown path", "POST", "/v1/complete", auth, ok, 404, "not_found_error", "not an API", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.doRaw(tc.method, tc.path, tc.header, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			want := fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":`, tc.wantType)
			if !strings.HasPrefix(body, want) || !strings.Contains(body, tc.wantMsg) {
				t.Errorf("body %s, want type %s and %q", body, tc.wantType, tc.wantMsg)
			}
			if strings.Contains(body, m.APIKey) || strings.Contains(body, aliceKey) {
				t.Error("secret in error body")
			}
			e := g.waitLog()
			if req, _ := e["request"].(map[string]any); req["uri"] != tc.path {
				t.Errorf("log line for %v", req["uri"])
			}
			if tc.logged && e["llm.key"] == nil {
				t.Errorf("refusal not attributed: %v", e)
			}
		})
	}
	if m.count() != 0 {
		t.Errorf("refused requests reached the upstream: %d", m.count())
	}

	// Upstream errors pass through byte for byte, status and headers intact.
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	for _, tc := range []struct {
		scenario string
		status   int
		typ      string
	}{{"status-429", 429, "rate_limit_error"}, {"status-529", 529, "overloaded_error"}, {"status-400", 400, "invalid_request_error"}} {
		_, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", tc.scenario))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || !strings.Contains(apiErr.RawJSON(), tc.typ) || !strings.Contains(apiErr.RawJSON(), "req_mock_error") {
			t.Errorf("%s: err = %v", tc.scenario, err)
		}
		if tc.status == 429 && apiErr != nil && apiErr.Response.Header.Get("Retry-After") != "7" {
			t.Errorf("retry-after not forwarded")
		}
		e := g.waitLog()
		if num(e, "status") != float64(tc.status) || int64(num(e, "llm.cost_nano_usd")) != 0 {
			t.Errorf("%s logged %v", tc.scenario, e)
		}
	}
	assertNoSecrets(t, g, m)
}

// TestAnthropicCountTokensAndModels: attributed, free.
func TestAnthropicCountTokensAndModels(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	ctx := context.Background()
	c := newClient(g, "/anthropic", option.WithAPIKey(aliceKey))
	before := g.metrics()

	n, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model:    anthropic.Model("claude-sonnet-4-5"),
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	must(t, err)
	if n.InputTokens != mockCountedTokens {
		t.Fatalf("count_tokens = %d", n.InputTokens)
	}
	e := g.waitLog()
	if e["llm.key"] != "alice" || int64(num(e, "llm.cost_nano_usd")) != 0 || num(e, "llm.input_tokens") != 0 || e["llm.surface"] != "anthropic.count_tokens" {
		t.Errorf("count_tokens logged %v", e)
	}

	page, err := c.Models.List(ctx, anthropic.ModelListParams{})
	must(t, err)
	ids := map[string]bool{}
	for _, mi := range page.Data {
		ids[mi.ID] = true
	}
	if !ids["claude-sonnet-4-5"] || !ids["claude-haiku-4-5"] || ids["gpt-4o"] {
		t.Errorf("alice's models: %v", ids)
	}
	g.waitLog()
	bob := newClient(g, "", option.WithAPIKey(bobKey))
	page, err = bob.Models.List(ctx, anthropic.ModelListParams{})
	must(t, err)
	for _, mi := range page.Data {
		if !strings.HasPrefix(mi.ID, "claude-haiku-") {
			t.Errorf("bob may not use %s", mi.ID)
		}
	}
	g.waitLog()
	mi, err := c.Models.Get(ctx, "claude-sonnet-4-5-20250929", anthropic.ModelGetParams{})
	must(t, err)
	if mi.ID != "claude-sonnet-4-5" || mi.DisplayName != "Claude Sonnet 4.5" {
		t.Errorf("model get %+v", mi)
	}
	g.waitLog()
	_, err = bob.Models.Get(ctx, "claude-sonnet-4-5", anthropic.ModelGetParams{})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Errorf("bob get sonnet: %v", err)
	}
	g.waitLog()
	fams := g.metrics()
	if got := metricDelta(before, fams, "llm_gateway_requests_total", map[string]string{"key": "alice"}); got != 3 {
		t.Errorf("alice requests = %v", got)
	}
	if got := metricDelta(before, fams, "llm_gateway_cost_usd_total", map[string]string{"key": "alice"}); got != 0 {
		t.Errorf("alice cost = %v", got)
	}
	if m.count() != 1 {
		t.Errorf("upstream calls = %d (only count_tokens goes upstream)", m.count())
	}
}

// TestUnpricedModel: forwarded, counted in tokens, charged zero, counted as
// unpriced, warned about once.
func TestUnpricedModel(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	before := g.metrics()
	for range 2 {
		_, err := c.Messages.New(context.Background(), messageParams("mystery-model-7"))
		must(t, err)
		e := g.waitLog()
		if num(e, "llm.input_tokens") != mockInput || num(e, "llm.cost_nano_usd") != 0 {
			t.Errorf("unpriced logged %v", e)
		}
	}
	fams := g.metrics()
	if got := metricDelta(before, fams, "llm_gateway_unpriced_requests_total", map[string]string{"model": "mystery-model-7"}); got != 2 {
		t.Errorf("unpriced = %v", got)
	}
	if got := metricDelta(before, fams, "llm_gateway_tokens_total", map[string]string{"model": "mystery-model-7", "type": "output"}); got != 2*mockOutput {
		t.Errorf("unpriced tokens = %v", got)
	}
}

// TestMetricsLabelCap: header values past the cap collapse into "_other".
func TestMetricsLabelCap(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	for _, p := range []string{"cap-a", "cap-b", "cap-c", "cap-d"} {
		_, err := c.Messages.New(context.Background(), messageParams("claude-haiku-4-5"), option.WithHeader("X-Project", p))
		must(t, err)
		g.waitLog()
	}
	fams := g.metrics()
	seen := map[string]float64{}
	for _, mf := range fams["llm_gateway_requests_total"].GetMetric() {
		var model, project string
		for _, lp := range mf.Label {
			switch lp.GetName() {
			case "model":
				model = lp.GetValue()
			case "project":
				project = lp.GetValue()
			}
		}
		if model == "claude-haiku-4-5" {
			seen[project] += mf.Counter.GetValue()
		}
	}
	// The cap (2) is process-wide: earlier tests may have used values already.
	if seen["_other"] < 2 || len(seen) > 3 {
		t.Errorf("label values %v", seen)
	}
}
