package sso

import (
	"context"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// BenchmarkVerifyCached is the per-request cost of a token verified
// before: a SHA-256 of the token and a map lookup.
func BenchmarkVerifyCached(b *testing.B) {
	clock := newFakeClock()
	is := testkit.NewOIDCIssuer(b)
	is.Now = clock.Now
	vs := benchVerifiers(b, is, clock)
	tok := is.Sign(b, developerB(is))
	ctx := context.Background()
	if _, err := vs.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := vs.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFirst is a token's first verification with the key set
// already cached: RS256 signature, issuer, audience, expiry, claims.
func BenchmarkVerifyFirst(b *testing.B) {
	clock := newFakeClock()
	is := testkit.NewOIDCIssuer(b)
	is.Now = clock.Now
	vs := benchVerifiers(b, is, clock)
	tok := is.Sign(b, developerB(is))
	ctx := context.Background()
	v := vs.only
	if _, err := v.verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyColdIssuer is the very first request after a start:
// discovery and key set fetched over loopback, then the verification.
func BenchmarkVerifyColdIssuer(b *testing.B) {
	clock := newFakeClock()
	is := testkit.NewOIDCIssuer(b)
	is.Now = clock.Now
	tok := is.Sign(b, developerB(is))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		vs := benchVerifiers(b, is, clock)
		if _, err := vs.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerifiers(b *testing.B, is *testkit.OIDCIssuer, clock *fakeClock) *Verifiers {
	issuer, err := NewIssuer(is.URL, IssuerOptions{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(Config{Issuer: issuer, Audience: testAudience, TeamClaim: "groups",
		Mapping: Mapping{TeamMap: []GroupTeam{{"eng-payments", "payments"}}}})
	if err != nil {
		b.Fatal(err)
	}
	vs, err := NewVerifiers(clock.Now, 0, v)
	if err != nil {
		b.Fatal(err)
	}
	return vs
}

func developerB(is *testkit.OIDCIssuer) map[string]any {
	c := is.Claims("u-123", testAudience, time.Hour)
	c["email"] = "alice@example.com"
	c["email_verified"] = true
	c["groups"] = []string{"everyone", "eng-platform", "eng-payments"}
	c["name"] = "Alice Example"
	return c
}
