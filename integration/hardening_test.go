package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	oai "github.com/openai/openai-go/v3"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// randomBytes is n bytes a client can put in a header value: anything but
// control characters (Go's client refuses those), invalid UTF-8 included.
func randomBytes(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		for {
			c := byte(rng.IntN(256))
			if c >= 0x20 && c != 0x7f {
				b[i] = c
				break
			}
		}
	}
	return string(b)
}

// TestHostileStringsKeepMetricsUp: random bytes in every client-controlled
// field (model, path model, metrics_label header, session id, versions,
// beta flags, query) never make /metrics fail, and every request gets an
// answer and a log line. A metrics_label value of 127 ASCII bytes and an
// "é" is cut before the "é", not inside it.
func TestHostileStringsKeepMetricsUp(t *testing.T) {
	m := newMockAnthropic(t)
	// Few requests invent a model name the label keeps: the label sets are
	// process-wide, and other tests expect room for their own names.
	block := gatewayBlock(m, "", "")
	g := startGateway(t, gatewayOptions{Block: block})
	rng := rand.New(rand.NewPCG(7, 11))
	answered := 0
	send := func(method, path string, header map[string]string, body string) {
		t.Helper()
		header["X-Api-Key"] = aliceKey
		resp, _ := g.doRaw(method, path, header, body)
		if resp.StatusCode == 0 || resp.Header.Get("X-Llm-Gateway-Request-Id") == "" {
			t.Fatalf("%s %s: no answer", method, path)
		}
		answered++
		g.waitLog()
	}
	for i := range 12 {
		junk := randomBytes(rng, 1+rng.IntN(160))
		model, _ := json.Marshal("claude-x-" + junk) // valid JSON: invalid UTF-8 becomes U+FFFD
		h := map[string]string{
			"X-Project":                junk,
			"X-Claude-Code-Session-Id": junk,
			"Anthropic-Version":        junk,
			"Anthropic-Beta":           junk,
			"User-Agent":               junk,
			"X-Mock-Scenario":          "small",
		}
		switch i % 4 {
		case 0: // raw bytes straight in the JSON string
			send("POST", "/v1/messages?q="+url.QueryEscape(junk), h, `{"model":"claude-x-`+strings.ReplaceAll(strings.ReplaceAll(junk, `\`, ``), `"`, ``)+`","max_tokens":10,"messages":[]}`)
		case 1: // a model an allow-list glob admits, sent upstream
			send("POST", "/v1/messages", h, `{"model":`+string(model)+`,"max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		case 2:
			send("GET", "/v1/models/"+url.PathEscape("claude-"+junk), h, "")
		case 3:
			send("POST", "/bedrock/model/"+url.PathEscape(junk)+"/invoke", h, `{"max_tokens":10}`)
		}
	}
	// Cut inside a rune at 128 bytes: "é" starts at byte 127.
	cut := strings.Repeat("p", 127) + "é"
	cc := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Project", cut), option.WithHeader("X-Mock-Scenario", "small"))
	_, err := cc.Messages.New(context.Background(), smallParams(10))
	must(t, err)
	g.waitLog()

	check := func(when string) {
		t.Helper()
		resp, err := http.Get(g.AdminURL + "/metrics")
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: /metrics answered %d", when, resp.StatusCode)
		}
		fams := g.metrics() // parses with UTF-8 validation
		if fams["llm_gateway_requests_total"] == nil {
			t.Fatalf("%s: no requests metric", when)
		}
	}
	check("after hostile requests")
	// Label names are fixed by the process's first config: the project
	// label exists when an earlier test of this process configured it too.
	fams := g.metrics()
	hasProject := false
	for _, mf := range fams["llm_gateway_requests_total"].GetMetric() {
		for _, lp := range mf.Label {
			hasProject = hasProject || lp.GetName() == "project"
		}
	}
	if hasProject && metricValue(fams, "llm_gateway_requests_total", map[string]string{"project": strings.Repeat("p", 127)}) < 1 &&
		metricValue(fams, "llm_gateway_requests_total", map[string]string{"project": OtherLabel}) < 1 {
		t.Error("the 127-byte project value is neither kept (cut before é) nor _other")
	}
	g.load(gatewayOptions{Block: block})
	check("after a reload")
	if rows := adminUsage(g, "key")["alice"]; rows.Requests < int64(answered) {
		t.Errorf("ledger has %d requests of alice, %d were answered", rows.Requests, answered)
	}
}

// TestModelLabelBounded: invented model names are kept up to
// model_label_cap and then counted as _other; models the configuration
// names (a price row, an alias, a model line) keep their names whatever
// the cap; the ledger keeps every real name.
func TestModelLabelBounded(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		model_label_cap 3
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
			models claude-* house-* local-* bounded-*
		}
		alias speedy local-speedy-hb
		price house-llm-hb input 1 output 1
		price bounded-glob-* input 1 output 1
		key alice {
			secret %s
		}`, m.APIKey, m.URL(), aliceKey)})
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	invented := []string{"bounded-x-1", "bounded-x-2", "bounded-x-3", "bounded-x-4", "bounded-x-5", "bounded-glob-1"}
	for _, model := range append([]string{"claude-sonnet-4-5", "house-llm-hb", "speedy"}, invented...) {
		_, err := c.Messages.New(context.Background(), messageParams(model))
		must(t, err)
		g.waitLog()
	}
	labelled := map[string]float64{}
	for _, mf := range g.metrics()["llm_gateway_requests_total"].GetMetric() {
		var key, model string
		for _, lp := range mf.Label {
			switch lp.GetName() {
			case "key":
				key = lp.GetValue()
			case "model":
				model = lp.GetValue()
			}
		}
		if key == "alice" {
			labelled[model] += mf.Counter.GetValue()
		}
	}
	for _, named := range []string{"claude-sonnet-4-5", "house-llm-hb", "local-speedy-hb"} {
		if labelled[named] < 1 {
			t.Errorf("named model %s lost its label: %v", named, labelled)
		}
	}
	kept := 0
	for _, model := range invented {
		if labelled[model] > 0 {
			kept++
		}
	}
	// The cap is process-wide (series outlive reloads): earlier tests may
	// have used some of it, so at most 3 invented names are kept, and the
	// rest are _other. A glob price row does not name bounded-glob-1.
	if kept > 3 || labelled[OtherLabel] < float64(len(invented)-kept) {
		t.Errorf("invented names kept %d (cap 3): %v", kept, labelled)
	}
	ledger := adminUsage(g, "model")
	for _, model := range invented {
		if ledger[model].Requests != 1 {
			t.Errorf("ledger lost model %s: %v", model, ledger)
		}
	}
}

// OtherLabel is the module's OtherLabelValue.
const OtherLabel = "_other"

// TestUnpricedModelRefusedOnBudgetPath: a key with a budget cannot spend
// without limit on a model the table does not price: the default refuses,
// naming the price line to add; `unpriced allow` forwards (charged 0);
// `unpriced refuse` refuses keys without budgets too.
func TestUnpricedModelRefusedOnBudgetPath(t *testing.T) {
	m := newMockAnthropic(t)
	block := func(extra string) string {
		return budgetBlock(m, "store memory\n"+extra, "budget 1 usd per day", "")
	}
	g := startGateway(t, gatewayOptions{Block: block("")})
	ctx := context.Background()
	alice := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	bob := newClient(g, "", option.WithAPIKey(bobKey), option.WithHeader("X-Mock-Scenario", "small"))
	const model = "claude-unpriced-hb-9"
	refused := func(c anthropic.Client, who string) {
		t.Helper()
		_, err := c.Messages.New(ctx, withModel(smallParams(10), model))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || !strings.Contains(apiErr.RawJSON(), `"permission_error"`) ||
			!strings.Contains(apiErr.RawJSON(), "model "+model+" has no price") || !strings.Contains(apiErr.RawJSON(), "price "+model+" input") {
			t.Fatalf("%s: %v", who, err)
		}
		if e := g.waitLog(); e["llm.rejection"] != "unpriced" || e["llm.model"] != model {
			t.Errorf("%s logged %v", who, e)
		}
	}
	served := func(c anthropic.Client, who string) {
		t.Helper()
		_, err := c.Messages.New(ctx, withModel(smallParams(10), model))
		must(t, err)
		if e := g.waitLog(); num(e, "llm.cost_nano_usd") != 0 || num(e, "llm.output_tokens") != smallOutput {
			t.Errorf("%s logged %v", who, e)
		}
	}
	refused(alice, "alice (budget)")
	if m.count() != 0 {
		t.Fatal("a refused unpriced request reached the upstream")
	}
	served(bob, "bob (no budget)")
	// Counting tokens is free: not refused.
	_, err := alice.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: model,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	must(t, err)
	g.waitLog()

	g.load(gatewayOptions{Block: block("unpriced allow")})
	served(alice, "alice with unpriced allow")
	g.load(gatewayOptions{Block: block("unpriced refuse")})
	refused(bob, "bob with unpriced refuse")
	// Priced models are unaffected.
	_, err = bob.Messages.New(ctx, smallParams(10))
	must(t, err)
	g.waitLog()
}

// withModel returns the params with another model.
func withModel(p anthropic.MessageNewParams, model string) anthropic.MessageNewParams {
	p.Model = anthropic.Model(model)
	return p
}

// TestQueryCredentialsNotForwarded: a virtual key in the query string,
// next to a valid header, never reaches the provider, and the access log
// filter (as in the examples) keeps it out of the logged uri.
func TestQueryCredentialsNotForwarded(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	body := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	h := map[string]string{"X-Api-Key": aliceKey, "X-Mock-Scenario": "small", "Content-Type": "application/json"}
	resp, out := g.doRaw("POST", "/v1/messages?beta=true&key="+aliceKey+"&api_key=x1&api-key=x2", h, body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	e := g.waitLog()
	req, _ := e["request"].(map[string]any)
	if uri, _ := req["uri"].(string); strings.Contains(uri, aliceKey) || strings.Contains(uri, "x1") || strings.Contains(uri, "x2") || !strings.Contains(uri, "beta=true") {
		t.Errorf("logged uri %q", uri)
	}
	// The presented key under any other name is not forwarded either.
	resp, out = g.doRaw("POST", "/v1/messages?token="+aliceKey+"&beta=true", h, body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	g.waitLog()
	for _, r := range m.requests() {
		if r.RawQuery != "beta=true" {
			t.Errorf("upstream saw query %q", r.RawQuery)
		}
	}
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestUpstreamUnreachableHidesInternals: the 502 a client gets names the
// provider and the gateway's request id, not the addresses or errors of
// the gateway's network; the log has them.
func TestUpstreamUnreachableHidesInternals(t *testing.T) {
	dead := freePort(t)
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		provider anthropic {
			type anthropic
			api_key sk-ant-unused
			base_url http://127.0.0.1:%d
		}
		key alice {
			secret %s
		}`, dead, aliceKey)})
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	_, err := c.Messages.New(context.Background(), smallParams(10))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 {
		t.Fatalf("err = %v", err)
	}
	id := apiErr.Response.Header.Get("X-Llm-Gateway-Request-Id")
	raw := apiErr.RawJSON()
	if !requestIDPattern.MatchString(id) || !strings.Contains(raw, "provider anthropic unreachable (request id "+id+")") {
		t.Errorf("502 body %s, request id %q", raw, id)
	}
	for _, leak := range []string{"127.0.0.1", strconv.Itoa(dead), "dial", "refused", "tcp"} {
		if strings.Contains(raw, leak) {
			t.Errorf("502 body tells the client %q: %s", leak, raw)
		}
	}
	e := g.waitLog()
	if e["llm.request_id"] != id || !strings.Contains(fmt.Sprint(e["llm.upstream_error"]), "connection refused") || e["llm.rejection"] != "upstream" {
		t.Errorf("log %v", e)
	}
}

// TestRequestIDOnEveryResponse: served or refused, every answer carries
// its own x-llm-gateway-request-id, the access log has it as
// llm.request_id, and the provider's own request-id passes untouched.
func TestRequestIDOnEveryResponse(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	body := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	seen := map[string]bool{}
	for _, tc := range []struct {
		method, path string
		key          string
		status       int
	}{
		{"POST", "/v1/messages", aliceKey, 200},
		{"POST", "/v1/messages", "", 401},
		{"POST", "/v1/messages", bobKey, 403}, // bob may use claude-haiku-* only; he asks for opus
		{"GET", "/v1/nothing-here", aliceKey, 404},
		{"HEAD", "/v1/messages", "", 200},
	} {
		h := map[string]string{"X-Mock-Scenario": "small", "Content-Type": "application/json"}
		if tc.key != "" {
			h["X-Api-Key"] = tc.key
		}
		b := body
		if tc.key == bobKey {
			b = strings.Replace(body, "claude-haiku-4-5", "claude-opus-4-5", 1)
		}
		resp, _ := g.doRaw(tc.method, tc.path, h, b)
		id := resp.Header.Get("X-Llm-Gateway-Request-Id")
		if resp.StatusCode != tc.status || !requestIDPattern.MatchString(id) || seen[id] {
			t.Errorf("%s %s: %d, request id %q", tc.method, tc.path, resp.StatusCode, id)
		}
		seen[id] = true
		if tc.status == 200 && tc.method == "POST" && resp.Header.Get("Request-Id") != "req_mock_1" {
			t.Errorf("provider request-id %q", resp.Header.Get("Request-Id"))
		}
		if e := g.waitLog(); e["llm.request_id"] != id {
			t.Errorf("%s %s logged request id %v, answered %q", tc.method, tc.path, e["llm.request_id"], id)
		}
	}
}

// TestDiscoveryAndRoutingByFamily: with only an Anthropic provider (no
// models line), /v1/models lists no OpenAI model and a gpt-5 request is
// not sent to Anthropic.
func TestDiscoveryAndRoutingByFamily(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: budgetBlock(m, "store memory", "", "")})
	ctx := context.Background()
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	page, err := c.Models.List(ctx, anthropic.ModelListParams{})
	must(t, err)
	g.waitLog()
	claude := 0
	for _, mi := range page.Data {
		if !strings.HasPrefix(mi.ID, "claude-") {
			t.Errorf("an Anthropic provider does not serve %s", mi.ID)
		}
		claude++
	}
	if claude == 0 {
		t.Error("no Claude model listed")
	}
	oc := openAIClient(g)
	oaiPage, err := oc.Models.List(ctx)
	must(t, err)
	g.waitLog()
	if len(oaiPage.Data) != 0 {
		t.Errorf("OpenAI-shaped list with no openai provider: %v", oaiPage.Data)
	}
	_, err = c.Messages.New(ctx, withModel(smallParams(10), "gpt-5"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.RawJSON(), "no provider serves model gpt-5") {
		t.Fatalf("gpt-5: %v", err)
	}
	g.waitLog()
	if m.count() != 0 {
		t.Fatal("gpt-5 was sent to Anthropic")
	}
}

// TestBudgetHeldByRequestsInFlight: a budget that is not spent but whose
// headroom a request in flight holds answers 429 rate_limit_error with
// retry-after (at most the holder's lease) and x-should-retry: true, on the
// OpenAI surface 429 rate_limit_exceeded; a client that retries (as Claude
// Code does) gets through once the holder settles.
func TestBudgetHeldByRequestsInFlight(t *testing.T) {
	m := newMockAnthropic(t)
	om := newMockOpenAI(t)
	m.gate = make(chan struct{})
	release := sync.OnceFunc(func() { close(m.gate) })
	defer release() // whatever fails, the holder finishes and Caddy can stop
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		reservation_lease 3s
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
		}
		provider openai {
			type openai
			api_key %s
			base_url %s
		}
		key alice {
			secret %s
			budget 0.001 usd per day
		}`, m.APIKey, m.URL(), mockOpenAIKey, om.URL(), aliceKey)})
	ctx := context.Background()
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	// The holder: its worst case (~$0.0017) does not fit, so it holds the
	// whole $0.001 on a partial reservation while the upstream keeps it.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, err := streamText(t, c, smallParams(100))
		if err != nil {
			t.Errorf("holder: %v", err)
		}
	}()
	<-m.arrivals

	_, err := c.Messages.New(ctx, smallParams(10))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.RawJSON(), `"rate_limit_error"`) ||
		!strings.Contains(apiErr.RawJSON(), "key alice has $0.001 left of its $0.001 daily budget, held by requests in flight") {
		t.Fatalf("held: %v", err)
	}
	h := apiErr.Response.Header
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 3 || h.Get("X-Should-Retry") != "true" {
		t.Errorf("held headers: retry-after %q (lease 3s), x-should-retry %q", h.Get("Retry-After"), h.Get("X-Should-Retry"))
	}
	if e := g.waitLog(); e["llm.rejection"] != "budget_held" || num(e, "status") != 429 {
		t.Errorf("held logged %v", e)
	}

	oc := openAIClient(g)
	_, err = oc.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}, MaxCompletionTokens: oai.Int(10)})
	var oaiErr *oai.Error
	if !errors.As(err, &oaiErr) || oaiErr.StatusCode != 429 || oaiErr.Code != "rate_limit_exceeded" ||
		oaiErr.Response.Header.Get("Retry-After") == "" || oaiErr.Response.Header.Get("X-Should-Retry") != "true" {
		t.Fatalf("held on the OpenAI surface: %v", err)
	}
	g.waitLog()

	// A client that retries, as Claude Code does: refused once, it waits
	// retry-after, and by then the holder has settled.
	done := make(chan error, 1)
	go func() {
		r := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Mock-Scenario", "small"), option.WithMaxRetries(3))
		_, err := r.Messages.New(ctx, smallParams(10))
		done <- err
	}()
	if e := g.waitLog(); e["llm.rejection"] != "budget_held" {
		t.Fatalf("retrying client's first attempt logged %v", e)
	}
	release()
	wg.Wait()
	must(t, <-done)
	for range 2 { // the holder and the retried request
		g.waitLog()
	}
	if m.count() != 2 {
		t.Errorf("upstream saw %d requests, want the holder and the retry", m.count())
	}
}

// TestLedgerTracesRequests: a served and a refused request each leave a
// ledger row carrying the x-llm-gateway-request-id the client got, the
// provider's request-id, the User-Agent, the metrics_label value as sent
// (longer than the metric label keeps it), attempts, the rejection reason
// and, for the stream, the time to first token.
func TestLedgerTracesRequests(t *testing.T) {
	m := newMockAnthropic(t)
	db := t.TempDir() + "/usage.db"
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, db, "")})
	project := "apollo-" + strings.Repeat("x", 200)
	body := `{"model":"claude-haiku-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	ids := map[string]string{}
	for _, tc := range []struct{ who, key, model string }{
		{"served", aliceKey, "claude-haiku-4-5"},
		{"refused", bobKey, "claude-opus-4-5"}, // bob may use claude-haiku-* only
	} {
		h := map[string]string{"X-Mock-Scenario": "small", "Content-Type": "application/json", "X-Api-Key": tc.key,
			"User-Agent": "claude-cli/2.1.328 (external, cli)", "X-Project": project}
		resp, _ := g.doRaw("POST", "/v1/messages", h, strings.Replace(body, "claude-haiku-4-5", tc.model, 1))
		ids[tc.who] = resp.Header.Get("X-Llm-Gateway-Request-Id")
		if !requestIDPattern.MatchString(ids[tc.who]) {
			t.Fatalf("%s: %d, request id %q", tc.who, resp.StatusCode, ids[tc.who])
		}
		g.waitLog()
	}
	ledger, err := governance.OpenSQLiteStore(db, governance.SQLiteOptions{})
	must(t, err)
	defer ledger.Close()
	var rows []governance.Record
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rows, err = ledger.Records(context.Background(), time.Time{}, time.Time{}, 0)
		must(t, err)
		if len(rows) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(rows) != 2 {
		t.Fatalf("ledger rows %+v", rows)
	}
	served, refused := rows[0], rows[1]
	if served.RequestID != ids["served"] || served.ProviderRequestID != "req_mock_1" || served.Status != 200 ||
		served.UserAgent != "claude-cli/2.1.328 (external, cli)" || served.Labels["project"] != project ||
		served.Attempts != 1 || served.Rejection != "" || served.TTFT <= 0 || served.TTFT > served.Duration {
		t.Errorf("served row %+v", served)
	}
	if refused.RequestID != ids["refused"] || refused.ProviderRequestID != "" || refused.Status != 403 ||
		refused.UserAgent != "claude-cli/2.1.328 (external, cli)" || refused.Labels["project"] != project ||
		refused.Attempts != 0 || refused.Rejection != "model" || refused.TTFT != 0 {
		t.Errorf("refused row %+v", refused)
	}
}
