package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

const (
	keyA = "foundry-key-AAAAAAAAAAAAAAAA"
	keyB = "foundry-key-BBBBBBBBBBBBBBBB"
	keyC = "foundry-key-CCCCCCCCCCCCCCCC"
	// virtualKey is the client's gateway credential: it must never leave.
	virtualKey   = "sk-gw-virtual-key-of-alice"
	tenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID     = "0c5e8a51-1111-2222-3333-444455556666"
	clientSecret = "Zq8~s3cr3t+value/with=specials&more"
)

const claudeCodeBody = `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"metadata":{"user_id":"{\"device_id\":\"d\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1,2,3]}`

const claudeCodeRest = `"messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"metadata":{"user_id":"{\"device_id\":\"d\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1,2,3]`

func claudeCodeHeader() http.Header {
	return http.Header{
		"Authorization":            {"Bearer " + virtualKey},
		"X-Api-Key":                {virtualKey},
		"Api-Key":                  {virtualKey},
		"X-Goog-Api-Key":           {virtualKey},
		"Proxy-Authorization":      {"Basic Zm9vOmJhcg=="},
		"Cookie":                   {"session=abc"},
		"Anthropic-Version":        {"2023-06-01"},
		"Anthropic-Beta":           {"claude-code-20250219,interleaved-thinking-2025-05-14"},
		"Anthropic-Future-Header":  {"kept"},
		"User-Agent":               {"claude-cli/2.1.3 (external, cli)"},
		"X-App":                    {"cli"},
		"X-Claude-Code-Session-Id": {"8d4e0f3a-1b2c-4d5e-8f90-123456789abc"},
		"X-Stainless-Lang":         {"js"},
		"Accept":                   {"application/json"},
		"Accept-Encoding":          {"gzip, br"},
		"Content-Type":             {"application/json"},
		"Content-Length":           {"999999"},
		"Connection":               {"keep-alive, X-Hop-Secret"},
		"X-Hop-Secret":             {"do-not-forward"},
		"Te":                       {"trailers"},
		"Host":                     {"gateway.internal"},
		"X-Project":                {"billing-rewrite"},
	}
}

var replyEvents = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_fdry_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":9000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":200,\"ephemeral_1h_input_tokens\":100},\"output_tokens\":1}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello from Foundry\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

const replyJSON = `{"id":"msg_fdry_02","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":9000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100},"output_tokens":42}}`

var replyUsage = llm.Usage{InputTokens: 12, OutputTokens: 42, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, Complete: true}

type gotRequest struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

func recordingUpstream(t *testing.T, handler http.HandlerFunc) (*httptest.Server, chan gotRequest) {
	t.Helper()
	got := make(chan gotRequest, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// replyHandler answers like Foundry: SSE when the body asks for a stream,
// JSON otherwise, {"input_tokens":N} for count_tokens.
func replyHandler(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/messages/count_tokens"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1234}`)
	case r.Header.Get("X-Test-Stream") == "1":
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, e := range replyEvents {
			io.WriteString(w, e)
			rc.Flush()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, replyJSON)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "foundry-test"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if len(cfg.APIKeys) == 0 && cfg.TokenSource == nil && cfg.TenantID == "" && cfg.ClientID == "" && cfg.ClientSecret == "" {
		cfg.APIKeys = []string{keyA}
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNew(t *testing.T) {
	rt := http.DefaultTransport
	tok := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantBase string
		wantErr  string
	}{
		{name: "resource", cfg: Config{Resource: "my-res", APIKeys: []string{keyA}, Transport: rt}, wantBase: "https://my-res.services.ai.azure.com/anthropic"},
		{name: "sdk base url", cfg: Config{BaseURL: "https://my-res.services.ai.azure.com/anthropic/", APIKeys: []string{keyA}, Transport: rt}, wantBase: "https://my-res.services.ai.azure.com/anthropic"},
		{name: "proxy base url", cfg: Config{BaseURL: "http://127.0.0.1:8080", APIKeys: []string{keyA}, Transport: rt}, wantBase: "http://127.0.0.1:8080"},
		{name: "entra", cfg: Config{Resource: "r", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, Transport: rt}, wantBase: "https://r.services.ai.azure.com/anthropic"},
		{name: "entra domain tenant, own token url", cfg: Config{Resource: "r", TenantID: "contoso.onmicrosoft.com", ClientID: clientID, ClientSecret: clientSecret,
			TokenURL: "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token", Transport: rt}, wantBase: "https://r.services.ai.azure.com/anthropic"},
		{name: "token source", cfg: Config{Resource: "r", TokenSource: tok, Transport: rt}, wantBase: "https://r.services.ai.azure.com/anthropic"},

		{name: "no transport", cfg: Config{Resource: "r", APIKeys: []string{keyA}}, wantErr: "transport"},
		{name: "no endpoint", cfg: Config{APIKeys: []string{keyA}, Transport: rt}, wantErr: "a resource or a base_url"},
		{name: "both endpoints", cfg: Config{Resource: "r", BaseURL: "https://r.services.ai.azure.com/anthropic", APIKeys: []string{keyA}, Transport: rt}, wantErr: "mutually exclusive"},
		{name: "bad resource", cfg: Config{Resource: "my.res", APIKeys: []string{keyA}, Transport: rt}, wantErr: "not a valid Foundry resource"},
		{name: "resource leading hyphen", cfg: Config{Resource: "-r", APIKeys: []string{keyA}, Transport: rt}, wantErr: "not a valid Foundry resource"},
		{name: "azure host without /anthropic", cfg: Config{BaseURL: "https://r.services.ai.azure.com/", APIKeys: []string{keyA}, Transport: rt}, wantErr: "lacks the /anthropic path"},
		{name: "trailing v1", cfg: Config{BaseURL: "https://r.services.ai.azure.com/anthropic/v1", APIKeys: []string{keyA}, Transport: rt}, wantErr: "ends in /v1"},
		{name: "bad scheme", cfg: Config{BaseURL: "ftp://x/anthropic", APIKeys: []string{keyA}, Transport: rt}, wantErr: "scheme"},
		{name: "no host", cfg: Config{BaseURL: "https:///anthropic", APIKeys: []string{keyA}, Transport: rt}, wantErr: "no host"},
		{name: "query", cfg: Config{BaseURL: "https://x/anthropic?a=1", APIKeys: []string{keyA}, Transport: rt}, wantErr: "query"},
		{name: "fragment", cfg: Config{BaseURL: "https://x/anthropic#f", APIKeys: []string{keyA}, Transport: rt}, wantErr: "fragment"},
		{name: "user info", cfg: Config{BaseURL: "https://u:p@x/anthropic", APIKeys: []string{keyA}, Transport: rt}, wantErr: "credentials"},
		{name: "unparseable", cfg: Config{BaseURL: "http://[::1", APIKeys: []string{keyA}, Transport: rt}, wantErr: "base_url"},
		{name: "no credentials", cfg: Config{Resource: "r", Transport: rt}, wantErr: "credentials are required"},
		{name: "keys and entra", cfg: Config{Resource: "r", APIKeys: []string{keyA}, TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, Transport: rt}, wantErr: "mutually exclusive"},
		{name: "keys and token source", cfg: Config{Resource: "r", APIKeys: []string{keyA}, TokenSource: tok, Transport: rt}, wantErr: "mutually exclusive"},
		{name: "empty key", cfg: Config{Resource: "r", APIKeys: []string{keyA, ""}, Transport: rt}, wantErr: "#2"},
		{name: "key with newline", cfg: Config{Resource: "r", APIKeys: []string{keyA + "\n"}, Transport: rt}, wantErr: "control"},
		{name: "too many keys", cfg: Config{Resource: "r", APIKeys: make([]string, providers.MaxKeys+1), Transport: rt}, wantErr: "at most"},
		{name: "entra missing secret", cfg: Config{Resource: "r", TenantID: tenant, ClientID: clientID, Transport: rt}, wantErr: "client_secret missing"},
		{name: "entra missing tenant and client", cfg: Config{Resource: "r", ClientSecret: clientSecret, Transport: rt}, wantErr: "tenant_id, client_id missing"},
		{name: "entra bad tenant", cfg: Config{Resource: "r", TenantID: "a/b", ClientID: clientID, ClientSecret: clientSecret, Transport: rt}, wantErr: "tenant_id"},
		{name: "entra bad token url", cfg: Config{Resource: "r", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, TokenURL: "login.example/token", Transport: rt}, wantErr: "token_url"},
		{name: "entra secret with newline", cfg: Config{Resource: "r", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret + "\n", Transport: rt}, wantErr: "control"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name = "fy"
			p, err := New(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), `azure provider "fy"`) {
					t.Errorf("error does not name the provider: %v", err)
				}
				if strings.Contains(err.Error(), keyA) || strings.Contains(err.Error(), clientSecret) {
					t.Errorf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.base != tc.wantBase {
				t.Errorf("base %q, want %q", p.base, tc.wantBase)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	p := newProvider(t, Config{Name: "fdry", Resource: "r"})
	if p.Name() != "fdry" || p.Family() != "azure" {
		t.Fatalf("Name %q Family %q", p.Name(), p.Family())
	}
	for s := llm.SurfaceUnknown; s <= llm.SurfaceVertexCountTokens+1; s++ {
		want := s == llm.SurfaceAnthropicMessages || s == llm.SurfaceAnthropicCountTokens
		if p.Serves(s) != want {
			t.Errorf("Serves(%s) = %v", s, !want)
		}
	}
	if BaseURLFor("acme") != "https://acme.services.ai.azure.com/anthropic" {
		t.Error(BaseURLFor("acme"))
	}
}

func TestSendTranslation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		models      providers.ModelMap
		call        llm.Call
		header      func(http.Header)
		wantPath    string
		wantQuery   string
		wantBody    string
		wantVersion string
	}{
		{
			name: "claude code: dated model → canonical deployment, query kept",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5",
				Stream: true, Body: []byte(claudeCodeBody), RawQuery: "beta=true", PathSuffix: "/v1/messages"},
			wantPath: "/anthropic/v1/messages", wantQuery: "beta=true",
			wantBody: `{"model":"claude-sonnet-4-5",` + claudeCodeRest + `}`, wantVersion: "2023-06-01",
		},
		{
			name: "canonical model: body byte-identical",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-6", CanonicalModel: "claude-opus-4-6",
				Body: []byte(`{ "model" : "claude-opus-4-6", "max_tokens": 1 }`)},
			wantPath: "/anthropic/v1/messages",
			wantBody: `{ "model" : "claude-opus-4-6", "max_tokens": 1 }`, wantVersion: "2023-06-01",
		},
		{
			name:   "mapped deployment",
			models: providers.ModelMap{{Glob: "claude-haiku-*", ID: "team-haiku"}},
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-haiku-4-5", CanonicalModel: "claude-haiku-4-5",
				Body: []byte(`{"max_tokens":1,"model":"claude-haiku-4-5","messages":[]}`)},
			wantPath: "/anthropic/v1/messages",
			wantBody: `{"max_tokens":1,"model":"team-haiku","messages":[]}`, wantVersion: "2023-06-01",
		},
		{
			name: "version defaulted when absent",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-6", CanonicalModel: "claude-opus-4-6",
				Body: []byte(`{"model":"claude-opus-4-6"}`)},
			header:   func(h http.Header) { h.Del("Anthropic-Version") },
			wantPath: "/anthropic/v1/messages", wantBody: `{"model":"claude-opus-4-6"}`, wantVersion: DefaultVersion,
		},
		{
			name: "client version kept",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-6", CanonicalModel: "claude-opus-4-6",
				Body: []byte(`{"model":"claude-opus-4-6"}`)},
			header:   func(h http.Header) { h.Set("Anthropic-Version", "2099-01-01") },
			wantPath: "/anthropic/v1/messages", wantBody: `{"model":"claude-opus-4-6"}`, wantVersion: "2099-01-01",
		},
		{
			name: "count tokens",
			call: llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5",
				Body: []byte(`{"model":"claude-sonnet-4-5-20250929","messages":[]}`), RawQuery: "beta=true", PathSuffix: "/v1/messages/count_tokens"},
			wantPath: "/anthropic/v1/messages/count_tokens", wantQuery: "beta=true",
			wantBody: `{"model":"claude-sonnet-4-5","messages":[]}`, wantVersion: "2023-06-01",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, replyHandler)
			p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", Models: tc.models})
			call := tc.call
			call.Header = claudeCodeHeader()
			if tc.header != nil {
				tc.header(call.Header)
			}
			inbound := call.Header.Clone()
			origBody := string(call.Body)
			resp, err := p.Send(context.Background(), &call)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r := <-got
			if r.method != http.MethodPost || r.path != tc.wantPath || r.rawQuery != tc.wantQuery {
				t.Errorf("upstream saw %s %s?%s, want POST %s?%s", r.method, r.path, r.rawQuery, tc.wantPath, tc.wantQuery)
			}
			if string(r.body) != tc.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.wantBody)
			}
			if string(call.Body) != origBody || !reflect.DeepEqual(call.Header, inbound) {
				t.Error("Send modified the inbound call")
			}
			h := r.header
			if got := h.Values("Anthropic-Version"); !reflect.DeepEqual(got, []string{tc.wantVersion}) {
				t.Errorf("anthropic-version %q, want %q", got, tc.wantVersion)
			}
			if h.Values("Api-Key")[0] != keyA || h.Values("X-Api-Key")[0] != keyA || len(h.Values("Api-Key")) != 1 || len(h.Values("X-Api-Key")) != 1 {
				t.Errorf("api-key %q x-api-key %q, want the provider key once each", h.Values("Api-Key"), h.Values("X-Api-Key"))
			}
			checkHeaders(t, h, inbound)
			if _, ok := h["Authorization"]; ok {
				t.Errorf("Authorization sent with api-key auth: %q", h["Authorization"])
			}
		})
	}
}

func checkHeaders(t *testing.T, h, inbound http.Header) {
	t.Helper()
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
	for _, stripped := range []string{"X-Goog-Api-Key", "Proxy-Authorization", "Cookie", "X-Hop-Secret", "Te"} {
		if v, ok := h[stripped]; ok {
			t.Errorf("%s forwarded: %q", stripped, v)
		}
	}
	for _, kept := range []string{"Anthropic-Beta", "Anthropic-Future-Header", "User-Agent", "X-App", "X-Claude-Code-Session-Id", "X-Stainless-Lang", "Accept", "Content-Type", "X-Project"} {
		if got := h[kept]; !reflect.DeepEqual(got, inbound[kept]) {
			t.Errorf("%s = %q, want %q", kept, got, inbound[kept])
		}
	}
}

func messagesCall() *llm.Call {
	return &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
		Body: []byte(`{"model":"claude-sonnet-4-5","max_tokens":1}`), Header: claudeCodeHeader()}
}

func TestKeyRotation(t *testing.T) {
	srv, got := recordingUpstream(t, replyHandler)
	p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", APIKeys: []string{keyA, keyB, keyC}})
	var seen []string
	for range 7 {
		resp, err := p.Send(context.Background(), messagesCall())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := (<-got).header
		if h.Get("Api-Key") != h.Get("X-Api-Key") {
			t.Fatalf("api-key %q x-api-key %q differ", h.Get("Api-Key"), h.Get("X-Api-Key"))
		}
		seen = append(seen, h.Get("Api-Key"))
	}
	if want := []string{keyA, keyB, keyC, keyA, keyB, keyC, keyA}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("keys %q, want %q", seen, want)
	}

	// A rejected key leaves the rotation; the request is retried with the next.
	var events []providers.KeyEvent
	var mu sync.Mutex
	srv2, got2 := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Api-Key") == keyB {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid api key"}}`)
			return
		}
		replyHandler(w, r)
	})
	p2 := newProvider(t, Config{BaseURL: srv2.URL + "/anthropic", APIKeys: []string{keyA, keyB, keyC},
		OnKeyEvent: func(e providers.KeyEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	seen = nil
	for range 4 {
		resp, err := p2.Send(context.Background(), messagesCall())
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("resp %v err %v", resp, err)
		}
		resp.Body.Close()
	}
	close(got2)
	for r := range got2 {
		seen = append(seen, r.header.Get("Api-Key"))
	}
	if want := []string{keyA, keyB, keyC, keyA, keyC}; !reflect.DeepEqual(seen, want) {
		t.Errorf("keys %q, want %q", seen, want)
	}
	if len(events) != 1 || events[0] != (providers.KeyEvent{Key: 2, Status: 401, Disabled: true}) {
		t.Errorf("events %+v", events)
	}
}

// entraServer is a Microsoft identity platform token endpoint for the
// client-credentials grant.
type entraServer struct {
	t       testing.TB
	srv     *httptest.Server
	fetches atomic.Int64
	fail    atomic.Int64
	expires atomic.Int64
}

func newEntraServer(t testing.TB) *entraServer {
	e := &entraServer{t: t}
	e.expires.Store(3599)
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *entraServer) tokenURL() string { return e.srv.URL + "/" + tenant + "/oauth2/v2.0/token" }

func (e *entraServer) serve(w http.ResponseWriter, r *http.Request) {
	n := e.fetches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/"+tenant+"/oauth2/v2.0/token" {
		e.t.Errorf("token request %s %s", r.Method, r.URL.Path)
	}
	if err := r.ParseForm(); err != nil {
		e.t.Error(err)
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" || f.Get("scope") != Scope || f.Get("client_id") != clientID || f.Get("client_secret") != clientSecret {
		e.t.Errorf("token request form %v", f)
	}
	if _, _, ok := r.BasicAuth(); ok {
		e.t.Error("client credentials sent in a Basic header as well as the form")
	}
	if e.fail.Load() != 0 {
		w.WriteHeader(401)
		// Echo the secret, as a misbehaving endpoint might: it must be redacted.
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: %s (%s)"}`, clientSecret, url.QueryEscape(clientSecret))
		return
	}
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":3599,"access_token":"eyJ0eXAi.entra-%d"}`, e.expires.Load(), n)
}

func TestEntraClientCredentials(t *testing.T) {
	es := newEntraServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	var viaTransport atomic.Int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			viaTransport.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret,
		TokenURL: es.tokenURL(), Transport: rt})
	if es.fetches.Load() != 0 {
		t.Fatal("New fetched a token")
	}
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := p.Send(context.Background(), messagesCall())
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	for range n {
		r := <-got
		if a := r.header.Values("Authorization"); !reflect.DeepEqual(a, []string{"Bearer eyJ0eXAi.entra-1"}) {
			t.Fatalf("Authorization %q", a)
		}
		for _, k := range []string{"Api-Key", "X-Api-Key"} {
			if v, ok := r.header[k]; ok {
				t.Errorf("%s sent with Entra auth: %q", k, v)
			}
		}
	}
	if f := es.fetches.Load(); f != 1 || viaTransport.Load() != 1 {
		t.Errorf("%d token fetches (%d through the transport) for %d requests, want 1", f, viaTransport.Load(), n)
	}

	// A token inside oauth2's 10 s early-expiry window is replaced at once.
	es2 := newEntraServer(t)
	es2.expires.Store(5)
	p2 := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, TokenURL: es2.tokenURL()})
	for i := 1; i <= 2; i++ {
		resp, err := p2.Send(context.Background(), messagesCall())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if a := (<-got).header.Get("Authorization"); a != fmt.Sprintf("Bearer eyJ0eXAi.entra-%d", i) {
			t.Errorf("request %d: Authorization %q", i, a)
		}
	}
}

// TestEntraDefaultTokenURL: without TokenURL the grant goes to
// login.microsoftonline.com/{tenant} (rerouted to the fake before dialing).
func TestEntraDefaultTokenURL(t *testing.T) {
	es := newEntraServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	target, _ := url.Parse(es.srv.URL)
	var mu sync.Mutex
	var tokenURLs []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host == "login.microsoftonline.com" {
			mu.Lock()
			tokenURLs = append(tokenURLs, r.URL.String())
			mu.Unlock()
			r2 := r.Clone(r.Context())
			r2.URL.Scheme, r2.URL.Host, r2.Host = target.Scheme, target.Host, ""
			return http.DefaultTransport.RoundTrip(r2)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, Transport: rt})
	resp, err := p.Send(context.Background(), messagesCall())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-got
	if want := "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/token"; len(tokenURLs) != 1 || tokenURLs[0] != want {
		t.Errorf("token URLs %q, want %q", tokenURLs, want)
	}
}

func TestEntraTokenFailure(t *testing.T) {
	es := newEntraServer(t)
	es.fail.Store(1)
	sent := false
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			sent = true
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	p := newProvider(t, Config{Name: "fdry", Resource: "r", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, TokenURL: es.tokenURL(), Transport: rt})
	_, err := p.Send(context.Background(), messagesCall())
	var te *providers.TokenError
	if !errors.As(err, &te) || te.Provider != "fdry" || te.Family != "azure" {
		t.Fatalf("err %#v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `azure provider "fdry": could not obtain an Entra ID access token: `) || !strings.Contains(msg, "AADSTS7000215") ||
		strings.Contains(msg, clientSecret) || strings.Contains(msg, url.QueryEscape(clientSecret)) || strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}
	if sent {
		t.Error("a request was sent without a token")
	}
	// The next request tries again.
	es.fail.Store(0)
	if _, err := p.Send(context.Background(), messagesCall()); errors.As(err, &te) {
		t.Errorf("after recovery: %v", err)
	}

	// Token source errors and empty tokens.
	for _, ts := range []oauth2.TokenSource{
		oauth2.StaticTokenSource(&oauth2.Token{}),
		failingTokens{errors.New(strings.Repeat("x", 3000))},
	} {
		p := newProvider(t, Config{Name: "ts", Resource: "r", TokenSource: ts, Transport: rt})
		_, err := p.Send(context.Background(), messagesCall())
		if !errors.As(err, &te) || len(err.Error()) > 700 {
			t.Errorf("token source: %v", err)
		}
	}
}

type failingTokens struct{ err error }

func (f failingTokens) Token() (*oauth2.Token, error) { return nil, f.err }

func TestSendErrors(t *testing.T) {
	p := newProvider(t, Config{BaseURL: "http://127.0.0.1:1/anthropic"})
	for _, s := range []llm.Surface{llm.SurfaceOpenAIChat, llm.SurfaceVertexRawPredict, llm.SurfaceBedrockInvoke} {
		if _, err := p.Send(context.Background(), &llm.Call{Surface: s}); err == nil || !strings.Contains(err.Error(), "does not serve") {
			t.Errorf("%s: %v", s, err)
		}
	}
	c := messagesCall()
	c.Model, c.Body = "claude-sonnet-4-5-20250929", []byte("not json")
	if _, err := p.Send(context.Background(), c); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("bad body: %v", err)
	}
	_, err := p.Send(context.Background(), messagesCall())
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Host != "127.0.0.1:1" || ue.Provider != "foundry-test" || strings.Contains(err.Error(), keyA) {
		t.Fatalf("connection refused: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Send(ctx, messagesCall()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}

	// Transports that echo headers never leak the key or the token.
	echo := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("refused %s %s", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
	})
	pk := newProvider(t, Config{Resource: "r", APIKeys: []string{keyB}, Transport: echo})
	if _, err := pk.Send(context.Background(), messagesCall()); err == nil || strings.Contains(err.Error(), keyB) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("key: %v", err)
	}
	pt := newProvider(t, Config{Resource: "r", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "entra-secret-token"}), Transport: echo})
	if _, err := pt.Send(context.Background(), messagesCall()); err == nil || strings.Contains(err.Error(), "entra-secret-token") {
		t.Errorf("token: %v", err)
	}
}

func TestRelayEndToEnd(t *testing.T) {
	srv, got := recordingUpstream(t, replyHandler)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic", Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name     string
		stream   bool
		wantBody string
		wantCT   string
	}{
		{"stream", true, strings.Join(replyEvents, ""), "text/event-stream"},
		{"json", false, replyJSON, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := messagesCall()
			call.Stream = tc.stream
			if tc.stream {
				call.Header.Set("X-Test-Stream", "1")
			}
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			<-got
			w := httptest.NewRecorder()
			res := p.Relay(w, resp, call)
			if w.Body.String() != tc.wantBody || w.Header().Get("Content-Type") != tc.wantCT {
				t.Errorf("client got %s (%s)", w.Body, w.Header().Get("Content-Type"))
			}
			if res.Usage != replyUsage || res.Status != 200 || res.BytesWritten != int64(len(tc.wantBody)) || !res.FirstToken.Equal(t0) ||
				res.UpstreamErr != nil || res.ClientErr != nil {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestRelayErrorsPassThrough(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		wantType string
	}{
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_1"}`, "rate_limit_error"},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "overloaded_error"},
		{404, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`, ""},
	} {
		srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		p := newProvider(t, Config{BaseURL: srv.URL + "/anthropic"})
		call := messagesCall()
		resp, err := p.Send(context.Background(), call)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		res := p.Relay(w, resp, call)
		if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Retry-After") != "7" || res.Status != tc.status ||
			(tc.wantType != "" && res.ErrorType != tc.wantType) || res.Usage != (llm.Usage{}) {
			t.Errorf("%d: code %d body %s result %+v", tc.status, w.Code, w.Body, res)
		}
	}
}

// TestEntraTokenOutlivesConfigContext: the context New was given (Caddy's
// config context) may be cancelled while requests still need tokens.
func TestEntraTokenOutlivesConfigContext(t *testing.T) {
	es := newEntraServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := New(ctx, Config{Name: "c", BaseURL: srv.URL + "/anthropic", TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret,
		TokenURL: es.tokenURL(), Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp, err := p.Send(context.Background(), messagesCall())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := (<-got).header.Get("Authorization"); a != "Bearer eyJ0eXAi.entra-1" {
		t.Errorf("Authorization %q", a)
	}
}
