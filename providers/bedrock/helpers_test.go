package bedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func init() {
	// Never reach a cloud metadata endpoint, whatever the machine.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

const (
	testAccessKey = "AKIDTESTBEDROCKUNIT"
	testSecretKey = "bedrock-unit-test-secret-key-0123456789"
	testToken     = "bedrock-unit-test-session-token"
	testAPIKey    = "ABSKbedrock-api-key-unit-test-000000"
	testRegion    = "us-east-1"
	// virtualKey is the client's gateway credential: it must never leave.
	virtualKey = "sk-gw-virtual-key-of-alice"
)

var testCreds = aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testToken, Source: "test"}

// t0 is the tests' fixed clock.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// claudeEvents is a realistic Claude turn as Bedrock carries it: thinking,
// text and a tool call, cumulative usage in message_delta, and the
// invocation metrics Bedrock adds to message_stop.
var claudeEvents = []string{
	`{"type":"message_start","message":{"id":"msg_bdrk_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":9000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100},"output_tokens":1}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants a greeting."}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBxgCKkBsignature+/=="}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello from "}}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Bedrock, caf\u00e9!"}}`,
	`{"type":"content_block_stop","index":1}`,
	`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_bdrk_01","name":"Read","input":{}}}`,
	`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"file_path\": \"/tmp/x\"}"}}`,
	`{"type":"content_block_stop","index":2}`,
	`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`,
	`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":42,"invocationLatency":1834,"firstByteLatency":412,"cacheReadInputTokenCount":9000,"cacheWriteInputTokenCount":300}}`,
}

// claudeUsage is what claudeEvents meter.
var claudeUsage = llm.Usage{InputTokens: 12, OutputTokens: 42, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, Complete: true}

// claudeMetrics are message_stop's invocation metrics.
var claudeMetrics = invocationMetrics{InputTokenCount: 12, OutputTokenCount: 42, InvocationLatency: 1834, FirstByteLatency: 412, CacheReadInputTokenCount: 9000, CacheWriteInputTokenCount: 300}

// sseOf is the SSE the client must see for events (message_stop without
// Bedrock's metrics).
func sseOf(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		var head struct{ Type string }
		if err := json.Unmarshal([]byte(e), &head); err != nil {
			panic(err)
		}
		if head.Type == "message_stop" {
			e = `{"type":"message_stop"}`
		}
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", head.Type, e)
	}
	return b.String()
}

// encodeFrame encodes one event-stream message with the AWS SDK encoder.
func encodeFrame(tb testing.TB, headers eventstream.Headers, payload []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: headers, Payload: payload}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// chunkFrame is the frame Bedrock sends for one Anthropic event: a chunk
// whose payload is {"bytes":"<base64>","p":"<padding>"}.
func chunkFrame(tb testing.TB, event string) []byte {
	payload := fmt.Sprintf(`{"bytes":%q,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`, base64.StdEncoding.EncodeToString([]byte(event)))
	return encodeFrame(tb, eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue("chunk")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
	}, []byte(payload))
}

// exceptionFrame is a Bedrock stream exception.
func exceptionFrame(tb testing.TB, typ, payload string) []byte {
	return encodeFrame(tb, eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue(typ)},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
	}, []byte(payload))
}

// streamOf concatenates the chunk frames of events.
func streamOf(tb testing.TB, events ...string) []byte {
	var b []byte
	for _, e := range events {
		b = append(b, chunkFrame(tb, e)...)
	}
	return b
}

// chunkBody returns its chunks one per Read, then err (io.EOF when nil).
type chunkBody struct {
	chunks [][]byte
	err    error
	reads  int
	closed bool
}

func (b *chunkBody) Read(p []byte) (int, error) {
	for len(b.chunks) > 0 && len(b.chunks[0]) == 0 {
		b.chunks = b.chunks[1:]
	}
	if len(b.chunks) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	b.reads++
	n := copy(p, b.chunks[0])
	b.chunks[0] = b.chunks[0][n:]
	return n, nil
}

func (b *chunkBody) Close() error { b.closed = true; return nil }

func eventStreamResponse(body io.ReadCloser) *http.Response {
	return &http.Response{StatusCode: 200, Body: body, ContentLength: -1, Header: http.Header{
		"Content-Type":                {EventStreamContentType},
		"X-Amzn-Requestid":            {"4b5c6d7e-0000-4000-8000-bedrock00001"},
		"X-Amzn-Bedrock-Content-Type": {"application/json"},
	}}
}

// recorder is a ResponseWriter that keeps the body, counts flushes, can
// fail writes from the failAt-th on, and signals every flush on notify
// (without blocking). It is safe for the relay's and the ping timer's
// goroutines.
type recorder struct {
	mu      sync.Mutex
	header  http.Header
	status  int
	body    bytes.Buffer
	writes  int
	flushes int
	failAt  int
	notify  chan struct{}
}

var errClientGoneTest = errors.New("write tcp 127.0.0.1:8080->127.0.0.1:50000: write: broken pipe")

func newRecorder() *recorder {
	return &recorder{header: http.Header{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(s int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == 0 {
		r.status = s
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == 0 {
		r.status = 200
	}
	r.writes++
	if r.failAt > 0 && r.writes >= r.failAt {
		return 0, errClientGoneTest
	}
	return r.body.Write(p)
}

func (r *recorder) Flush() {
	r.mu.Lock()
	r.flushes++
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body.String()
}

// gotRequest is what an upstream saw.
type gotRequest struct {
	req  *http.Request // the server's view (body consumed)
	body []byte
}

// recordingUpstream answers every request with handler after recording it.
func recordingUpstream(t *testing.T, handler http.HandlerFunc) (*httptest.Server, chan gotRequest) {
	t.Helper()
	got := make(chan gotRequest, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream read body: %v", err)
		}
		got <- gotRequest{r.Clone(context.Background()), b}
		if handler != nil {
			handler(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// newTestProvider is a provider with static test credentials (session
// token included) on base.
func newTestProvider(tb testing.TB, base string, mod func(*Config)) *Provider {
	tb.Helper()
	cfg := Config{
		Name: "bedrock", Region: testRegion, BaseURL: base,
		AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testToken,
		Transport: http.DefaultTransport, Now: func() time.Time { return t0 },
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// sigv4Auth is a parsed SigV4 Authorization header.
type sigv4Auth struct {
	AccessKey, Date, Region, Service string
	SignedHeaders                    []string
	Signature                        string
}

func parseSigV4(h string) (sigv4Auth, error) {
	var a sigv4Auth
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, fmt.Errorf("not a SigV4 Authorization: %q", h)
	}
	for part := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return a, fmt.Errorf("bad credential scope %q", v)
			}
			a.AccessKey, a.Date, a.Region, a.Service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	if a.Signature == "" || len(a.SignedHeaders) == 0 {
		return a, fmt.Errorf("incomplete SigV4 Authorization: %q", h)
	}
	return a, nil
}

// verifySigV4 recomputes, with the SDK signer and the known credentials,
// the signature of the request a server received (its escaped path as
// sent, its signed headers, its X-Amz-Date, the body's SHA-256) and
// compares it with the one the request carries.
func verifySigV4(r *http.Request, body []byte, creds aws.Credentials, region string) error {
	auth, err := parseSigV4(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if auth.AccessKey != creds.AccessKeyID || auth.Region != region || auth.Service != SigningService {
		return fmt.Errorf("credential scope %s/%s/%s, want %s/%s/%s", auth.AccessKey, auth.Region, auth.Service, creds.AccessKeyID, region, SigningService)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %v", err)
	}
	if auth.Date != when.Format("20060102") {
		return fmt.Errorf("scope date %s does not match X-Amz-Date", auth.Date)
	}
	u := &url.URL{Scheme: "http", Host: r.Host, Opaque: "//" + r.Host + r.URL.EscapedPath()}
	req, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.URL = u
	req.Host = r.Host
	req.ContentLength = int64(len(body))
	for _, name := range auth.SignedHeaders {
		switch name {
		case "host", "content-length":
			continue
		}
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			return fmt.Errorf("signed header %q was not received", name)
		}
		req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), SigningService, region, when); err != nil {
		return err
	}
	want, err := parseSigV4(req.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if strings.Join(want.SignedHeaders, ";") != strings.Join(auth.SignedHeaders, ";") {
		return fmt.Errorf("signed headers %v, recomputed %v", auth.SignedHeaders, want.SignedHeaders)
	}
	if want.Signature != auth.Signature {
		return fmt.Errorf("signature %s, recomputed %s", auth.Signature, want.Signature)
	}
	return nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// captureTransport records the request instead of sending it.
type captureTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
	resp func(*http.Request) *http.Response
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.mu.Unlock()
	if c.resp != nil {
		return c.resp(r), nil
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func (c *captureTransport) last() *http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[len(c.reqs)-1]
}

// claudeCodeBody is an Anthropic Messages body as Claude Code sends it.
const claudeCodeBody = `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true,"unknown_future_field":[1, 2, {"model":"nested-stays"}]}`

// claudeCodeHeader is what Claude Code sends (plus a few a gateway must
// strip).
func claudeCodeHeader() http.Header {
	return http.Header{
		"Authorization":            {"Bearer " + virtualKey},
		"X-Api-Key":                {virtualKey},
		"Proxy-Authorization":      {"Basic Zm9vOmJhcg=="},
		"Cookie":                   {"session=abc"},
		"Anthropic-Version":        {"2023-06-01"},
		"Anthropic-Beta":           {"claude-code-20250219,interleaved-thinking-2025-05-14, context-management-2025-06-27,,fine-grained-tool-streaming-2025-05-14"},
		"User-Agent":               {"claude-cli/2.1.3 (external, cli)"},
		"X-App":                    {"cli"},
		"X-Claude-Code-Session-Id": {"8d4e0f3a-1b2c-4d5e-8f90-123456789abc"},
		"X-Stainless-Lang":         {"js"},
		"X-Stainless-Retry-Count":  {"0"},
		"Accept":                   {"application/json"},
		"Accept-Encoding":          {"gzip, deflate, br, zstd"},
		"Content-Type":             {"application/json"},
		"Content-Length":           {"999999"},
		"Connection":               {"keep-alive, X-Hop-Secret"},
		"X-Hop-Secret":             {"do-not-forward"},
		"X-Amz-Date":               {"19990101T000000Z"},
		"X-Amz-Security-Token":     {"client-token-must-not-pass"},
		"X-Amzn-Bedrock-Trace":     {"ENABLED"},
		"X-Project":                {"billing-rewrite", "second-value"},
	}
}

func messagesCall(h http.Header, stream bool) *llm.Call {
	body := claudeCodeBody
	if !stream {
		body = strings.Replace(body, `"stream":true,`, `"stream":false,`, 1)
	}
	return &llm.Call{
		Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5",
		Stream: stream, MaxTokens: 32000, Body: []byte(body), Header: h,
		RawQuery: "beta=true", PathSuffix: "/v1/messages",
	}
}

// bedrockBody is a Bedrock-shaped InvokeModel body as Claude Code's
// Bedrock mode sends it.
const bedrockBody = `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":1,"messages":[{"role":"user","content":"quota"}],"metadata":{"user_id":"u"}}`

func bedrockCall(surface llm.Surface, model string) *llm.Call {
	return &llm.Call{
		Surface: surface, Model: model, CanonicalModel: llm.CanonicalModel(model),
		Stream: surface == llm.SurfaceBedrockInvokeStream, MaxTokens: 1, Body: []byte(bedrockBody),
		Header: http.Header{
			"Authorization":         {"Bearer " + virtualKey},
			"Content-Type":          {"application/json"},
			"User-Agent":            {"claude-cli/2.1.3 (external, cli)"},
			"X-Amzn-Bedrock-Accept": {"application/json"},
		},
		PathSuffix: "/model/" + escapeSegment(model) + "/invoke",
	}
}
