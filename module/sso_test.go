package module

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// ssoTestGateway is newTestGateway with live keys and an oidc line
// trusting is (groups eng → team platform).
func ssoTestGateway(tb testing.TB, up http.RoundTripper, is *testkit.OIDCIssuer, ledger governance.Store) *Gateway {
	tb.Helper()
	g := newTestGateway(tb, up, "sk-llmgw-sso-test", ledger)
	dir, err := governance.NewDirectory(context.Background(), governance.NewMemoryKeyStore(), time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	g.state.keys = governance.NewKeyring(g.state.registry, dir)
	g.SSOConfig = SSOConfig{OIDC: []*OIDCConfig{{
		Issuer: is.URL, Audience: "gw", TeamClaim: "groups",
		TeamMap: []TeamMapConfig{{Group: "eng", Team: "platform"}},
	}}}
	s, err := g.provisionSSO(g.state.registry, caddy.NewReplacer(), zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.release)
	g.state.sso = s
	return g
}

func ssoToken(tb testing.TB, is *testkit.OIDCIssuer, email string) string {
	c := is.Claims("sub-"+email, "gw", time.Hour)
	c["email"] = email
	c["groups"] = []string{"eng"}
	return is.Sign(tb, c)
}

func ssoRequest(g *Gateway, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "http://gw/v1/messages", strings.NewReader(`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, r, nil)
	return w
}

// smallReply is an upstream answering every request with a tiny message.
func smallReply() http.RoundTripper {
	reply := []byte(`{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"output_tokens":2}}`)
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(reply)), ContentLength: int64(len(reply)), Request: r}, nil
	})
}

// TestSSORevokedDeveloper: an administrator's revocation ends an SSO
// developer's access (403), though the IdP still vouches for them.
func TestSSORevokedDeveloper(t *testing.T) {
	is := testkit.NewOIDCIssuer(t)
	g := ssoTestGateway(t, smallReply(), is, governance.NewMemoryStore())
	tok := ssoToken(t, is, "judy@example.com")
	if w := ssoRequest(g, tok); w.Code != 200 {
		t.Fatalf("first call: %d %s", w.Code, w.Body)
	}
	k := g.state.keys.Key("judy@example.com")
	if k == nil || k.TeamName() != "platform" || g.state.keys.Source("judy@example.com") != sourceOIDC {
		t.Fatalf("provisioned key: %+v", k)
	}
	if _, err := g.state.keys.Revoke(context.Background(), "judy@example.com", "ops@example.com"); err != nil {
		t.Fatal(err)
	}
	w := ssoRequest(g, tok)
	var doc struct {
		Error struct{ Type, Message string }
	}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	if w.Code != 403 || doc.Error.Type != "permission_error" || !strings.Contains(doc.Error.Message, "revoked") {
		t.Fatalf("revoked developer: %d %s", w.Code, w.Body)
	}
}

// BenchmarkGatewaySmallRequestSSO is BenchmarkGatewaySmallRequest with a
// developer's SSO token (verified once, then cached) instead of a virtual
// key: the difference is the cost of SSO per request.
func BenchmarkGatewaySmallRequestSSO(b *testing.B) {
	is := testkit.NewOIDCIssuer(b)
	sqlite, err := governance.OpenSQLiteStore(b.TempDir()+"/bench.db", governance.SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sqlite.Close() })
	g := ssoTestGateway(b, smallReply(), is, sqlite)
	tok := ssoToken(b, is, "bench@example.com")
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`)
	bearer := "Bearer " + tok
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest("POST", "http://gw/v1/messages", bytes.NewReader(body))
		r.Header.Set("Authorization", bearer)
		r.Header.Set("Anthropic-Version", "2023-06-01")
		clear(w.h)
		if err := g.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
