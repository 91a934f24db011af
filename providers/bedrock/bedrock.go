// Package bedrock is the AWS Bedrock family for Anthropic's Claude models.
//
// It serves two kinds of inbound calls:
//
//   - Anthropic-shaped calls (POST …/v1/messages and …/count_tokens), which
//     it translates: the Messages body loses "model" and "stream" and gains
//     "anthropic_version": "bedrock-2023-05-31" and "anthropic_beta" (from
//     the anthropic-beta header); the call goes to
//     /model/{id}/invoke, /invoke-with-response-stream or /count-tokens; the
//     binary application/vnd.amazon.eventstream answer is decoded frame by
//     frame and re-emitted as Anthropic SSE (with pings during upstream
//     silences), and Bedrock's error statuses and bodies are turned into
//     Anthropic's error shape.
//   - Bedrock-shaped calls (Claude Code's CLAUDE_CODE_USE_BEDROCK mode:
//     POST …/model/{id}/invoke[-with-response-stream] and …/count-tokens),
//     which it passes through: same path on the provider's endpoint, body
//     untouched, response relayed byte for byte while a copy of the event
//     stream is decoded for metering.
//
// Every upstream request is signed with the gateway's own AWS credentials
// (SigV4, service "bedrock") or carries a Bedrock API key as a Bearer
// token; the client's credentials never reach AWS. Event-stream framing and
// SigV4 come from the AWS SDK for Go v2. Nothing here imports Caddy: the
// module hands the provider a round tripper.
package bedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// AnthropicVersion is the anthropic_version Bedrock's Claude models require
// in the request body.
const AnthropicVersion = "bedrock-2023-05-31"

// SigningService is the SigV4 service name of the Bedrock runtime.
const SigningService = "bedrock"

// EventStreamContentType is the media type of Bedrock's binary streamed
// responses.
const EventStreamContentType = "application/vnd.amazon.eventstream"

// DefaultPingInterval is how long a translated stream may stay silent before
// the gateway writes an Anthropic ping event of its own.
const DefaultPingInterval = 10 * time.Second

// Config configures one Bedrock provider.
type Config struct {
	// Name is the provider's configured name.
	Name string
	// Region is the AWS region ("us-east-1"): the signing region, the
	// default endpoint's region and the geography of the built-in inference
	// profiles. It may be left empty when BaseURL names a Bedrock runtime
	// host that carries it ("bedrock-runtime.eu-west-1.amazonaws.com",
	// "vpce-….bedrock-runtime.eu-west-1.vpce.amazonaws.com").
	Region string
	// BaseURL is the runtime endpoint, default
	// https://bedrock-runtime.{Region}.amazonaws.com (a VPC endpoint, or a
	// test server). A path prefix is kept.
	BaseURL string
	// Models maps canonical models (globs) to Bedrock model ids, inference
	// profiles ("us.anthropic.claude-sonnet-4-5-20250929-v1:0") or ARNs;
	// the first match wins. See Provider.ModelID for the whole rule.
	Models providers.ModelMap
	// AccessKeyID, SecretAccessKey and SessionToken are static AWS
	// credentials (the session token is optional).
	AccessKeyID, SecretAccessKey, SessionToken string
	// APIKey is a Bedrock API key, sent as "Authorization: Bearer" instead
	// of a SigV4 signature.
	APIKey string
	// Credentials, when set, provides the AWS credentials (tests, or a
	// caller that built its own chain). It is wrapped in an
	// aws.CredentialsCache unless it already is one.
	Credentials aws.CredentialsProvider
	// Transport sends the upstream requests (the module passes Caddy's
	// pooled HTTP transport). Required.
	Transport http.RoundTripper
	// PingInterval is the longest silence a translated stream keeps before a
	// ping event is written to the client: 0 means DefaultPingInterval, a
	// negative value disables pings.
	PingInterval time.Duration
	// Now is the clock for signing times and time-to-first-token; nil means
	// time.Now.
	Now func() time.Time
}

// Provider is a Bedrock-family providers.Provider. It is safe for
// concurrent use.
type Provider struct {
	name      string
	region    string
	geo       string // inference-profile prefix for the region: "us.", "eu.", …
	base      string // scheme://host/prefix, no trailing slash
	host      string // for error messages
	models    providers.ModelMap
	apiKey    string
	creds     aws.CredentialsProvider // nil in API-key mode
	secrets   []string                // redacted from error messages
	signer    *v4.Signer
	transport http.RoundTripper
	ping      time.Duration // <= 0: no pings
	now       func() time.Time
}

var _ providers.Provider = (*Provider)(nil)

// New validates cfg and returns the provider. Exactly one way to
// authenticate may be given: APIKey, the static AccessKeyID and
// SecretAccessKey pair, or Credentials; with none of them the standard AWS
// credential chain is loaded once, here, with config.LoadDefaultConfig
// (environment variables, shared config and credentials files, web
// identity, SSO, container and EC2 instance roles). Its credentials are
// fetched at the first request and cached (and refreshed before they
// expire) by the SDK, never fetched per request.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	fail := func(format string, a ...any) (*Provider, error) {
		return nil, fmt.Errorf("bedrock provider %q: "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Transport == nil {
		return fail("a transport is required")
	}
	region := cfg.Region
	if region == "" && cfg.BaseURL != "" {
		if u, err := url.Parse(cfg.BaseURL); err == nil {
			region = regionFromHost(u.Hostname())
		}
	}
	if region == "" {
		return fail("a region is required (or a base_url on a bedrock-runtime.{region} host)")
	}
	if !validRegion(region) {
		return fail("region %q is not an AWS region name", region)
	}
	base := cfg.BaseURL
	if base == "" {
		base = "https://bedrock-runtime." + region + ".amazonaws.com"
	}
	u, err := providers.ParseBaseURL(base)
	if err != nil {
		return fail("%v", err)
	}

	p := &Provider{
		name:      cfg.Name,
		region:    region,
		geo:       geoPrefix(region),
		base:      u.Base,
		host:      u.Host,
		models:    append(providers.ModelMap(nil), cfg.Models...),
		signer:    v4.NewSigner(),
		transport: cfg.Transport,
		ping:      cfg.PingInterval,
		now:       cfg.Now,
	}
	if p.ping == 0 {
		p.ping = DefaultPingInterval
	}
	if p.now == nil {
		p.now = time.Now
	}

	static := cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" || cfg.SessionToken != ""
	modes := 0
	for _, set := range []bool{cfg.APIKey != "", static, cfg.Credentials != nil} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return fail("give only one of api_key, static access keys, or a credentials provider")
	}
	switch {
	case cfg.APIKey != "":
		if badSecret(cfg.APIKey) {
			return fail("the api key holds whitespace or control characters")
		}
		p.apiKey = cfg.APIKey
		p.secrets = []string{cfg.APIKey}
	case static:
		if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
			return fail("static credentials need both an access key id and a secret access key")
		}
		if badSecret(cfg.AccessKeyID) || badSecret(cfg.SecretAccessKey) || (cfg.SessionToken != "" && badSecret(cfg.SessionToken)) {
			return fail("the static credentials hold whitespace or control characters")
		}
		p.creds = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
		p.secrets = []string{cfg.SecretAccessKey, cfg.SessionToken}
	case cfg.Credentials != nil:
		p.creds = cfg.Credentials
		if _, cached := cfg.Credentials.(*aws.CredentialsCache); !cached {
			p.creds = aws.NewCredentialsCache(cfg.Credentials)
		}
	default:
		ac, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
		if err != nil {
			return fail("loading the AWS credential chain: %v", err)
		}
		if ac.Credentials == nil {
			return fail("the AWS credential chain found no credentials source")
		}
		p.creds = ac.Credentials // already an aws.CredentialsCache
	}
	return p, nil
}

// badSecret reports whether a key is unusable in a header.
func badSecret(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// validRegion accepts AWS region names: lower-case letters, digits and
// hyphens ("us-east-1", "us-gov-west-1", "eu-central-2").
func validRegion(r string) bool {
	if r == "" || len(r) > 32 || r[0] == '-' || r[len(r)-1] == '-' {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// regionFromHost reads the region out of a Bedrock runtime host name: the
// label after "bedrock-runtime" or "bedrock-runtime-fips"
// ("bedrock-runtime.us-east-1.amazonaws.com",
// "vpce-0abc.bedrock-runtime.eu-west-1.vpce.amazonaws.com"); "" when the host
// is not one.
func regionFromHost(host string) string {
	labels := strings.Split(host, ".")
	for i := 0; i+1 < len(labels); i++ {
		if labels[i] == "bedrock-runtime" || labels[i] == "bedrock-runtime-fips" {
			if validRegion(labels[i+1]) {
				return labels[i+1]
			}
		}
	}
	return ""
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Family is "bedrock".
func (p *Provider) Family() string { return "bedrock" }

// Region is the AWS region the provider signs for.
func (p *Provider) Region() string { return p.region }

// Serves reports true for the Anthropic Messages and count_tokens surfaces
// (translated) and the Bedrock invoke, invoke-with-response-stream and
// count-tokens surfaces (passed through).
func (p *Provider) Serves(s llm.Surface) bool {
	switch s {
	case llm.SurfaceAnthropicMessages, llm.SurfaceAnthropicCountTokens,
		llm.SurfaceBedrockInvoke, llm.SurfaceBedrockInvokeStream, llm.SurfaceBedrockCountTokens:
		return true
	}
	return false
}

// Upstream actions, the last path segment.
const (
	actionInvoke       = "invoke"
	actionInvokeStream = "invoke-with-response-stream"
	actionCountTokens  = "count-tokens"
)

// action is the Bedrock operation a call maps to.
func action(call *llm.Call) string {
	switch call.Surface {
	case llm.SurfaceAnthropicCountTokens, llm.SurfaceBedrockCountTokens:
		return actionCountTokens
	case llm.SurfaceBedrockInvokeStream:
		return actionInvokeStream
	case llm.SurfaceBedrockInvoke:
		return actionInvoke
	}
	if call.Stream {
		return actionInvokeStream
	}
	return actionInvoke
}

// translated reports whether the call arrived in Anthropic's shape (and so
// is translated), rather than Bedrock's own (passed through).
func translated(s llm.Surface) bool {
	return s == llm.SurfaceAnthropicMessages || s == llm.SurfaceAnthropicCountTokens
}

// Send forwards the call to POST {base}/model/{id}/{action}, the model id
// chosen by ModelID and percent-encoded as one path segment (":" → %3A,
// "/" → %2F), with no query string (Claude Code's ?beta=true means nothing
// to Bedrock).
//
// Anthropic-shaped calls are translated (see TranslateBody and
// CountTokensBody); Bedrock-shaped calls keep their body byte for byte. The
// headers are the client's (stream.ForwardRequestHeaders: no client
// credential, no hop-by-hop header) minus anthropic-version and
// anthropic-beta (they travel in the body) and minus every X-Amz-* header
// (SigV4's own: X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256 …,
// which the gateway sets; X-Amzn-Bedrock-* request options pass), plus
// Content-Type: application/json, Accept (the event-stream type for
// invoke-with-response-stream, else application/json) and
// Accept-Encoding: identity. Every header sent is covered by the SigV4
// signature (except User-Agent and the few the SDK signer never signs); in
// API-key mode Authorization: Bearer carries the key instead.
//
// The body is rewindable (GetBody), so the transport may resend it on a
// dead keep-alive connection with the same signature. Errors never hold a
// credential: transport errors are providers.UpstreamError values naming
// the host only.
func (p *Provider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	if !p.Serves(call.Surface) {
		return nil, fmt.Errorf("bedrock provider %q does not serve the %s surface", p.name, call.Surface)
	}
	id, err := p.ModelID(call)
	if err != nil {
		return nil, err
	}
	act := action(call)
	body := call.Body
	if translated(call.Surface) {
		body, err = TranslateBody(call.Body, call.Header)
		if err == nil && act == actionCountTokens {
			body, err = CountTokensBody(body, call.Fields.HasMaxTokens)
		}
		if err != nil {
			return nil, fmt.Errorf("bedrock provider %q: %w", p.name, err)
		}
	}
	target := p.base + "/model/" + escapeSegment(id) + "/" + act
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bedrock provider %q: bad upstream URL for model id %q", p.name, id)
	}
	req.Header = requestHeader(call.Header, act == actionInvokeStream)
	if p.apiKey != "" {
		req.Header["Authorization"] = []string{"Bearer " + p.apiKey}
	} else if err := p.sign(ctx, req, body); err != nil {
		return nil, err
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return nil, providers.NewUpstreamError("bedrock", p.name, p.host, err, p.secrets...)
	}
	return resp, nil
}

// CredentialsError is a failure to obtain AWS credentials from the
// provider's chain before a request could be signed.
type CredentialsError struct {
	// Provider is the provider's configured name.
	Provider string
	// Err is the credential provider's error.
	Err error
}

// Error implements error.
func (e *CredentialsError) Error() string {
	return fmt.Sprintf("bedrock provider %q: no AWS credentials: %v", e.Provider, e.Err)
}

// Unwrap returns the credential provider's error.
func (e *CredentialsError) Unwrap() error { return e.Err }

// sign adds the SigV4 Authorization, X-Amz-Date and (for temporary
// credentials) X-Amz-Security-Token headers, signing the escaped path
// exactly as it is sent (URL.RawPath), the headers present and the payload's
// SHA-256.
func (p *Provider) sign(ctx context.Context, req *http.Request, body []byte) error {
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return providers.NewUpstreamError("bedrock", p.name, p.host, ctx.Err(), p.secrets...)
		}
		return &CredentialsError{Provider: p.name, Err: errors.New(providers.Redact(err.Error(), p.secrets...))}
	}
	sum := sha256.Sum256(body)
	if err := p.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), SigningService, p.region, p.now()); err != nil {
		return fmt.Errorf("bedrock provider %q: signing the request: %s", p.name, providers.Redact(err.Error(), append(p.secrets, creds.SecretAccessKey, creds.SessionToken)...))
	}
	return nil
}

// requestHeader is the header set sent to Bedrock (see Send).
func requestHeader(in http.Header, eventStream bool) http.Header {
	h := stream.ForwardRequestHeaders(in)
	for k := range h {
		if k == "Anthropic-Version" || k == "Anthropic-Beta" || strings.HasPrefix(k, "X-Amz-") {
			delete(h, k)
		}
	}
	h["Content-Type"] = []string{"application/json"}
	if eventStream {
		h["Accept"] = []string{EventStreamContentType}
	} else {
		h["Accept"] = []string{"application/json"}
	}
	h["Accept-Encoding"] = []string{"identity"}
	return h
}

// escapeSegment percent-encodes a model id as one path segment the way
// the AWS SDKs encode path labels: every byte but A–Z a–z 0–9 - . _ ~ is
// escaped, so ":" becomes %3A and an ARN's "/" becomes %2F.
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
