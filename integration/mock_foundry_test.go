package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// mockFoundry is a Microsoft Foundry resource's Anthropic endpoint on
// 127.0.0.1, plus an Entra ID token endpoint:
//
//   - POST /anthropic/v1/messages and /anthropic/v1/messages/count_tokens:
//     the caller must present APIKey as api-key or x-api-key (any value
//     given must be the key), or Authorization: Bearer with a token the mock
//     issued; else 401 authentication_error. anthropic-version is required
//     (400 otherwise). The body's "model" is the deployment name and must
//     be a known deployment when Deployments is set (404 otherwise). The
//     reply is Anthropic's JSON or SSE ("stream":true) with mockAnthropic's
//     canonical usage; count_tokens answers {"input_tokens":mockCountedTokens}.
//   - POST /{TenantID}/oauth2/v2.0/token: the client-credentials grant
//     (form: grant_type=client_credentials, scope https://ai.azure.com/.default,
//     client_id, client_secret); answers
//     {"token_type":"Bearer","expires_in":3599,"access_token":"eyJ.mock-foundry-N"}.
//
// X-Mock-Scenario: status-429 (rate_limit_error with retry-after),
// status-529 (overloaded_error), status-400, cut (the stream dies after
// three deltas). Errors are Anthropic-shaped, as Foundry's are.
type mockFoundry struct {
	requestLog[seenRequest]

	srv *httptest.Server
	// APIKey is the resource key the gateway must present.
	APIKey string
	// TenantID, ClientID and ClientSecret are the Entra app registration the
	// token endpoint accepts.
	TenantID, ClientID, ClientSecret string
	// Deployments, when not nil, are the deployment names that exist.
	Deployments map[string]bool

	mu           sync.Mutex
	issued       map[string]bool
	tokenFetches int
}

func newMockFoundry(t testing.TB) *mockFoundry {
	t.Helper()
	m := &mockFoundry{
		APIKey:       "foundry-mock-key-0123456789abcdef",
		TenantID:     "00000000-1111-2222-3333-444444444444",
		ClientID:     "55555555-6666-7777-8888-999999999999",
		ClientSecret: "mock~entra~secret~value",
		issued:       map[string]bool{},
	}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the resource endpoint in the Anthropic SDK's form
// (…/anthropic): the azure provider's base_url.
func (m *mockFoundry) URL() string { return m.srv.URL + "/anthropic" }

// TokenURL is the Entra token endpoint (the azure provider's token_url).
func (m *mockFoundry) TokenURL() string {
	return m.srv.URL + "/" + m.TenantID + "/oauth2/v2.0/token"
}

// tokenCount is the number of token grants requested.
func (m *mockFoundry) tokenCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokenFetches
}

func (m *mockFoundry) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/"+m.TenantID+"/oauth2/v2.0/token" {
		m.serveToken(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	m.record(seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	bearer, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tokenOK := hasBearer && m.issued[bearer]
	m.mu.Unlock()

	countTokens := r.URL.Path == "/anthropic/v1/messages/count_tokens"
	if r.Method != http.MethodPost || (r.URL.Path != "/anthropic/v1/messages" && !countTokens) {
		writeAnthropicError(w, 404, "not_found_error", "Not found")
		return
	}
	keys := append(append([]string(nil), r.Header.Values("Api-Key")...), r.Header.Values("X-Api-Key")...)
	keyOK := len(keys) > 0
	for _, k := range keys {
		keyOK = keyOK && k == m.APIKey
	}
	if !keyOK && !tokenOK {
		writeAnthropicError(w, 401, "authentication_error", "invalid x-api-key")
		return
	}
	if r.Header.Get("Anthropic-Version") == "" {
		writeAnthropicError(w, 400, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	scenario := r.Header.Get("X-Mock-Scenario")
	switch scenario {
	case "status-429":
		w.Header().Set("retry-after", "7")
		writeAnthropicError(w, 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
		return
	case "status-529":
		writeAnthropicError(w, 529, "overloaded_error", "Overloaded")
		return
	case "status-400":
		writeAnthropicError(w, 400, "invalid_request_error", "messages: at least one message is required")
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		writeAnthropicError(w, 400, "invalid_request_error", "model: field required")
		return
	}
	if m.Deployments != nil && !m.Deployments[req.Model] {
		writeAnthropicError(w, 404, "not_found_error", fmt.Sprintf("deployment %s not found", req.Model))
		return
	}
	if countTokens {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, mockCountedTokens)
		return
	}
	w.Header().Set("request-id", "req_mock_foundry_1")
	writeNativeClaudeReply(w, req.Model, req.Stream, scenario)
}

// serveToken implements the client-credentials grant.
func (m *mockFoundry) serveToken(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.tokenFetches++
	n := m.tokenFetches
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain the following parameter: 'grant_type'."}`)
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" || f.Get("scope") != "https://ai.azure.com/.default" {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":"invalid_scope","error_description":"grant_type %q scope %q"}`, f.Get("grant_type"), f.Get("scope"))
		return
	}
	if f.Get("client_id") != m.ClientID || f.Get("client_secret") != m.ClientSecret {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
		return
	}
	tok := fmt.Sprintf("eyJ.mock-foundry-%d", n)
	m.mu.Lock()
	m.issued[tok] = true
	m.mu.Unlock()
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, tok)
}
