package anthropic

import (
	"bytes"
	"context"
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
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

const (
	keyA = "sk-ant-api03-provider-key-AAAA"
	keyB = "sk-ant-api03-provider-key-BBBB"
	keyC = "sk-ant-api03-provider-key-CCCC"
	// virtualKey is the client's gateway credential: it must never leave.
	virtualKey = "sk-gw-virtual-key-of-alice"
)

// A real Claude Code turn as Anthropic streams it.
var turnEvents = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":2048,\"cache_read_input_tokens\":90112,\"cache_creation\":{\"ephemeral_5m_input_tokens\":2048,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\",\"server_tool_use\":null}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello from the \"}}\n\n",       // 15 bytes
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"upstream, caf\\u00e9!\"}}\n\n", // 15 bytes
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

var turnUsage = llm.Usage{InputTokens: 12, OutputTokens: 9, CacheReadTokens: 90112, CacheWrite5mTokens: 2048, Complete: true}

// cutUsage is what the turn meters when cut after its two text deltas:
// ceil(30/4) = 8 estimated output tokens.
var cutUsage = llm.Usage{InputTokens: 12, OutputTokens: 8, CacheReadTokens: 90112, CacheWrite5mTokens: 2048, OutputEstimated: true}

const claudeCodeBody = `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1,2,3]}`

// claudeCodeHeader is what Claude Code 2.1 sends (plus a few a gateway must
// strip).
func claudeCodeHeader() http.Header {
	return http.Header{
		"Authorization":       {"Bearer " + virtualKey},
		"X-Api-Key":           {virtualKey},
		"Api-Key":             {virtualKey},
		"X-Goog-Api-Key":      {virtualKey},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Cookie":              {"session=abc"},
		"Anthropic-Version":   {"2023-06-01"},
		"Anthropic-Beta":      {"claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,fine-grained-tool-streaming-2025-05-14"},
		"Anthropic-Dangerous-Direct-Browser-Access": {"true"},
		"User-Agent":                  {"claude-cli/2.1.3 (external, cli)"},
		"X-App":                       {"cli"},
		"X-Claude-Code-Session-Id":    {"8d4e0f3a-1b2c-4d5e-8f90-123456789abc"},
		"X-Claude-Code-Agent-Id":      {"agent-7"},
		"X-Stainless-Lang":            {"js"},
		"X-Stainless-Package-Version": {"0.60.0"},
		"X-Stainless-Retry-Count":     {"0"},
		"X-Stainless-Timeout":         {"600"},
		"Accept":                      {"application/json"},
		"Accept-Encoding":             {"gzip, deflate, br, zstd"},
		"Content-Type":                {"application/json"},
		"Content-Length":              {"999999"},
		"Connection":                  {"keep-alive, X-Hop-Secret"},
		"X-Hop-Secret":                {"do-not-forward"},
		"Keep-Alive":                  {"timeout=5"},
		"Te":                          {"trailers"},
		"Upgrade":                     {"h2c"},
		"Expect":                      {"100-continue"},
		"Host":                        {"gateway.internal"},
		"X-Project":                   {"billing-rewrite", "second-value"},
		"x-custom-lowercase":          {"kept"},
	}
}

// gotRequest is what an upstream saw.
type gotRequest struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
	contentLength          int64
	host                   string
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
		got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b, r.ContentLength, r.Host}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newProvider(t *testing.T, base string, keys ...string) *Provider {
	t.Helper()
	if len(keys) == 0 {
		keys = []string{keyA}
	}
	p, err := New(Config{Name: "anthropic", BaseURL: base, APIKeys: keys, Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func messagesCall(h http.Header) *llm.Call {
	return &llm.Call{
		Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5",
		Stream: true, MaxTokens: 32000, Body: []byte(claudeCodeBody), Header: h,
		RawQuery: "beta=true", PathSuffix: "/v1/messages",
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantBase string
		wantErr  string
	}{
		{name: "default base", cfg: Config{APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantBase: "https://api.anthropic.com"},
		{name: "trailing slash trimmed", cfg: Config{BaseURL: "http://127.0.0.1:8080/", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantBase: "http://127.0.0.1:8080"},
		{name: "prefix kept", cfg: Config{BaseURL: "https://example.services.ai.azure.com/anthropic/", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantBase: "https://example.services.ai.azure.com/anthropic"},
		{name: "no keys", cfg: Config{Transport: http.DefaultTransport}, wantErr: "api key"},
		{name: "empty key", cfg: Config{APIKeys: []string{keyA, ""}, Transport: http.DefaultTransport}, wantErr: "#2"},
		{name: "key with newline", cfg: Config{APIKeys: []string{keyA + "\n"}, Transport: http.DefaultTransport}, wantErr: "control"},
		{name: "no transport", cfg: Config{APIKeys: []string{keyA}}, wantErr: "transport"},
		{name: "bad scheme", cfg: Config{BaseURL: "ftp://x", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "scheme"},
		{name: "no scheme", cfg: Config{BaseURL: "api.anthropic.com", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "scheme"},
		{name: "no host", cfg: Config{BaseURL: "https:///v1", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "host"},
		{name: "query", cfg: Config{BaseURL: "https://x/?key=1", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "query"},
		{name: "fragment", cfg: Config{BaseURL: "https://x/#f", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "fragment"},
		{name: "user info", cfg: Config{BaseURL: "https://u:p@x", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "credentials"},
		{name: "unparseable", cfg: Config{BaseURL: "http://[::1", APIKeys: []string{keyA}, Transport: http.DefaultTransport}, wantErr: "base_url"},
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
	p := newProvider(t, "")
	if p.Name() != "anthropic" || p.Family() != "anthropic" {
		t.Fatalf("Name %q Family %q", p.Name(), p.Family())
	}
	for s := llm.SurfaceUnknown; s <= llm.SurfaceVertexCountTokens; s++ {
		want := s == llm.SurfaceAnthropicMessages || s == llm.SurfaceAnthropicCountTokens
		if p.Serves(s) != want {
			t.Errorf("Serves(%s) = %v", s, !want)
		}
	}
}

func TestSendForwarding(t *testing.T) {
	for _, tc := range []struct {
		name        string
		prefix      string // upstream base path
		call        func() *llm.Call
		wantPath    string
		wantQuery   string
		wantVersion string
	}{
		{
			name:     "claude code messages",
			call:     func() *llm.Call { return messagesCall(claudeCodeHeader()) },
			wantPath: "/v1/messages", wantQuery: "beta=true", wantVersion: "2023-06-01",
		},
		{
			name:   "base path prefix kept, no query",
			prefix: "/anthropic/",
			call: func() *llm.Call {
				c := messagesCall(claudeCodeHeader())
				c.RawQuery = ""
				return c
			},
			wantPath: "/anthropic/v1/messages", wantVersion: "2023-06-01",
		},
		{
			name: "version defaulted when absent",
			call: func() *llm.Call {
				h := claudeCodeHeader()
				h.Del("Anthropic-Version")
				return messagesCall(h)
			},
			wantPath: "/v1/messages", wantQuery: "beta=true", wantVersion: DefaultVersion,
		},
		{
			name: "client version kept",
			call: func() *llm.Call {
				h := claudeCodeHeader()
				h.Set("Anthropic-Version", "2099-01-01")
				return messagesCall(h)
			},
			wantPath: "/v1/messages", wantQuery: "beta=true", wantVersion: "2099-01-01",
		},
		{
			name: "count tokens",
			call: func() *llm.Call {
				c := messagesCall(claudeCodeHeader())
				c.Surface, c.PathSuffix, c.RawQuery = llm.SurfaceAnthropicCountTokens, "/v1/messages/count_tokens", "beta=true"
				return c
			},
			wantPath: "/v1/messages/count_tokens", wantQuery: "beta=true", wantVersion: "2023-06-01",
		},
		{
			name: "empty suffix defaults per surface",
			call: func() *llm.Call {
				c := messagesCall(claudeCodeHeader())
				c.Surface, c.PathSuffix = llm.SurfaceAnthropicCountTokens, ""
				return c
			},
			wantPath: "/v1/messages/count_tokens", wantQuery: "beta=true", wantVersion: "2023-06-01",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"input_tokens":42}`)
			})
			p := newProvider(t, srv.URL+tc.prefix)
			call := tc.call()
			inbound := call.Header.Clone()
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r := <-got

			if r.method != http.MethodPost || r.path != tc.wantPath || r.rawQuery != tc.wantQuery {
				t.Errorf("upstream saw %s %s?%s, want POST %s?%s", r.method, r.path, r.rawQuery, tc.wantPath, tc.wantQuery)
			}
			if !bytes.Equal(r.body, []byte(claudeCodeBody)) || r.contentLength != int64(len(claudeCodeBody)) {
				t.Errorf("body not byte-identical (len %d, Content-Length %d)", len(r.body), r.contentLength)
			}
			if r.host != strings.TrimPrefix(srv.URL, "http://") {
				t.Errorf("Host %q, want the upstream's", r.host)
			}
			h := r.header
			if got := h.Values("X-Api-Key"); !reflect.DeepEqual(got, []string{keyA}) {
				t.Errorf("x-api-key %q, want the provider key only", got)
			}
			if got := h.Values("Anthropic-Version"); !reflect.DeepEqual(got, []string{tc.wantVersion}) {
				t.Errorf("anthropic-version %q, want %q", got, tc.wantVersion)
			}
			if got := h.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("Accept-Encoding %q, want identity", got)
			}
			for name, vals := range h {
				for _, v := range vals {
					if strings.Contains(v, virtualKey) {
						t.Errorf("client credential reached upstream in %s", name)
					}
				}
			}
			for _, stripped := range []string{"Authorization", "Api-Key", "X-Goog-Api-Key", "Proxy-Authorization", "Cookie",
				"X-Hop-Secret", "Keep-Alive", "Te", "Upgrade", "Expect"} {
				if v, ok := h[stripped]; ok {
					t.Errorf("%s forwarded: %q", stripped, v)
				}
			}
			for _, passed := range []string{"Anthropic-Beta", "Anthropic-Dangerous-Direct-Browser-Access", "User-Agent", "X-App",
				"X-Claude-Code-Session-Id", "X-Claude-Code-Agent-Id", "X-Stainless-Lang", "X-Stainless-Package-Version",
				"X-Stainless-Retry-Count", "X-Stainless-Timeout", "Accept", "Content-Type", "X-Project", "X-Custom-Lowercase"} {
				want := inbound[passed]
				if passed == "X-Custom-Lowercase" {
					want = inbound["x-custom-lowercase"]
				}
				if got := h[passed]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %q, want %q", passed, got, want)
				}
			}
			if !reflect.DeepEqual(call.Header, inbound) {
				t.Error("Send modified the inbound header")
			}
		})
	}
}

// captureTransport records the request instead of sending it.
type captureTransport struct{ req *http.Request }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req = r
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func TestSendRequestIsRewindable(t *testing.T) {
	ct := &captureTransport{}
	p, err := New(Config{Name: "a", APIKeys: []string{keyA}, Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := p.Send(ctx, messagesCall(claudeCodeHeader()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := ct.req
	if r.URL.String() != "https://api.anthropic.com/v1/messages?beta=true" {
		t.Errorf("URL %s", r.URL)
	}
	if r.ContentLength != int64(len(claudeCodeBody)) || r.GetBody == nil {
		t.Fatalf("ContentLength %d, GetBody set %v", r.ContentLength, r.GetBody != nil)
	}
	for i := 0; i < 2; i++ {
		b, err := r.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(b); string(got) != claudeCodeBody {
			t.Fatalf("GetBody #%d returned a different body", i)
		}
	}
	if r.Context() != ctx {
		t.Error("request does not carry the caller's context")
	}
	if _, ok := r.Header["Content-Length"]; ok {
		t.Error("inbound Content-Length copied into the header")
	}
}

func TestSendErrors(t *testing.T) {
	p := newProvider(t, "http://127.0.0.1:1", keyA)
	if _, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceOpenAIChat}); err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Errorf("unserved surface: err = %v", err)
	}

	_, err := p.Send(context.Background(), messagesCall(claudeCodeHeader()))
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Host != "127.0.0.1:1" {
		t.Fatalf("connection refused: err = %#v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, keyA) || strings.Contains(msg, virtualKey) || strings.Contains(msg, "beta=true") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error message %q must name the host only", msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Send(ctx, messagesCall(claudeCodeHeader()))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("canceled: err = %v", err)
	}

	// A transport that echoes what it was given never leaks the key.
	echo := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused key %s", r.Header.Get("X-Api-Key"))
	})
	pe, _ := New(Config{Name: "e", APIKeys: []string{keyB}, Transport: echo})
	_, err = pe.Send(context.Background(), messagesCall(claudeCodeHeader()))
	if err == nil || strings.Contains(err.Error(), keyB) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("key leaked or not redacted: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestKeyRotation(t *testing.T) {
	srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
	p := newProvider(t, srv.URL, keyA, keyB, keyC)
	var seen []string
	for i := 0; i < 7; i++ {
		resp, err := p.Send(context.Background(), messagesCall(claudeCodeHeader()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen = append(seen, (<-got).header.Get("X-Api-Key"))
	}
	if want := []string{keyA, keyB, keyC, keyA, keyB, keyC, keyA}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("keys %q, want %q", seen, want)
	}

	// Concurrent sends spread evenly.
	ct := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{"K": {r.Header.Get("X-Api-Key")}}}, nil
	})
	pc, _ := New(Config{Name: "c", APIKeys: []string{keyA, keyB, keyC}, Transport: ct})
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Go(func() {
			resp, err := pc.Send(context.Background(), messagesCall(claudeCodeHeader()))
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
	if counts[keyA] != 100 || counts[keyB] != 100 || counts[keyC] != 100 {
		t.Fatalf("uneven rotation: %v", counts)
	}
}

func TestRelayStreamFlushesEveryEvent(t *testing.T) {
	proceed := make([]chan struct{}, len(turnEvents))
	for i := range proceed {
		proceed[i] = make(chan struct{})
	}
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Request-Id", "req_011CSHoEeqs5C35K2UUqR7Fy")
		w.Header().Set("Anthropic-Ratelimit-Tokens-Remaining", "1999000")
		w.Header().Set("Set-Cookie", "__cf_bm=x")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		for i, e := range turnEvents {
			io.WriteString(w, e)
			rc.Flush()
			select {
			case <-proceed[i]:
			case <-r.Context().Done():
				return
			}
		}
	})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	p, err := New(Config{Name: "anthropic", BaseURL: srv.URL, APIKeys: []string{keyA}, Transport: http.DefaultTransport, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	call := messagesCall(claudeCodeHeader())
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	w := testkit.NewFlushRecorder(true)
	done := make(chan providers.Result, 1)
	go func() { done <- p.Relay(w, resp, call) }()

	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var sent string
	for i, e := range turnEvents {
		sent += e
		// The client must hold event i before the upstream sends event i+1
		// (the upstream waits for proceed[i]).
		for {
			var seen string
			select {
			case seen = <-w.Flushes:
			case <-timeout.C:
				t.Fatalf("event %d never reached the client", i)
			}
			if !strings.HasPrefix(sent, seen) {
				t.Fatalf("client saw %q, not a prefix of what was sent", seen)
			}
			if seen == sent {
				break
			}
		}
		close(proceed[i])
	}
	var res providers.Result
	select {
	case res = <-done:
	case <-timeout.C:
		t.Fatal("relay did not end")
	}
	if w.Body.String() != strings.Join(turnEvents, "") {
		t.Errorf("client body differs from upstream body")
	}
	if res.Usage != turnUsage || res.Status != 200 || res.BytesWritten != int64(w.Body.Len()) ||
		res.UpstreamErr != nil || res.ClientErr != nil || res.ErrorType != "" || !res.FirstToken.Equal(t0) {
		t.Errorf("result %+v", res)
	}
	if w.NFlush < len(turnEvents) {
		t.Errorf("%d flushes for %d events", w.NFlush, len(turnEvents))
	}
	if w.Status != 200 || w.Header().Get("Request-Id") != "req_011CSHoEeqs5C35K2UUqR7Fy" ||
		w.Header().Get("Anthropic-Ratelimit-Tokens-Remaining") != "1999000" || w.Header().Get("Set-Cookie") != "" ||
		w.Header().Get("Content-Type") != "text/event-stream; charset=utf-8" || w.Header().Get("Content-Length") != "" {
		t.Errorf("client headers %v (status %d)", w.Header(), w.Status)
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
	for _, tc := range []struct {
		name      string
		head      string
		body      string
		want      llm.Usage
		wantBody  string
		wantFirst bool
	}{
		{
			name: "stream cut mid-event after two deltas",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nRequest-Id: req_cut\r\n\r\n",
			body: chunked(turnEvents[0], turnEvents[1], turnEvents[2], turnEvents[3], turnEvents[4], turnEvents[6][:40]),
			want: cutUsage, wantBody: strings.Join(turnEvents[:5], "") + turnEvents[6][:40], wantFirst: true,
		},
		{
			name: "stream cut right after message_start",
			head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
			body: chunked(turnEvents[0]),
			want: llm.Usage{InputTokens: 12, OutputTokens: 1, CacheReadTokens: 90112, CacheWrite5mTokens: 2048}, wantBody: turnEvents[0],
		},
		{
			name:     "json body shorter than its Content-Length",
			head:     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n",
			body:     `{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hel`,
			wantBody: `{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hel`, wantFirst: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := hijackUpstream(t, tc.head, tc.body)
			t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			p, _ := New(Config{Name: "a", BaseURL: srv.URL, APIKeys: []string{keyA}, Transport: http.DefaultTransport, Now: func() time.Time { return t0 }})
			call := messagesCall(claudeCodeHeader())
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			w := testkit.NewFlushRecorder(false)
			res := p.Relay(w, resp, call)
			if res.UpstreamErr == nil || res.ClientErr != nil {
				t.Fatalf("UpstreamErr %v ClientErr %v, want a cut", res.UpstreamErr, res.ClientErr)
			}
			if res.Usage != tc.want {
				t.Errorf("usage %+v\nwant  %+v", res.Usage, tc.want)
			}
			if w.Body.String() != tc.wantBody || res.BytesWritten != int64(len(tc.wantBody)) {
				t.Errorf("client got %q (%d)", w.Body.String(), res.BytesWritten)
			}
			if res.FirstToken.IsZero() == tc.wantFirst {
				t.Errorf("FirstToken %v", res.FirstToken)
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
		failAt    int // first failing write
		want      llm.Usage
		wantReads int
	}{
		// Write 1 is message_start; the third event (ping) fails to write,
		// so the text deltas never leave the upstream.
		{name: "gone before any delta", failAt: 3, want: llm.Usage{InputTokens: 12, OutputTokens: 1, CacheReadTokens: 90112, CacheWrite5mTokens: 2048}, wantReads: 3},
		// The fifth event (second delta) is metered though its write failed.
		{name: "gone on second delta", failAt: 5, want: cutUsage, wantReads: 5},
		{name: "gone on message_stop", failAt: 8, want: turnUsage, wantReads: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, "")
			body := &eventBody{events: turnEvents}
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body, ContentLength: -1}
			w := testkit.NewFlushRecorder(false)
			w.FailAt = tc.failAt
			res := p.Relay(w, resp, messagesCall(claudeCodeHeader()))
			if !errors.Is(res.ClientErr, testkit.ErrClientGone) || res.UpstreamErr != nil {
				t.Fatalf("ClientErr %v UpstreamErr %v", res.ClientErr, res.UpstreamErr)
			}
			if res.Usage != tc.want {
				t.Errorf("usage %+v\nwant  %+v", res.Usage, tc.want)
			}
			if body.reads != tc.wantReads || !body.closed {
				t.Errorf("%d upstream reads (want %d), closed %v", body.reads, tc.wantReads, body.closed)
			}
			if want := strings.Join(turnEvents[:tc.failAt-1], ""); w.Body.String() != want || res.BytesWritten != int64(len(want)) {
				t.Errorf("client got %d bytes, want %d", res.BytesWritten, len(want))
			}
		})
	}
}

func TestRelayPassThrough(t *testing.T) {
	const nonStreamed = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":1,"server_tool_use":{"web_search_requests":0}},"content":[{"type":"tool_use","id":"toolu_1","name":"x","input":{"usage":{"output_tokens":99999}}}],"stop_reason":"max_tokens","stop_sequence":null}`
	for _, tc := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantUsage  llm.Usage
		wantType   string
		wantHeader http.Header // subset the client must see
		wantFirst  bool
	}{
		{
			name: "529 overloaded", status: 529,
			header:     http.Header{"Content-Type": {"application/json"}, "Request-Id": {"req_529"}, "X-Should-Retry": {"true"}},
			body:       `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_529"}`,
			wantType:   "overloaded_error",
			wantHeader: http.Header{"Request-Id": {"req_529"}, "X-Should-Retry": {"true"}},
		},
		{
			name: "429 rate limited", status: 429,
			header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"17"}, "Anthropic-Ratelimit-Input-Tokens-Remaining": {"0"},
				"Anthropic-Ratelimit-Input-Tokens-Reset": {"2026-03-04T05:07:00Z"}},
			body:     `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (0c0f6b7e) of 450,000 input tokens per minute."},"request_id":"req_429"}`,
			wantType: "rate_limit_error",
			wantHeader: http.Header{"Retry-After": {"17"}, "Anthropic-Ratelimit-Input-Tokens-Remaining": {"0"},
				"Anthropic-Ratelimit-Input-Tokens-Reset": {"2026-03-04T05:07:00Z"}},
		},
		{
			name: "400 invalid request", status: 400,
			header:   http.Header{"Content-Type": {"application/json"}},
			body:     `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5-20250929"},"request_id":"req_400"}`,
			wantType: "invalid_request_error",
		},
		{
			name: "502 html from a proxy", status: 502,
			header: http.Header{"Content-Type": {"text/html"}},
			body:   "<html><body>Bad Gateway</body></html>\n",
		},
		{
			name: "error status with an SSE content type is not metered", status: 500,
			header:   http.Header{"Content-Type": {"text/event-stream"}},
			body:     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}\n\n",
			wantType: "",
		},
		{
			name: "200 non-streamed message", status: 200,
			header:     http.Header{"Content-Type": {"application/json"}, "Request-Id": {"req_ok"}},
			body:       nonStreamed,
			wantUsage:  llm.Usage{InputTokens: 2095, OutputTokens: 1, CacheReadTokens: 1024, Complete: true},
			wantHeader: http.Header{"Request-Id": {"req_ok"}, "Content-Length": {fmt.Sprint(len(nonStreamed))}},
			wantFirst:  true,
		},
		{
			name: "200 count_tokens", status: 200,
			header:    http.Header{"Content-Type": {"application/json"}},
			body:      `{"input_tokens":2095}`,
			wantUsage: llm.Usage{Complete: true},
			wantFirst: true,
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
			t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			p, _ := New(Config{Name: "a", BaseURL: srv.URL, APIKeys: []string{keyA}, Transport: http.DefaultTransport, Now: func() time.Time { return t0 }})
			call := messagesCall(claudeCodeHeader())
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			rec := httptest.NewRecorder()
			res := p.Relay(rec, resp, call)
			if rec.Code != tc.status || res.Status != tc.status {
				t.Errorf("client status %d, result %d, want %d", rec.Code, res.Status, tc.status)
			}
			if rec.Body.String() != tc.body || res.BytesWritten != int64(len(tc.body)) {
				t.Errorf("client body %q, want byte-identical %q", rec.Body.String(), tc.body)
			}
			if res.ErrorType != tc.wantType || res.Usage != tc.wantUsage || res.UpstreamErr != nil || res.ClientErr != nil {
				t.Errorf("result %+v", res)
			}
			if res.FirstToken.IsZero() == tc.wantFirst {
				t.Errorf("FirstToken %v", res.FirstToken)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header()[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("Alt-Svc") != "" {
				t.Errorf("Set-Cookie/Alt-Svc forwarded: %v", rec.Header())
			}
			if ct := tc.header.Get("Content-Type"); rec.Header().Get("Content-Type") != ct {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), ct)
			}
		})
	}
}

func TestRelayClosesBodyOnEveryPath(t *testing.T) {
	p := newProvider(t, "")
	for _, resp := range []*http.Response{
		{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}},
		{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}},
		{StatusCode: 529, Header: http.Header{}},
	} {
		b := &eventBody{events: []string{"x"}}
		resp.Body = b
		resp.ContentLength = -1
		p.Relay(httptest.NewRecorder(), resp, messagesCall(nil))
		if !b.closed {
			t.Errorf("status %d %s: body not closed", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"text/event-stream; charset=utf-8": true,
		"Text/Event-Stream":                true,
		"text/event-streamx":               false,
		"application/json":                 false,
		"":                                 false,
	} {
		if got := stream.IsEventStream(ct); got != want {
			t.Errorf("IsEventStream(%q) = %v", ct, got)
		}
	}
}

// TestKeyRotationHealth: a key answered 401 leaves the rotation (reported
// once), a 429 moves the same request on to the next key, and the client
// sees the answer of the key that worked.
func TestKeyRotationHealth(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.Header.Get("X-Api-Key")
		mu.Lock()
		seen[k]++
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		switch k {
		case keyA:
			w.WriteHeader(401)
			fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		case keyB:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
		default:
			fmt.Fprint(w, `{"type":"message","usage":{"input_tokens":1,"output_tokens":1}}`)
		}
	}))
	defer srv.Close()
	var events []providers.KeyEvent
	p, err := New(Config{Name: "rot", BaseURL: srv.URL, APIKeys: []string{keyA, keyB, keyC}, Transport: http.DefaultTransport,
		OnKeyEvent: func(e providers.KeyEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	call := &llm.Call{Surface: llm.SurfaceAnthropicMessages, Body: []byte(`{"model":"m"}`), Header: http.Header{}, PathSuffix: "/v1/messages"}
	for range 6 {
		resp, err := p.Send(context.Background(), call)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("resp %v err %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[keyA] != 1 {
		t.Errorf("rejected key used %d times, want once", seen[keyA])
	}
	if seen[keyC] != 6 {
		t.Errorf("working key used %d times", seen[keyC])
	}
	disabled := 0
	for _, e := range events {
		if e.Disabled {
			disabled++
			if e.Key != 1 || e.Status != 401 {
				t.Errorf("event %+v", e)
			}
		}
	}
	if disabled != 1 {
		t.Errorf("events %+v", events)
	}
}
