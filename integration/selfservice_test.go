package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
	oai "github.com/openai/openai-go/v3"
	oaiopt "github.com/openai/openai-go/v3/option"
)

// selfServiceBlock: alice ($5/day) in team platform ($1000/month) and an
// expensive sonnet price, so the "small" reply (10 in, 20 out) costs $0.30.
func selfServiceBlock(m *mockAnthropic, extra string) string {
	return budgetBlock(m, "store memory", "budget 5 usd per day", "budget 1000 usd per month") + `
		price claude-sonnet-4-5 input 10000 output 10000
		` + extra
}

const smallCostExpensiveNano = 300_000_000 // 30 tokens × $10000 per million

// meDoc is the part of GET …/llm_gateway/me the tests read.
type meDoc struct {
	Key      string `json:"key"`
	Team     string `json:"team"`
	Customer string `json:"customer"`
	Budgets  []struct {
		Scope            string `json:"scope"`
		Name             string `json:"name"`
		Period           string `json:"period"`
		LimitNanoUSD     int64  `json:"limit_nano_usd"`
		SpentNanoUSD     int64  `json:"spent_nano_usd"`
		ReservedNanoUSD  int64  `json:"reserved_nano_usd"`
		RemainingNanoUSD int64  `json:"remaining_nano_usd"`
		ResetsAt         string `json:"resets_at"`
	} `json:"budgets"`
	Spend map[string]struct {
		Requests    int64 `json:"requests"`
		CostNanoUSD int64 `json:"cost_nano_usd"`
		ByModel     []struct {
			Model       string `json:"model"`
			Requests    int64  `json:"requests"`
			CostNanoUSD int64  `json:"cost_nano_usd"`
		} `json:"by_model"`
	} `json:"spend"`
	Session *struct {
		ID          string `json:"id"`
		Requests    int64  `json:"requests"`
		CostNanoUSD int64  `json:"cost_nano_usd"`
	} `json:"session"`
	Line string `json:"line"`
}

// TestSelfServiceMe: a developer's own view through a real Caddy — JSON and
// the one-line form, under any prefix, with the session figure — answered
// by the gateway itself (never forwarded, never ledgered), 401 in the
// surface's shape for a bad key; and the per-request cost header on
// non-streamed responses from both SDKs (none on streams).
func TestSelfServiceMe(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: selfServiceBlock(m, "")})
	ctx := context.Background()
	c := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))

	// Non-streamed, in session s1: the cost header is exact.
	var raw *http.Response
	_, err := c.Messages.New(ctx, smallParams(100), option.WithHeader("X-Claude-Code-Session-Id", "s1"), option.WithResponseInto(&raw))
	must(t, err)
	if got := raw.Header.Get("X-Llm-Gateway-Cost-Usd"); got != "0.300000000" {
		t.Errorf("x-llm-gateway-cost-usd = %q, want 0.300000000", got)
	}
	// Streamed, outside the session: no cost header (its headers left
	// before its usage was known).
	stream := c.Messages.NewStreaming(ctx, smallParams(100), option.WithResponseInto(&raw))
	for stream.Next() {
	}
	must(t, stream.Err())
	if got := raw.Header.Get("X-Llm-Gateway-Cost-Usd"); got != "" {
		t.Errorf("a stream carries x-llm-gateway-cost-usd %q", got)
	}
	upstream := m.count()

	get := func(path string, h map[string]string) (*http.Response, string) {
		t.Helper()
		return g.doRaw("GET", path, h, "")
	}
	auth := map[string]string{"Authorization": "Bearer " + aliceKey, "X-Claude-Code-Session-Id": "s1"}
	resp, body := get("/llm_gateway/me", auth)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /llm_gateway/me: %d %s", resp.StatusCode, body)
	}
	var me meDoc
	must(t, json.Unmarshal([]byte(body), &me))
	if me.Key != "alice" || me.Team != "platform" || me.Customer != "" {
		t.Errorf("path: %+v", me)
	}
	if len(me.Budgets) != 2 {
		t.Fatalf("budgets: %+v", me.Budgets)
	}
	day, month := me.Budgets[0], me.Budgets[1]
	if day.Scope != "key" || day.Name != "alice" || day.Period != "day" || day.LimitNanoUSD != 5e9 ||
		day.SpentNanoUSD != 2*smallCostExpensiveNano || day.ReservedNanoUSD != 0 || day.RemainingNanoUSD != 5e9-2*smallCostExpensiveNano || day.ResetsAt == "" {
		t.Errorf("key budget: %+v", day)
	}
	if month.Scope != "team" || month.Name != "platform" || month.Period != "month" || month.SpentNanoUSD != 2*smallCostExpensiveNano {
		t.Errorf("team budget: %+v", month)
	}
	for _, p := range []string{"day", "month"} {
		s, ok := me.Spend[p]
		if !ok || s.Requests != 2 || s.CostNanoUSD != 2*smallCostExpensiveNano || len(s.ByModel) != 1 ||
			s.ByModel[0].Model != "claude-sonnet-4-5" || s.ByModel[0].CostNanoUSD != 2*smallCostExpensiveNano {
			t.Errorf("spend %s: %+v", p, s)
		}
	}
	if me.Session == nil || me.Session.ID != "s1" || me.Session.Requests != 1 || me.Session.CostNanoUSD != smallCostExpensiveNano {
		t.Errorf("session: %+v", me.Session)
	}
	const line = "alice · today $0.60 · $4.40 left of $5/day · session $0.30"
	if me.Line != line {
		t.Errorf("line = %q, want %q", me.Line, line)
	}
	assertNoSecretsText(t, g, body)

	// The one-line form, under prefixes, with x-api-key too.
	for _, path := range []string{"/llm_gateway/me?format=text", "/anthropic/llm_gateway/me?format=text", "/a/b/llm_gateway/me?format=text"} {
		resp, body := get(path, map[string]string{"X-Api-Key": aliceKey, "X-Claude-Code-Session-Id": "s1"})
		if resp.StatusCode != 200 || body != line+"\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	// Without a session: no session part.
	if _, body := get("/llm_gateway/me?format=text", map[string]string{"X-Api-Key": aliceKey}); body != "alice · today $0.60 · $4.40 left of $5/day\n" {
		t.Errorf("no session: %q", body)
	}
	// Another key cannot read alice's session.
	if _, body := get("/llm_gateway/me?format=text", map[string]string{"X-Api-Key": bobKey, "X-Claude-Code-Session-Id": "s1"}); !strings.HasPrefix(body, "bob · today $0.00") || !strings.HasSuffix(body, "session $0.00\n") {
		t.Errorf("bob: %q", body)
	}

	// A wrong or missing key: 401 in the surface's error shape.
	for _, c := range []struct{ path, wantType string }{
		{"/llm_gateway/me", `"type":"error"`},
		{"/openai/llm_gateway/me", `"code":`},
	} {
		for _, h := range []map[string]string{{"Authorization": "Bearer sk-wrong"}, {}} {
			resp, body := get(c.path, h)
			if resp.StatusCode != 401 || !strings.Contains(body, c.wantType) || strings.Contains(body, "alice") {
				t.Errorf("%s with %v: %d %s", c.path, h, resp.StatusCode, body)
			}
		}
	}
	if resp, body := get("/llm_gateway/me?format=xml", auth); resp.StatusCode != 400 {
		t.Errorf("format=xml: %d %s", resp.StatusCode, body)
	}
	if resp, _ := g.doRaw("POST", "/llm_gateway/me", auth, "{}"); resp.StatusCode != 404 {
		t.Errorf("POST /llm_gateway/me: %d", resp.StatusCode)
	}
	if n := m.count(); n != upstream {
		t.Errorf("llm_gateway/me reached the upstream: %d requests, want %d", n, upstream)
	}
	// Not ledgered: the usage report still counts two requests.
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
		} `json:"total"`
	}
	g.adminGet("/llm_gateway/usage?group_by=key", &rep)
	if rep.Total.Requests != 2 {
		t.Errorf("ledger holds %d requests, want 2 (llm_gateway/me is not ledgered)", rep.Total.Requests)
	}
}

// TestCostHeaderOpenAI: the OpenAI SDK sees the exact cost of a
// non-streamed chat completion and of embeddings in the header.
func TestCostHeaderOpenAI(t *testing.T) {
	m := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: openAIBlock(m, "")})
	c := openAIClient(g)
	var raw *http.Response
	_, err := c.Chat.Completions.New(context.Background(), oai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
	}, oaiopt.WithResponseInto(&raw))
	must(t, err)
	if got := raw.Header.Get("X-Llm-Gateway-Cost-Usd"); got != "0.004750000" {
		t.Errorf("chat: x-llm-gateway-cost-usd = %q, want 0.004750000", got)
	}
	_, err = c.Embeddings.New(context.Background(), oai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: oai.EmbeddingNewParamsInputUnion{OfString: oai.String("hi")},
	}, oaiopt.WithResponseInto(&raw))
	must(t, err)
	if got := raw.Header.Get("X-Llm-Gateway-Cost-Usd"); got != "0.000000160" {
		t.Errorf("embeddings: x-llm-gateway-cost-usd = %q, want 0.000000160", got)
	}
}

// TestStatusLineScript runs caddyfile-examples/statusline.sh with sh
// against a live gateway, with the JSON Claude Code passes on stdin, and
// checks the line it prints.
func TestStatusLineScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required: the status-line script uses it")
	}
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: selfServiceBlock(m, "")})
	c := newClient(g, "/anthropic", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"),
		option.WithHeader("X-Claude-Code-Session-Id", "5f1c2a44-9a7e-4b7e-8f4e-3c2d1b0a9f8e"))
	_, err := c.Messages.New(context.Background(), smallParams(100))
	must(t, err)

	// What Claude Code passes to a status-line command (its documented
	// fields, pretty-printed as it may be).
	stdin := `{
  "hook_event_name": "Status",
  "session_id": "5f1c2a44-9a7e-4b7e-8f4e-3c2d1b0a9f8e",
  "transcript_path": "/home/alice/.claude/projects/x/5f1c2a44.jsonl",
  "cwd": "/home/alice/src/app",
  "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
  "workspace": {"current_dir": "/home/alice/src/app", "project_dir": "/home/alice/src/app"},
  "version": "2.1.3",
  "output_style": {"name": "default"},
  "cost": {"total_cost_usd": 0.3, "total_duration_ms": 4200, "total_api_duration_ms": 900, "total_lines_added": 3, "total_lines_removed": 1}
}`
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command("sh", "../caddyfile-examples/statusline.sh")
		cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("statusline.sh: %v (%s)", err, out)
		}
		return string(out)
	}
	want := "alice · today $0.30 · $4.70 left of $5/day · session $0.30\n"
	if got := run("ANTHROPIC_BASE_URL="+g.URL+"/anthropic", "ANTHROPIC_AUTH_TOKEN="+aliceKey); got != want {
		t.Errorf("statusline.sh printed %q, want %q", got, want)
	}
	// ANTHROPIC_API_KEY works too, and a trailing slash on the base URL.
	if got := run("ANTHROPIC_BASE_URL="+g.URL+"/", "ANTHROPIC_API_KEY="+aliceKey); got != want {
		t.Errorf("statusline.sh (x-api-key) printed %q, want %q", got, want)
	}
	// A wrong key, or no gateway, prints a short line, not an error page.
	if got := run("ANTHROPIC_BASE_URL="+g.URL, "ANTHROPIC_AUTH_TOKEN=sk-wrong"); got != "llm_gateway: key not accepted (401)\n" {
		t.Errorf("wrong key: %q", got)
	}
	down := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	if got := run("ANTHROPIC_BASE_URL="+down, "ANTHROPIC_AUTH_TOKEN="+aliceKey); got != "llm_gateway: no answer from "+down+"\n" {
		t.Errorf("no gateway: %q", got)
	}
	if got := run(); !strings.HasPrefix(got, "llm_gateway: set ANTHROPIC_BASE_URL") {
		t.Errorf("no environment: %q", got)
	}
}

// TestMeWithLiveKey: a key created through the admin API answers at
// …/llm_gateway/me like a Caddyfile key (authenticated the same way), and
// once revoked gets 401 there too.
func TestMeWithLiveKey(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: budgetBlock(m, "store sqlite "+t.TempDir()+"/u.db", "", "")})
	resp, err := http.Post(g.AdminURL+"/llm_gateway/keys", "application/json",
		strings.NewReader(`{"name": "dora", "team": "platform", "budgets": [{"usd": "5", "period": "day"}]}`))
	must(t, err)
	var created struct {
		Secret string `json:"secret"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.Secret == "" {
		t.Fatalf("creating a live key: %d %+v", resp.StatusCode, created)
	}
	r, body := g.doRaw("GET", "/llm_gateway/me?format=text", map[string]string{"Authorization": "Bearer " + created.Secret}, "")
	if r.StatusCode != 200 || body != "dora · today $0.00 · $5.00 left of $5/day\n" {
		t.Errorf("live key at llm_gateway/me: %d %q", r.StatusCode, body)
	}
	req, _ := http.NewRequest("DELETE", g.AdminURL+"/llm_gateway/keys/dora", nil)
	resp, err = http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if r, body := g.doRaw("GET", "/llm_gateway/me?format=text", map[string]string{"Authorization": "Bearer " + created.Secret}, ""); r.StatusCode != 401 {
		t.Errorf("revoked live key at llm_gateway/me: %d %q", r.StatusCode, body)
	}
}
