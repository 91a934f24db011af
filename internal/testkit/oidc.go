package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OIDCIssuer is an OpenID Connect provider on loopback: a discovery
// document, a key set, and a token endpoint (client credentials), signing
// with generated keys that Rotate replaces.
type OIDCIssuer struct {
	URL string
	// Now is the clock tokens are dated by (default time.Now).
	Now func() time.Time

	srv          *httptest.Server
	mu           sync.Mutex
	signing      jose.JSONWebKey   // private
	published    []jose.JSONWebKey // public
	next         int
	clients      map[string]OIDCClient
	discoveryHit atomic.Int64
	jwksHit      atomic.Int64
	tokenHit     atomic.Int64
	down         atomic.Bool
}

// OIDCClient is a client of the token endpoint: its secret and the claims
// its tokens carry besides iss, iat and exp.
type OIDCClient struct {
	Secret string
	Claims map[string]any
	TTL    time.Duration
}

// NewOIDCIssuer starts an issuer signing with an RSA key ("k1").
func NewOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	is := &OIDCIssuer{Now: time.Now, clients: map[string]OIDCClient{}}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.install(key, jose.RS256, false)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.serveDiscovery)
	mux.HandleFunc("GET /jwks", is.serveJWKS)
	mux.HandleFunc("POST /token", is.serveToken)
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

// install makes key the signing key under the next key id; keepOld keeps
// the previous public keys published.
func (is *OIDCIssuer) install(key crypto.Signer, alg jose.SignatureAlgorithm, keepOld bool) string {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.next++
	kid := "k" + strconv.Itoa(is.next)
	is.signing = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"}
	pub := jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
	if keepOld {
		is.published = append(is.published, pub)
	} else {
		is.published = []jose.JSONWebKey{pub}
	}
	return kid
}

// Rotate signs from now on with a new ECDSA P-256 key and returns its key
// id; keepOld keeps the old public key in the key set (an overlap),
// otherwise it is withdrawn.
func (is *OIDCIssuer) Rotate(t testing.TB, keepOld bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return is.install(key, jose.ES256, keepOld)
}

// SetDown makes every endpoint answer 503 (an outage).
func (is *OIDCIssuer) SetDown(down bool) { is.down.Store(down) }

// AddClient registers a client of the token endpoint.
func (is *OIDCIssuer) AddClient(id string, c OIDCClient) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.clients[id] = c
}

// Hits are how many times the discovery document, the key set and the
// token endpoint were fetched.
func (is *OIDCIssuer) Hits() (discovery, jwks, token int64) {
	return is.discoveryHit.Load(), is.jwksHit.Load(), is.tokenHit.Load()
}

// Claims are a token's usual claims: iss (this issuer), sub, aud, iat and
// an exp ttl from Now.
func (is *OIDCIssuer) Claims(sub, aud string, ttl time.Duration) map[string]any {
	now := is.Now()
	return map[string]any{
		"iss": is.URL, "sub": sub, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
}

// Sign signs claims with the current key.
func (is *OIDCIssuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	key := is.signing
	is.mu.Unlock()
	return SignJWT(t, key, claims)
}

// SignJWT signs claims with a private JSON Web Key (its kid in the header).
func SignJWT(t testing.TB, key jose.JSONWebKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ForeignKey is a private key no issuer publishes, for tokens that must
// not verify.
func ForeignKey(t testing.TB, kid string) jose.JSONWebKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// UnsignedJWT is a token with "alg": "none" and an empty signature.
func UnsignedJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func (is *OIDCIssuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	is.discoveryHit.Add(1)
	if is.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              is.URL + "/jwks",
		"token_endpoint":                        is.URL + "/token",
		"authorization_endpoint":                is.URL + "/authorize",
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
	})
}

func (is *OIDCIssuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	is.jwksHit.Add(1)
	if is.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	is.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), is.published...)}
	is.mu.Unlock()
	writeJSON(w, set)
}

// serveToken is a client-credentials token endpoint (client_secret_post or
// client_secret_basic), answering both an access_token and an id_token.
func (is *OIDCIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	is.tokenHit.Add(1)
	if is.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	is.mu.Lock()
	c, known := is.clients[id]
	key := is.signing
	is.mu.Unlock()
	if !known || c.Secret != secret {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	claims := is.Claims(id, id, ttl)
	for k, v := range c.Claims {
		claims[k] = v
	}
	tok := SignJWT(testingTB{}, key, claims)
	writeJSON(w, map[string]any{
		"access_token": tok, "id_token": tok, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// testingTB lets the token endpoint sign outside a test goroutine: a
// failure there is a bug in this file, so it panics.
type testingTB struct{ testing.TB }

func (testingTB) Helper()                   {}
func (testingTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (testingTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
