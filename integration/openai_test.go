package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	oaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// Hand-priced mock OpenAI usage (1200 prompt of which 1000 cached, 300
// completion): gpt-4o 200×2.50 + 1000×1.25 + 300×10 = 4750 per million;
// gpt-5-mini 200×0.25 + 1000×0.025 + 300×2 = 675; embeddings
// text-embedding-3-small 8×0.02 = 0.16.
const (
	openAICostGPT4oNano     = 4_750_000
	openAICostGPT5MiniNano  = 675_000
	openAICostEmbeddingNano = 160
)

func openAIBlock(m *mockOpenAI, aliceLimits string) string {
	return fmt.Sprintf(`store memory
		provider openai {
			type openai
			api_key %s
			base_url %s
			models gpt-* text-embedding-*
		}
		key alice {
			secret %s
			%s
		}`, mockOpenAIKey, m.URL(), aliceKey, aliceLimits)
}

func openAIClient(g *gateway, opts ...oaiopt.RequestOption) oai.Client {
	return oai.NewClient(append([]oaiopt.RequestOption{oaiopt.WithBaseURL(g.URL + "/openai/v1/"), oaiopt.WithAPIKey(aliceKey), oaiopt.WithMaxRetries(0)}, opts...)...)
}

// TestOpenAISurface: the official OpenAI Go SDK through the gateway — chat
// streaming (with and without include_usage) and not, responses,
// embeddings, models — attributed, metered and priced like Claude traffic.
func TestOpenAISurface(t *testing.T) {
	m := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: openAIBlock(m, "")})
	ctx := context.Background()
	c := openAIClient(g)
	check := func(what string, cost int64, input, cacheRead, output float64) {
		t.Helper()
		e := g.waitLog()
		if e["llm.provider"] != "openai" || e["llm.key"] != "alice" || int64(num(e, "llm.cost_nano_usd")) != cost ||
			num(e, "llm.input_tokens") != input || num(e, "llm.cache_read_tokens") != cacheRead || num(e, "llm.output_tokens") != output {
			t.Errorf("%s logged %v", what, e)
		}
	}

	// A stream whose client did not ask for usage: the gateway asks for it
	// upstream and removes it again, so the client gets byte for byte what
	// OpenAI would have sent it.
	req, _ := http.NewRequest("POST", g.URL+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+aliceKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := mockOpenAIChatStream("gpt-4o", false); string(got) != want {
		t.Fatalf("client bytes differ from OpenAI's:\n%s\nwant\n%s", got, want)
	}
	check("chat stream", openAICostGPT4oNano, mockOpenAIPrompt-mockOpenAICached, mockOpenAICached, mockOpenAIOutput)
	if r := m.requests()[0]; !strings.Contains(string(r.Body), `"include_usage":true`) || r.Header.Get("Authorization") != "Bearer "+mockOpenAIKey {
		t.Errorf("upstream request %s %v", r.Body, r.Header)
	}

	// With include_usage: the usage chunk reaches the SDK.
	params := oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}}
	params.StreamOptions.IncludeUsage = oai.Bool(true)
	s := c.Chat.Completions.NewStreaming(ctx, params)
	var acc oai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	must(t, s.Err())
	if acc.Usage.PromptTokens != mockOpenAIPrompt || acc.Choices[0].Message.Content != mockOpenAIText {
		t.Fatalf("stream usage %+v %q", acc.Usage, acc.Choices[0].Message.Content)
	}
	check("chat stream with usage", openAICostGPT4oNano, mockOpenAIPrompt-mockOpenAICached, mockOpenAICached, mockOpenAIOutput)

	cc, err := c.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}})
	must(t, err)
	if cc.Usage.CompletionTokensDetails.ReasoningTokens != mockOpenAIReasoning {
		t.Fatalf("chat usage %+v", cc.Usage)
	}
	check("chat", openAICostGPT4oNano, mockOpenAIPrompt-mockOpenAICached, mockOpenAICached, mockOpenAIOutput)

	rs := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-5-mini", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}})
	var completed bool
	for rs.Next() {
		if rs.Current().Type == "response.completed" {
			completed = true
		}
	}
	must(t, rs.Err())
	if !completed {
		t.Fatal("no response.completed")
	}
	check("responses stream", openAICostGPT5MiniNano, mockOpenAIPrompt-mockOpenAICached, mockOpenAICached, mockOpenAIOutput)

	r, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-5-mini", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}})
	must(t, err)
	if r.Usage.OutputTokens != mockOpenAIOutput {
		t.Fatalf("responses usage %+v", r.Usage)
	}
	check("responses", openAICostGPT5MiniNano, mockOpenAIPrompt-mockOpenAICached, mockOpenAICached, mockOpenAIOutput)

	emb, err := c.Embeddings.New(ctx, oai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: oai.EmbeddingNewParamsInputUnion{OfString: oai.String("hi")}})
	must(t, err)
	if emb.Usage.PromptTokens != mockOpenAIEmbedding {
		t.Fatalf("embeddings %+v", emb.Usage)
	}
	check("embeddings", openAICostEmbeddingNano, mockOpenAIEmbedding, 0, 0)

	page, err := c.Models.List(ctx)
	must(t, err)
	ids := map[string]bool{}
	for _, mdl := range page.Data {
		ids[mdl.ID] = true
	}
	if !ids["gpt-4o"] || !ids["text-embedding-3-small"] || ids["claude-sonnet-4-5"] {
		t.Errorf("models %v", ids)
	}
	g.waitLog()

	// Errors in OpenAI's shape.
	bad := openAIClient(g, oaiopt.WithAPIKey("sk-wrong"))
	_, err = bad.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Fatalf("bad key: %v", err)
	}
	g.waitLog()
	assertNoSecretsText(t, g, mockOpenAIKey)
}

// TestOpenAIBudgetAndRateLimit: a spent budget is 429 insufficient_quota
// (what OpenAI itself answers, with x-should-retry: false), a rate limit is
// 429 rate_limit_exceeded with retry-after.
func TestOpenAIBudgetAndRateLimit(t *testing.T) {
	m := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: openAIBlock(m, "budget 0.005 usd per day\n\t\t\trate_limit 3 requests per minute")})
	ctx := context.Background()
	c := openAIClient(g)
	params := oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}, MaxCompletionTokens: oai.Int(100)}
	_, err := c.Chat.Completions.New(ctx, params) // $0.00475 of $0.005
	must(t, err)
	g.waitLog()
	_, err = c.Chat.Completions.New(ctx, params) // $0.00025 left: admitted on a partial reservation
	must(t, err)
	g.waitLog()
	_, err = c.Chat.Completions.New(ctx, params)
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" || apiErr.Type != "insufficient_quota" ||
		!strings.Contains(apiErr.Message, "key alice has spent $0.0095 of its $0.005 daily budget") || apiErr.Response.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("budget: %v", err)
	}
	g.waitLog()

	// Rate limits count across reloads too: give a fresh key a limit of 1.
	g.load(gatewayOptions{Block: openAIBlock(m, "") + fmt.Sprintf(`
		key bob {
			secret %s
			rate_limit 1 requests per minute
		}`, bobKey)})
	c = openAIClient(g, oaiopt.WithAPIKey(bobKey))
	_, err = c.Chat.Completions.New(ctx, params)
	must(t, err)
	g.waitLog()
	_, err = c.Chat.Completions.New(ctx, params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Response.Header.Get("Retry-After") == "" ||
		apiErr.Response.Header.Get("X-Ratelimit-Limit-Requests") != "1" {
		t.Fatalf("rate limit: %v", err)
	}
	g.waitLog()
}

// assertNoSecretsText checks the access log and metrics for a secret.
func assertNoSecretsText(t *testing.T, g *gateway, secrets ...string) {
	t.Helper()
	logs, metrics := g.allLogText(), g.metricsText()
	for _, s := range append(secrets, aliceKey, bobKey) {
		if strings.Contains(logs, s) || strings.Contains(metrics, s) {
			t.Errorf("secret %.12s… leaked", s)
		}
	}
}

// TestOpenAIPermissionCodes: the gateway's own 403s on the OpenAI surface
// carry a code that says which rule refused (OpenAI's error "code"), in
// the SDK's error.
func TestOpenAIPermissionCodes(t *testing.T) {
	m := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: openAIBlock(m, "models gpt-5-*") + fmt.Sprintf(`
		key bob {
			secret %s
			disabled
		}`, bobKey)})
	ctx := context.Background()
	params := oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}}
	for _, tc := range []struct {
		who, secret, code string
	}{
		{"alice, a model her key may not use", aliceKey, "model_not_allowed"},
		{"bob, a disabled key", bobKey, "key_disabled"},
	} {
		c := openAIClient(g, oaiopt.WithAPIKey(tc.secret))
		_, err := c.Chat.Completions.New(ctx, params)
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Code != tc.code || apiErr.Type != "invalid_request_error" {
			t.Errorf("%s: %v, want 403 code %s", tc.who, err, tc.code)
		}
		g.waitLog()
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d refused requests reached OpenAI", n)
	}
}
