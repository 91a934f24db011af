package vertex

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

const (
	// virtualKey is the client's gateway credential: it must never leave.
	virtualKey = "sk-gw-virtual-key-of-alice"
	// staticToken is what staticTokens issues.
	staticToken = "ya29.static-access-token-XYZ"
)

// claudeCodeBody is a Messages body as Claude Code sends it (model first,
// stream near the end, unknown fields, escapes).
const claudeCodeBody = `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1,2,3]}`

// claudeCodeRest is claudeCodeBody after its model member.
const claudeCodeRest = `"messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1,2,3]`

// vertexBody is what Claude Code's Vertex mode sends: no model, the
// version already in the body.
const vertexBody = `{"anthropic_version":"vertex-2023-10-16","messages":[{"role":"user","content":"hi"}],"max_tokens":32000,"stream":true, "x_unknown" : {"a":[1, 2]}}`

// claudeCodeHeader is what Claude Code 2.1 sends, plus headers a gateway
// must strip.
func claudeCodeHeader() http.Header {
	return http.Header{
		"Authorization":            {"Bearer " + virtualKey},
		"X-Api-Key":                {virtualKey},
		"Api-Key":                  {virtualKey},
		"X-Goog-Api-Key":           {virtualKey},
		"X-Goog-User-Project":      {"the-clients-own-project"},
		"Proxy-Authorization":      {"Basic Zm9vOmJhcg=="},
		"Cookie":                   {"session=abc"},
		"Anthropic-Version":        {"2023-06-01"},
		"Anthropic-Beta":           {"claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"},
		"User-Agent":               {"claude-cli/2.1.3 (external, cli)"},
		"X-App":                    {"cli"},
		"X-Claude-Code-Session-Id": {"8d4e0f3a-1b2c-4d5e-8f90-123456789abc"},
		"X-Stainless-Lang":         {"js"},
		"Accept":                   {"application/json"},
		"Accept-Encoding":          {"gzip, deflate, br, zstd"},
		"Content-Type":             {"application/json; charset=utf-8"},
		"Content-Length":           {"999999"},
		"Connection":               {"keep-alive, X-Hop-Secret"},
		"X-Hop-Secret":             {"do-not-forward"},
		"Te":                       {"trailers"},
		"Host":                     {"gateway.internal"},
		"X-Project":                {"billing-rewrite"},
	}
}

// The canonical reply of the mock upstreams.
var replyEvents = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_vrtx_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":9000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":200,\"ephemeral_1h_input_tokens\":100},\"output_tokens\":1}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello from Vertex\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

const replyJSON = `{"id":"msg_vrtx_02","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":9000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100},"output_tokens":42}}`

var replyUsage = llm.Usage{InputTokens: 12, OutputTokens: 42, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, Complete: true}

// gotRequest is what an upstream saw.
type gotRequest struct {
	method, path, rawPath, rawQuery string
	header                          http.Header
	body                            []byte
	host                            string
}

// recordingUpstream answers every request with handler after recording it.
func recordingUpstream(t *testing.T, handler http.HandlerFunc) (*httptest.Server, chan gotRequest) {
	t.Helper()
	got := make(chan gotRequest, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream read body: %v", err)
		}
		got <- gotRequest{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b, r.Host}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// replyHandler answers like Vertex: SSE for streamRawPredict, JSON
// otherwise, {"input_tokens":N} for count-tokens.
func replyHandler(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/count-tokens:rawPredict"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1234}`)
	case strings.HasSuffix(r.URL.Path, ":streamRawPredict"):
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

// staticTokens issues staticToken forever and counts calls.
type staticTokens struct{ n atomic.Int64 }

func (s *staticTokens) Token() (*oauth2.Token, error) {
	s.n.Add(1)
	return &oauth2.Token{AccessToken: staticToken, TokenType: "Bearer"}, nil
}

func newProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "vertex-test"
	}
	if cfg.Project == "" {
		cfg.Project = "gw-project"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east5"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.TokenSource == nil && cfg.CredentialsFile == "" && cfg.CredentialsJSON == nil {
		cfg.TokenSource = &staticTokens{}
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// redirectTransport sends every request to target's host instead of the
// one in its URL (so default Google hosts can be asserted offline), after
// recording the URL it was given.
type redirectTransport struct {
	target *url.URL
	mu     sync.Mutex
	urls   []string
}

func (rt *redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.urls = append(rt.urls, r.URL.String())
	rt.mu.Unlock()
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = rt.target.Scheme, rt.target.Host, ""
	return http.DefaultTransport.RoundTrip(r2)
}

func (rt *redirectTransport) seen() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.urls...)
}

// tokenServer is a Google OAuth token endpoint implementing the JWT-bearer
// grant: it checks the assertion's structure, claims and RS256 signature
// against the service account's public key.
type tokenServer struct {
	t         testing.TB
	srv       *httptest.Server
	key       *rsa.PrivateKey
	email     string
	keyID     string
	expiresIn atomic.Int64
	fetches   atomic.Int64
	fail      atomic.Int64 // when not zero, answer with this status
	issued    sync.Map     // access token → true
}

// serviceAccountKey is the fake service account's RSA key, generated once
// per test binary.
var serviceAccountKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func newTokenServer(t testing.TB) *tokenServer {
	t.Helper()
	key, err := serviceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{t: t, key: key, email: "gateway@gw-project.iam.gserviceaccount.com", keyID: "0123456789abcdef"}
	ts.expiresIn.Store(3600)
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) tokenURL() string { return ts.srv.URL + "/token" }

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	n := ts.fetches.Add(1)
	if err := ts.check(r); err != nil {
		ts.t.Errorf("token request: %v", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"bad assertion"}`)
		return
	}
	if s := ts.fail.Load(); s != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s))
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
		return
	}
	tok := fmt.Sprintf("tok-%d", n)
	ts.issued.Store(tok, true)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, tok, ts.expiresIn.Load())
}

func (ts *tokenServer) check(r *http.Request) error {
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		return fmt.Errorf("%s %s", r.Method, r.URL.Path)
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT (%d parts)", len(parts))
	}
	var head struct{ Alg, Typ, Kid string }
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	for i, v := range []any{&head, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("JWT part %d: %v", i, err)
		}
	}
	if head.Alg != "RS256" || head.Typ != "JWT" || head.Kid != ts.keyID {
		return fmt.Errorf("JWT header %+v", head)
	}
	if claims.Iss != ts.email || claims.Scope != Scope || claims.Aud != ts.tokenURL() || claims.Exp <= claims.Iat {
		return fmt.Errorf("JWT claims %+v", claims)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&ts.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("JWT signature: %v", err)
	}
	return nil
}

// serviceAccount is a service-account key file whose token_uri is the
// fake endpoint.
func (ts *tokenServer) serviceAccount() testkit.ServiceAccount {
	return testkit.ServiceAccount{Key: ts.key, KeyID: ts.keyID, Email: ts.email, Project: "gw-project", TokenURI: ts.tokenURL()}
}

// serviceAccountJSON is the key file's contents.
func (ts *tokenServer) serviceAccountJSON(t testing.TB) []byte { return ts.serviceAccount().JSON(t) }

// writeServiceAccount writes the key file to a temporary file.
func (ts *tokenServer) writeServiceAccount(t testing.TB) string { return ts.serviceAccount().Write(t) }

// countingTransport counts the requests it carries by host.
type countingTransport struct {
	mu    sync.Mutex
	hosts map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.hosts == nil {
		c.hosts = map[string]int{}
	}
	c.hosts[r.URL.Host]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[host]
}
