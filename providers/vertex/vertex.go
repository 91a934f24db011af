// Package vertex is the Google Vertex AI family: Claude served by Vertex AI's
// rawPredict and streamRawPredict methods. It serves two kinds of inbound
// call:
//
//   - Anthropic Messages and count_tokens calls, rewritten to Vertex's
//     dialect (the model moves from the body to the URL, the body gains
//     anthropic_version "vertex-2023-10-16"), whose responses — Anthropic
//     JSON or SSE, unchanged by Vertex — are relayed and metered as the
//     anthropic family does, with Google-shaped errors translated to
//     Anthropic's shape;
//   - Vertex-shaped calls (Claude Code with CLAUDE_CODE_USE_VERTEX=1 and
//     CLAUDE_CODE_SKIP_VERTEX_AUTH=1 pointed at the gateway), forwarded to the
//     provider's own project and region with the body untouched, and relayed
//     unchanged.
//
// Requests carry the provider's OAuth2 access token (a service account, any
// Google credentials file, or Application Default Credentials), cached and
// refreshed by an oauth2.ReuseTokenSource. It never imports Caddy: the
// module hands it a round tripper, which token fetches use too.
package vertex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// Version is the anthropic_version a Messages body carries on Vertex.
const Version = "vertex-2023-10-16"

// Scope is the OAuth2 scope the provider's access tokens are requested for.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// versionJSON is Version as a JSON value.
var versionJSON = llm.QuoteJSON(Version)

// Config configures one Vertex AI provider.
type Config struct {
	// Name is the provider's configured name.
	Name string
	// Project is the Google Cloud project id requests are billed to and
	// served from (required).
	Project string
	// Region is the Vertex AI location: "global", a multi-region ("us",
	// "eu") or a region such as "us-east5" (required).
	Region string
	// BaseURL is the API host, without /v1 (the gateway appends
	// /v1/projects/…); DefaultBaseURL(Region) when empty. A path prefix is
	// kept ("https://proxy.example.com/vertex").
	BaseURL string
	// Models maps canonical model globs to Vertex model ids
	// ("claude-sonnet-4-5*" → "claude-sonnet-4-5@20250929"); the first match
	// wins. Unmapped models use DefaultModelID, or, on the Vertex-shaped
	// surface, the id the client sent.
	Models providers.ModelMap
	// CredentialsFile is a Google credentials JSON file: a service account
	// key, or any other type Application Default Credentials accepts.
	CredentialsFile string
	// CredentialsJSON is the same file's content.
	CredentialsJSON []byte
	// TokenSource supplies access tokens directly (tests, embedding); it is
	// wrapped in an oauth2.ReuseTokenSource.
	//
	// With none of CredentialsFile, CredentialsJSON and TokenSource,
	// Application Default Credentials are used.
	TokenSource oauth2.TokenSource
	// Transport sends the upstream requests and the token fetches (the
	// module passes Caddy's pooled HTTP transport). Required.
	Transport http.RoundTripper
	// Now is the clock for time-to-first-token; nil means time.Now.
	Now func() time.Time
}

// Provider is a Vertex AI providers.Provider. It is safe for concurrent use.
type Provider struct {
	name      string
	host      string // for error messages
	models    string // base + "/v1/projects/{p}/locations/{r}/publishers/anthropic/models/"
	modelMap  providers.ModelMap
	tokens    oauth2.TokenSource
	transport http.RoundTripper
	now       func() time.Time
}

var _ providers.Provider = (*Provider)(nil)

// DefaultBaseURL is Vertex AI's API host for a region: the global endpoint
// for "global", the multi-region endpoints for "us" and "eu", and
// https://{region}-aiplatform.googleapis.com otherwise.
func DefaultBaseURL(region string) string {
	switch region {
	case "global":
		return "https://aiplatform.googleapis.com"
	case "us", "eu":
		return "https://aiplatform." + region + ".rep.googleapis.com"
	}
	return "https://" + region + "-aiplatform.googleapis.com"
}

// New validates cfg and returns the provider: a project id and a region
// that are plain path segments, a Transport, an absolute http or https base
// URL without query, fragment, user info or a trailing /v1, and loadable
// credentials. No token is fetched until the first request; the token
// source outlives ctx's cancellation and keeps only its values.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	fail := func(format string, a ...any) (*Provider, error) {
		return nil, fmt.Errorf("vertex provider %q: "+format, append([]any{cfg.Name}, a...)...)
	}
	switch {
	case cfg.Project == "":
		return fail("project is required")
	case !validSegment(cfg.Project, ".:"):
		return fail("project %q is not a valid project id", cfg.Project)
	case cfg.Region == "":
		return fail("region is required (\"global\" or a region such as \"us-east5\")")
	case !validSegment(cfg.Region, ""):
		return fail("region %q is not a valid Vertex AI location", cfg.Region)
	case cfg.Transport == nil:
		return fail("a transport is required")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL(cfg.Region)
	}
	u, err := providers.ParseBaseURL(base)
	if err != nil {
		return fail("%v", err)
	}
	path := u.Path
	if strings.HasSuffix(path, "/v1") {
		return fail("base_url %q ends in /v1: give the API host, the gateway appends /v1/projects/…", base)
	}
	tokens, err := newTokenSource(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Provider{
		name: cfg.Name,
		host: u.Host,
		models: u.Base + "/v1/projects/" + url.PathEscape(cfg.Project) +
			"/locations/" + url.PathEscape(cfg.Region) + "/publishers/anthropic/models/",
		modelMap:  append(providers.ModelMap(nil), cfg.Models...),
		tokens:    tokens,
		transport: cfg.Transport,
		now:       now,
	}, nil
}

// validSegment reports whether s is made of ASCII letters, digits, '-',
// '_' and the extra bytes allowed.
func validSegment(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Family is "vertex".
func (p *Provider) Family() string { return "vertex" }

// Serves reports true for the Anthropic Messages and count_tokens surfaces
// and the three Vertex-shaped surfaces (rawPredict, streamRawPredict,
// count-tokens:rawPredict).
func (p *Provider) Serves(s llm.Surface) bool {
	switch s {
	case llm.SurfaceAnthropicMessages, llm.SurfaceAnthropicCountTokens,
		llm.SurfaceVertexRawPredict, llm.SurfaceVertexStreamRawPredict, llm.SurfaceVertexCountTokens:
		return true
	}
	return false
}

// modelID is the Vertex model id a call goes to: the provider's model map
// first; then, on the Vertex-shaped surface, the id the client sent; then
// DefaultModelID of the canonical model.
func (p *Provider) modelID(call *llm.Call) string {
	canonical := call.CanonicalModel
	if canonical == "" {
		canonical = llm.CanonicalModel(call.Model)
	}
	if id, ok := p.modelMap.Lookup(canonical); ok {
		return id
	}
	if call.Surface.Dialect() == llm.DialectVertex && call.Model != "" {
		return call.Model
	}
	return DefaultModelID(canonical)
}

// Send forwards the call to
// {base}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{id}:{method},
// always with the provider's project and region:
//
//   - Anthropic Messages: :streamRawPredict when call.Stream, else
//     :rawPredict; the body without "model" and with anthropic_version set
//     to Version, everything else byte for byte; the query string (Claude
//     Code's ?beta=true, an Anthropic API flag) is dropped.
//   - Anthropic count_tokens: models/count-tokens:rawPredict, the body's
//     "model" set to the Vertex id (Vertex reads it there) and
//     anthropic_version added.
//   - Vertex-shaped rawPredict and streamRawPredict: the method the client
//     called, the body and query string untouched, to the provider's project
//     and region (call.PathSuffix's project and region are the client's and
//     are ignored) and the mapped or client-sent model id.
//   - Vertex-shaped count-tokens: the body untouched except "model", set
//     to the mapped id when the model map names a different one.
//
// Headers: every inbound header stream.ForwardRequestHeaders keeps
// (anthropic-beta and every other anthropic-* header included; the
// client's credentials never) except X-Goog-User-Project (the client's
// quota project, not the provider's), plus Authorization: Bearer with the
// provider's cached access token, Content-Type: application/json and
// Accept-Encoding: identity. Redirects are not followed and no timeout is
// set beyond ctx. A token that cannot be obtained is a *providers.TokenError; a
// transport failure a *providers.UpstreamError; neither holds the token.
func (p *Provider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	var target string
	body := call.Body
	var err error
	if !p.Serves(call.Surface) {
		return nil, fmt.Errorf("vertex provider %q does not serve the %s surface", p.name, call.Surface)
	}
	id := p.modelID(call)
	if call.Surface != llm.SurfaceVertexCountTokens && id == "" {
		return nil, fmt.Errorf("vertex provider %q: the call names no model", p.name)
	}
	switch call.Surface {
	case llm.SurfaceAnthropicMessages:
		method := ":rawPredict"
		if call.Stream {
			method = ":streamRawPredict"
		}
		target = p.models + url.PathEscape(id) + method
		body, err = llm.RewriteBody(call.Body, []string{"model"}, []llm.Member{{Name: "anthropic_version", Value: versionJSON}})
	case llm.SurfaceAnthropicCountTokens:
		target = p.models + "count-tokens:rawPredict"
		body, err = llm.RewriteBody(call.Body, nil, []llm.Member{
			{Name: "model", Value: llm.QuoteJSON(id)},
			{Name: "anthropic_version", Value: versionJSON},
		})
	case llm.SurfaceVertexRawPredict, llm.SurfaceVertexStreamRawPredict:
		method := ":rawPredict"
		if call.Surface == llm.SurfaceVertexStreamRawPredict {
			method = ":streamRawPredict"
		}
		target = p.models + url.PathEscape(id) + method
		if call.RawQuery != "" {
			target += "?" + call.RawQuery
		}
	case llm.SurfaceVertexCountTokens:
		target = p.models + "count-tokens:rawPredict"
		if id != call.Model {
			body, err = llm.RewriteBody(call.Body, nil, []llm.Member{{Name: "model", Value: llm.QuoteJSON(id)}})
		}
		if call.RawQuery != "" {
			target += "?" + call.RawQuery
		}
	default:
		return nil, fmt.Errorf("vertex provider %q does not serve the %s surface", p.name, call.Surface)
	}
	if err != nil {
		return nil, fmt.Errorf("vertex provider %q: the request body is not a JSON object: %v", p.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("vertex provider %q: bad upstream URL for model %q", p.name, call.Model)
	}
	token, err := p.accessToken()
	if err != nil {
		return nil, err
	}
	h := stream.ForwardRequestHeaders(call.Header)
	delete(h, "X-Goog-User-Project")
	h["Authorization"] = []string{"Bearer " + token}
	h["Content-Type"] = []string{"application/json"}
	h["Accept-Encoding"] = []string{"identity"}
	req.Header = h
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return nil, providers.NewUpstreamError("vertex", p.name, p.host, err, token)
	}
	return resp, nil
}

// accessToken returns the cached access token, fetching a new one when it
// is missing or about to expire.
func (p *Provider) accessToken() (string, error) {
	tok, err := p.tokens.Token()
	if err != nil {
		return "", providers.NewTokenError("vertex", p.name, "an access token", err)
	}
	if tok == nil || tok.AccessToken == "" {
		return "", providers.NewTokenError("vertex", p.name, "an access token", errors.New("the token endpoint returned no access token"))
	}
	return tok.AccessToken, nil
}

// Relay writes resp to w as anthropic.RelayResponse does — headers and
// status, then the body as it arrives, flushed and metered (Vertex answers
// in Anthropic's JSON and SSE formats) — and returns what was metered.
//
// On the Vertex-shaped surfaces every response, errors included, passes
// through unmodified: the client speaks Vertex. On the Anthropic surfaces
// an error status with a Google-shaped body ({"error":{"code","message",
// "status"}}) is rewritten to Anthropic's shape with the status
// AnthropicStatus gives (so 503 UNAVAILABLE reaches the client as 529
// overloaded_error and Anthropic SDKs react as they do to Anthropic
// itself); Anthropic-shaped and unrecognised error bodies pass through.
// Relay always closes resp.Body.
func (p *Provider) Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) providers.Result {
	if resp.StatusCode < 400 || call.Surface.Dialect() == llm.DialectVertex {
		return anthropic.RelayResponse(w, resp, p.now)
	}
	return relayError(w, resp, p.now)
}

// relayError reads an error body (up to anthropic.MaxErrorCopy) and writes
// its Anthropic translation, or relays it unchanged when it is not
// Google-shaped (or longer than that, or cut).
func relayError(w http.ResponseWriter, resp *http.Response, now func() time.Time) providers.Result {
	orig := resp.Body
	b, err := io.ReadAll(io.LimitReader(orig, anthropic.MaxErrorCopy+1))
	if err == nil && len(b) <= anthropic.MaxErrorCopy {
		if status, out, typ, ok := TranslateError(resp.StatusCode, b); ok {
			_ = orig.Close()
			h := w.Header()
			stream.CopyResponseHeaders(h, resp.Header)
			h.Del("Content-Encoding")
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(out)))
			w.WriteHeader(status)
			n, werr := w.Write(out)
			return providers.Result{Status: status, BytesWritten: int64(n), ErrorType: typ, ClientErr: werr}
		}
	}
	rest := io.Reader(orig)
	if err != nil {
		rest = errReader{err}
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(b), rest), orig}
	return anthropic.RelayResponse(w, resp, now)
}

// errReader fails every read with its error (a cut seen while the error
// body was being read, replayed for the relay).
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
