// Package azure is the Microsoft Foundry family: Claude served by a Foundry
// resource at https://{resource}.services.ai.azure.com/anthropic, which
// speaks Anthropic's own Messages API (the model is the deployment name).
// Calls are forwarded with the provider's API key (rotated per request) or
// a Microsoft Entra ID access token (client-credentials grant, cached and
// refreshed by an oauth2.ReuseTokenSource), and responses — Anthropic JSON,
// SSE and errors — are relayed and metered as the anthropic family does. It
// never imports Caddy: the module hands it a round tripper, which token
// fetches use too.
package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// Scope is the OAuth2 scope of Entra ID tokens for Foundry.
const Scope = "https://ai.azure.com/.default"

// DefaultVersion is the anthropic-version header sent when the client sent
// none.
const DefaultVersion = anthropic.DefaultVersion

// tokenTimeout bounds one Entra ID token fetch.
const tokenTimeout = 30 * time.Second

// Config configures one Foundry provider.
type Config struct {
	// Name is the provider's configured name.
	Name string
	// Resource is the Foundry resource name: the base URL is then
	// https://{resource}.services.ai.azure.com/anthropic.
	Resource string
	// BaseURL is the resource's Anthropic endpoint in the Anthropic SDK's
	// form, https://{resource}.services.ai.azure.com/anthropic (the gateway
	// appends /v1/messages); any http or https URL for a proxy. Exactly one
	// of Resource and BaseURL is required.
	BaseURL string
	// APIKeys are the resource's keys, used round-robin, one per request
	// (providers.KeyRing: a key answered 401/403 leaves the rotation, a 429
	// moves the request on to the next key), sent as api-key and x-api-key.
	APIKeys []string
	// OnKeyEvent is told when a key is rejected or rate limited; may be nil.
	OnKeyEvent func(providers.KeyEvent)
	// TenantID, ClientID and ClientSecret are a Microsoft Entra ID app
	// registration: tokens come from the client-credentials grant with
	// scope Scope and are sent as Authorization: Bearer.
	TenantID     string
	ClientID     string
	ClientSecret string
	// TokenURL replaces https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token
	// (sovereign clouds, tests).
	TokenURL string
	// TokenSource supplies bearer tokens directly (tests, embedding); it is
	// wrapped in an oauth2.ReuseTokenSource.
	//
	// Exactly one of APIKeys, the Entra ID triple and TokenSource is
	// required.
	TokenSource oauth2.TokenSource
	// Models maps canonical model globs to deployment names; the first match
	// wins. Unmapped models go to the deployment named like the canonical
	// model (Foundry's default deployment name).
	Models providers.ModelMap
	// Transport sends the upstream requests and the token fetches (the
	// module passes Caddy's pooled HTTP transport). Required.
	Transport http.RoundTripper
	// Now is the clock for time-to-first-token; nil means time.Now.
	Now func() time.Time
}

// Provider is a Foundry providers.Provider. It is safe for concurrent use.
type Provider struct {
	name      string
	base      string // scheme://host/prefix, no trailing slash
	host      string // for error messages
	keys      *providers.KeyRing
	tokens    oauth2.TokenSource // nil with API keys
	secret    string             // the Entra client secret, for redaction
	modelMap  providers.ModelMap
	transport http.RoundTripper
	now       func() time.Time
}

var _ providers.Provider = (*Provider)(nil)

// BaseURLFor is the Anthropic endpoint of a Foundry resource.
func BaseURLFor(resource string) string {
	return "https://" + resource + ".services.ai.azure.com/anthropic"
}

// New validates cfg and returns the provider: a resource name or a base URL
// (absolute http or https, no query, fragment, user info or trailing /v1; on
// *.services.ai.azure.com the /anthropic path is required), one kind of
// credential, and a Transport. No token is fetched until the first request;
// the token source outlives ctx's cancellation and keeps only its values.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	fail := func(format string, a ...any) (*Provider, error) {
		return nil, fmt.Errorf("azure provider %q: "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Transport == nil {
		return fail("a transport is required")
	}
	base := cfg.BaseURL
	switch {
	case cfg.Resource != "" && cfg.BaseURL != "":
		return fail("resource and base_url are mutually exclusive: set one")
	case cfg.Resource != "":
		if !validResource(cfg.Resource) {
			return fail("resource %q is not a valid Foundry resource name (letters, digits and hyphens)", cfg.Resource)
		}
		base = BaseURLFor(cfg.Resource)
	case cfg.BaseURL == "":
		return fail("a resource or a base_url (https://{resource}.services.ai.azure.com/anthropic) is required")
	}
	u, err := providers.ParseBaseURL(base)
	if err != nil {
		return fail("%v", err)
	}
	path := u.Path
	switch {
	case strings.HasSuffix(path, "/v1"):
		return fail("base_url %q ends in /v1: give https://{resource}.services.ai.azure.com/anthropic, the gateway appends /v1/messages", base)
	case path == "" && strings.HasSuffix(strings.ToLower(u.URL.Hostname()), ".services.ai.azure.com"):
		return fail("base_url %q lacks the /anthropic path: use %s", base, strings.TrimRight(base, "/")+"/anthropic")
	}

	p := &Provider{
		name:      cfg.Name,
		base:      u.Base,
		host:      u.Host,
		secret:    cfg.ClientSecret,
		modelMap:  append(providers.ModelMap(nil), cfg.Models...),
		transport: cfg.Transport,
		now:       cfg.Now,
	}
	if p.now == nil {
		p.now = time.Now
	}

	entra := cfg.TenantID != "" || cfg.ClientID != "" || cfg.ClientSecret != "" || cfg.TokenURL != ""
	kinds := 0
	for _, set := range []bool{len(cfg.APIKeys) > 0, entra, cfg.TokenSource != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		return fail("credentials are required: api keys, or an Entra ID tenant_id, client_id and client_secret")
	case kinds > 1:
		return fail("api keys, Entra ID credentials and a token source are mutually exclusive: set one")
	case len(cfg.APIKeys) > 0:
		if len(cfg.APIKeys) > providers.MaxKeys {
			return fail("at most %d api keys", providers.MaxKeys)
		}
		for i, k := range cfg.APIKeys {
			if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return fail("api key #%d is empty or holds whitespace or control characters", i+1)
			}
		}
		p.keys = providers.NewKeyRing(append([]string(nil), cfg.APIKeys...), cfg.OnKeyEvent)
	case cfg.TokenSource != nil:
		p.tokens = oauth2.ReuseTokenSource(nil, cfg.TokenSource)
	default:
		var missing []string
		for _, f := range []struct{ name, v string }{{"tenant_id", cfg.TenantID}, {"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret}} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			return fail("Entra ID credentials need tenant_id, client_id and client_secret: %s missing", strings.Join(missing, ", "))
		}
		if !validTenant(cfg.TenantID) {
			return fail("tenant_id %q is not a tenant id or domain", cfg.TenantID)
		}
		tokenURL := cfg.TokenURL
		if tokenURL == "" {
			tokenURL = "https://login.microsoftonline.com/" + cfg.TenantID + "/oauth2/v2.0/token"
		} else if tu, err := url.Parse(tokenURL); err != nil || (tu.Scheme != "https" && tu.Scheme != "http") || tu.Host == "" || tu.User != nil {
			return fail("token_url %q is not an absolute http or https URL", tokenURL)
		}
		if strings.ContainsFunc(cfg.ClientSecret, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fail("client_secret holds control characters")
		}
		cc := &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     tokenURL,
			Scopes:       []string{Scope},
			AuthStyle:    oauth2.AuthStyleInParams,
		}
		if ctx == nil {
			ctx = context.Background()
		}
		tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient,
			&http.Client{Transport: cfg.Transport, Timeout: tokenTimeout})
		p.tokens = cc.TokenSource(tctx) // an oauth2.ReuseTokenSource
	}
	return p, nil
}

// validResource reports whether s can be a resource's DNS label.
func validResource(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validTenant reports whether s can be a tenant id (a GUID) or a tenant
// domain: letters, digits, '-' and '.'.
func validTenant(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return false
		}
	}
	return s != ""
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Family is "azure".
func (p *Provider) Family() string { return "azure" }

// Serves reports true for the Messages and count_tokens surfaces.
func (p *Provider) Serves(s llm.Surface) bool {
	return s == llm.SurfaceAnthropicMessages || s == llm.SurfaceAnthropicCountTokens
}

// deployment is the deployment a call goes to: the model map's, else the
// canonical model name.
func (p *Provider) deployment(call *llm.Call) string {
	canonical := call.CanonicalModel
	if canonical == "" {
		canonical = llm.CanonicalModel(call.Model)
	}
	if id, ok := p.modelMap.Lookup(canonical); ok {
		return id
	}
	return canonical
}

// Send forwards the call: POST {base}/v1/messages (count_tokens:
// {base}/v1/messages/count_tokens) with the inbound query string, the
// native Messages body byte for byte except "model", replaced by the
// deployment name when that differs from the model the client sent; every
// inbound header stream.ForwardRequestHeaders keeps (all anthropic-*
// headers; never the client's credentials), anthropic-version: 2023-06-01
// when absent, Accept-Encoding: identity, and the provider's credential:
// the next API key as both api-key and x-api-key, or Authorization: Bearer
// with the cached Entra ID token. Redirects are not followed and no timeout
// is set beyond ctx. Errors hold no key, token or client secret: a token
// that cannot be obtained is a *providers.TokenError, a transport failure a
// *providers.UpstreamError.
func (p *Provider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	var suffix string
	switch call.Surface {
	case llm.SurfaceAnthropicMessages:
		suffix = "/v1/messages"
	case llm.SurfaceAnthropicCountTokens:
		suffix = "/v1/messages/count_tokens"
	default:
		return nil, fmt.Errorf("azure provider %q does not serve the %s surface", p.name, call.Surface)
	}
	target := p.base + suffix
	if call.RawQuery != "" {
		target += "?" + call.RawQuery
	}
	body := call.Body
	if d := p.deployment(call); d != call.Model {
		var err error
		if body, err = llm.RewriteBody(call.Body, nil, []llm.Member{{Name: "model", Value: llm.QuoteJSON(d)}}); err != nil {
			return nil, fmt.Errorf("azure provider %q: the request body is not a JSON object: %v", p.name, err)
		}
	}
	header := stream.ForwardRequestHeaders(call.Header)
	header["Accept-Encoding"] = []string{"identity"}
	if len(header["Anthropic-Version"]) == 0 {
		header["Anthropic-Version"] = []string{DefaultVersion}
	}
	newRequest := func(h http.Header) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("azure provider %q: bad upstream URL for %s", p.name, call.Surface)
		}
		req.Header = h
		return req, nil
	}

	if p.keys == nil {
		token, err := p.accessToken()
		if err != nil {
			return nil, err
		}
		header["Authorization"] = []string{"Bearer " + token}
		req, err := newRequest(header)
		if err != nil {
			return nil, err
		}
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			return nil, providers.NewUpstreamError("azure", p.name, p.host, err, token, p.secret)
		}
		return resp, nil
	}
	return p.keys.Do(func(key string) (*http.Response, error) {
		h := header
		if p.keys.Len() > 1 {
			h = header.Clone() // a retry with another key must not share the map
		}
		h["Api-Key"] = []string{key}
		h["X-Api-Key"] = []string{key}
		req, err := newRequest(h)
		if err != nil {
			return nil, err
		}
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			return nil, providers.NewUpstreamError("azure", p.name, p.host, err, key)
		}
		return resp, nil
	})
}

// accessToken returns the cached Entra ID token, fetching a new one when it
// is missing or about to expire.
func (p *Provider) accessToken() (string, error) {
	tok, err := p.tokens.Token()
	if err != nil {
		return "", providers.NewTokenError("azure", p.name, "an Entra ID access token", err, p.secret, url.QueryEscape(p.secret))
	}
	if tok == nil || tok.AccessToken == "" {
		return "", providers.NewTokenError("azure", p.name, "an Entra ID access token", errors.New("the token endpoint returned no access token"), p.secret)
	}
	return tok.AccessToken, nil
}

// Relay writes resp to w with anthropic.RelayResponse: Foundry answers in
// Anthropic's own JSON, SSE and error formats, so everything — errors
// included — passes through unmodified while usage is metered. It always
// closes resp.Body.
func (p *Provider) Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) providers.Result {
	return anthropic.RelayResponse(w, resp, p.now)
}
