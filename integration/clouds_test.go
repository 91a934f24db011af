package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/bedrock"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/vertex"
	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// streamText drives one streaming call and returns its text and usage.
func streamText(t *testing.T, c anthropic.Client, params anthropic.MessageNewParams, opts ...option.RequestOption) (string, anthropic.Usage, error) {
	t.Helper()
	stream := c.Messages.NewStreaming(context.Background(), params, opts...)
	var acc anthropic.Message
	var text strings.Builder
	for stream.Next() {
		ev := stream.Current()
		_ = acc.Accumulate(ev)
		if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			text.WriteString(d.Delta.Text)
		}
	}
	return text.String(), acc.Usage, stream.Err()
}

// TestAnthropicSurfaceOnEveryCloud: the same Claude Code request, config
// unchanged but for the route line, served by Anthropic, Vertex or Foundry:
// identical usage and cost (Vertex at its 1.1 regional multiplier when set).
func TestAnthropicSurfaceOnEveryCloud(t *testing.T) {
	anth := newMockAnthropic(t)
	vtx := newMockVertex(t)
	fdy := newMockFoundry(t)
	sa := vtx.writeServiceAccount(t)
	block := func(route string) string {
		return fmt.Sprintf(`store memory
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
		}
		provider vertex {
			type vertex
			project gw-project
			region us-east5
			base_url %s
			credentials_file %s
		}
		provider foundry {
			type azure
			base_url %s
			api_key %s
		}
		provider vertex_eu {
			type vertex
			project gw-project
			region europe-west1
			base_url %s
			credentials_file %s
			price_multiplier 1.1
		}
		%s
		key alice {
			secret %s
		}`, anth.APIKey, anth.URL(), vtx.URL(), sa, fdy.URL(), fdy.APIKey, vtx.URL(), sa, route, aliceKey)
	}
	g := startGateway(t, gatewayOptions{Block: block("route claude-* anthropic")})
	for _, tc := range []struct {
		route    string
		provider string
		cost     int64
		upstream func() int
	}{
		{"route claude-* anthropic", "anthropic", mockCostSonnetNano, anth.count},
		{"route claude-* vertex", "vertex", mockCostSonnetNano, vtx.count},
		{"route claude-* foundry", "foundry", mockCostSonnetNano, fdy.count},
		{"route claude-* vertex_eu", "vertex_eu", mockCostSonnetNano * 11 / 10, vtx.count},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			g.load(gatewayOptions{Block: block(tc.route)})
			// Right after a reload a new connection can still land on the
			// old server as it shuts down and be closed unanswered (a client
			// sees EOF before the request was read); the SDK retries that,
			// as Claude Code does.
			c := newClient(g, "/anthropic", option.WithAuthToken(aliceKey), option.WithMaxRetries(2))
			before := tc.upstream()
			for _, stream := range []bool{true, false} {
				if stream {
					text, usage, err := streamText(t, c, messageParams("claude-sonnet-4-5-20250929"))
					must(t, err)
					if text != mockText || usage.OutputTokens != mockOutput || usage.CacheReadInputTokens != mockCacheRead {
						t.Fatalf("stream: %q %+v", text, usage)
					}
				} else {
					msg, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5-20250929"))
					must(t, err)
					if msg.Usage.InputTokens != mockInput || msg.Usage.OutputTokens != mockOutput {
						t.Fatalf("message usage %+v", msg.Usage)
					}
				}
				e := g.waitLog()
				if e["llm.provider"] != tc.provider {
					t.Fatalf("served by %v", e["llm.provider"])
				}
				if num(e, "llm.input_tokens") != mockInput || num(e, "llm.output_tokens") != mockOutput || num(e, "llm.cache_read_tokens") != mockCacheRead ||
					num(e, "llm.cache_write_5m_tokens") != mockCacheWrite5m || num(e, "llm.cache_write_1h_tokens") != mockCacheWrite1h {
					t.Fatalf("usage logged %v", e)
				}
				if got := int64(num(e, "llm.cost_nano_usd")); got != tc.cost {
					t.Fatalf("cost %d, want %d", got, tc.cost)
				}
			}
			if tc.upstream()-before != 2 {
				t.Fatalf("upstream calls %d", tc.upstream()-before)
			}
		})
	}
	// The Vertex token was fetched once for every request since (cached).
	if vtx.tokenCount() > 2 {
		t.Errorf("vertex token fetched %d times", vtx.tokenCount())
	}
	for _, r := range vtx.requests() {
		if !strings.HasPrefix(r.Path, "/v1/projects/gw-project/locations/") || !strings.Contains(r.Path, "claude-sonnet-4-5@20250929") {
			t.Errorf("vertex path %s", r.Path)
		}
		if strings.Contains(fmt.Sprint(r.Header), aliceKey) {
			t.Error("virtual key reached vertex")
		}
	}
	for _, r := range fdy.requests() {
		if r.Header.Get("Api-Key") != fdy.APIKey || strings.Contains(fmt.Sprint(r.Header), aliceKey) {
			t.Errorf("foundry headers %v", r.Header)
		}
	}
}

// TestFallbackBeforeFirstByte: a 529 from the first provider falls back to
// the next and completes with one charge; a 429 from the last provider is
// passed to the client; repeated failures put a provider in cool-down.
func TestFallbackBeforeFirstByte(t *testing.T) {
	anth := newMockAnthropic(t)
	vtx := newMockVertex(t)
	sa := vtx.writeServiceAccount(t)
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
		}
		provider vertex {
			type vertex
			project gw-project
			region global
			base_url %s
			credentials_file %s
		}
		route claude-* anthropic vertex
		alias sonnet claude-sonnet-4-5
		fail_after 2
		cooldown 1h
		key alice {
			secret %s
		}`, anth.APIKey, anth.URL(), vtx.URL(), sa, aliceKey)})
	before := g.metrics()
	c := newClient(g, "", option.WithAuthToken(aliceKey))

	// The scenario header reaches both providers: anthropic answers 529,
	// vertex (which has no such scenario for streams) serves.
	text, _, err := streamText(t, c, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "status-529-anthropic-only"))
	must(t, err)
	if text != mockText {
		t.Fatalf("text %q", text)
	}
	e := g.waitLog()
	if e["llm.provider"] != "vertex" || num(e, "llm.attempts") != 2 || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("fallback logged %v", e)
	}
	fams := g.metrics()
	if got := metricDelta(before, fams, "llm_gateway_upstream_attempts_total", map[string]string{"provider": "anthropic", "outcome": "529"}); got != 1 {
		t.Errorf("anthropic 529 attempts %v", got)
	}
	if got := metricDelta(before, fams, "llm_gateway_requests_total", map[string]string{"key": "alice", "provider": "vertex"}); got != 1 {
		t.Errorf("charged requests %v", got)
	}

	// A second 529 puts anthropic in cool-down (fail_after 2): the next
	// request goes straight to vertex.
	_, _, err = streamText(t, c, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "status-529-anthropic-only"))
	must(t, err)
	g.waitLog()
	n := anth.count()
	_, _, err = streamText(t, c, messageParams("claude-sonnet-4-5"))
	must(t, err)
	e = g.waitLog()
	if anth.count() != n || e["llm.provider"] != "vertex" || num(e, "llm.attempts") != 1 {
		t.Fatalf("cool-down not honoured: anthropic calls %d→%d, %v", n, anth.count(), e)
	}
	if got := metricDelta(before, g.metrics(), "llm_gateway_provider_cooldowns_total", map[string]string{"provider": "anthropic"}); got != 1 {
		t.Errorf("cooldowns %v", got)
	}

	// An error after the first byte is the client's to see: never retried
	// elsewhere (vertex serves now; the scenario fails it mid-stream).
	vertexCalls := vtx.count()
	_, _, err = streamText(t, c, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "cut"))
	if err == nil {
		t.Fatal("mid-stream failure not surfaced")
	}
	e = g.waitLog()
	if vtx.count() != vertexCalls+1 || num(e, "llm.attempts") != 1 || num(e, "llm.input_tokens") != mockInput {
		t.Fatalf("mid-stream failure retried or not charged: %d calls, %v", vtx.count()-vertexCalls, e)
	}

	// An alias: the provider gets the real model id.
	_, _, err = streamText(t, c, messageParams("sonnet"))
	must(t, err)
	e = g.waitLog()
	if e["llm.model"] != "claude-sonnet-4-5" || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("alias logged %v", e)
	}
	if last := vtx.requests()[len(vtx.requests())-1]; !strings.Contains(last.Path, "claude-sonnet-4-5@20250929") {
		t.Fatalf("alias forwarded as %s", last.Path)
	}

	// Every provider failing: the last answer reaches the client as is.
	_, err = c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "status-429"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.RawJSON(), "rate_limit_error") {
		t.Fatalf("all failing: %v", err)
	}
	g.waitLog()
}

// TestVertexNativeMode: the Anthropic SDK's own Vertex client (Claude
// Code's CLAUDE_CODE_USE_VERTEX mode with auth skipped) pointed at the
// gateway: the virtual key arrives as a bearer token, the gateway signs
// with its own service account for its own project.
func TestVertexNativeMode(t *testing.T) {
	vtx := newMockVertex(t)
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		provider vertex {
			type vertex
			project gw-project
			region us-east5
			base_url %s
			credentials_file %s
		}
		key alice {
			secret %s
		}`, vtx.URL(), vtx.writeServiceAccount(t), aliceKey)})
	creds := &google.Credentials{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: aliceKey})}
	// The TypeScript SDK Claude Code uses sends Vertex's own API version;
	// make the Go SDK do the same (its middleware copies the header into the body).
	c := anthropic.NewClient(vertex.WithCredentials(context.Background(), "us-east5", "developer-project", creds),
		option.WithBaseURL(g.URL+"/"), option.WithMaxRetries(0), option.WithHeader("Anthropic-Version", "vertex-2023-10-16"))

	text, usage, err := streamText(t, c, messageParams("claude-sonnet-4-5@20250929"))
	must(t, err)
	if text != mockText || usage.InputTokens != mockInput {
		t.Fatalf("stream %q %+v", text, usage)
	}
	e := g.waitLog()
	if e["llm.surface"] != "vertex.stream_raw_predict" || e["llm.model"] != "claude-sonnet-4-5" || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("logged %v", e)
	}
	msg, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5@20250929"))
	must(t, err)
	if msg.Usage.OutputTokens != mockOutput {
		t.Fatalf("usage %+v", msg.Usage)
	}
	e = g.waitLog()
	if e["llm.surface"] != "vertex.raw_predict" || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("logged %v", e)
	}
	n, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5@20250929",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	must(t, err)
	if n.InputTokens != mockCountedTokens {
		t.Fatalf("count %d", n.InputTokens)
	}
	g.waitLog()
	for _, r := range vtx.requests() {
		if !strings.HasPrefix(r.Path, "/v1/projects/gw-project/locations/us-east5/") {
			t.Errorf("forwarded to %s (the client's project must be replaced)", r.Path)
		}
		if strings.Contains(fmt.Sprint(r.Header), aliceKey) {
			t.Error("virtual key reached vertex")
		}
	}
}

// bedrockBlock is a gateway whose Claude traffic goes to the mock Bedrock.
func bedrockBlock(b *mockBedrock, extra string) string {
	return fmt.Sprintf(`store memory
		provider bedrock {
			type bedrock
			region %s
			base_url %s
			access_key_id %s
			secret_access_key %s
			model claude-sonnet-4-5* us.anthropic.claude-sonnet-4-5-20250929-v1:0
			ping_interval 50ms
		}
		%s
		key alice {
			secret %s
		}`, mockBedrockRegion, b.URL(), mockBedrockAccessKey, mockBedrockSecret, extra, aliceKey)
}

// TestBedrockFromAnthropicSurface: Claude Code's plain Anthropic requests
// served by Bedrock: SigV4 by the gateway, event stream translated to SSE,
// identical usage and cost; Bedrock errors arrive in Anthropic's shape.
func TestBedrockFromAnthropicSurface(t *testing.T) {
	b := newMockBedrock(t)
	g := startGateway(t, gatewayOptions{Block: bedrockBlock(b, "")})
	c := newClient(g, "/anthropic", option.WithAuthToken(aliceKey),
		option.WithHeader("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"))

	text, usage, err := streamText(t, c, messageParams("claude-sonnet-4-5-20250929"))
	must(t, err)
	if text != mockText || usage.OutputTokens != mockOutput || usage.CacheCreationInputTokens != mockCacheWrite5m+mockCacheWrite1h {
		t.Fatalf("stream %q %+v", text, usage)
	}
	e := g.waitLog()
	if e["llm.provider"] != "bedrock" || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano || num(e, "llm.cache_write_1h_tokens") != mockCacheWrite1h {
		t.Fatalf("logged %v", e)
	}
	msg, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"))
	must(t, err)
	if msg.Usage.InputTokens != mockInput {
		t.Fatalf("usage %+v", msg.Usage)
	}
	e = g.waitLog()
	if int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("logged %v", e)
	}
	n, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	must(t, err)
	if n.InputTokens != mockCountedTokens {
		t.Fatalf("count %d", n.InputTokens)
	}
	g.waitLog()
	for _, r := range b.requests() {
		if !r.SignatureOK {
			t.Errorf("bad SigV4 on %s", r.EscapedPath)
		}
		if !strings.Contains(r.EscapedPath, "us.anthropic.claude-sonnet-4-5-20250929-v1") && r.Action != "" {
			t.Errorf("path %s", r.EscapedPath)
		}
	}
	// Throttling arrives as Anthropic's rate_limit_error (Claude Code retries it).
	_, err = c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "status-429"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.RawJSON(), `"rate_limit_error"`) {
		t.Fatalf("throttled: %v", err)
	}
	g.waitLog()
	// A mid-stream exception becomes an error event; what passed is charged.
	_, _, err = streamText(t, c, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "exception"))
	if err == nil {
		t.Fatal("exception not surfaced")
	}
	e = g.waitLog()
	if num(e, "llm.input_tokens") != mockInput || num(e, "llm.output_tokens") == 0 || e["llm.complete"] != false {
		t.Fatalf("exception charged %v", e)
	}
}

// TestBedrockNativeMode: the Anthropic SDK's own Bedrock client as Claude
// Code uses it with CLAUDE_CODE_SKIP_BEDROCK_AUTH (no SigV4 from the client,
// the virtual key as a bearer token): inference profiles answered without
// a credential, invoke and invoke-with-response-stream passed through with
// the gateway's own signature, metered.
func TestBedrockNativeMode(t *testing.T) {
	b := newMockBedrock(t)
	g := startGateway(t, gatewayOptions{Block: bedrockBlock(b, "")})

	resp, body := g.doRaw("GET", "/bedrock/inference-profiles?type=SYSTEM_DEFINED", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"inferenceProfileSummaries"`) || !strings.Contains(body, "us.anthropic.claude-sonnet-4-5-20250929-v1:0") {
		t.Fatalf("inference profiles: %d %s", resp.StatusCode, body)
	}
	g.waitLog()

	c := anthropic.NewClient(
		bedrock.WithConfig(aws.Config{Region: "us-east-1", BearerAuthTokenProvider: bedrock.NewStaticBearerTokenProvider(aliceKey),
			AuthSchemePreference: []string{"httpBearerAuth"}}),
		option.WithBaseURL(g.URL), option.WithMaxRetries(0),
		// Claude Code's SDK sends Bedrock's own API version.
		option.WithHeader("Anthropic-Version", "bedrock-2023-05-31"))
	for _, model := range []string{"us.anthropic.claude-haiku-4-5-20251001-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"} {
		msg, err := c.Messages.New(context.Background(), messageParams(model))
		must(t, err)
		if msg.Usage.OutputTokens != mockOutput {
			t.Fatalf("invoke usage %+v", msg.Usage)
		}
		e := g.waitLog()
		if e["llm.surface"] != "bedrock.invoke" || e["llm.key"] != "alice" {
			t.Fatalf("logged %v", e)
		}
	}
	text, usage, err := streamText(t, c, messageParams("us.anthropic.claude-sonnet-4-5-20250929-v1:0"))
	must(t, err)
	if text != mockText || usage.OutputTokens != mockOutput {
		t.Fatalf("stream %q %+v", text, usage)
	}
	e := g.waitLog()
	if e["llm.surface"] != "bedrock.invoke_stream" || e["llm.model"] != "claude-sonnet-4-5" || int64(num(e, "llm.cost_nano_usd")) != mockCostSonnetNano {
		t.Fatalf("logged %v", e)
	}
	for _, r := range b.requests() {
		if !r.SignatureOK || strings.Contains(fmt.Sprint(r.Header), aliceKey) {
			t.Errorf("request %s: signature %v, headers %v", r.EscapedPath, r.SignatureOK, r.Header)
		}
	}
	// Without a key: refused in Bedrock's shape.
	resp, body = g.doRaw("POST", "/bedrock/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke", nil, `{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`)
	if resp.StatusCode != 401 || resp.Header.Get("X-Amzn-Errortype") == "" || !strings.HasPrefix(body, `{"message":`) {
		t.Fatalf("no key: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	g.waitLog()
}
