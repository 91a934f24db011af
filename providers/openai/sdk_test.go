package openai

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// miniGateway serves the OpenAI surfaces with p the way the module does:
// recognise the surface, read the body, Send, Relay. Each relay's result is
// sent on the returned channel.
func miniGateway(t *testing.T, p *Provider) (*httptest.Server, chan providers.Result) {
	t.Helper()
	results := make(chan providers.Result, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := llm.Recognize(r.Method, r.URL.EscapedPath(), false)
		f, err := llm.ParseBody(body)
		if err != nil || !p.Serves(rec.Surface) {
			llm.WriteErrorCode(w, llm.DialectOpenAI, llm.ErrInvalidRequest, "", "bad request")
			return
		}
		call := &llm.Call{Surface: rec.Surface, Model: f.Model, CanonicalModel: llm.CanonicalModel(f.Model), Stream: f.Stream,
			MaxTokens: f.MaxTokens, Body: body, Fields: f, Header: r.Header, RawQuery: r.URL.RawQuery, PathSuffix: rec.Suffix}
		resp, err := p.Send(r.Context(), call)
		if err != nil {
			llm.WriteErrorCode(w, llm.DialectOpenAI, llm.ErrBadGateway, "", "upstream unreachable")
			return
		}
		results <- p.Relay(w, resp, call)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// TestOfficialSDK drives the gateway with openai-go: a stream whose client
// did not ask for usage must look to the SDK exactly like OpenAI's (no
// usage, no empty-choices chunk), one that asked must carry the usage, and
// every surface is metered.
func TestOfficialSDK(t *testing.T) {
	up, got := newUpstream(t)
	p := newProvider(t, Config{BaseURL: up.URL + "/v1", APIKeys: []string{keyA}})
	gw, results := miniGateway(t, p)
	client := oai.NewClient(option.WithBaseURL(gw.URL+"/v1/"), option.WithAPIKey(virtualKey), option.WithMaxRetries(0))
	ctx := context.Background()

	for _, askUsage := range []bool{false, true} {
		params := oai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Say hello")},
		}
		if askUsage {
			params.StreamOptions.IncludeUsage = oai.Bool(true)
		}
		s := client.Chat.Completions.NewStreaming(ctx, params)
		var acc oai.ChatCompletionAccumulator
		chunks, emptyChoices := 0, 0
		for s.Next() {
			c := s.Current()
			acc.AddChunk(c)
			chunks++
			if len(c.Choices) == 0 {
				emptyChoices++
			}
			if !askUsage && c.JSON.Usage.Valid() {
				t.Errorf("chunk %d carries a usage member the client did not ask for: %s", chunks, c.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("include_usage %v: stream error %v", askUsage, err)
		}
		wantChunks, wantEmpty, wantOut := 4, 0, int64(0)
		if askUsage {
			wantChunks, wantEmpty, wantOut = 5, 1, 300
		}
		if chunks != wantChunks || emptyChoices != wantEmpty || acc.Usage.CompletionTokens != wantOut ||
			len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "Hello café!" {
			t.Fatalf("include_usage %v: %d chunks (%d without choices), usage %+v, choices %+v", askUsage, chunks, emptyChoices, acc.Usage, acc.Choices)
		}
		if res := <-results; res.Usage != wantUsage {
			t.Fatalf("include_usage %v: metered %+v", askUsage, res.Usage)
		}
		if r := <-got; r.header.Get("Authorization") != "Bearer "+keyA || strings.Contains(string(r.body), virtualKey) {
			t.Fatalf("upstream saw %v", r.header)
		}
	}

	cc, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}})
	if err != nil || cc.Usage.PromptTokensDetails.CachedTokens != 1000 {
		t.Fatalf("chat: %v %+v", err, cc)
	}
	if res := <-results; res.Usage != wantUsage {
		t.Fatalf("chat metered %+v", res.Usage)
	}

	rs := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-5-mini", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}})
	var text string
	var usage responses.ResponseUsage
	for rs.Next() {
		e := rs.Current()
		switch e.Type {
		case "response.output_text.delta":
			text += e.Delta
		case "response.completed":
			usage = e.Response.Usage
		}
	}
	if rs.Err() != nil || text != "Hi!" || usage.InputTokensDetails.CachedTokens != 1000 {
		t.Fatalf("responses stream: %v %q %+v", rs.Err(), text, usage)
	}
	if res := <-results; res.Usage != wantUsage {
		t.Fatalf("responses metered %+v", res.Usage)
	}

	emb, err := client.Embeddings.New(ctx, oai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: oai.EmbeddingNewParamsInputUnion{OfString: oai.String("hi")}})
	if err != nil || emb.Usage.PromptTokens != 8 || len(emb.Data) != 1 {
		t.Fatalf("embeddings: %v %+v", err, emb)
	}
	if res := <-results; res.Usage != (llm.Usage{InputTokens: 8, Complete: true}) {
		t.Fatalf("embeddings metered %+v", res.Usage)
	}
}
