package sso

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// FuzzVerify hands arbitrary bearer tokens to the verifier: each is refused
// with an *Error (or verified when it is the genuine token), never a panic,
// and nothing refused is cached. Seeds run with every `go test`; a longer
// run: go test -fuzz FuzzVerify ./governance/sso/
func FuzzVerify(f *testing.F) {
	clock := newFakeClock()
	is := testkit.NewOIDCIssuer(f)
	is.Now = clock.Now
	issuer, err := NewIssuer(is.URL, IssuerOptions{Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(Config{Issuer: issuer, Audience: testAudience, TeamClaim: "groups",
		Mapping: Mapping{TeamMap: []GroupTeam{{"eng-payments", "payments"}}, DefaultTeam: "platform"}})
	if err != nil {
		f.Fatal(err)
	}
	vs, err := NewVerifiers(clock.Now, 0, v)
	if err != nil {
		f.Fatal(err)
	}
	good := is.Sign(f, developer(is, time.Hour))
	f.Add(good)
	f.Add(tamper(good))
	f.Add(testkit.UnsignedJWT(f, developer(is, time.Hour)))
	f.Add(testkit.SignJWT(f, testkit.ForeignKey(f, "k1"), developer(is, time.Hour)))
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln")
	f.Add("eyJ..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		before := vs.Cached()
		id, err := vs.Verify(context.Background(), token)
		if err == nil {
			if token != good || id.User != "alice@example.com" {
				t.Fatalf("verified %q as %+v", token, id)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Msg == "" {
			t.Fatalf("error %v is not an *sso.Error", err)
		}
		if vs.Cached() > before {
			t.Fatal("a refused token was cached")
		}
	})
}
