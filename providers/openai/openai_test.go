package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

const (
	keyA = "sk-proj-provider-key-AAAA"
	keyB = "sk-proj-provider-key-BBBB"
	keyC = "sk-proj-provider-key-CCCC"
	// virtualKey is the client's gateway credential: it must never leave.
	virtualKey = "sk-gw-virtual-key-of-alice"
	upModel    = "gpt-4o-mini-2024-07-18"
)

// The fixed reply of every upstream in these tests: 1200 prompt tokens of
// which 1000 cached, 300 completion tokens of which 100 reasoning.
const upUsage = `{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":100,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`

var wantUsage = llm.Usage{InputTokens: 200, CacheReadTokens: 1000, OutputTokens: 300, Complete: true}

// chatEvents is the streamed reply exactly as OpenAI writes it, with or
// without stream_options.include_usage: with it, every chunk carries
// "usage":null and an extra chunk with no choices carries the usage before
// [DONE]. The expected client output of a relay is built from it too.
func chatEvents(includeUsage bool) []string {
	null := ""
	if includeUsage {
		null = `,"usage":null`
	}
	chunk := func(choices string) string {
		return `data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"` + upModel + `","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":` + choices + null + `,"obfuscation":"8kqx"}` + "\n\n"
	}
	delta := func(d, finish string) string {
		return chunk(`[{"index":0,"delta":` + d + `,"logprobs":null,"finish_reason":` + finish + `}]`)
	}
	evs := []string{
		delta(`{"role":"assistant","content":"","refusal":null}`, "null"),
		delta(`{"content":"Hello"}`, "null"),
		delta(`{"content":" caf\u00e9!"}`, "null"),
		delta(`{}`, `"stop"`),
	}
	if includeUsage {
		evs = append(evs, `data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"`+upModel+`","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[],"usage":`+upUsage+`,"obfuscation":"Zq"}`+"\n\n")
	}
	return append(evs, "data: [DONE]\n\n")
}

const chatCompletionBody = `{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"` + upModel + `","choices":[{"index":0,"message":{"role":"assistant","content":"Hello caf\u00e9!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":` + upUsage + `,"service_tier":"default","system_fingerprint":"fp_06737a9306"}`

const responsesUsage = `{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1000},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":100},"total_tokens":1500}`

func responseObject(status, usage string) string {
	return `{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"` + status + `","background":false,"error":null,"incomplete_details":null,"model":"gpt-5-mini-2025-08-07","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi!","annotations":[]}]}],"parallel_tool_calls":true,"store":true,"tools":[],"usage":` + usage + `,"user":null,"metadata":{}}`
}

// responsesEvents is a Responses API stream.
func responsesEvents() []string {
	ev := func(typ string, seq int, rest string) string {
		return fmt.Sprintf("event: %s\ndata: {\"type\":%q,\"sequence_number\":%d,%s}\n\n", typ, typ, seq, rest)
	}
	return []string{
		ev("response.created", 0, `"response":`+responseObject("in_progress", "null")),
		ev("response.output_item.added", 1, `"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}`),
		ev("response.output_text.delta", 2, `"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","logprobs":[]`),
		ev("response.output_text.delta", 3, `"item_id":"msg_1","output_index":0,"content_index":0,"delta":"!","logprobs":[]`),
		ev("response.output_text.done", 4, `"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi!","logprobs":[]`),
		ev("response.completed", 5, `"response":`+responseObject("completed", responsesUsage)),
	}
}

const embeddingsBody = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`

// clientHeader is what the official OpenAI SDKs send (plus headers a
// gateway must strip).
func clientHeader() http.Header {
	return http.Header{
		"Authorization":               {"Bearer " + virtualKey},
		"Api-Key":                     {virtualKey},
		"X-Api-Key":                   {virtualKey},
		"Openai-Organization":         {"org-of-the-client"},
		"Openai-Project":              {"proj_of_the_client"},
		"Cookie":                      {"session=abc"},
		"Accept":                      {"application/json"},
		"Accept-Encoding":             {"gzip"},
		"Content-Type":                {"application/json"},
		"Content-Length":              {"999"},
		"User-Agent":                  {"OpenAI/Go 3.98.0"},
		"X-Stainless-Lang":            {"go"},
		"X-Stainless-Package-Version": {"3.98.0"},
		"X-Stainless-Retry-Count":     {"0"},
		"Connection":                  {"keep-alive, X-Hop"},
		"X-Hop":                       {"secret"},
		"X-Project":                   {"billing"},
	}
}

func chatCall(body string, streamed bool) *llm.Call {
	f, err := llm.ParseBody([]byte(body))
	if err != nil {
		panic(err)
	}
	return &llm.Call{
		Surface: llm.SurfaceOpenAIChat, Model: f.Model, CanonicalModel: llm.CanonicalModel(f.Model), Stream: streamed, MaxTokens: f.MaxTokens,
		Body: []byte(body), Fields: f, Header: clientHeader(), PathSuffix: "/v1/chat/completions",
	}
}

// fieldsOf is ParseBody's reading of a test body, as the gateway gives it
// to the family in the call.
func fieldsOf(body string) llm.BodyFields {
	f, err := llm.ParseBody([]byte(body))
	if err != nil {
		panic(err)
	}
	return f
}

const (
	chatBody       = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say \"hi\" \u00e9"}],"max_completion_tokens":512}`
	chatStreamBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"stream":true,"max_completion_tokens":512,"unknown_future_field":[1,{"a":null}]}`
)

// gotRequest is what an upstream saw.
type gotRequest struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// recordingUpstream answers every request with handler after recording it.
func recordingUpstream(t *testing.T, handler http.HandlerFunc) (*httptest.Server, chan gotRequest) {
	t.Helper()
	got := make(chan gotRequest, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream read body: %v", err)
		}
		got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b}
		if handler != nil {
			handler(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// openAIUpstream behaves like OpenAI: it honours stream and
// stream_options.include_usage exactly (usage chunk and "usage":null only
// when asked), and serves Responses and Embeddings.
func openAIUpstream(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Stream        bool `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		w.WriteHeader(400)
		return
	}
	w.Header().Set("X-Request-Id", "req_"+strings.Repeat("a", 8))
	switch {
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, embeddingsBody)
	case strings.HasSuffix(r.URL.Path, "/responses") && req.Stream:
		writeEvents(w, responsesEvents())
	case strings.HasSuffix(r.URL.Path, "/responses"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, responseObject("completed", responsesUsage))
	case req.Stream:
		writeEvents(w, chatEvents(req.StreamOptions != nil && req.StreamOptions.IncludeUsage))
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, chatCompletionBody)
	}
}

func writeEvents(w http.ResponseWriter, evs []string) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	rc := http.NewResponseController(w)
	for _, e := range evs {
		io.WriteString(w, e)
		rc.Flush()
	}
}

func newUpstream(t *testing.T) (*httptest.Server, chan gotRequest) {
	t.Helper()
	got := make(chan gotRequest, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b}
		openAIUpstream(w, r, b)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNew(t *testing.T) {
	tr := http.DefaultTransport
	tooMany := make([]string, providers.MaxKeys+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("sk-%d", i)
	}
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantBase string
		wantErr  string
	}{
		{name: "default base", cfg: Config{APIKeys: []string{keyA}, Transport: tr}, wantBase: "https://api.openai.com/v1"},
		{name: "ollama, no keys", cfg: Config{BaseURL: "http://localhost:11434/v1/", Transport: tr}, wantBase: "http://localhost:11434/v1"},
		{name: "azure, api-key", cfg: Config{BaseURL: "https://res.openai.azure.com/openai/v1", AuthHeader: "API-Key", APIVersion: "preview", APIKeys: []string{keyA}, Transport: tr}, wantBase: "https://res.openai.azure.com/openai/v1"},
		{name: "empty key", cfg: Config{APIKeys: []string{keyA, ""}, Transport: tr}, wantErr: "#2"},
		{name: "key with space", cfg: Config{APIKeys: []string{"sk proj"}, Transport: tr}, wantErr: "whitespace"},
		{name: "too many keys", cfg: Config{APIKeys: tooMany, Transport: tr}, wantErr: "at most"},
		{name: "unknown auth header", cfg: Config{AuthHeader: "x-api-key", Transport: tr}, wantErr: "auth header"},
		{name: "organization with newline", cfg: Config{Organization: "org\nX-Evil: 1", Transport: tr}, wantErr: "organization"},
		{name: "api version with control", cfg: Config{APIVersion: "2024\r", Transport: tr}, wantErr: "api version"},
		{name: "no transport", cfg: Config{APIKeys: []string{keyA}}, wantErr: "transport"},
		{name: "bad scheme", cfg: Config{BaseURL: "ftp://x/v1", Transport: tr}, wantErr: "scheme"},
		{name: "no host", cfg: Config{BaseURL: "https:///v1", Transport: tr}, wantErr: "host"},
		{name: "query", cfg: Config{BaseURL: "https://x/v1?api-version=1", Transport: tr}, wantErr: "query"},
		{name: "fragment", cfg: Config{BaseURL: "https://x/v1#f", Transport: tr}, wantErr: "fragment"},
		{name: "user info", cfg: Config{BaseURL: "https://u:" + keyA + "@x/v1", Transport: tr}, wantErr: "credentials"},
		{name: "unparseable", cfg: Config{BaseURL: "http://[::1", Transport: tr}, wantErr: "base_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), keyA) {
					t.Fatalf("error leaks the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.base != tc.wantBase {
				t.Fatalf("base %q, want %q", p.base, tc.wantBase)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	p := newProvider(t, Config{Name: "openrouter"})
	if p.Name() != "openrouter" || p.Family() != "openai" {
		t.Fatalf("Name %q Family %q", p.Name(), p.Family())
	}
	for s := llm.SurfaceUnknown; s <= llm.SurfaceVertexCountTokens; s++ {
		want := s == llm.SurfaceOpenAIChat || s == llm.SurfaceOpenAIResponses || s == llm.SurfaceOpenAIEmbeddings
		if p.Serves(s) != want {
			t.Errorf("Serves(%s) = %v", s, !want)
		}
	}
}

func TestSendURLAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prefix    string // the upstream's path prefix, joined to the test server URL
		cfg       Config
		surface   llm.Surface
		suffix    string
		query     string
		wantPath  string
		wantQuery string
		wantAuth  http.Header // credential headers expected (others must be absent)
		wantOrg   string
		wantProj  string
	}{
		{
			name: "openai: /v1 not doubled", prefix: "/v1", cfg: Config{APIKeys: []string{keyA}},
			surface: llm.SurfaceOpenAIChat, suffix: "/v1/chat/completions",
			wantPath: "/v1/chat/completions", wantAuth: http.Header{"Authorization": {"Bearer " + keyA}},
		},
		{
			name: "base with a trailing slash, query kept", prefix: "/v1/", cfg: Config{APIKeys: []string{keyA}, Organization: "org-gw", Project: "proj_gw"},
			surface: llm.SurfaceOpenAIResponses, suffix: "/v1/responses", query: "foo=bar&x=%2F",
			wantPath: "/v1/responses", wantQuery: "foo=bar&x=%2F", wantAuth: http.Header{"Authorization": {"Bearer " + keyA}},
			wantOrg: "org-gw", wantProj: "proj_gw",
		},
		{
			name: "ollama: no key, no credential", prefix: "/v1", cfg: Config{},
			surface: llm.SurfaceOpenAIEmbeddings, suffix: "/v1/embeddings",
			wantPath: "/v1/embeddings", wantAuth: http.Header{},
		},
		{
			name: "openrouter prefix", prefix: "/api/v1", cfg: Config{APIKeys: []string{keyA}},
			surface: llm.SurfaceOpenAIChat, suffix: "/v1/chat/completions",
			wantPath: "/api/v1/chat/completions", wantAuth: http.Header{"Authorization": {"Bearer " + keyA}},
		},
		{
			name: "azure v1 api: api-key header, api-version", prefix: "/openai/v1", cfg: Config{APIKeys: []string{keyA}, AuthHeader: "api-key", APIVersion: "preview"},
			surface: llm.SurfaceOpenAIResponses, suffix: "/v1/responses",
			wantPath: "/openai/v1/responses", wantQuery: "api-version=preview", wantAuth: http.Header{"Api-Key": {keyA}},
		},
		{
			name: "azure deployment: the client's api-version replaced, other parameters kept", prefix: "/openai/deployments/gpt-4o-prod",
			cfg:     Config{APIKeys: []string{keyA}, AuthHeader: "api-key", APIVersion: "2024-10-21"},
			surface: llm.SurfaceOpenAIChat, suffix: "/v1/chat/completions", query: "api-version=2023-05-15&foo=1&api%2Dversion=x",
			wantPath: "/openai/deployments/gpt-4o-prod/chat/completions", wantQuery: "foo=1&api-version=2024-10-21", wantAuth: http.Header{"Api-Key": {keyA}},
		},
		{
			name: "suffix without its leading slash", prefix: "/v1", cfg: Config{APIKeys: []string{keyA}},
			surface: llm.SurfaceOpenAIChat, suffix: "v1/chat/completions",
			wantPath: "/v1/chat/completions", wantAuth: http.Header{"Authorization": {"Bearer " + keyA}},
		},
		{
			name: "no path suffix: the surface's path", prefix: "/v1", cfg: Config{APIKeys: []string{keyA}},
			surface: llm.SurfaceOpenAIEmbeddings, suffix: "",
			wantPath: "/v1/embeddings", wantAuth: http.Header{"Authorization": {"Bearer " + keyA}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
			cfg := tc.cfg
			cfg.BaseURL = srv.URL + tc.prefix
			p := newProvider(t, cfg)
			body := `{"model":"text-embedding-3-small","input":"x"}`
			call := &llm.Call{Surface: tc.surface, Model: "m", Body: []byte(body), Fields: fieldsOf(body), Header: clientHeader(), RawQuery: tc.query, PathSuffix: tc.suffix}
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-got
			if r.method != "POST" || r.path != tc.wantPath || r.rawQuery != tc.wantQuery {
				t.Fatalf("%s %s ? %s, want %s ? %s", r.method, r.path, r.rawQuery, tc.wantPath, tc.wantQuery)
			}
			if string(r.body) != body {
				t.Errorf("body changed: %s", r.body)
			}
			h := r.header
			for _, name := range []string{"Authorization", "Api-Key"} {
				if !reflect.DeepEqual(h[name], tc.wantAuth[name]) {
					t.Errorf("%s = %q, want %q", name, h[name], tc.wantAuth[name])
				}
			}
			for _, name := range []string{"X-Api-Key", "Cookie", "X-Hop", "Content-Length-Bogus"} {
				if v := h.Get(name); v != "" {
					t.Errorf("%s forwarded: %q", name, v)
				}
			}
			if h.Get("Openai-Organization") != tc.wantOrg || h.Get("Openai-Project") != tc.wantProj {
				t.Errorf("organization %q project %q", h.Get("Openai-Organization"), h.Get("Openai-Project"))
			}
			if h.Get("Accept-Encoding") != "identity" || h.Get("User-Agent") != "OpenAI/Go 3.98.0" || h.Get("X-Stainless-Lang") != "go" ||
				h.Get("X-Project") != "billing" || h.Get("Content-Type") != "application/json" || h.Get("Accept") != "application/json" {
				t.Errorf("forwarded headers: %v", h)
			}
			if call.Header.Get("Authorization") != "Bearer "+virtualKey {
				t.Error("Send modified the inbound header")
			}
		})
	}
}

func TestSendDefaultContentType(t *testing.T) {
	srv, got := recordingUpstream(t, nil)
	p := newProvider(t, Config{BaseURL: srv.URL + "/v1"})
	resp, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceOpenAIChat, Body: []byte(chatBody), Fields: fieldsOf(chatBody), PathSuffix: "/v1/chat/completions"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := (<-got).header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestSendBody(t *testing.T) {
	models := providers.ModelMap{
		{Glob: llm.Glob("gpt-4o-mini*"), ID: "gpt-4o-mini-prod-deployment"},
		{Glob: llm.Glob("text-embedding-3-small"), ID: "text-embedding-3-small"},
		{Glob: llm.Glob("llama*"), ID: "meta-llama/Llama-3.1-8B-Instruct"},
	}
	for _, tc := range []struct {
		name     string
		surface  llm.Surface
		body     string
		stream   bool
		models   providers.ModelMap
		want     string
		injected bool
		wantErr  bool
	}{
		{
			name: "non-streamed chat: byte for byte", surface: llm.SurfaceOpenAIChat,
			body: chatBody, want: chatBody,
		},
		{
			name: "stream without stream_options: include_usage injected", surface: llm.SurfaceOpenAIChat, stream: true,
			body:     chatStreamBody,
			want:     strings.TrimSuffix(chatStreamBody, "}") + `,"stream_options":{"include_usage":true}}`,
			injected: true,
		},
		{
			name: "stream_options merged in place", surface: llm.SurfaceOpenAIChat, stream: true,
			body:     `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_obfuscation":false},"messages":[]}`,
			want:     `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},"messages":[]}`,
			injected: true,
		},
		{
			name: "include_usage false replaced", surface: llm.SurfaceOpenAIChat, stream: true,
			body:     `{"stream_options":{"include_usage":false,"include_obfuscation":true},"model":"gpt-4o-mini","stream":true,"messages":[]}`,
			want:     `{"stream_options":{"include_usage":true,"include_obfuscation":true},"model":"gpt-4o-mini","stream":true,"messages":[]}`,
			injected: true,
		},
		{
			name: "stream_options null replaced", surface: llm.SurfaceOpenAIChat, stream: true,
			body:     `{"model":"gpt-4o-mini","stream":true,"stream_options":null,"messages":[]}`,
			want:     `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
			injected: true,
		},
		{
			name: "include_usage asked by the client: untouched", surface: llm.SurfaceOpenAIChat, stream: true,
			body: `{"model":"gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "messages": []}`,
			want: `{"model":"gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "messages": []}`,
		},
		{
			name: "model remapped", surface: llm.SurfaceOpenAIChat, models: models,
			body: chatBody, want: strings.Replace(chatBody, `"gpt-4o-mini"`, `"gpt-4o-mini-prod-deployment"`, 1),
		},
		{
			name: "model remapped and include_usage injected", surface: llm.SurfaceOpenAIChat, stream: true, models: models,
			body:     `{"model":"llama-3.1-8b","stream":true,"messages":[]}`,
			want:     `{"model":"meta-llama/Llama-3.1-8B-Instruct","stream":true,"messages":[],"stream_options":{"include_usage":true}}`,
			injected: true,
		},
		{
			name: "mapped id equal to the client's: untouched", surface: llm.SurfaceOpenAIEmbeddings, models: models,
			body: `{"model":"text-embedding-3-small", "input":["a","b"]}`, want: `{"model":"text-embedding-3-small", "input":["a","b"]}`,
		},
		{
			name: "responses stream: nothing injected", surface: llm.SurfaceOpenAIResponses, stream: true,
			body: `{"model":"gpt-5","input":"hi","stream":true}`, want: `{"model":"gpt-5","input":"hi","stream":true}`,
		},
		{
			name: "broken JSON needing a rewrite is refused", surface: llm.SurfaceOpenAIChat, stream: true,
			body: `{"model":"gpt-4o-mini","stream":true`, wantErr: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := &captureTransport{}
			p := newProvider(t, Config{APIKeys: []string{keyA}, Models: tc.models, Transport: ct})
			f, _ := llm.ParseBody([]byte(tc.body))
			call := &llm.Call{Surface: tc.surface, Model: f.Model, CanonicalModel: llm.CanonicalModel(f.Model), Stream: tc.stream, Body: []byte(tc.body), Fields: f, Header: clientHeader()}
			resp, err := p.Send(context.Background(), call)
			if tc.wantErr {
				if err == nil || strings.Contains(err.Error(), keyA) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := ct.req
			b, _ := io.ReadAll(r.Body)
			if string(b) != tc.want {
				t.Fatalf("body\n%s\nwant\n%s", b, tc.want)
			}
			if !json.Valid(b) {
				t.Fatal("invalid JSON sent")
			}
			if r.ContentLength != int64(len(tc.want)) || r.GetBody == nil {
				t.Fatalf("ContentLength %d, GetBody %v", r.ContentLength, r.GetBody != nil)
			}
			if again, _ := r.GetBody(); again != nil {
				if b2, _ := io.ReadAll(again); string(b2) != tc.want {
					t.Fatal("GetBody returned another body")
				}
			}
			if string(call.Body) != tc.body {
				t.Fatal("Send modified call.Body")
			}
			if got := injectedFor(resp, call); got != tc.injected {
				t.Errorf("injected %v, want %v", got, tc.injected)
			}
			// Without Send's mark, Relay recomputes the same decision.
			if got := injectedFor(&http.Response{}, call); got != tc.injected {
				t.Errorf("recomputed injected %v, want %v", got, tc.injected)
			}
		})
	}
}

// captureTransport records the request instead of sending it.
type captureTransport struct{ req *http.Request }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req = r
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSendErrors(t *testing.T) {
	p := newProvider(t, Config{BaseURL: "http://127.0.0.1:1/v1", APIKeys: []string{keyA}})
	if _, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceAnthropicMessages}); err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Errorf("unserved surface: err = %v", err)
	}
	call := chatCall(chatStreamBody, true)
	call.RawQuery = "secret=1"
	_, err := p.Send(context.Background(), call)
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Host != "127.0.0.1:1" {
		t.Fatalf("connection refused: err = %#v", err)
	}
	if msg := err.Error(); strings.Contains(msg, keyA) || strings.Contains(msg, virtualKey) || strings.Contains(msg, "secret") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error message %q must name the host only", msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Send(ctx, call); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}

	// A transport that echoes what it was given never leaks the key.
	for _, auth := range []string{AuthBearer, AuthAPIKey} {
		echo := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("proxy refused %q %q", r.Header.Get("Authorization"), r.Header.Get("Api-Key"))
		})
		pe := newProvider(t, Config{APIKeys: []string{keyB}, AuthHeader: auth, Transport: echo})
		_, err := pe.Send(context.Background(), call)
		if err == nil || strings.Contains(err.Error(), keyB) || !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("%s: key leaked or not redacted: %v", auth, err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	for _, auth := range []string{AuthBearer, AuthAPIKey} {
		t.Run(auth, func(t *testing.T) {
			srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
			p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA, keyB, keyC}, AuthHeader: auth})
			var seen []string
			for i := 0; i < 7; i++ {
				resp, err := p.Send(context.Background(), chatCall(chatBody, false))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				h := (<-got).header
				k := strings.TrimPrefix(h.Get("Authorization"), "Bearer ") + h.Get("Api-Key")
				seen = append(seen, k)
			}
			if want := []string{keyA, keyB, keyC, keyA, keyB, keyC, keyA}; !reflect.DeepEqual(seen, want) {
				t.Fatalf("keys %q, want %q", seen, want)
			}
		})
	}

	// Concurrent sends spread evenly.
	ct := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{"K": {r.Header.Get("Authorization")}}}, nil
	})
	p := newProvider(t, Config{APIKeys: []string{keyA, keyB, keyC}, Transport: ct})
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Go(func() {
			resp, err := p.Send(context.Background(), chatCall(chatBody, false))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[resp.Header.Get("K")]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["Bearer "+keyA] != 100 || counts["Bearer "+keyB] != 100 || counts["Bearer "+keyC] != 100 {
		t.Fatalf("uneven rotation: %v", counts)
	}
}

// A key the upstream rejects is passed over for the next (providers.KeyRing).
func TestRejectedKeyFallsThrough(t *testing.T) {
	got := make(chan gotRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b}
		if r.Header.Get("Authorization") == "Bearer "+keyA {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		openAIUpstream(w, r, b)
	}))
	t.Cleanup(srv.Close)
	var events []providers.KeyEvent
	p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA, keyB}, OnKeyEvent: func(e providers.KeyEvent) { events = append(events, e) }})
	call := chatCall(chatStreamBody, true)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || len(events) != 1 || events[0].Key != 1 || !events[0].Disabled {
		t.Fatalf("status %d events %+v", resp.StatusCode, events)
	}
	first, second := <-got, <-got
	if string(first.body) != string(second.body) || !strings.Contains(string(second.body), `"include_usage":true`) {
		t.Fatalf("the retry sent another body: %s vs %s", first.body, second.body)
	}
	if second.header.Get("Authorization") != "Bearer "+keyB {
		t.Fatalf("retry used %q", second.header.Get("Authorization"))
	}
}

// sendRelay sends call to p and relays the response into a recorder.
func sendRelay(t *testing.T, p *Provider, call *llm.Call) (*httptest.ResponseRecorder, providers.Result) {
	t.Helper()
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	return rec, p.Relay(rec, resp, call)
}

// TestRelayHidesInjectedUsage: a client that did not ask for usage gets
// exactly what OpenAI would have sent it; the gateway meters it anyway.
func TestRelayHidesInjectedUsage(t *testing.T) {
	srv, got := newUpstream(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}, Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name     string
		body     string
		want     string // what the client must receive
		dropMark bool   // strip Send's mark: Relay recomputes
	}{
		{
			name: "client without include_usage",
			body: chatStreamBody,
			want: strings.Join(chatEvents(false), ""),
		},
		{
			name: "client without include_usage, response without Send's mark",
			body: chatStreamBody, dropMark: true,
			want: strings.Join(chatEvents(false), ""),
		},
		{
			name: "client with include_usage: passed through untouched",
			body: `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
			want: strings.Join(chatEvents(true), ""),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := chatCall(tc.body, true)
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			if up := <-got; !strings.Contains(string(up.body), `"include_usage":true`) {
				t.Fatalf("upstream was not asked for usage: %s", up.body)
			}
			if tc.dropMark {
				resp.Request = nil
			}
			rec := httptest.NewRecorder()
			res := p.Relay(rec, resp, call)
			if rec.Body.String() != tc.want {
				t.Fatalf("client got\n%s\nwant\n%s", rec.Body.String(), tc.want)
			}
			if res.Usage != wantUsage || res.BytesWritten != int64(len(tc.want)) || res.Status != 200 ||
				res.UpstreamErr != nil || res.ClientErr != nil || !res.FirstToken.Equal(t0) {
				t.Fatalf("result %+v", res)
			}
			if rec.Header().Get("Content-Type") != "text/event-stream; charset=utf-8" || rec.Header().Get("X-Request-Id") == "" || rec.Header().Get("Content-Length") != "" {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}

func TestRelaySurfaces(t *testing.T) {
	srv, _ := newUpstream(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}, Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name      string
		call      *llm.Call
		want      string
		wantUsage llm.Usage
		wantLen   bool // Content-Length kept
	}{
		{name: "chat, not streamed", call: chatCall(chatBody, false), want: chatCompletionBody, wantUsage: wantUsage, wantLen: true},
		{
			name:      "responses, streamed",
			call:      &llm.Call{Surface: llm.SurfaceOpenAIResponses, Model: "gpt-5-mini", Stream: true, Body: []byte(`{"model":"gpt-5-mini","input":"hi","stream":true}`), Fields: fieldsOf(`{"model":"gpt-5-mini","input":"hi","stream":true}`), Header: clientHeader(), PathSuffix: "/v1/responses"},
			want:      strings.Join(responsesEvents(), ""),
			wantUsage: wantUsage,
		},
		{
			name:      "responses, not streamed",
			call:      &llm.Call{Surface: llm.SurfaceOpenAIResponses, Model: "gpt-5-mini", Body: []byte(`{"model":"gpt-5-mini","input":"hi"}`), Fields: fieldsOf(`{"model":"gpt-5-mini","input":"hi"}`), Header: clientHeader(), PathSuffix: "/v1/responses"},
			want:      responseObject("completed", responsesUsage),
			wantUsage: wantUsage, wantLen: true,
		},
		{
			name:      "embeddings",
			call:      &llm.Call{Surface: llm.SurfaceOpenAIEmbeddings, Model: "text-embedding-3-small", Body: []byte(`{"model":"text-embedding-3-small","input":"hi"}`), Fields: fieldsOf(`{"model":"text-embedding-3-small","input":"hi"}`), Header: clientHeader(), PathSuffix: "/v1/embeddings"},
			want:      embeddingsBody,
			wantUsage: llm.Usage{InputTokens: 8, Complete: true}, wantLen: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, res := sendRelay(t, p, tc.call)
			if rec.Body.String() != tc.want || res.BytesWritten != int64(len(tc.want)) {
				t.Fatalf("client got\n%s\nwant\n%s", rec.Body.String(), tc.want)
			}
			if res.Usage != tc.wantUsage || !res.FirstToken.Equal(t0) || res.ErrorType != "" {
				t.Fatalf("result %+v", res)
			}
			if got := rec.Header().Get("Content-Length"); (got == fmt.Sprint(len(tc.want))) != tc.wantLen {
				t.Errorf("Content-Length %q", got)
			}
		})
	}
}

// TestRelayFlushesEveryEvent: the upstream sends event i+1 only once the
// client holds event i (its filtered form for an injected chat stream).
func TestRelayFlushesEveryEvent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		call    *llm.Call
		sent    []string // what the upstream sends
		visible []string // what the client must hold after each event
	}{
		{
			name:    "chat with injected include_usage",
			call:    chatCall(chatStreamBody, true),
			sent:    chatEvents(true),
			visible: append(append(append([]string(nil), chatEvents(false)[:4]...), ""), chatEvents(false)[4]),
		},
		{
			name:    "chat, client asked for usage",
			call:    chatCall(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`, true),
			sent:    chatEvents(true),
			visible: chatEvents(true),
		},
		{
			name:    "responses",
			call:    &llm.Call{Surface: llm.SurfaceOpenAIResponses, Stream: true, Body: []byte(`{"model":"gpt-5","stream":true}`), Fields: fieldsOf(`{"model":"gpt-5","stream":true}`), PathSuffix: "/v1/responses"},
			sent:    responsesEvents(),
			visible: responsesEvents(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proceed := make([]chan struct{}, len(tc.sent))
			for i := range proceed {
				proceed[i] = make(chan struct{})
			}
			srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				rc := http.NewResponseController(w)
				for i, e := range tc.sent {
					io.WriteString(w, e)
					rc.Flush()
					select {
					case <-proceed[i]:
					case <-r.Context().Done():
						return
					}
				}
			})
			p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}})
			resp, err := p.Send(context.Background(), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			w := testkit.NewFlushRecorder(true)
			done := make(chan providers.Result, 1)
			go func() { done <- p.Relay(w, resp, tc.call) }()

			timeout := time.NewTimer(10 * time.Second)
			defer timeout.Stop()
			var want string
			for i := range tc.sent {
				want += tc.visible[i]
				for {
					var seen string
					select {
					case seen = <-w.Flushes:
					case <-timeout.C:
						t.Fatalf("event %d never reached the client", i)
					}
					if !strings.HasPrefix(want, seen) {
						t.Fatalf("client saw %q, not a prefix of %q", seen, want)
					}
					if seen == want {
						break
					}
				}
				close(proceed[i])
			}
			// The relay's last flush (after Finish) may follow.
			var res providers.Result
			for res.Status == 0 {
				select {
				case res = <-done:
				case <-w.Flushes:
				case <-timeout.C:
					t.Fatal("relay did not end")
				}
			}
			if w.Body.String() != want || res.Usage != wantUsage || res.BytesWritten != int64(len(want)) {
				t.Fatalf("body %q\nresult %+v", w.Body.String(), res)
			}
		})
	}
}

// hijackUpstream writes head and body raw to the connection and closes it
// without ending the response: a cut mid-stream.
func hijackUpstream(t *testing.T, head, body string) *httptest.Server {
	t.Helper()
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		bw.WriteString(head)
		bw.WriteString(body)
		bw.Flush()
	})
	return srv
}

func chunked(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	return b.String()
}

func TestRelayUpstreamCut(t *testing.T) {
	const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	with, without := chatEvents(true), chatEvents(false)
	resp := responsesEvents()
	for _, tc := range []struct {
		name     string
		call     *llm.Call
		head     string
		body     string
		want     llm.Usage
		wantBody string
	}{
		{
			// "Hello café!" is 12 bytes: ceil(12/4) = 3 tokens.
			name: "chat cut before the usage chunk, mid-event", call: chatCall(chatStreamBody, true), head: sseHead,
			body:     chunked(with[0], with[1], with[2], with[3][:30]),
			want:     llm.Usage{OutputTokens: 3, OutputEstimated: true},
			wantBody: without[0] + without[1] + without[2] + with[3][:30],
		},
		{
			name: "chat cut after the usage chunk", call: chatCall(chatStreamBody, true), head: sseHead,
			body:     chunked(with[0], with[1], with[2], with[3], with[4]),
			want:     wantUsage,
			wantBody: without[0] + without[1] + without[2] + without[3],
		},
		{
			name: "responses cut after the deltas", call: &llm.Call{Surface: llm.SurfaceOpenAIResponses, Stream: true, Body: []byte(`{"stream":true}`), Fields: fieldsOf(`{"stream":true}`)}, head: sseHead,
			body:     chunked(resp[0], resp[1], resp[2], resp[3]),
			want:     llm.Usage{OutputTokens: 1, OutputEstimated: true},
			wantBody: resp[0] + resp[1] + resp[2] + resp[3],
		},
		{
			name: "json body shorter than its Content-Length", call: chatCall(chatBody, false),
			head:     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n",
			body:     chatCompletionBody[:100],
			wantBody: chatCompletionBody[:100],
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := hijackUpstream(t, tc.head, tc.body)
			p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}})
			resp, err := p.Send(context.Background(), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			w := testkit.NewFlushRecorder(false)
			res := p.Relay(w, resp, tc.call)
			if res.UpstreamErr == nil || res.ClientErr != nil {
				t.Fatalf("UpstreamErr %v ClientErr %v, want a cut", res.UpstreamErr, res.ClientErr)
			}
			if res.Usage != tc.want {
				t.Errorf("usage %+v\nwant  %+v", res.Usage, tc.want)
			}
			if w.Body.String() != tc.wantBody || res.BytesWritten != int64(len(tc.wantBody)) {
				t.Errorf("client got %q (%d)\nwant %q", w.Body.String(), res.BytesWritten, tc.wantBody)
			}
		})
	}
}

// eventBody returns one event per Read, and counts the reads.
type eventBody struct {
	events []string
	reads  int
	closed bool
}

func (b *eventBody) Read(p []byte) (int, error) {
	if b.reads == len(b.events) {
		return 0, io.EOF
	}
	b.reads++
	return copy(p, b.events[b.reads-1]), nil
}

func (b *eventBody) Close() error { b.closed = true; return nil }

func TestRelayClientGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		failAt    int // first failing write
		want      llm.Usage
		wantReads int
		wantBody  string
	}{
		// Each filtered chunk is written in two pieces (around the cut
		// "usage":null): writes 1–2 are the role chunk, 3 fails.
		{name: "injected: gone on the first content chunk", body: chatStreamBody, failAt: 3, want: llm.Usage{OutputTokens: 2, OutputEstimated: true}, wantReads: 2, wantBody: chatEvents(false)[0]},
		{name: "client asked usage: gone on the finish chunk", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, failAt: 4,
			want: llm.Usage{OutputTokens: 3, OutputEstimated: true}, wantReads: 4, wantBody: strings.Join(chatEvents(true)[:3], "")},
		{name: "client asked usage: gone on the usage chunk, metered anyway", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, failAt: 5,
			want: wantUsage, wantReads: 5, wantBody: strings.Join(chatEvents(true)[:4], "")},
		{name: "client asked usage: gone on [DONE]", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, failAt: 6,
			want: wantUsage, wantReads: 6, wantBody: strings.Join(chatEvents(true)[:5], "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, Config{})
			body := &eventBody{events: chatEvents(true)}
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body, ContentLength: -1}
			w := testkit.NewFlushRecorder(false)
			w.FailAt = tc.failAt
			res := p.Relay(w, resp, chatCall(tc.body, true))
			if !errors.Is(res.ClientErr, testkit.ErrClientGone) || res.UpstreamErr != nil {
				t.Fatalf("ClientErr %v UpstreamErr %v", res.ClientErr, res.UpstreamErr)
			}
			if res.Usage != tc.want {
				t.Errorf("usage %+v\nwant  %+v", res.Usage, tc.want)
			}
			if body.reads != tc.wantReads || !body.closed {
				t.Errorf("%d upstream reads (want %d), closed %v", body.reads, tc.wantReads, body.closed)
			}
			if w.Body.String() != tc.wantBody || res.BytesWritten != int64(len(tc.wantBody)) {
				t.Errorf("client got %q (%d)", w.Body.String(), res.BytesWritten)
			}
		})
	}
}

func TestRelayErrorsPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantType   string
		wantHeader http.Header
	}{
		{
			name: "429 insufficient_quota", status: 429,
			header:     http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"req_429"}, "X-Ratelimit-Remaining-Requests": {"0"}, "Retry-After": {"20"}},
			body:       `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			wantType:   "insufficient_quota",
			wantHeader: http.Header{"X-Request-Id": {"req_429"}, "X-Ratelimit-Remaining-Requests": {"0"}, "Retry-After": {"20"}},
		},
		{
			name: "401 invalid key, pretty-printed as OpenAI does", status: 401,
			header:   http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			body:     "{\n    \"error\": {\n        \"message\": \"Incorrect API key provided: sk-proj-****AAAA.\",\n        \"type\": \"invalid_request_error\",\n        \"param\": null,\n        \"code\": \"invalid_api_key\"\n    }\n}\n",
			wantType: "invalid_request_error",
		},
		{
			name: "404 model not found", status: 404,
			header:   http.Header{"Content-Type": {"application/json"}},
			body:     `{"error":{"message":"The model ` + "`gpt-9`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			wantType: "invalid_request_error",
		},
		{
			name: "Azure deployment not found", status: 404,
			header:   http.Header{"Content-Type": {"application/json"}, "Apim-Request-Id": {"a1"}},
			body:     `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`,
			wantType: "DeploymentNotFound", wantHeader: http.Header{"Apim-Request-Id": {"a1"}},
		},
		{
			name: "vLLM error", status: 400,
			header:   http.Header{"Content-Type": {"application/json"}},
			body:     `{"object":"error","message":"This model's maximum context length is 8192 tokens.","type":"BadRequestError","param":null,"code":400}`,
			wantType: "BadRequestError",
		},
		{
			name: "500 server error", status: 500,
			header:   http.Header{"Content-Type": {"application/json"}},
			body:     `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`,
			wantType: "server_error",
		},
		{
			name: "502 html from a proxy", status: 502,
			header: http.Header{"Content-Type": {"text/html"}},
			body:   "<html><body>Bad Gateway</body></html>\n",
		},
		{
			name: "error status with an SSE content type passes unmetered", status: 503,
			header: http.Header{"Content-Type": {"text/event-stream"}},
			body:   "data: {\"usage\":null}\n\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.Header().Set("Set-Cookie", "__cf_bm=x; HttpOnly")
				w.Header().Set("Alt-Svc", `h3=":443"`)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			p := newProvider(t, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}})
			call := chatCall(chatStreamBody, true)
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			res := p.Relay(rec, resp, call)
			if rec.Code != tc.status || res.Status != tc.status {
				t.Errorf("client status %d, result %d, want %d", rec.Code, res.Status, tc.status)
			}
			if rec.Body.String() != tc.body || res.BytesWritten != int64(len(tc.body)) {
				t.Errorf("client body %q, want byte-identical %q", rec.Body.String(), tc.body)
			}
			if res.ErrorType != tc.wantType || res.Usage != (llm.Usage{}) || !res.FirstToken.IsZero() {
				t.Errorf("result %+v", res)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header()[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("Alt-Svc") != "" || rec.Header().Get("Content-Length") != fmt.Sprint(len(tc.body)) {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}

// bigEmbeddings generates an embeddings body larger than MaxBodyCopy
// without holding it in memory.
type bigEmbeddings struct {
	head, tail string
	n, sent    int // vectors, and bytes of them sent
	pos        int
	closed     bool
}

const vec = "0.0023064255,-0.009327292,"

func (b *bigEmbeddings) Read(p []byte) (int, error) {
	total := len(b.head) + b.n*len(vec) + len(b.tail)
	if b.pos >= total {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && b.pos < total {
		var c byte
		switch i := b.pos; {
		case i < len(b.head):
			c = b.head[i]
		case i < len(b.head)+b.n*len(vec):
			c = vec[(i-len(b.head))%len(vec)]
		default:
			c = b.tail[i-len(b.head)-b.n*len(vec)]
		}
		p[n] = c
		n++
		b.pos++
	}
	return n, nil
}

func (b *bigEmbeddings) Close() error { b.closed = true; return nil }

type countingWriter struct {
	h http.Header
	n int64
}

func (c *countingWriter) Header() http.Header         { return c.h }
func (c *countingWriter) WriteHeader(int)             {}
func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestRelayEmbeddingsOverCap(t *testing.T) {
	if testing.Short() {
		t.Skip("relays 33 MB")
	}
	body := &bigEmbeddings{
		head: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[`,
		n:    MaxBodyCopy/len(vec) + 1000,
		tail: `0.5]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":81920,"total_tokens":81920}}`,
	}
	p := newProvider(t, Config{})
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ContentLength: -1}
	w := &countingWriter{h: http.Header{}}
	call := &llm.Call{Surface: llm.SurfaceOpenAIEmbeddings}
	res := p.Relay(w, resp, call)
	if res.Usage != (llm.Usage{InputTokens: 81920, Complete: true}) || res.BytesWritten != int64(body.pos) || w.n != res.BytesWritten || !body.closed {
		t.Fatalf("result %+v, wrote %d of %d", res, w.n, body.pos)
	}

	// An over-long chat body is relayed but not metered.
	body = &bigEmbeddings{head: `{"choices":[{"message":{"content":"`, n: MaxBodyCopy / len(vec), tail: `"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`}
	resp = &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ContentLength: -1}
	res = p.Relay(&countingWriter{h: http.Header{}}, resp, chatCall(chatBody, false))
	if res.Usage != (llm.Usage{}) || res.BytesWritten != int64(body.pos) {
		t.Fatalf("chat over the cap: %+v", res)
	}
}

func TestEmbeddingsTailUsage(t *testing.T) {
	for tail, want := range map[string]int64{
		`0.1,0.2]}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}`:             8,
		`0.1]}],"model":"m","usage" : { "prompt_tokens" : 9 , "total_tokens":9 } }` + "\n": 9,
		`0.1]}],"usage":{"prompt_tokens":3},"model":"m"}`:                                  -1, // not last
		`"usage":{"prompt_tokens":3}}`:                                                     -1, // no comma before
		`{"x":{"usage":{"prompt_tokens":3}}}`:                                              -1, // nested
		`0.1]}],"usage":{"prompt_tokens":3`:                                                -1, // cut
		`,"usage":{"prompt_tokens":5}}],"usage":{"prompt_tokens":7,"total_tokens":7}}`:     7,
	} {
		u, err := embeddingsTailUsage([]byte(tail))
		got := u.InputTokens
		if err != nil {
			got = -1
		}
		if got != want {
			t.Errorf("%s: %d (%v), want %d", tail, got, err, want)
		}
	}
}

// A 200 whose body reports an error (a proxy's, or a failed Responses
// object) reports its type.
func TestRelayErrorIn200(t *testing.T) {
	p := newProvider(t, Config{})
	for _, tc := range []struct {
		call *llm.Call
		body string
		want string
	}{
		{chatCall(chatBody, false), `{"error":{"message":"upstream timed out","type":"timeout","param":null,"code":null}}`, "timeout"},
		{&llm.Call{Surface: llm.SurfaceOpenAIResponses}, strings.Replace(responseObject("failed", "null"), `"error":null`, `"error":{"code":"server_error","message":"boom"}`, 1), "server_error"},
	} {
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: &eventBody{events: []string{tc.body}}, ContentLength: -1}
		res := p.Relay(httptest.NewRecorder(), resp, tc.call)
		if res.ErrorType != tc.want || res.Usage != (llm.Usage{Complete: true}) {
			t.Errorf("%s: %+v", tc.body, res)
		}
	}
}

// A compatible server that labels its stream text/plain (or not at all) is
// still relayed event by event, filtered and metered.
func TestRelayStreamWithoutEventStreamType(t *testing.T) {
	for _, ct := range []string{"", "text/plain; charset=utf-8"} {
		p := newProvider(t, Config{})
		body := &eventBody{events: chatEvents(true)}
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {ct}}, Body: body, ContentLength: -1}
		rec := httptest.NewRecorder()
		res := p.Relay(rec, resp, chatCall(chatStreamBody, true))
		if rec.Body.String() != strings.Join(chatEvents(false), "") || res.Usage != wantUsage {
			t.Fatalf("type %q: client got %q, usage %+v", ct, rec.Body.String(), res.Usage)
		}
	}
}

func TestRelayClosesBodyOnEveryPath(t *testing.T) {
	p := newProvider(t, Config{})
	for _, c := range []struct {
		resp *http.Response
		call *llm.Call
	}{
		{&http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}}, chatCall(chatStreamBody, true)},
		{&http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}}, chatCall(`{"stream":true,"stream_options":{"include_usage":true}}`, true)},
		{&http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}}, &llm.Call{Surface: llm.SurfaceOpenAIResponses, Stream: true}},
		{&http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}}, chatCall(chatBody, false)},
		{&http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}}, nil},
		{&http.Response{StatusCode: 429, Header: http.Header{}}, chatCall(chatBody, false)},
	} {
		b := &eventBody{events: []string{"data: x"}}
		c.resp.Body = b
		c.resp.ContentLength = -1
		p.Relay(httptest.NewRecorder(), c.resp, c.call)
		if !b.closed {
			t.Errorf("status %d %s: body not closed", c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
		}
	}
}

// Benchmarks: a 300-chunk chat stream relayed one event per read.

func benchChatEvents(includeUsage bool) []string {
	evs := chatEvents(includeUsage)
	out := append([]string(nil), evs[:2]...)
	for i := 0; i < 296; i++ {
		out = append(out, evs[1+i%2])
	}
	return append(out, evs[3:]...)
}

type discardWriter struct {
	h       http.Header
	flushes int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      { d.flushes++ }

func benchmarkRelay(b *testing.B, call *llm.Call) {
	evs := benchChatEvents(true)
	p := newProvider(b, Config{})
	w := &discardWriter{h: http.Header{}}
	body := &eventBody{events: evs}
	resp := &http.Response{StatusCode: 200, Body: body, ContentLength: -1,
		Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "X-Request-Id": {"req_1"}, "Openai-Processing-Ms": {"120"}}}
	n := 0
	for _, e := range evs {
		n += len(e)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		body.reads = 0
		clear(w.h)
		if res := p.Relay(w, resp, call); res.Usage != wantUsage {
			b.Fatalf("%+v", res)
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkRelayChatStreamFiltered is Relay alone for a client that did not
// ask for usage: the filter cuts "usage":null from every chunk and drops the
// usage chunk.
func BenchmarkRelayChatStreamFiltered(b *testing.B) {
	benchmarkRelay(b, chatCall(chatStreamBody, true))
}

// BenchmarkRelayChatStreamPassThrough is Relay alone for a client that asked
// for usage: bytes pass untouched through the meter.
func BenchmarkRelayChatStreamPassThrough(b *testing.B) {
	benchmarkRelay(b, chatCall(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`, true))
}

// BenchmarkSendRelayLoopback is a whole injected chat stream over loopback
// HTTP/1.1 against an upstream that writes and flushes each of 300 events.
func BenchmarkSendRelayLoopback(b *testing.B) {
	evs := benchChatEvents(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		writeEvents(w, evs)
	}))
	defer srv.Close()
	p := newProvider(b, Config{BaseURL: srv.URL + "/v1", APIKeys: []string{keyA}})
	call := chatCall(chatStreamBody, true)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Send(context.Background(), call)
		if err != nil {
			b.Fatal(err)
		}
		clear(w.h)
		if res := p.Relay(w, resp, call); res.Usage != wantUsage {
			b.Fatalf("%+v", res)
		}
	}
}
