package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// mockVertex is Google Vertex AI's Claude endpoints on 127.0.0.1 plus the
// Google OAuth token endpoint a service account's key file points at:
//
//   - POST /token: the JWT-bearer grant. The assertion must be an RS256 JWT
//     signed by the mock's service-account key (see writeServiceAccount),
//     with the cloud-platform scope and the token URL as audience; the
//     answer is {"access_token":"ya29.mock-vertex-N","expires_in":3600,"token_type":"Bearer"}.
//   - POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{m}:rawPredict
//     and :streamRawPredict: Authorization: Bearer <a token it issued>
//     (else 401 UNAUTHENTICATED in Google's shape); the body must carry
//     anthropic_version "vertex-2023-10-16" and no "model" (else 400
//     INVALID_ARGUMENT); the reply is Anthropic's JSON, or SSE for
//     :streamRawPredict and "stream":true, with the canonical usage of
//     mockAnthropic (input 12, cache write 5m 200 + 1h 100, cache read 9000,
//     output 42).
//   - POST …/models/count-tokens:rawPredict: "model" required in the body;
//     answers {"input_tokens":mockCountedTokens}.
//
// X-Mock-Scenario (forwarded by the gateway like any unknown header):
// status-429 (Google RESOURCE_EXHAUSTED), status-503 (Google UNAVAILABLE),
// status-400 (Google INVALID_ARGUMENT), status-529 (Anthropic-shaped
// overloaded_error, as Vertex relays Claude's own), cut (the stream dies
// after three deltas).
type mockVertex struct {
	requestLog[seenRequest]

	srv *httptest.Server
	key *rsa.PrivateKey
	// ClientEmail and KeyID identify the mock's service account.
	ClientEmail, KeyID string

	mu           sync.Mutex
	issued       map[string]bool
	tokenFetches int
}

// The Vertex constants the mock checks.
const (
	mockVertexVersion = "vertex-2023-10-16"
	mockVertexScope   = "https://www.googleapis.com/auth/cloud-platform"
)

func newMockVertex(t testing.TB) *mockVertex {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	m := &mockVertex{key: key, ClientEmail: "llm-gateway@mock-project.iam.gserviceaccount.com", KeyID: "mock-key-1", issued: map[string]bool{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the API host to configure as the vertex provider's base_url (the
// gateway appends /v1/projects/…).
func (m *mockVertex) URL() string { return m.srv.URL }

// TokenURL is the OAuth token endpoint written into the service account.
func (m *mockVertex) TokenURL() string { return m.srv.URL + "/token" }

// tokenCount is the number of token grants requested.
func (m *mockVertex) tokenCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokenFetches
}

// serviceAccount is a service-account key file for the mock.
func (m *mockVertex) serviceAccount() testkit.ServiceAccount {
	return testkit.ServiceAccount{Key: m.key, KeyID: m.KeyID, Email: m.ClientEmail, Project: "mock-project", TokenURI: m.TokenURL()}
}

// serviceAccountJSON is the key file's contents.
func (m *mockVertex) serviceAccountJSON(t testing.TB) []byte { return m.serviceAccount().JSON(t) }

// writeServiceAccount writes the key file to a temporary directory and
// returns its path (the provider's credentials_file).
func (m *mockVertex) writeServiceAccount(t testing.TB) string { return m.serviceAccount().Write(t) }

func writeGoogleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q}}`, code, msg, status)
}

func (m *mockVertex) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		m.serveToken(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	m.record(seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	issued := m.issued[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	m.mu.Unlock()

	const marker = "/publishers/anthropic/models/"
	i := strings.Index(r.URL.Path, marker)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/v1/projects/") || !strings.Contains(r.URL.Path, "/locations/") || i < 0 {
		writeGoogleError(w, 404, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || !issued {
		writeGoogleError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	model, method, ok := strings.Cut(r.URL.Path[i+len(marker):], ":")
	if !ok || (method != "rawPredict" && method != "streamRawPredict") {
		writeGoogleError(w, 404, "NOT_FOUND", "Unknown method "+method)
		return
	}
	scenario := r.Header.Get("X-Mock-Scenario")
	switch scenario {
	case "status-429":
		writeGoogleError(w, 429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4-5. Please submit a quota increase request.")
		return
	case "status-503":
		writeGoogleError(w, 503, "UNAVAILABLE", "The service is currently unavailable.")
		return
	case "status-400":
		writeGoogleError(w, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
		return
	case "status-529":
		writeAnthropicError(w, 529, "overloaded_error", "Overloaded")
		return
	}

	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		writeGoogleError(w, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	var version string
	_ = json.Unmarshal(req["anthropic_version"], &version)
	if version != mockVertexVersion {
		writeGoogleError(w, 400, "INVALID_ARGUMENT", fmt.Sprintf("anthropic_version: %q is not supported", version))
		return
	}
	if model == "count-tokens" {
		if _, ok := req["model"]; !ok || method != "rawPredict" {
			writeGoogleError(w, 400, "INVALID_ARGUMENT", "model: field required")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, mockCountedTokens)
		return
	}
	if _, ok := req["model"]; ok {
		writeGoogleError(w, 400, "INVALID_ARGUMENT", "model: Extra inputs are not permitted")
		return
	}
	stream := method == "streamRawPredict" || string(req["stream"]) == "true"
	writeNativeClaudeReply(w, model, stream, scenario)
}

// serveToken implements the JWT-bearer grant against the mock's key.
func (m *mockVertex) serveToken(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.tokenFetches++
	n := m.tokenFetches
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err := m.checkAssertion(r); err != nil {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, err.Error())
		return
	}
	tok := fmt.Sprintf("ya29.mock-vertex-%d", n)
	m.mu.Lock()
	m.issued[tok] = true
	m.mu.Unlock()
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"token_type":"Bearer"}`, tok)
}

func (m *mockVertex) checkAssertion(r *http.Request) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("method %s", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("unsupported grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
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
	if head.Alg != "RS256" || head.Kid != m.KeyID {
		return fmt.Errorf("JWT header alg %q kid %q", head.Alg, head.Kid)
	}
	if claims.Iss != m.ClientEmail || claims.Aud != m.TokenURL() || !strings.Contains(" "+claims.Scope+" ", " "+mockVertexScope+" ") || claims.Exp <= claims.Iat {
		return fmt.Errorf("JWT claims iss %q aud %q scope %q", claims.Iss, claims.Aud, claims.Scope)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&m.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return errors.New("Invalid JWT Signature.")
	}
	return nil
}

// writeNativeClaudeReply answers a Messages call in Anthropic's own format
// (what Vertex and Foundry relay from Claude): a JSON message, or an SSE
// stream with pings, carrying mockAnthropic's canonical usage. The "cut"
// scenario kills the stream after three deltas.
func writeNativeClaudeReply(w http.ResponseWriter, model string, stream bool, scenario string) {
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_mock_cloud","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%d}}`,
			model, mockText, mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h, mockOutput)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	send := func(event, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		_ = rc.Flush()
	}
	send("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_mock_cloud","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":1}}}`,
		model, mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h))
	send("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	send("ping", `{"type": "ping"}`)
	for i, word := range strings.SplitAfter(mockText, " ") {
		send("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, word))
		if i == 2 && scenario == "cut" {
			if conn, buf, err := rc.Hijack(); err == nil {
				_ = buf.Flush()
				conn.Close()
			}
			return
		}
	}
	send("content_block_stop", `{"type":"content_block_stop","index":0}`)
	send("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, mockOutput))
	send("message_stop", `{"type":"message_stop"}`)
}
