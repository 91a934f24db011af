package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"golang.org/x/crypto/bcrypt"

	"github.com/llmgateway/caddy-llm-gateway/internal/clock"
	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

const ssoAudience = "llm-gateway"

// ssoBlock is gatewayBlock with teams for the IdP's groups and extra lines.
func ssoBlock(m *mockAnthropic, db, extra string) string {
	return gatewayBlock(m, db, `
		team payments {
			budget 100 usd per day
		}
		team research
		`+extra)
}

// oidcLines trusts issuer is, groups choosing the team.
func oidcLines(is *testkit.OIDCIssuer) string {
	return fmt.Sprintf(`
		oidc %s {
			audience %s
			user_claim email
			team_claim groups
			team_map eng-payments payments
			team_map eng-platform platform
			template {
				team research
				budget 5 usd per day
				models claude-sonnet-* claude-haiku-*
			}
		}`, is.URL, ssoAudience)
}

// fakeNow is a clock the gateway (internal/clock) and the issuer share.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setFakeClock(t *testing.T) *fakeNow {
	c := &fakeNow{t: time.Now()}
	t.Cleanup(clock.Set(c.Now))
	return c
}

func ssoClaims(is *testkit.OIDCIssuer, email string, groups []string, ttl time.Duration) map[string]any {
	c := is.Claims("sub-"+email, ssoAudience, ttl)
	c["email"] = email
	c["email_verified"] = true
	c["groups"] = groups
	return c
}

// rawPost sends a Messages request with a credential header and returns
// the status and the decoded error body.
func rawPost(t *testing.T, url, header, value string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if doc == nil {
		doc = map[string]any{"raw": string(body)}
	}
	return resp.StatusCode, doc
}

// errorType reads error.type (both the Anthropic and the OpenAI shape).
func errorType(doc map[string]any) (string, string) {
	e, _ := doc["error"].(map[string]any)
	typ, _ := e["type"].(string)
	msg, _ := e["message"].(string)
	return typ, msg
}

// TestSSOTokens drives the official SDK with tokens from a loopback
// identity provider: the developer is provisioned under their team at the
// first call, listed by the admin API and ledgered; a virtual key keeps
// working beside; every bad token is a 401 in the surface's error shape;
// a key rotation is picked up; an expired token is refused.
func TestSSOTokens(t *testing.T) {
	clk := setFakeClock(t)
	is := testkit.NewOIDCIssuer(t)
	is.Now = clk.Now
	other := testkit.NewOIDCIssuer(t)
	other.Now = clk.Now
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: ssoBlock(m, "", oidcLines(is))})
	ctx := context.Background()

	alice := is.Sign(t, ssoClaims(is, "Alice@Example.com", []string{"staff", "eng-payments"}, 30*time.Minute))
	// Claude Code's apiKeyHelper output goes in both headers; each alone works.
	for _, opt := range []option.RequestOption{option.WithAuthToken(alice), option.WithAPIKey(alice)} {
		msg, err := ssoSend(g, ctx, messageParams("claude-sonnet-4-5"), opt)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Usage.OutputTokens == 0 {
			t.Fatalf("no usage in %+v", msg)
		}
	}
	// A developer in no mapped group gets the template's team.
	carol := is.Sign(t, ssoClaims(is, "carol@example.com", []string{"staff"}, time.Hour))
	if _, err := ssoSend(g, ctx, messageParams("claude-haiku-4-5"), option.WithAuthToken(carol)); err != nil {
		t.Fatal(err)
	}
	// The template's model allow-list holds.
	_, err := ssoSend(g, ctx, messageParams("claude-opus-4-1"), option.WithAuthToken(carol))
	if status := apiStatus(err); status != http.StatusForbidden {
		t.Fatalf("template models: %v", err)
	}
	// The virtual key path is untouched.
	if _, err := ssoSend(g, ctx, messageParams("claude-sonnet-4-5"), option.WithAPIKey(aliceKey)); err != nil {
		t.Fatal(err)
	}

	keys := adminKeysFull(g)
	if k, ok := keys["alice@example.com"]; !ok || k.Team != "payments" {
		t.Fatalf("alice@example.com in the admin listing: %+v (all: %v)", k, keys)
	}
	if k := keys["carol@example.com"]; k.Team != "research" || len(k.Budgets) != 1 || k.Budgets[0].LimitNanoUSD != 5_000_000_000 {
		t.Fatalf("carol@example.com: %+v", k)
	}
	if n := keys["alice@example.com"].Spend.Requests; n != 2 {
		t.Fatalf("alice@example.com spend: %d requests, want 2", n)
	}
	var src struct {
		Keys []struct {
			Name, Source string
		} `json:"keys"`
	}
	g.adminGet("/llm_gateway/keys", &src)
	for _, k := range src.Keys {
		if k.Name == "alice@example.com" && k.Source != "oidc" {
			t.Fatalf("source %q, want oidc", k.Source)
		}
	}
	byTeam := adminUsage(g, "team")
	if byTeam["payments"].Requests != 2 || byTeam["research"].Requests != 2 {
		t.Fatalf("ledger by team: %+v", byTeam)
	}

	// Refused tokens: 401, Anthropic shape on the Messages API, OpenAI
	// shape on Chat Completions.
	noKid := testkit.ForeignKey(t, "k1")
	for _, tc := range []struct {
		name, token string
	}{
		{"expired", is.Sign(t, ssoClaims(is, "dave@example.com", nil, -time.Minute))},
		{"wrong audience", is.Sign(t, func() map[string]any {
			c := ssoClaims(is, "dave@example.com", nil, time.Hour)
			c["aud"] = "another-app"
			return c
		}())},
		{"another issuer", other.Sign(t, ssoClaims(other, "dave@example.com", nil, time.Hour))},
		{"another issuer's key", other.Sign(t, ssoClaims(is, "dave@example.com", nil, time.Hour))},
		{"alg none", testkit.UnsignedJWT(t, ssoClaims(is, "dave@example.com", nil, time.Hour))},
		{"forged key", testkit.SignJWT(t, noKid, ssoClaims(is, "dave@example.com", nil, time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []string{"Authorization", "X-Api-Key"} {
				v := tc.token
				if h == "Authorization" {
					v = "Bearer " + v
				}
				status, doc := rawPost(t, g.URL+"/v1/messages", h, v)
				typ, msg := errorType(doc)
				if status != 401 || doc["type"] != "error" || typ != "authentication_error" {
					t.Fatalf("%s: %d %v", h, status, doc)
				}
				if strings.Contains(msg, tc.token) {
					t.Fatal("the refusal quotes the token")
				}
			}
			status, doc := rawPostPath(t, g.URL+"/v1/chat/completions", tc.token)
			if typ, _ := errorType(doc); status != 401 || typ == "" || doc["type"] != nil {
				t.Fatalf("OpenAI surface: %d %v", status, doc)
			}
		})
	}
	if _, ok := adminKeysFull(g)["dave@example.com"]; ok {
		t.Fatal("a refused token provisioned a key")
	}

	// Alice's token expires: 401, and the helper's fresh one works.
	_, jwksBefore, _ := is.Hits()
	clk.Advance(30*time.Minute + time.Second)
	status, doc := rawPost(t, g.URL+"/v1/messages", "Authorization", "Bearer "+alice)
	if _, msg := errorType(doc); status != 401 || !strings.Contains(msg, "expired") {
		t.Fatalf("expired token: %d %v", status, doc)
	}
	fresh := is.Sign(t, ssoClaims(is, "alice@example.com", []string{"eng-payments"}, time.Hour))
	if _, err := ssoSend(g, ctx, messageParams("claude-sonnet-4-5"), option.WithAuthToken(fresh)); err != nil {
		t.Fatal(err)
	}
	if _, jwks, _ := is.Hits(); jwks != jwksBefore {
		t.Fatalf("verifying with known keys fetched the key set (%d → %d)", jwksBefore, jwks)
	}
	if n := adminKeysFull(g)["alice@example.com"].Spend.Requests; n != 3 {
		t.Fatalf("alice@example.com: %d requests, want 3 under one key", n)
	}

	// The provider rotates its signing key (withdrawing the old one): new
	// tokens verify at once.
	is.Rotate(t, false)
	bob := is.Sign(t, ssoClaims(is, "bob@example.com", []string{"eng-platform"}, time.Hour))
	if _, err := ssoSend(g, ctx, messageParams("claude-sonnet-4-5"), option.WithAuthToken(bob)); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if k := adminKeysFull(g)["bob@example.com"]; k.Team != "platform" {
		t.Fatalf("bob@example.com: %+v", k)
	}
}

// ssoSend sends a Messages request through the SDK.
func ssoSend(g *gateway, ctx context.Context, p anthropic.MessageNewParams, opts ...option.RequestOption) (*anthropic.Message, error) {
	c := newClient(g, "", opts...)
	return c.Messages.New(ctx, p)
}

// rawPostPath sends an OpenAI Chat Completions request with a bearer token.
func rawPostPath(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// apiStatus is the status of an SDK error (0 when it is not an API error).
func apiStatus(err error) int {
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

// TestSSONoTeamAndOutage: a valid token whose groups map to no team (and a
// template without one) is a 403; an unreachable identity provider is an
// overload (retried by clients), not a 401.
func TestSSONoTeamAndOutage(t *testing.T) {
	is := testkit.NewOIDCIssuer(t)
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: ssoBlock(m, "", fmt.Sprintf(`
		oidc %s {
			audience %s
			team_claim groups
			team_map eng-payments payments
		}`, is.URL, ssoAudience))})
	is.SetDown(true)
	tok := is.Sign(t, ssoClaims(is, "erin@example.com", []string{"eng-payments"}, time.Hour))
	status, doc := rawPost(t, g.URL+"/v1/messages", "Authorization", "Bearer "+tok)
	if typ, _ := errorType(doc); status != 529 || typ != "overloaded_error" {
		t.Fatalf("identity provider down: %d %v", status, doc)
	}
	is.SetDown(false)
	clockAdvanceForRetry(t)
	status, doc = rawPost(t, g.URL+"/v1/messages", "Authorization", "Bearer "+is.Sign(t, ssoClaims(is, "frank@example.com", []string{"sales"}, time.Hour)))
	if typ, msg := errorType(doc); status != 403 || typ != "permission_error" || !strings.Contains(msg, "no group") {
		t.Fatalf("no team: %d %v", status, doc)
	}
}

// clockAdvanceForRetry moves the gateway's clock past the identity
// provider retry delay.
func clockAdvanceForRetry(t *testing.T) {
	start := time.Now()
	t.Cleanup(clock.Set(func() time.Time { return start.Add(time.Minute) }))
}

// TestIdentityFromBasicAuth takes the developer from Caddy's basic_auth.
func TestIdentityFromBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{
		SiteExtra: fmt.Sprintf("basic_auth {\n\t\tgrace %s\n\t}\n", hash),
		Block: ssoBlock(m, "", `
		identity {http.auth.user.id} {
			template {
				team research
				budget 2 usd per day
			}
		}`),
	})
	ctx := context.Background()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("grace:s3cret"))
	// Claude Code: ANTHROPIC_CUSTOM_HEADERS="Authorization: Basic …" and any
	// ANTHROPIC_API_KEY (the gateway does not know it: identity decides).
	c := newClient(g, "", option.WithAPIKey("unused"), option.WithHeader("Authorization", basic))
	if _, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5")); err != nil {
		t.Fatal(err)
	}
	if k := adminKeysFull(g)["grace"]; k.Team != "research" || k.Spend.Requests != 1 {
		t.Fatalf("grace: %+v", k)
	}
	if byTeam := adminUsage(g, "team"); byTeam["research"].Requests != 1 {
		t.Fatalf("ledger by team: %+v", byTeam)
	}
	// No credentials: basic_auth's own 401 before the gateway.
	if status, _ := rawPost(t, g.URL+"/v1/messages", "X-Api-Key", "unused"); status != 401 {
		t.Fatalf("without basic auth: %d", status)
	}
}

// TestIdentityFromForwardAuth takes the developer and the groups from
// headers forward_auth copies from an auth service; a client's own
// headers of those names are ignored.
func TestIdentityFromForwardAuth(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Cookie") {
		case "session=heidi":
			w.Header().Set("Remote-User", "heidi@example.com")
			w.Header().Set("Remote-Groups", "staff, eng-payments")
		case "session=ivan":
			w.Header().Set("Remote-User", "ivan@example.com") // no groups
		default:
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(auth.Close)
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{
		SiteExtra: fmt.Sprintf("forward_auth %s {\n\t\turi /verify\n\t\tcopy_headers Remote-User Remote-Groups\n\t}\n", strings.TrimPrefix(auth.URL, "http://")),
		Block: ssoBlock(m, "", `
		identity {http.request.header.Remote-User} team {http.request.header.Remote-Groups} {
			team_map eng-payments payments
			template {
				team research
			}
		}`),
	})
	ctx := context.Background()
	spoof := option.WithHeader("Remote-User", "mallory@example.com")
	c := newClient(g, "", option.WithAPIKey("unused"), option.WithHeader("Cookie", "session=heidi"), spoof,
		option.WithHeader("Remote-Groups", "eng-platform"))
	if _, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5")); err != nil {
		t.Fatal(err)
	}
	c = newClient(g, "", option.WithAPIKey("unused"), option.WithHeader("Cookie", "session=ivan"), spoof,
		option.WithHeader("Remote-Groups", "eng-payments"))
	if _, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5")); err != nil {
		t.Fatal(err)
	}
	keys := adminKeysFull(g)
	if keys["heidi@example.com"].Team != "payments" || keys["ivan@example.com"].Team != "research" {
		t.Fatalf("keys: %+v", keys)
	}
	if _, ok := keys["mallory@example.com"]; ok {
		t.Fatal("a client-sent Remote-User header was trusted")
	}
	if status, _ := rawPost(t, g.URL+"/v1/messages", "Remote-User", "mallory@example.com"); status != 401 {
		t.Fatalf("without a session: %d", status)
	}
}

// TestAPIKeyHelperExample runs the shipped apiKeyHelper script against the
// loopback provider's token endpoint and uses what it prints as the bearer
// token, as Claude Code does.
func TestAPIKeyHelperExample(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	is := testkit.NewOIDCIssuer(t)
	is.AddClient("ci-runner", testkit.OIDCClient{Secret: `p@ss"word&=\x`, Claims: map[string]any{
		"aud": ssoAudience, "email": "ci-runner@example.com", "groups": []string{"eng-payments"},
	}})
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: ssoBlock(m, "", oidcLines(is))})

	run := func(env ...string) (string, string, error) {
		cmd := exec.Command("sh", "../caddyfile-examples/llm-gateway-token.sh")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run("LLMGW_TOKEN_URL="+is.URL+"/token", "LLMGW_CLIENT_ID=ci-runner", `LLMGW_CLIENT_SECRET=p@ss"word&=\x`)
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, errOut)
	}
	token := strings.TrimSuffix(out, "\n")
	if strings.ContainsAny(token, " \n") || strings.Count(token, ".") != 2 {
		t.Fatalf("the helper printed %q", out)
	}
	msg, err := ssoSend(g, context.Background(), messageParams("claude-sonnet-4-5"), option.WithAuthToken(token), option.WithHeader("X-Api-Key", token))
	if err != nil || msg.Usage.OutputTokens == 0 {
		t.Fatalf("request with the helper's token: %v", err)
	}
	if k := adminKeysFull(g)["ci-runner@example.com"]; k.Team != "payments" || k.Spend.Requests != 1 {
		t.Fatalf("ci-runner@example.com: %+v", k)
	}

	// The login-tool way: whatever the command prints.
	out, errOut, err = run("LLMGW_TOKEN_COMMAND=printf '%s\\n' " + token)
	if err != nil || strings.TrimSuffix(out, "\n") != token {
		t.Fatalf("LLMGW_TOKEN_COMMAND: %q %v %s", out, err, errOut)
	}
	// Failures go to stderr with a non-zero exit, nothing on stdout.
	for _, env := range [][]string{
		nil,
		{"LLMGW_TOKEN_URL=" + is.URL + "/token", "LLMGW_CLIENT_ID=ci-runner", "LLMGW_CLIENT_SECRET=wrong"},
		{"LLMGW_TOKEN_COMMAND=false"},
	} {
		out, errOut, err := run(env...)
		if err == nil || out != "" || !strings.Contains(errOut, "llm-gateway-token:") {
			t.Fatalf("%v: exit %v, stdout %q, stderr %q", env, err, out, errOut)
		}
	}
}
