package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of an Issuer's fetching policy.
const (
	// DefaultKeysMaxAge is how long a fetched key set is trusted before the
	// next verification that needs it fetches it again (a key the provider
	// withdrew stops verifying within this time).
	DefaultKeysMaxAge = time.Hour
	// DefaultRefreshInterval is the pace at which tokens naming unknown keys
	// may make the issuer fetch its key set again, after a burst of
	// refreshBurst: a rotation is picked up at once, forged key ids cost
	// the provider at most one request per interval.
	DefaultRefreshInterval = 10 * time.Second
	// DefaultRetryAfter is how long a failed discovery is remembered before
	// the next request tries again.
	DefaultRetryAfter = 10 * time.Second
	// DefaultFetchTimeout bounds one request to the provider.
	DefaultFetchTimeout = 10 * time.Second

	refreshBurst = 3
	// maxDocument bounds a discovery document or key set read from the
	// provider.
	maxDocument = 1 << 20
)

// asymmetricAlgs are the signature algorithms a token may use: never
// "none", never an HMAC (whose key would be public).
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// IssuerOptions tune an Issuer; the zero value is the defaults.
type IssuerOptions struct {
	// Client makes the requests to the provider. Default: an http.Client
	// with DefaultFetchTimeout.
	Client *http.Client
	// Now is the clock (tests use a fake one). Default: time.Now.
	Now func() time.Time
	// KeysMaxAge, RefreshInterval and RetryAfter override the defaults of
	// the same names.
	KeysMaxAge, RefreshInterval, RetryAfter time.Duration
}

// Issuer is one OpenID Connect provider: its discovery document, fetched
// on first use, and its key set, cached. It is safe for concurrent use and
// meant to be shared by every Verifier of the same issuer URL (across
// configuration reloads, so a reload costs no fetch).
type Issuer struct {
	url    string
	client *http.Client
	now    func() time.Time
	opts   IssuerOptions

	// mu serialises discovery and key fetches, and guards what follows.
	mu           sync.Mutex
	jwksURL      string
	algs         []string
	discoverErr  error
	discoverNext time.Time // no discovery before then after a failure
	// bucket holds the refreshes tokens with unknown keys may still
	// trigger; it regains one per RefreshInterval.
	bucket     float64
	bucketTime time.Time
	// keysErr is the last failed key set fetch, remembered until keysNext.
	keysErr  error
	keysNext time.Time

	keys    atomic.Pointer[keySnapshot]
	fetches atomic.Int64
}

// keySnapshot is the key set as fetched at one time.
type keySnapshot struct {
	keys    []jose.JSONWebKey
	fetched time.Time
}

// NewIssuer returns the provider at url (its discovery document is
// url/.well-known/openid-configuration). Nothing is fetched until the
// first token is verified. url must be http or https; http is for
// internal providers and tests, and the caller should warn about it.
func NewIssuer(url string, opts IssuerOptions) (*Issuer, error) {
	if err := CheckIssuerURL(url); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeysMaxAge <= 0 {
		opts.KeysMaxAge = DefaultKeysMaxAge
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	return &Issuer{url: url, client: opts.Client, now: opts.Now, opts: opts, bucket: refreshBurst}, nil
}

// CheckIssuerURL refuses what cannot be an issuer: not http(s), a query or
// fragment, or user information.
func CheckIssuerURL(url string) error {
	rest, ok := strings.CutPrefix(url, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(url, "http://"); !ok {
			return fmt.Errorf("oidc issuer %q: want an https:// URL", url)
		}
	}
	host, _, _ := strings.Cut(rest, "/")
	switch {
	case host == "":
		return fmt.Errorf("oidc issuer %q: no host", url)
	case strings.ContainsAny(url, "?#"):
		return fmt.Errorf("oidc issuer %q: an issuer has no query or fragment", url)
	case strings.Contains(host, "@"):
		return fmt.Errorf("oidc issuer %q: an issuer has no user information", url)
	}
	return nil
}

// Insecure reports whether the issuer is reached over plain http.
func (is *Issuer) Insecure() bool { return strings.HasPrefix(is.url, "http://") }

// URL is the issuer URL, as tokens name it in their iss claim.
func (is *Issuer) URL() string { return is.url }

// Fetches is how many documents (discovery and key sets) the issuer has
// fetched so far.
func (is *Issuer) Fetches() int64 { return is.fetches.Load() }

// unavailableError is a failure to reach the provider, as opposed to a
// token that does not verify.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// discover fetches the discovery document once; a failure is remembered
// for RetryAfter. It returns the key set URL and the signature algorithms.
func (is *Issuer) discover(ctx context.Context) (string, []string, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.jwksURL != "" {
		return is.jwksURL, is.algs, nil
	}
	now := is.now()
	if is.discoverErr != nil && now.Before(is.discoverNext) {
		return "", nil, is.discoverErr
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURL string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	err := is.getJSON(ctx, strings.TrimSuffix(is.url, "/")+"/.well-known/openid-configuration", &doc)
	switch {
	case err != nil:
	case doc.Issuer != is.url:
		// A document for another issuer: tokens it signs would name it.
		err = fmt.Errorf("oidc issuer %s: its discovery document names the issuer %q", is.url, doc.Issuer)
	case doc.JWKSURL == "":
		err = fmt.Errorf("oidc issuer %s: its discovery document has no jwks_uri", is.url)
	case !strings.HasPrefix(doc.JWKSURL, "https://") && !strings.HasPrefix(doc.JWKSURL, "http://"):
		err = fmt.Errorf("oidc issuer %s: jwks_uri %q is not an http(s) URL", is.url, doc.JWKSURL)
	}
	if err != nil {
		is.discoverErr = &unavailableError{err}
		is.discoverNext = now.Add(is.opts.RetryAfter)
		return "", nil, is.discoverErr
	}
	is.jwksURL, is.discoverErr = doc.JWKSURL, nil
	is.algs = nil
	for _, a := range doc.Algs {
		for _, ok := range asymmetricAlgs {
			if a == ok {
				is.algs = append(is.algs, a)
			}
		}
	}
	if len(is.algs) == 0 {
		is.algs = asymmetricAlgs
	}
	return is.jwksURL, is.algs, nil
}

// getJSON fetches one document from the provider.
func (is *Issuer) getJSON(ctx context.Context, url string, v any) error {
	is.fetches.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.client.Do(req)
	if err != nil {
		return fmt.Errorf("oidc issuer %s: %v", is.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	switch {
	case err != nil:
		return fmt.Errorf("oidc issuer %s: reading %s: %v", is.url, url, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("oidc issuer %s: GET %s answered %s", is.url, url, resp.Status)
	case len(body) > maxDocument:
		return fmt.Errorf("oidc issuer %s: %s is larger than %d bytes", is.url, url, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("oidc issuer %s: %s: %v", is.url, url, err)
	}
	return nil
}

// fetchKeys fetches the key set; is.mu is held.
func (is *Issuer) fetchKeys(ctx context.Context, jwksURL string) error {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := is.getJSON(ctx, jwksURL, &raw); err != nil {
		return &unavailableError{err}
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue // a key type or curve go-jose does not know (RFC 7517 §5: ignore it)
		}
		if !k.Valid() || !k.IsPublic() {
			continue // symmetric ("oct") and private keys have no place in a public key set
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		keys = append(keys, k)
	}
	is.keys.Store(&keySnapshot{keys: keys, fetched: is.now()})
	return nil
}

// takeRefresh spends one of the refreshes unknown keys may trigger; is.mu
// is held.
func (is *Issuer) takeRefresh(now time.Time) bool {
	if !is.bucketTime.IsZero() {
		is.bucket += float64(now.Sub(is.bucketTime)) / float64(is.opts.RefreshInterval)
		is.bucket = min(is.bucket, refreshBurst)
	}
	is.bucketTime = now
	if is.bucket < 1 {
		return false
	}
	is.bucket--
	return true
}

// errUnknownKey is a token signed by no key of the (fresh) key set, and
// errBadSignature one whose signature its key does not verify.
var (
	errUnknownKey   = errors.New("the token is not signed by any key the issuer publishes")
	errBadSignature = errors.New("the token's signature does not verify with the issuer's key")
)

// hasKeyID reports whether the set holds a key with this id.
func hasKeyID(keys []jose.JSONWebKey, kid string) bool {
	for i := range keys {
		if keys[i].KeyID == kid {
			return true
		}
	}
	return false
}

// VerifySignature implements oidc.KeySet: it checks the JWS against the
// cached keys, fetching the set when it is missing or older than
// KeysMaxAge, and again (rate limited) when no cached key verifies it.
func (is *Issuer) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, joseAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a token has exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	snap := is.keys.Load()
	fresh := false
	if snap == nil || is.now().Sub(snap.fetched) >= is.opts.KeysMaxAge {
		if err := is.refresh(ctx, snap, false); err != nil && is.keys.Load() == nil {
			markUnavailable(ctx, err)
			return nil, err
		}
		// A stale set whose refresh failed keeps verifying: an outage of
		// the provider's key endpoint does not stop developers whose key
		// is known.
		cur := is.keys.Load()
		fresh, snap = cur != snap, cur
	}
	if p, ok := verifyWith(jws, snap.keys, kid); ok {
		return p, nil
	}
	if fresh {
		return nil, errUnknownKey // fetched for this very token
	}
	if kid != "" && hasKeyID(snap.keys, kid) {
		// The key is known and the signature wrong: fetching the set
		// again would not change that.
		return nil, errBadSignature
	}
	// A key the set does not hold: perhaps a rotation.
	if err := is.refresh(ctx, snap, true); err != nil {
		markUnavailable(ctx, err)
		return nil, err
	}
	if cur := is.keys.Load(); cur != snap {
		if p, ok := verifyWith(jws, cur.keys, kid); ok {
			return p, nil
		}
	}
	return nil, errUnknownKey
}

// refresh fetches the key set unless another request fetched it since
// seen was loaded; limited says the fetch spends a refresh from the
// bucket (nil error, no fetch, when it is empty).
func (is *Issuer) refresh(ctx context.Context, seen *keySnapshot, limited bool) error {
	jwksURL, _, err := is.discover(ctx)
	if err != nil {
		return err
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if cur := is.keys.Load(); cur != seen {
		return nil // fetched meanwhile
	}
	now := is.now()
	if is.keysErr != nil && now.Before(is.keysNext) {
		return is.keysErr
	}
	if limited && !is.takeRefresh(now) {
		return nil
	}
	if err := is.fetchKeys(ctx, jwksURL); err != nil {
		is.keysErr, is.keysNext = err, now.Add(is.opts.RetryAfter)
		return err
	}
	is.keysErr = nil
	return nil
}

// joseAlgs are asymmetricAlgs as go-jose names them.
var joseAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(asymmetricAlgs))
	for i, a := range asymmetricAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// verifyWith tries the keys with the token's key id (every key when the
// token names none).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, false
}

// Interface guard
var _ oidc.KeySet = (*Issuer)(nil)
