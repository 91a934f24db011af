// Package anthropic is the Anthropic API family: it forwards Messages and
// count_tokens calls to api.anthropic.com (or any server speaking the same
// API) with the provider's own key, and relays the response byte-for-byte
// while metering its usage. It never imports Caddy: the module hands it a
// round tripper.
package anthropic

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// DefaultBaseURL is the Anthropic API's base URL, without the /v1 version
// segment (the convention of Anthropic's SDKs).
const DefaultBaseURL = "https://api.anthropic.com"

// DefaultVersion is the anthropic-version header sent when the client sent
// none.
const DefaultVersion = "2023-06-01"

// Limits on what Relay keeps of a response body besides relaying it.
const (
	// MaxErrorCopy is how much of an error response body is kept to read
	// its error.type.
	MaxErrorCopy = 64 << 10
	// MaxBodyCopy is how much of a non-streamed success body is kept to read
	// its usage; past it the body is still relayed but not metered.
	MaxBodyCopy = 32 << 20
)

// Config configures one Anthropic provider.
type Config struct {
	// Name is the provider's configured name.
	Name string
	// BaseURL is where the API lives, without /v1 (DefaultBaseURL when
	// empty). A path prefix is kept ("https://gw.example.com/anthropic").
	BaseURL string
	// APIKeys are the provider's keys, used round-robin, one per request
	// (providers.KeyRing: a key answered 401/403 leaves the rotation, a 429
	// moves the request on to the next key).
	APIKeys []string
	// OnKeyEvent is told when a key is rejected or rate limited (logs and
	// metrics); may be nil.
	OnKeyEvent func(providers.KeyEvent)
	// Transport sends the upstream requests (the module passes Caddy's
	// pooled HTTP transport). Required.
	Transport http.RoundTripper
	// Now is the clock for time-to-first-token; nil means time.Now.
	Now func() time.Time
}

// Provider is an Anthropic-family providers.Provider. It is safe for
// concurrent use.
type Provider struct {
	name      string
	base      string // scheme://host/prefix, no trailing slash
	host      string // for error messages
	keys      *providers.KeyRing
	transport http.RoundTripper
	now       func() time.Time
}

var _ providers.Provider = (*Provider)(nil)

// New validates cfg and returns the provider: at least one non-empty key
// without whitespace or control characters, a Transport, and an absolute
// http or https base URL without query, fragment or user info.
func New(cfg Config) (*Provider, error) {
	if len(cfg.APIKeys) == 0 {
		return nil, fmt.Errorf("anthropic provider %q: at least one api key is required", cfg.Name)
	}
	if len(cfg.APIKeys) > providers.MaxKeys {
		return nil, fmt.Errorf("anthropic provider %q: at most %d api keys", cfg.Name, providers.MaxKeys)
	}
	for i, k := range cfg.APIKeys {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("anthropic provider %q: api key #%d is empty or holds whitespace or control characters", cfg.Name, i+1)
		}
	}
	if cfg.Transport == nil {
		return nil, fmt.Errorf("anthropic provider %q: a transport is required", cfg.Name)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := providers.ParseBaseURL(base)
	if err != nil {
		return nil, fmt.Errorf("anthropic provider %q: %w", cfg.Name, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Provider{
		name:      cfg.Name,
		base:      u.Base,
		host:      u.Host,
		keys:      providers.NewKeyRing(append([]string(nil), cfg.APIKeys...), cfg.OnKeyEvent),
		transport: cfg.Transport,
		now:       now,
	}, nil
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Family is "anthropic".
func (p *Provider) Family() string { return "anthropic" }

// Serves reports true for the Messages and count_tokens surfaces (models
// are listed by the gateway itself).
func (p *Provider) Serves(s llm.Surface) bool {
	return s == llm.SurfaceAnthropicMessages || s == llm.SurfaceAnthropicCountTokens
}

// defaultSuffix is the upstream path of a surface when the call carries
// none.
func defaultSuffix(s llm.Surface) string {
	if s == llm.SurfaceAnthropicCountTokens {
		return "/v1/messages/count_tokens"
	}
	return "/v1/messages"
}

// Send forwards the call: POST BaseURL + call.PathSuffix (+ "?" +
// call.RawQuery), the body byte-for-byte (rewindable, so the transport may
// retry it on a dead keep-alive connection), every inbound header except
// hop-by-hop ones, Host, Content-Length, Expect, Cookie, Accept-Encoding and
// the client's credentials (Authorization, X-Api-Key, Api-Key,
// X-Goog-Api-Key, Proxy-Authorization). It sets x-api-key to the next
// provider key (round-robin), Accept-Encoding: identity, and
// anthropic-version: 2023-06-01 when the client sent none. No timeout is
// set beyond ctx: streams are long, and the transport's dial and
// response-header timeouts apply. Redirects are not followed. Errors name the
// upstream host only, never a header.
func (p *Provider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	if !p.Serves(call.Surface) {
		return nil, fmt.Errorf("anthropic provider %q does not serve the %s surface", p.name, call.Surface)
	}
	suffix := call.PathSuffix
	if suffix == "" {
		suffix = defaultSuffix(call.Surface)
	} else if suffix[0] != '/' {
		suffix = "/" + suffix
	}
	target := p.base + suffix
	if call.RawQuery != "" {
		target += "?" + call.RawQuery
	}
	header := stream.ForwardRequestHeaders(call.Header)
	header["Accept-Encoding"] = []string{"identity"}
	if len(header["Anthropic-Version"]) == 0 {
		header["Anthropic-Version"] = []string{DefaultVersion}
	}
	return p.keys.Do(func(key string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(call.Body))
		if err != nil {
			return nil, fmt.Errorf("anthropic provider %q: bad upstream URL for path %q", p.name, suffix)
		}
		h := header
		if p.keys.Len() > 1 {
			h = header.Clone() // a retry with another key must not share the map
		}
		h["X-Api-Key"] = []string{key}
		req.Header = h
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			return nil, providers.NewUpstreamError("anthropic", p.name, p.host, err, key)
		}
		return resp, nil
	})
}

// copyPool holds the buffers Relay keeps response copies in.
var copyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sseMeters are reused stream meters.
var sseMeters stream.SSEPool[stream.AnthropicMeter, *stream.AnthropicMeter]

// keepPooled is the largest copy buffer returned to the pool.
const keepPooled = 1 << 20

// Relay writes resp to w: headers (stream.CopyResponseHeaders; an exact
// Content-Length is kept for bodies passed through whole) and status, then
// the body as it arrives, flushing every read.
//
// Error statuses pass their body through unmodified (clients match on the
// upstream's wording), keeping up to MaxErrorCopy bytes to report
// error.type; usage is zero. A 2xx text/event-stream body is metered event by
// event as it passes; any other 2xx body is copied (up to MaxBodyCopy) and
// its usage read at the end. Relay always closes resp.Body and returns what
// was metered, however the body ended.
func (p *Provider) Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) providers.Result {
	return RelayResponse(w, resp, p.now)
}

// RelayResponse relays a native Anthropic Messages response (JSON or SSE)
// to w while metering it, as Provider.Relay documents. Every family whose
// upstream answers in Anthropic's own format (Vertex, Foundry) uses it.
func RelayResponse(w http.ResponseWriter, resp *http.Response, now func() time.Time) providers.Result {
	if now == nil {
		now = time.Now
	}
	defer resp.Body.Close()
	res := providers.Result{Status: resp.StatusCode}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	sse := ok && stream.IsEventStream(resp.Header.Get("Content-Type"))

	h := w.Header()
	stream.CopyResponseHeaders(h, resp.Header)
	if !sse {
		stream.KeepContentLength(h, resp)
	}
	w.WriteHeader(resp.StatusCode)
	flush := stream.Flusher(w)

	switch {
	case sse:
		// Send the headers now: the client learns the stream began even if
		// the upstream is slow to produce its first event. A failure shows
		// again at the first write, after the meter has read that chunk.
		_ = flush()
		res.Metered(sseMeters.Relay(w, flush, resp.Body, now))

	default:
		limit := MaxErrorCopy
		if ok {
			limit = MaxBodyCopy
		}
		buf := copyPool.Get().(*bytes.Buffer)
		buf.Reset()
		over := false
		var first time.Time
		keep := func(b []byte) {
			if first.IsZero() {
				first = now()
			}
			if over {
				return
			}
			if buf.Len()+len(b) > limit {
				over = true
				return
			}
			buf.Write(b)
		}
		res.BytesWritten, res.UpstreamErr, res.ClientErr = stream.Pump(w, flush, resp.Body, keep)
		if ok {
			res.FirstToken = first
			var m stream.AnthropicMeter
			if !over && m.Body(buf.Bytes()) == nil {
				res.Usage = m.Usage()
				if res.UpstreamErr != nil {
					res.Usage.Complete = false
				}
			}
		} else {
			res.ErrorType = stream.ErrorType(buf.Bytes())
		}
		if buf.Cap() <= keepPooled {
			copyPool.Put(buf)
		}
	}
	return res
}
