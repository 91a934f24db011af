// Package openai is the OpenAI API family: it forwards Chat Completions,
// Responses and Embeddings calls to api.openai.com or any OpenAI-compatible
// server (vLLM, Ollama, OpenRouter, LiteLLM, Azure OpenAI) with the
// provider's own credential, and relays the response while metering its
// usage. It never imports Caddy: the module hands it a round tripper.
//
// Bodies are forwarded byte for byte with two exceptions: the model is
// rewritten when the provider maps the canonical model to its own id (or
// Azure deployment), and a streamed chat call whose client did not ask for
// stream_options.include_usage gets it, so that the gateway can meter the
// stream; Relay then removes from the stream what that option added — the
// usage-only chunk and the "usage":null member of every other chunk (see
// ChatFilter) — so the client sees what it would have seen.
// Send and Relay share only the *llm.Call, so Send records whether it
// injected in the upstream request's context, and Relay reads it back from
// resp.Request; a response without that mark (not made by Send) gets the
// same decision recomputed from call.Body.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// DefaultBaseURL is the OpenAI API's base URL, version included (the
// convention of OpenAI's SDKs).
const DefaultBaseURL = "https://api.openai.com/v1"

// The credential header styles of Config.AuthHeader.
const (
	// AuthBearer sends "Authorization: Bearer <key>" (OpenAI, vLLM,
	// OpenRouter, Azure OpenAI's v1 API with an Entra token).
	AuthBearer = "authorization"
	// AuthAPIKey sends "api-key: <key>" (Azure OpenAI keys).
	AuthAPIKey = "api-key"
)

// Limits on what Relay keeps of a response body besides relaying it.
const (
	// MaxErrorCopy is how much of an error response body is kept to read
	// its error type.
	MaxErrorCopy = 64 << 10
	// MaxBodyCopy is how much of a non-streamed success body is kept to read
	// its usage; past it the body is still relayed, and only an embeddings
	// body is still metered (from its tail, where its usage is).
	MaxBodyCopy = 32 << 20
	// tailCopy is how much of the end of an over-long body is kept.
	tailCopy = 64 << 10
)

// Config configures one OpenAI-family provider.
type Config struct {
	// Name is the provider's configured name.
	Name string
	// BaseURL is where the API lives, version segment included
	// (DefaultBaseURL when empty): "http://localhost:11434/v1" (Ollama),
	// "http://vllm:8000/v1", "https://openrouter.ai/api/v1",
	// "https://{resource}.openai.azure.com/openai/v1" (Azure OpenAI's v1
	// API), or a legacy Azure deployment
	// "https://{resource}.openai.azure.com/openai/deployments/{deployment}"
	// with APIVersion set. The surface path follows it without its "/v1":
	// BaseURL + "/chat/completions".
	BaseURL string
	// APIKeys are the provider's keys, used round-robin, one per request
	// (providers.KeyRing: a key answered 401/403 leaves the rotation, a 429
	// moves the request on to the next key). Empty for servers that need
	// none (Ollama, a local vLLM): no credential header is sent then.
	APIKeys []string
	// OnKeyEvent is told when a key is rejected or rate limited (logs and
	// metrics); may be nil.
	OnKeyEvent func(providers.KeyEvent)
	// AuthHeader is how a key is sent: AuthBearer (the default, also for
	// "") or AuthAPIKey for Azure OpenAI. Case-insensitive.
	AuthHeader string
	// APIVersion, when set, is sent as the api-version query parameter
	// (Azure OpenAI), replacing one the client sent.
	APIVersion string
	// Organization and Project, when set, are sent as the
	// OpenAI-Organization and OpenAI-Project headers. The client's own
	// values for those headers are never forwarded: they name the client's
	// account, not the provider key's.
	Organization, Project string
	// Models maps canonical models to the server's model ids (or Azure
	// deployment names); the body's "model" is rewritten when the mapped id
	// differs from the one the client sent. Unmapped models pass unchanged.
	Models providers.ModelMap
	// Transport sends the upstream requests (the module passes Caddy's
	// pooled HTTP transport). Required.
	Transport http.RoundTripper
	// Now is the clock for time-to-first-token; nil means time.Now.
	Now func() time.Time
}

// Provider is an OpenAI-family providers.Provider. It is safe for
// concurrent use.
type Provider struct {
	name       string
	base       string // scheme://host/prefix, no trailing slash
	host       string // for error messages
	keys       *providers.KeyRing
	apiKey     bool // send the key as api-key, not Authorization: Bearer
	apiVersion string
	org, proj  string
	models     providers.ModelMap
	transport  http.RoundTripper
	now        func() time.Time
}

var _ providers.Provider = (*Provider)(nil)

// New validates cfg and returns the provider: keys (if any) non-empty and
// free of whitespace and control characters, a known AuthHeader,
// Organization, Project and APIVersion free of control characters, a
// Transport, and an absolute http or https base URL without query,
// fragment or user info.
func New(cfg Config) (*Provider, error) {
	if len(cfg.APIKeys) > providers.MaxKeys {
		return nil, fmt.Errorf("openai provider %q: at most %d api keys", cfg.Name, providers.MaxKeys)
	}
	for i, k := range cfg.APIKeys {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("openai provider %q: api key #%d is empty or holds whitespace or control characters", cfg.Name, i+1)
		}
	}
	var apiKey bool
	switch strings.ToLower(cfg.AuthHeader) {
	case "", AuthBearer:
	case AuthAPIKey:
		apiKey = true
	default:
		return nil, fmt.Errorf("openai provider %q: auth header %q: want %q or %q", cfg.Name, cfg.AuthHeader, AuthBearer, AuthAPIKey)
	}
	for what, v := range map[string]string{"organization": cfg.Organization, "project": cfg.Project, "api version": cfg.APIVersion} {
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("openai provider %q: %s holds control characters", cfg.Name, what)
		}
	}
	if cfg.Transport == nil {
		return nil, fmt.Errorf("openai provider %q: a transport is required", cfg.Name)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := providers.ParseBaseURL(base)
	if err != nil {
		if strings.Contains(err.Error(), "query") {
			err = fmt.Errorf("%w (use api_version for Azure)", err)
		}
		return nil, fmt.Errorf("openai provider %q: %w", cfg.Name, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Provider{
		name:       cfg.Name,
		base:       u.Base,
		host:       u.Host,
		keys:       providers.NewKeyRing(append([]string(nil), cfg.APIKeys...), cfg.OnKeyEvent),
		apiKey:     apiKey,
		apiVersion: cfg.APIVersion,
		org:        cfg.Organization,
		proj:       cfg.Project,
		models:     append(providers.ModelMap(nil), cfg.Models...),
		transport:  cfg.Transport,
		now:        now,
	}, nil
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Family is "openai".
func (p *Provider) Family() string { return "openai" }

// Serves reports true for the Chat Completions, Responses and Embeddings
// surfaces (models are listed by the gateway itself).
func (p *Provider) Serves(s llm.Surface) bool {
	switch s {
	case llm.SurfaceOpenAIChat, llm.SurfaceOpenAIResponses, llm.SurfaceOpenAIEmbeddings:
		return true
	}
	return false
}

// defaultSuffix is the upstream path of a surface, relative to the
// versioned base URL.
func defaultSuffix(s llm.Surface) string {
	switch s {
	case llm.SurfaceOpenAIResponses:
		return "/responses"
	case llm.SurfaceOpenAIEmbeddings:
		return "/embeddings"
	}
	return "/chat/completions"
}

// injectedKey marks, in the context of the upstream request Send made for a
// streamed chat call, whether Send injected stream_options.include_usage
// (the value is a bool). Relay reads it from resp.Request's context; when a
// response carries no mark (it did not come from Send, or a transport
// replaced the request's context), Relay recomputes the same decision from
// call.Body.
type injectedKey struct{}

// Send forwards the call: POST BaseURL + the surface path without its
// "/v1" (call.PathSuffix "/v1/chat/completions" → BaseURL +
// "/chat/completions"), the client's query string kept (plus api-version
// when configured, replacing the client's), and the body byte for byte
// unless the model is remapped or include_usage injected (see the package
// doc). The request is rewindable, so the transport may retry it on a dead
// keep-alive connection. Every inbound header is forwarded except hop-by-hop
// ones, Host, Content-Length, Expect, Cookie, Accept-Encoding, the client's
// credentials and its OpenAI-Organization and OpenAI-Project; the
// provider's key (the next in rotation, if it has any: "Authorization:
// Bearer" or "api-key"), its organization and project, and
// Accept-Encoding: identity are set, and Content-Type: application/json when
// the client sent none. A key answered 401, 403 or 429 is retried with the
// next one (providers.KeyRing.Do). No timeout is set beyond ctx. Redirects
// are not followed. Errors name the upstream host only, never a header or
// key.
func (p *Provider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	if !p.Serves(call.Surface) {
		return nil, fmt.Errorf("openai provider %q does not serve the %s surface", p.name, call.Surface)
	}
	suffix := call.PathSuffix
	if suffix == "" {
		suffix = defaultSuffix(call.Surface)
	} else if suffix[0] != '/' {
		suffix = "/" + suffix
	}
	if strings.HasPrefix(suffix, "/v1/") {
		suffix = suffix[len("/v1"):] // the base URL holds the version
	}
	target := p.base + suffix
	if q := p.query(call.RawQuery); q != "" {
		target += "?" + q
	}

	body, injected, err := p.body(call)
	if err != nil {
		return nil, fmt.Errorf("openai provider %q: request body: %w", p.name, err)
	}
	if call.Surface == llm.SurfaceOpenAIChat && call.Stream {
		ctx = context.WithValue(ctx, injectedKey{}, injected)
	}
	header := stream.ForwardRequestHeaders(call.Header)
	delete(header, "Openai-Organization")
	delete(header, "Openai-Project")
	if p.org != "" {
		header["Openai-Organization"] = []string{p.org}
	}
	if p.proj != "" {
		header["Openai-Project"] = []string{p.proj}
	}
	header["Accept-Encoding"] = []string{"identity"}
	if len(header["Content-Type"]) == 0 {
		header["Content-Type"] = []string{"application/json"}
	}
	return p.keys.Do(func(key string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("openai provider %q: bad upstream URL for path %q", p.name, suffix)
		}
		h := header
		if p.keys.Len() > 1 {
			h = header.Clone() // a retry with another key must not share the map
		}
		switch {
		case key == "":
		case p.apiKey:
			h["Api-Key"] = []string{key}
		default:
			h["Authorization"] = []string{"Bearer " + key}
		}
		req.Header = h
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			return nil, providers.NewUpstreamError("openai", p.name, p.host, err, key)
		}
		if resp.Request == nil {
			resp.Request = req
		}
		return resp, nil
	})
}

// query returns the client's query with the configured api-version
// replacing any the client sent; the client's parameters are kept as they
// were written.
func (p *Provider) query(raw string) string {
	if p.apiVersion == "" {
		return raw
	}
	var b strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == "api-version" {
			continue
		}
		b.WriteString(part)
		b.WriteByte('&')
	}
	b.WriteString("api-version=")
	b.WriteString(url.QueryEscape(p.apiVersion))
	return b.String()
}

// body returns the upstream body: call.Body itself unless the model is
// remapped or include_usage must be injected, and whether it was.
func (p *Provider) body(call *llm.Call) ([]byte, bool, error) {
	var set []llm.Member
	canonical := call.CanonicalModel
	if canonical == "" {
		canonical = call.Model
	}
	if id, ok := p.models.Lookup(canonical); ok && id != call.Model {
		set = append(set, llm.Member{Name: "model", Value: llm.QuoteJSON(id)})
	}
	injected := false
	if call.Surface == llm.SurfaceOpenAIChat && call.Stream {
		so := call.Fields.StreamOptions
		if !call.Fields.IncludeUsage {
			v := []byte(`{"include_usage":true}`)
			if len(so) > 0 && so[0] == '{' {
				merged, err := llm.RewriteBody(so, nil, []llm.Member{{Name: "include_usage", Value: []byte("true")}})
				if err != nil {
					return nil, false, err
				}
				v = merged
			}
			set = append(set, llm.Member{Name: "stream_options", Value: v})
			injected = true
		}
	}
	if len(set) == 0 {
		return call.Body, false, nil
	}
	b, err := llm.RewriteBody(call.Body, nil, set)
	return b, injected, err
}

// injectedFor tells Relay whether Send injected include_usage for this
// response: from the mark Send left in the request context, else
// recomputed from the call.
func injectedFor(resp *http.Response, call *llm.Call) bool {
	if call == nil || call.Surface != llm.SurfaceOpenAIChat {
		return false
	}
	if resp.Request != nil {
		if v, ok := resp.Request.Context().Value(injectedKey{}).(bool); ok {
			return v
		}
	}
	if !call.Stream {
		return false
	}
	return !call.Fields.IncludeUsage
}

// Pools of per-relay state.
var (
	copyPool        = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	chatMeters      stream.SSEPool[ChatMeter, *ChatMeter]
	chatFilters     = sync.Pool{New: func() any { return new(ChatFilter) }}
	responsesMeters stream.SSEPool[ResponsesMeter, *ResponsesMeter]
)

// keepPooled is the largest copy buffer returned to the pool.
const keepPooled = 1 << 20

// Relay writes resp to w: headers (stream.CopyResponseHeaders; an exact
// Content-Length is kept for bodies passed through whole) and status, then
// the body as it arrives, flushing every read.
//
// A 2xx text/event-stream body (or a non-JSON 2xx body answering a
// streamed call) is metered event by event as it passes
// (Responses events on the Responses surface, chat chunks otherwise); a
// chat stream for which Send injected include_usage goes through a
// ChatFilter that drops the usage-only chunk and the
// "usage":null members the client did not ask for, holding back at most
// the current event. Any other 2xx body is copied (up to MaxBodyCopy) and
// its usage read at the end by the surface's meter (with the error type of
// a 200 that carries an error, or of a failed Responses object; an
// embeddings body over the cap is metered from its tail). Error statuses pass
// their body through unmodified, keeping up to MaxErrorCopy bytes to report
// its error type; usage is zero. Relay always closes resp.Body and returns
// what was metered, however the body ended.
func (p *Provider) Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) providers.Result {
	defer resp.Body.Close()
	res := providers.Result{Status: resp.StatusCode}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	var surface llm.Surface
	if call != nil {
		surface = call.Surface
	}
	sse := ok && isStream(resp.Header.Get("Content-Type"), call)

	h := w.Header()
	stream.CopyResponseHeaders(h, resp.Header)
	if !sse {
		stream.KeepContentLength(h, resp)
	}
	w.WriteHeader(resp.StatusCode)
	flush := stream.Flusher(w)

	switch {
	case sse && surface == llm.SurfaceOpenAIResponses:
		_ = flush()
		res.Metered(responsesMeters.Relay(w, flush, resp.Body, p.now))

	case sse && injectedFor(resp, call):
		_ = flush()
		f := chatFilters.Get().(*ChatFilter)
		f.Reset(w)
		f.SSE.Meter.Now = p.now
		_, res.UpstreamErr, res.ClientErr = stream.Pump(f, flush, resp.Body, nil)
		if res.ClientErr == nil {
			if err := f.Finish(); err != nil {
				res.ClientErr = err
			} else if err := flush(); err != nil {
				res.ClientErr = err
			}
		}
		res.BytesWritten = f.Written()
		res.Usage = f.SSE.Meter.Usage()
		res.FirstToken = f.SSE.Meter.FirstToken()
		res.ErrorType = f.SSE.Meter.ErrorType()
		f.SSE.Meter.Now = nil
		f.Reset(nil)
		chatFilters.Put(f)

	case sse:
		_ = flush()
		res.Metered(chatMeters.Relay(w, flush, resp.Body, p.now))

	default:
		p.relayBody(w, flush, resp, surface, ok, &res)
	}
	return res
}

// isStream tells a streamed 2xx body: text/event-stream, or any type but
// JSON answering a streamed call (a compatible server that labels its
// stream text/plain, or not at all, is still relayed event by event).
func isStream(ct string, call *llm.Call) bool {
	if stream.IsEventStream(ct) {
		return true
	}
	return call != nil && call.Stream && !strings.Contains(strings.ToLower(ct), "json")
}

// relayBody passes a whole (non-SSE) body through, keeping a capped copy to
// meter (2xx) or to read the error type from.
func (p *Provider) relayBody(w http.ResponseWriter, flush func() error, resp *http.Response, surface llm.Surface, ok bool, res *providers.Result) {
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
			first = p.now()
		}
		if !over && buf.Len()+len(b) <= limit {
			buf.Write(b)
			return
		}
		over = true
		if ok && surface == llm.SurfaceOpenAIEmbeddings {
			// Past the cap: keep only the tail, where an embeddings
			// body's usage is.
			keepTail(buf, b)
		}
	}
	res.BytesWritten, res.UpstreamErr, res.ClientErr = stream.Pump(w, flush, resp.Body, keep)
	if ok {
		res.FirstToken = first
		var u llm.Usage
		var err error
		var errType string
		switch {
		case over && surface == llm.SurfaceOpenAIEmbeddings:
			u, err = embeddingsTailUsage(buf.Bytes())
		case over:
			err = errOver
		case surface == llm.SurfaceOpenAIResponses:
			var m ResponsesMeter
			if err = m.Body(buf.Bytes()); err == nil {
				u, errType = m.Usage(), m.ErrorType()
			}
		case surface == llm.SurfaceOpenAIEmbeddings:
			u, err = EmbeddingsUsage(buf.Bytes())
		default:
			var m ChatMeter
			if err = m.Body(buf.Bytes()); err == nil {
				u, errType = m.Usage(), m.ErrorType()
			}
		}
		if err == nil {
			res.Usage, res.ErrorType = u, errType
			if res.UpstreamErr != nil {
				res.Usage.Complete = false
			}
		}
	} else {
		res.ErrorType = ErrorType(buf.Bytes())
	}
	if buf.Cap() <= keepPooled {
		copyPool.Put(buf)
	}
}

var errOver = fmt.Errorf("body over %d bytes", MaxBodyCopy)

// keepTail discards all but the last tailCopy bytes of buf, then appends b
// (so at least tailCopy bytes of the body's end are kept). Discarding only
// advances the buffer's read offset; bytes.Buffer slides the kept bytes
// down when it runs out of room instead of growing.
func keepTail(buf *bytes.Buffer, b []byte) {
	if n := buf.Len(); n > tailCopy {
		buf.Next(n - tailCopy)
	}
	buf.Write(b)
}

// embeddingsTailUsage reads the usage of an embeddings body from its tail:
// the last member of the top-level object, as OpenAI, vLLM and Ollama all
// write it (…,"usage":{"prompt_tokens":8,"total_tokens":8}}). The found
// object must be followed by nothing but the closing brace, and preceded by
// a comma, so a nested "usage" is never taken for it.
func embeddingsTailUsage(tail []byte) (llm.Usage, error) {
	const key = `"usage"`
	for end := len(tail); ; {
		k := bytes.LastIndex(tail[:end], []byte(key))
		if k < 0 {
			return llm.Usage{}, errOver
		}
		end = k
		before := bytes.TrimRight(tail[:k], " \t\r\n")
		if len(before) == 0 || before[len(before)-1] != ',' {
			continue
		}
		rest := bytes.TrimLeft(tail[k+len(key):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		dec := json.NewDecoder(bytes.NewReader(rest))
		var raw json.RawMessage
		if dec.Decode(&raw) != nil || len(raw) == 0 || raw[0] != '{' {
			continue
		}
		after := bytes.TrimSpace(rest[dec.InputOffset():])
		if len(after) != 1 || after[0] != '}' {
			continue
		}
		return EmbeddingsUsageObject(raw)
	}
}
