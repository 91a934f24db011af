package vertex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"

	"github.com/llmgateway/caddy-llm-gateway/providers"
)

func sonnetCall() *llm.Call {
	return &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
		Body: []byte(`{"model":"claude-sonnet-4-5","max_tokens":1}`), Header: claudeCodeHeader()}
}

// send sends one call and returns the Authorization the upstream saw.
func send(t *testing.T, p *Provider, got chan gotRequest) string {
	t.Helper()
	resp, err := p.Send(context.Background(), sonnetCall())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return (<-got).header.Get("Authorization")
}

func hostOf(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestServiceAccountTokenCached: a service-account file whose token_uri is
// a fake JWT-bearer endpoint; many concurrent requests cause one token
// fetch, made through the provider's transport.
func TestServiceAccountTokenCached(t *testing.T) {
	for _, viaFile := range []bool{true, false} {
		name := "json"
		if viaFile {
			name = "file"
		}
		t.Run(name, func(t *testing.T) {
			ts := newTokenServer(t)
			srv, got := recordingUpstream(t, replyHandler)
			rt := &countingTransport{}
			cfg := Config{BaseURL: srv.URL, Transport: rt}
			if viaFile {
				cfg.CredentialsFile = ts.writeServiceAccount(t)
			} else {
				cfg.CredentialsJSON = ts.serviceAccountJSON(t)
			}
			p := newProvider(t, cfg)
			if n := ts.fetches.Load(); n != 0 {
				t.Fatalf("New fetched %d tokens; tokens are fetched at the first request", n)
			}
			const n = 64
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					resp, err := p.Send(context.Background(), sonnetCall())
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			wg.Wait()
			for range n {
				if a := (<-got).header.Get("Authorization"); a != "Bearer tok-1" {
					t.Fatalf("Authorization %q, want Bearer tok-1", a)
				}
			}
			if f := ts.fetches.Load(); f != 1 {
				t.Errorf("%d token fetches for %d requests, want 1", f, n)
			}
			if c := rt.count(hostOf(t, ts.srv.URL)); c != 1 {
				t.Errorf("the provider's transport carried %d token fetches, want 1", c)
			}
			if c := rt.count(hostOf(t, srv.URL)); c != n {
				t.Errorf("the provider's transport carried %d model calls, want %d", c, n)
			}
		})
	}
}

// TestServiceAccountTokenRefresh: tokens about to expire are replaced.
// oauth2 treats a token as expired 10 s before its expiry and its clock
// cannot be injected, so short expires_in values stand in for time passing.
func TestServiceAccountTokenRefresh(t *testing.T) {
	ts := newTokenServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	p := newProvider(t, Config{BaseURL: srv.URL, CredentialsFile: ts.writeServiceAccount(t)})

	// expires_in 5 s is inside oauth2's 10 s early-expiry window: stale at
	// once, so every request fetches a fresh token.
	ts.expiresIn.Store(5)
	for i, want := range []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"} {
		if a := send(t, p, got); a != want {
			t.Fatalf("request %d: Authorization %q, want %q", i, a, want)
		}
	}
	// expires_in 11 s: outside the window, so the token is reused (its
	// refresh once stale is what the loop above showed; no real time has to
	// pass for it).
	ts.expiresIn.Store(11)
	if a := send(t, p, got); a != "Bearer tok-4" {
		t.Fatalf("Authorization %q, want tok-4", a)
	}
	if a := send(t, p, got); a != "Bearer tok-4" {
		t.Fatalf("Authorization %q, want tok-4 reused", a)
	}
	if f := ts.fetches.Load(); f != 4 {
		t.Errorf("%d fetches, want 4", f)
	}
}

// TestApplicationDefaultCredentials: with no credentials configured, ADC
// (here GOOGLE_APPLICATION_CREDENTIALS) is used, through the transport.
func TestApplicationDefaultCredentials(t *testing.T) {
	ts := newTokenServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", ts.writeServiceAccount(t))
	rt := &countingTransport{}
	p, err := New(context.Background(), Config{Name: "adc", Project: "gw-project", Region: "us-east5", BaseURL: srv.URL, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if a := send(t, p, got); a != "Bearer tok-1" {
			t.Fatalf("Authorization %q", a)
		}
	}
	if ts.fetches.Load() != 1 || rt.count(hostOf(t, ts.srv.URL)) != 1 {
		t.Errorf("fetches %d, via transport %d", ts.fetches.Load(), rt.count(hostOf(t, ts.srv.URL)))
	}

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	_, err = New(context.Background(), Config{Name: "adc", Project: "gw-project", Region: "us-east5", Transport: rt})
	if err == nil || !strings.Contains(err.Error(), "Application Default Credentials") || !strings.Contains(err.Error(), `vertex provider "adc"`) {
		t.Errorf("missing ADC: %v", err)
	}
}

// TestTokenOutlivesConfigContext: the context New was given (Caddy's config
// context) may be cancelled while requests still need tokens.
func TestTokenOutlivesConfigContext(t *testing.T) {
	ts := newTokenServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	p, err := New(ctx, Config{Name: "c", Project: "gw-project", Region: "us-east5", BaseURL: srv.URL,
		CredentialsJSON: ts.serviceAccountJSON(t), Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if a := send(t, p, got); a != "Bearer tok-1" {
		t.Fatalf("Authorization %q", a)
	}
}

// TestTokenFetchFailure: a refused grant is a *TokenError naming the
// provider; nothing is sent upstream; the next request tries again.
func TestTokenFetchFailure(t *testing.T) {
	ts := newTokenServer(t)
	srv, got := recordingUpstream(t, replyHandler)
	saJSON := ts.serviceAccountJSON(t)
	p := newProvider(t, Config{Name: "gcp", BaseURL: srv.URL, CredentialsJSON: saJSON})
	ts.fail.Store(400)
	_, err := p.Send(context.Background(), sonnetCall())
	var te *providers.TokenError
	if !errors.As(err, &te) || te.Provider != "gcp" {
		t.Fatalf("err %#v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `vertex provider "gcp": could not obtain an access token`) || !strings.Contains(msg, "Invalid JWT Signature.") ||
		strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}
	select {
	case r := <-got:
		t.Fatalf("a request reached the upstream without a token: %s", r.path)
	default:
	}
	ts.fail.Store(0)
	if a := send(t, p, got); a != "Bearer tok-2" {
		t.Fatalf("after recovery: Authorization %q", a)
	}

	// An unreachable token endpoint says so, naming the provider.
	ts.srv.Close()
	ts.expiresIn.Store(1)
	p2 := newProvider(t, Config{Name: "gcp2", BaseURL: srv.URL, CredentialsJSON: saJSON})
	_, err = p2.Send(context.Background(), sonnetCall())
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `vertex provider "gcp2": could not obtain an access token`) {
		t.Fatalf("unreachable: %v", err)
	}
}
