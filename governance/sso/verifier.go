package sso

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Kind classifies why a developer was not identified.
type Kind uint8

// The kinds of Error.
const (
	// Invalid: the token is not acceptable (malformed, badly signed,
	// expired, for another audience or issuer, without the user claim).
	// Answered 401, which makes Claude Code run its apiKeyHelper again.
	Invalid Kind = iota + 1
	// Forbidden: the token is valid but its developer may not use the
	// gateway (in no mapped group, an unverified email). Answered 403.
	Forbidden
	// Unavailable: the identity provider could not be reached to check
	// the token (discovery or key set). Answered as an overload, retried.
	Unavailable
)

// Error is a failure to identify a developer; Msg is fit for the client
// (it never holds the token).
type Error struct {
	Kind Kind
	Msg  string
	// Cause is the underlying failure to reach the provider, for the
	// gateway's log (Unavailable only).
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Identity is who a request is from: the developer's key name and team.
type Identity struct {
	User string
	// Team is "" for a developer without a team.
	Team string
	// Expiry is when the token proving it expires (zero when no token
	// did).
	Expiry time.Time
	// Issuer is the URL of the identity provider that signed the token
	// ("" when no token did).
	Issuer string
}

// Config configures one issuer's Verifier.
type Config struct {
	// Issuer is the identity provider (shared across reloads).
	Issuer *Issuer
	// Audience must be among the token's aud values: the client id or API
	// identifier the organisation registered for the gateway. Required.
	Audience string
	// UserClaim names the claim whose value is the developer's key name.
	// Default "email" (lower-cased, and refused when email_verified is
	// false); "sub", "preferred_username", "upn" … are used as they are.
	UserClaim string
	// TeamClaim names the claim (a string or an array of strings, such as
	// "groups") whose values choose the team through Mapping; "" chooses
	// the Mapping's default team.
	TeamClaim string
	// Mapping chooses the team.
	Mapping Mapping
}

// Verifier checks the tokens of one issuer and maps them to identities.
type Verifier struct {
	cfg  Config
	once sync.Mutex
	oidc *oidc.IDTokenVerifier // built after discovery
}

// NewVerifier checks the configuration; nothing is fetched.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == nil {
		return nil, errors.New("oidc: no issuer")
	}
	if cfg.Audience == "" {
		return nil, fmt.Errorf("oidc %s: audience is required (the client id or API identifier tokens for the gateway carry in aud); without it, a token the provider issued to any application would do", cfg.Issuer.url)
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "email"
	}
	if cfg.TeamClaim != "" {
		cfg.Mapping.RequireTeam = true
	} else if len(cfg.Mapping.TeamMap) > 0 {
		return nil, fmt.Errorf("oidc %s: team_map needs team_claim (the claim holding the groups)", cfg.Issuer.url)
	}
	return &Verifier{cfg: cfg}, nil
}

// Issuer is the verifier's identity provider.
func (v *Verifier) Issuer() *Issuer { return v.cfg.Issuer }

// idTokenVerifier is go-oidc's verifier for the issuer, built once the
// discovery document says which algorithms it signs with.
func (v *Verifier) idTokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.once.Lock()
	defer v.once.Unlock()
	if v.oidc != nil {
		return v.oidc, nil
	}
	_, algs, err := v.cfg.Issuer.discover(ctx)
	if err != nil {
		return nil, err
	}
	v.oidc = oidc.NewVerifier(v.cfg.Issuer.url, v.cfg.Issuer, &oidc.Config{
		ClientID:             v.cfg.Audience,
		SupportedSigningAlgs: algs,
		Now:                  v.cfg.Issuer.now,
	})
	return v.oidc, nil
}

// unavailableKey marks, in the context of a verification, that the
// identity provider could not be reached (go-oidc's errors do not wrap
// the key set's).
type unavailableKey struct{}

// verify checks a token in full: signature, issuer, audience, expiry,
// claims.
func (v *Verifier) verify(ctx context.Context, token string) (Identity, error) {
	ov, err := v.idTokenVerifier(ctx)
	if err != nil {
		return Identity{}, unavailable(err)
	}
	var down error
	tok, err := ov.Verify(context.WithValue(ctx, unavailableKey{}, &down), token)
	if err != nil {
		var exp *oidc.TokenExpiredError
		switch {
		case down != nil:
			return Identity{}, &Error{Kind: Unavailable, Msg: "cannot check the token: the identity provider's keys are unreachable; retry", Cause: down}
		case errors.As(err, &exp):
			return Identity{}, &Error{Kind: Invalid, Msg: "the token expired at " + exp.Expiry.UTC().Format(time.RFC3339) + "; get a fresh one"}
		}
		msg := strings.TrimPrefix(err.Error(), "oidc: ")
		return Identity{}, &Error{Kind: Invalid, Msg: "invalid token: " + msg}
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, &Error{Kind: Invalid, Msg: "invalid token: " + err.Error()}
	}
	user, ok, err := claimString(claims, v.cfg.UserClaim)
	switch {
	case err != nil:
		return Identity{}, &Error{Kind: Invalid, Msg: "invalid token: " + err.Error()}
	case !ok || user == "":
		return Identity{}, &Error{Kind: Invalid, Msg: fmt.Sprintf("the token has no %q claim, which names the developer here", v.cfg.UserClaim)}
	}
	if v.cfg.UserClaim == "email" {
		user = strings.ToLower(user)
		var verified any
		if raw, ok := claims["email_verified"]; ok && json.Unmarshal(raw, &verified) == nil {
			if verified == false || verified == "false" {
				return Identity{}, &Error{Kind: Forbidden, Msg: "the token's email is not verified by the identity provider"}
			}
		}
	}
	var groups []string
	if v.cfg.TeamClaim != "" {
		if groups, err = claimStrings(claims, v.cfg.TeamClaim); err != nil {
			return Identity{}, &Error{Kind: Invalid, Msg: "invalid token: " + err.Error()}
		}
	}
	id, err := v.cfg.Mapping.Resolve(user, groups)
	if err != nil {
		return Identity{}, err
	}
	id.Expiry, id.Issuer = tok.Expiry.UTC(), v.cfg.Issuer.url
	return id, nil
}

// unavailable wraps a failure to reach the provider.
func unavailable(err error) error {
	return &Error{Kind: Unavailable, Msg: "cannot check the token: the identity provider is unreachable; retry", Cause: err}
}

// markUnavailable records in a verification's context that the provider
// could not be reached.
func markUnavailable(ctx context.Context, err error) {
	var ue *unavailableError
	if errors.As(err, &ue) {
		if p, ok := ctx.Value(unavailableKey{}).(*error); ok {
			*p = ue.err
		}
	}
}

// Verifiers are the issuers a gateway trusts, and the cache of the tokens
// they verified.
type Verifiers struct {
	byIssuer map[string]*Verifier
	only     *Verifier // the single verifier, when there is one
	cache    *tokenCache
	now      func() time.Time
}

// NewVerifiers groups verifiers of distinct issuers behind one cache of
// cacheSize tokens (0: DefaultCacheSize); now is the cache's clock (nil:
// time.Now).
func NewVerifiers(now func() time.Time, cacheSize int, vs ...*Verifier) (*Verifiers, error) {
	if now == nil {
		now = time.Now
	}
	s := &Verifiers{byIssuer: make(map[string]*Verifier, len(vs)), cache: newTokenCache(cacheSize), now: now}
	for _, v := range vs {
		if _, dup := s.byIssuer[v.cfg.Issuer.url]; dup {
			return nil, fmt.Errorf("oidc issuer %s configured twice", v.cfg.Issuer.url)
		}
		s.byIssuer[v.cfg.Issuer.url] = v
	}
	if len(vs) == 1 {
		s.only = vs[0]
	}
	return s, nil
}

// Verify identifies the developer a bearer token is from. A token
// verified before and not expired costs a SHA-256 and a map lookup.
func (s *Verifiers) Verify(ctx context.Context, token string) (Identity, error) {
	if len(token) > MaxTokenLen {
		return Identity{}, &Error{Kind: Invalid, Msg: fmt.Sprintf("the token is longer than %d bytes", MaxTokenLen)}
	}
	// The token's bytes, not a copy: hashing them allocates nothing.
	h := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	now := s.now()
	if id, ok := s.cache.get(&h, now); ok {
		return id, nil
	}
	iss, ok := peekIssuer(token)
	if !ok {
		return Identity{}, &Error{Kind: Invalid, Msg: "invalid token: not a JWT with an iss claim"}
	}
	v := s.byIssuer[iss]
	if v == nil {
		if s.only != nil {
			return Identity{}, &Error{Kind: Invalid, Msg: fmt.Sprintf("invalid token: issued by %s, not by %s", quoteList([]string{iss}, 1), s.only.cfg.Issuer.url)}
		}
		return Identity{}, &Error{Kind: Invalid, Msg: fmt.Sprintf("invalid token: issued by %s, which this gateway does not trust", quoteList([]string{iss}, 1))}
	}
	id, err := v.verify(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	s.cache.put(&h, id, id.Expiry, now)
	return id, nil
}

// Cached is how many verified tokens are remembered (expired ones not yet
// swept out included).
func (s *Verifiers) Cached() int { return s.cache.len() }
