package sso

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testAudience = "llm-gateway"

var knownTeams = map[string]bool{"payments": true, "platform": true, "research": true}

// testVerifiers builds the verifiers of one issuer on a fake clock.
func testVerifiers(t *testing.T, is *testkit.OIDCIssuer, clock *fakeClock, mutate func(*Config)) *Verifiers {
	t.Helper()
	issuer, err := NewIssuer(is.URL, IssuerOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Issuer:    issuer,
		Audience:  testAudience,
		TeamClaim: "groups",
		Mapping: Mapping{
			TeamMap:   []GroupTeam{{"eng-payments", "payments"}, {"eng-platform", "platform"}},
			KnownTeam: func(s string) bool { return knownTeams[s] },
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := NewVerifiers(clock.Now, 0, v)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func newIssuer(t *testing.T, clock *fakeClock) *testkit.OIDCIssuer {
	is := testkit.NewOIDCIssuer(t)
	is.Now = clock.Now
	return is
}

// developer is the claims of alice's token.
func developer(is *testkit.OIDCIssuer, ttl time.Duration) map[string]any {
	c := is.Claims("u-123", testAudience, ttl)
	c["email"] = "Alice@Example.com"
	c["email_verified"] = true
	c["groups"] = []string{"everyone", "eng-platform", "eng-payments"}
	return c
}

func wantKind(t *testing.T, err error, kind Kind, contains string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v: want an *sso.Error of kind %d", err, kind)
	}
	if e.Kind != kind || !strings.Contains(e.Msg, contains) {
		t.Fatalf("error kind %d %q: want kind %d containing %q", e.Kind, e.Msg, kind, contains)
	}
}

func TestVerifyMapsClaimsAndCaches(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	tok := is.Sign(t, developer(is, time.Hour))
	ctx := context.Background()

	id, err := vs.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// team_map order chooses (payments is listed first), not the token's.
	want := Identity{User: "alice@example.com", Team: "payments", Expiry: clock.Now().Add(time.Hour), Issuer: is.URL}
	if id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	d, j, _ := is.Hits()
	if d != 1 || j != 1 {
		t.Fatalf("first verification fetched discovery %d, jwks %d times; want 1 and 1", d, j)
	}
	// The second check is the cache's: no fetch at all.
	is.SetDown(true)
	for range 3 {
		if id2, err := vs.Verify(ctx, tok); err != nil || id2 != want {
			t.Fatalf("cached verification: %+v, %v", id2, err)
		}
	}
	if d2, j2, _ := is.Hits(); d2 != d || j2 != j {
		t.Fatalf("cached verifications fetched: discovery %d, jwks %d", d2, j2)
	}
	// The entry expires with the token.
	clock.Advance(time.Hour + time.Second)
	_, err = vs.Verify(ctx, tok)
	wantKind(t, err, Invalid, "expired")
}

func TestVerifyRefusals(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	other := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	ctx := context.Background()
	// Prime the key set, so refusals below are not about fetching it.
	if _, err := vs.Verify(ctx, is.Sign(t, developer(is, time.Hour))); err != nil {
		t.Fatal(err)
	}
	with := func(edit func(map[string]any)) map[string]any {
		c := developer(is, time.Hour)
		edit(c)
		return c
	}
	foreign := testkit.ForeignKey(t, "k1") // same kid as the issuer's key
	for _, tc := range []struct {
		name     string
		token    string
		kind     Kind
		contains string
	}{
		{"expired", is.Sign(t, developer(is, -time.Minute)), Invalid, "expired"},
		{"no exp", is.Sign(t, with(func(c map[string]any) { delete(c, "exp") })), Invalid, "expired"},
		{"wrong audience", is.Sign(t, with(func(c map[string]any) { c["aud"] = "another-app" })), Invalid, "audience"},
		{"audience list without ours", is.Sign(t, with(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), Invalid, "audience"},
		{"another issuer", other.Sign(t, developer(other, time.Hour)), Invalid, "issued by"},
		{"another issuer's key, our iss", other.Sign(t, developer(is, time.Hour)), Invalid, "signature"},
		{"alg none", testkit.UnsignedJWT(t, developer(is, time.Hour)), Invalid, "invalid token"},
		{"foreign key, known kid", testkit.SignJWT(t, foreign, developer(is, time.Hour)), Invalid, "signature"},
		{"not a jwt", "sk-llmgw-nothing", Invalid, "not a JWT"},
		{"tampered payload", tamper(is.Sign(t, developer(is, time.Hour))), Invalid, "signature"},
		{"no email", is.Sign(t, with(func(c map[string]any) { delete(c, "email") })), Invalid, `no "email" claim`},
		{"email not a string", is.Sign(t, with(func(c map[string]any) { c["email"] = 42 })), Invalid, "not a string"},
		{"unverified email", is.Sign(t, with(func(c map[string]any) { c["email_verified"] = false })), Forbidden, "not verified"},
		{"no mapped group", is.Sign(t, with(func(c map[string]any) { c["groups"] = []string{"sales"} })), Forbidden, "no group"},
		{"no groups", is.Sign(t, with(func(c map[string]any) { delete(c, "groups") })), Forbidden, "no group"},
		{"control character", is.Sign(t, with(func(c map[string]any) { c["email"] = "a\nb@example.com" })), Invalid, "control"},
		{"huge name", is.Sign(t, with(func(c map[string]any) { c["email"] = strings.Repeat("a", 300) + "@x" })), Invalid, "longer than"},
		{"not before, far ahead", is.Sign(t, with(func(c map[string]any) { c["nbf"] = clock.Now().Add(time.Hour).Unix() })), Invalid, "nbf"},
		{"huge token", "eyJ" + strings.Repeat("a", MaxTokenLen), Invalid, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vs.Verify(ctx, tc.token)
			wantKind(t, err, tc.kind, tc.contains)
			if strings.Contains(err.Error(), tc.token) {
				t.Fatal("the message holds the token")
			}
		})
	}
	if n := vs.Cached(); n != 1 {
		t.Fatalf("%d tokens cached; only the valid one should be", n)
	}
}

// tamper changes the email in the payload of a signed token, keeping its
// signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		panic(err)
	}
	p = bytes.Replace(p, []byte("Alice@"), []byte("Mallory@"), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestVerifyKeyRotation(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	ctx := context.Background()
	before := is.Sign(t, developer(is, time.Hour))
	if _, err := vs.Verify(ctx, before); err != nil {
		t.Fatal(err)
	}
	// The provider rotates and withdraws the old key.
	is.Rotate(t, false)
	after := is.Sign(t, developer(is, time.Hour))
	if _, err := vs.Verify(ctx, after); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if _, j, _ := is.Hits(); j != 2 {
		t.Fatalf("key set fetched %d times; want 2 (start, rotation)", j)
	}
	// The old token, verified before the rotation, is remembered until it
	// expires; an old-key token never seen is refused now.
	if _, err := vs.Verify(ctx, before); err != nil {
		t.Fatalf("cached token after rotation: %v", err)
	}
	c := developer(is, time.Hour)
	c["email"] = "bob@example.com"
	stale := testkit.SignJWT(t, testkit.ForeignKey(t, "k1"), c)
	_, err := vs.Verify(ctx, stale)
	wantKind(t, err, Invalid, "signature")
}

func TestVerifyForgedKeyIDsAreRateLimited(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	ctx := context.Background()
	if _, err := vs.Verify(ctx, is.Sign(t, developer(is, time.Hour))); err != nil {
		t.Fatal(err)
	}
	forge := func(i int) string {
		return testkit.SignJWT(t, testkit.ForeignKey(t, "forged-"+string(rune('a'+i))), developer(is, time.Hour))
	}
	for i := range 20 {
		_, err := vs.Verify(ctx, forge(i))
		wantKind(t, err, Invalid, "signature")
	}
	_, j, _ := is.Hits()
	if j != 1+refreshBurst {
		t.Fatalf("20 forged key ids fetched the key set %d times; want 1 + a burst of %d", j, refreshBurst)
	}
	// One more refresh per interval.
	clock.Advance(DefaultRefreshInterval)
	for i := range 5 {
		_, _ = vs.Verify(ctx, forge(i))
	}
	if _, j2, _ := is.Hits(); j2 != j+1 {
		t.Fatalf("after one interval: %d fetches, want %d", j2, j+1)
	}
}

func TestVerifyProviderOutage(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	ctx := context.Background()
	is.SetDown(true)
	tok := is.Sign(t, developer(is, 2*time.Hour))
	_, err := vs.Verify(ctx, tok)
	wantKind(t, err, Unavailable, "unreachable")
	var e *Error
	if errors.As(err, &e); e.Cause == nil || !strings.Contains(e.Cause.Error(), "503") {
		t.Fatalf("cause %v: want the provider's answer for the log", e.Cause)
	}
	// The failure is remembered: no fetch per request.
	d, _, _ := is.Hits()
	_, err = vs.Verify(ctx, tok)
	wantKind(t, err, Unavailable, "unreachable")
	if d2, _, _ := is.Hits(); d2 != d {
		t.Fatalf("a remembered failure fetched again (%d → %d)", d, d2)
	}
	// Back up, and the retry delay over: verified.
	is.SetDown(false)
	clock.Advance(DefaultRetryAfter)
	if _, err := vs.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Later outage of the key endpoint: a stale key set keeps verifying
	// tokens signed with keys it holds.
	is.SetDown(true)
	clock.Advance(DefaultKeysMaxAge)
	c := developer(is, time.Hour)
	c["email"] = "carol@example.com"
	if _, err := vs.Verify(ctx, is.Sign(t, c)); err != nil {
		t.Fatalf("stale key set during an outage: %v", err)
	}
}

func TestVerifyKeysMaxAge(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	ctx := context.Background()
	if _, err := vs.Verify(ctx, is.Sign(t, developer(is, 3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	// The provider withdraws k1 (a compromised key) but keeps its kid: after
	// KeysMaxAge the gateway no longer trusts the old key.
	is.Rotate(t, false)
	clock.Advance(DefaultKeysMaxAge)
	c := developer(is, time.Hour)
	c["email"] = "dave@example.com"
	old := testkit.SignJWT(t, testkit.ForeignKey(t, "k1"), c)
	_, err := vs.Verify(ctx, old)
	wantKind(t, err, Invalid, "signature")
	if _, j, _ := is.Hits(); j != 2 {
		t.Fatalf("key set fetched %d times; want 2 (start, max age)", j)
	}
}

func TestVerifyMappingVariants(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		claims func(map[string]any)
		want   Identity
		kind   Kind
	}{
		{name: "sub as the user, no team claim", mutate: func(c *Config) {
			c.UserClaim, c.TeamClaim, c.Mapping = "sub", "", Mapping{}
		}, want: Identity{User: "u-123"}},
		{name: "template team without a team claim", mutate: func(c *Config) {
			c.TeamClaim, c.Mapping = "", Mapping{DefaultTeam: "research"}
		}, want: Identity{User: "alice@example.com", Team: "research"}},
		{name: "groups are team names", mutate: func(c *Config) {
			c.Mapping.TeamMap = nil
		}, claims: func(m map[string]any) { m["groups"] = []string{"sales", "platform", "payments"} },
			want: Identity{User: "alice@example.com", Team: "platform"}},
		{name: "a single-string claim", mutate: func(c *Config) {
			c.TeamClaim, c.Mapping.TeamMap = "team", nil
		}, claims: func(m map[string]any) { m["team"] = "research" },
			want: Identity{User: "alice@example.com", Team: "research"}},
		{name: "nested claim", mutate: func(c *Config) {
			c.TeamClaim = "realm_access.roles"
		}, claims: func(m map[string]any) { m["realm_access"] = map[string]any{"roles": []string{"eng-platform"}} },
			want: Identity{User: "alice@example.com", Team: "platform"}},
		{name: "namespaced claim with dots", mutate: func(c *Config) {
			c.TeamClaim = "https://example.com/groups"
		}, claims: func(m map[string]any) { m["https://example.com/groups"] = []string{"eng-platform"} },
			want: Identity{User: "alice@example.com", Team: "platform"}},
		{name: "unmapped group, default team", mutate: func(c *Config) {
			c.Mapping.DefaultTeam = "research"
		}, claims: func(m map[string]any) { m["groups"] = []string{"sales"} },
			want: Identity{User: "alice@example.com", Team: "research"}},
		{name: "unknown team names refused", mutate: func(c *Config) {
			c.Mapping.TeamMap = nil
		}, claims: func(m map[string]any) { m["groups"] = []string{"sales"} }, kind: Forbidden},
		{name: "preferred_username kept as is", mutate: func(c *Config) {
			c.UserClaim = "preferred_username"
		}, claims: func(m map[string]any) { m["preferred_username"] = "Alice.Smith" },
			want: Identity{User: "Alice.Smith", Team: "payments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := testVerifiers(t, is, clock, tc.mutate)
			c := developer(is, time.Hour)
			if tc.claims != nil {
				tc.claims(c)
			}
			id, err := vs.Verify(ctx, is.Sign(t, c))
			if tc.kind != 0 {
				wantKind(t, err, tc.kind, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id.Expiry, id.Issuer = time.Time{}, ""
			if id != tc.want {
				t.Fatalf("identity %+v, want %+v", id, tc.want)
			}
		})
	}
}

func TestVerifiersChooseByIssuer(t *testing.T) {
	clock := newFakeClock()
	a, b := newIssuer(t, clock), newIssuer(t, clock)
	mk := func(is *testkit.OIDCIssuer, team string) *Verifier {
		issuer, err := NewIssuer(is.URL, IssuerOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(Config{Issuer: issuer, Audience: testAudience, Mapping: Mapping{DefaultTeam: team}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	vs, err := NewVerifiers(clock.Now, 0, mk(a, "payments"), mk(b, "research"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		is   *testkit.OIDCIssuer
		team string
	}{{a, "payments"}, {b, "research"}} {
		id, err := vs.Verify(ctx, tc.is.Sign(t, developer(tc.is, time.Hour)))
		if err != nil || id.Team != tc.team {
			t.Fatalf("%s: %+v %v", tc.is.URL, id, err)
		}
	}
	if _, err := NewVerifiers(clock.Now, 0, mk(a, ""), mk(a, "")); err == nil {
		t.Fatal("the same issuer twice accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		url, aud string
		mutate   func(*Config)
		want     string
	}{
		{"ftp://idp.example.com", "x", nil, "https://"},
		{"https://", "x", nil, "no host"},
		{"https://idp.example.com/?x=1", "x", nil, "query"},
		{"https://u:p@idp.example.com", "x", nil, "user information"},
		{"https://idp.example.com", "", nil, "audience is required"},
		{"https://idp.example.com", "x", func(c *Config) { c.Mapping.TeamMap = []GroupTeam{{"g", "t"}} }, "team_map needs team_claim"},
	} {
		issuer, err := NewIssuer(tc.url, IssuerOptions{})
		if err == nil {
			cfg := Config{Issuer: issuer, Audience: tc.aud}
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			_, err = NewVerifier(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want %q", tc.url, tc.aud, err, tc.want)
		}
	}
	if is, _ := NewIssuer("http://127.0.0.1:9", IssuerOptions{}); is == nil || !is.Insecure() {
		t.Fatal("an http issuer is accepted, and reported insecure")
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln": true,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.":      true,
		"sk-llmgw-0123456789abcdef":                 false,
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0":      false,
		"eyJhbGciOiJSUzI1NiJ9..c2ln":                false,
		"eyJhbGciOiJSUzI1NiJ9.eyJ+In0.c2ln":         false,
		"eyJ.a.b.c":                                 false,
		"":                                          false,
	} {
		if got := LooksLikeJWT(s); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v", s, got)
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newTokenCache(4)
	now := time.Unix(1000, 0)
	for i := range 10 {
		h := [32]byte{byte(i)}
		exp := now.Add(time.Hour)
		if i < 3 {
			exp = now.Add(time.Second) // these expire first
		}
		c.put(&h, Identity{User: "u"}, exp, now)
		if c.len() > 4 {
			t.Fatalf("%d entries in a cache of 4", c.len())
		}
	}
	h := [32]byte{9}
	if _, ok := c.get(&h, now); !ok {
		t.Fatal("the newest entry was evicted")
	}
	if _, ok := c.get(&h, now.Add(time.Hour)); ok {
		t.Fatal("an entry outlived its token")
	}
}

func TestVerifyConcurrent(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t, clock)
	vs := testVerifiers(t, is, clock, nil)
	toks := make([]string, 8)
	for i := range toks {
		c := developer(is, time.Hour)
		c["email"] = string(rune('a'+i)) + "@example.com"
		toks[i] = is.Sign(t, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				if _, err := vs.Verify(context.Background(), toks[(g+i)%len(toks)]); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d, j, _ := is.Hits(); d != 1 || j != 1 {
		t.Fatalf("concurrent first verifications fetched discovery %d and the key set %d times", d, j)
	}
}
