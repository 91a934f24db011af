package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// The AWS credentials the gateway's bedrock provider must sign with for
// the mock to answer (anything else gets 403 AccessDeniedException).
const (
	mockBedrockAccessKey = "AKIDTESTGATEWAY"
	mockBedrockSecret    = "gateway-test-secret"
	mockBedrockRegion    = "us-east-1"
	// mockBedrockVersion is the anthropic_version a Bedrock body carries.
	mockBedrockVersion = "bedrock-2023-05-31"
)

// mockBedrock is an AWS Bedrock runtime on 127.0.0.1 that speaks the real
// wire format: SigV4 verified against known credentials (the escaped path
// as sent, the signed headers, the payload hash), /model/{id}/invoke with
// Anthropic's message JSON, /invoke-with-response-stream with binary
// application/vnd.amazon.eventstream frames made by the AWS SDK encoder
// (chunks of base64 Anthropic events, invocation metrics on
// message_stop), /count-tokens, and Bedrock's error shape ({"message"} +
// x-amzn-ErrorType). The usage is the canonical reply's (mockInput,
// mockCacheWrite5m/1h, mockCacheRead, mockOutput). A test picks a
// behaviour with the X-Mock-Scenario request header, which the gateway
// forwards like any unknown header:
//
//	status-429  429 ThrottlingException
//	status-503  503 ServiceUnavailableException
//	exception   a stream that ends with a modelStreamErrorException frame
//	            after three text deltas
//	cut         a stream whose connection drops inside a frame after three
//	            text deltas
type mockBedrock struct {
	requestLog[bedrockRequest]

	srv *httptest.Server

	mu sync.Mutex
}

// bedrockRequest is what the mock saw of one request.
type bedrockRequest struct {
	Method string
	// EscapedPath is the path as sent ("/model/us.anthropic.claude-…-v1%3A0/invoke").
	EscapedPath string
	// Model is the model id from the path, unescaped.
	Model string
	// Action is "invoke", "invoke-with-response-stream" or "count-tokens".
	Action string
	Header http.Header
	Body   []byte
	// SignatureOK is true when the SigV4 signature verified.
	SignatureOK bool
	// SignatureErr says why it did not.
	SignatureErr string
}

func newMockBedrock(t testing.TB) *mockBedrock {
	m := &mockBedrock{}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the mock's base URL: the bedrock provider's base_url.
func (m *mockBedrock) URL() string { return m.srv.URL }

// writeBedrockError answers in Bedrock's error shape.
func writeBedrockError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.Header().Set("X-Amzn-RequestId", "mock-bedrock-error-0001")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Write(b)
}

func (m *mockBedrock) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := bedrockRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: body}
	if err := verifyBedrockSigV4(r, body); err != nil {
		rec.SignatureErr = err.Error()
	} else {
		rec.SignatureOK = true
	}
	// /model/{id}/{action}, the id one escaped segment.
	if rest, ok := strings.CutPrefix(rec.EscapedPath, "/model/"); ok {
		if seg, action, ok := strings.Cut(rest, "/"); ok && !strings.Contains(action, "/") {
			rec.Model, _ = url.PathUnescape(seg)
			rec.Action = action
		}
	}
	m.record(rec)

	w.Header().Set("X-Amzn-RequestId", "mock-bedrock-req-0001")
	if !rec.SignatureOK {
		writeBedrockError(w, 403, "AccessDeniedException", "The request signature we calculated does not match the signature you provided. ("+rec.SignatureErr+")")
		return
	}
	if r.Method != http.MethodPost || rec.Model == "" {
		writeBedrockError(w, 404, "UnknownOperationException", "Unknown operation "+r.Method+" "+rec.EscapedPath)
		return
	}
	scenario := r.Header.Get("X-Mock-Scenario")
	switch scenario {
	case "status-429":
		writeBedrockError(w, 429, "ThrottlingException", "Too many requests, please wait before trying again.")
		return
	case "status-503":
		writeBedrockError(w, 503, "ServiceUnavailableException", "Bedrock is unable to process your request.")
		return
	}

	switch rec.Action {
	case "count-tokens":
		var in struct {
			Input struct {
				InvokeModel struct {
					Body string `json:"body"`
				} `json:"invokeModel"`
			} `json:"input"`
		}
		if json.Unmarshal(body, &in) != nil || in.Input.InvokeModel.Body == "" {
			writeBedrockError(w, 400, "ValidationException", "input.invokeModel.body is required")
			return
		}
		inner, err := base64.StdEncoding.DecodeString(in.Input.InvokeModel.Body)
		if err != nil {
			writeBedrockError(w, 400, "ValidationException", "input.invokeModel.body is not base64")
			return
		}
		if msg := checkBedrockBody(inner); msg != "" {
			writeBedrockError(w, 400, "ValidationException", msg)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"inputTokens":%d}`, mockCountedTokens)
		return
	case "invoke", "invoke-with-response-stream":
	default:
		writeBedrockError(w, 404, "UnknownOperationException", "Unknown operation "+rec.Action)
		return
	}
	if msg := checkBedrockBody(body); msg != "" {
		writeBedrockError(w, 400, "ValidationException", msg)
		return
	}
	model := llm.CanonicalModel(rec.Model)
	usage := fmt.Sprintf(`{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%%d}`,
		mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h)
	if rec.Action == "invoke" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", fmt.Sprint(mockInput))
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", fmt.Sprint(mockOutput))
		fmt.Fprintf(w, `{"id":"msg_bdrk_mock","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":%s}`,
			model, mockText, fmt.Sprintf(usage, mockOutput))
		return
	}

	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
	rc := http.NewResponseController(w)
	enc := eventstream.NewEncoder()
	var frame bytes.Buffer
	frameOf := func(event string) []byte {
		frame.Reset()
		payload := fmt.Sprintf(`{"bytes":%q,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"}`, base64.StdEncoding.EncodeToString([]byte(event)))
		enc.Encode(&frame, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}, Payload: []byte(payload)})
		return frame.Bytes()
	}
	send := func(event string) {
		w.Write(frameOf(event))
		rc.Flush()
	}
	send(fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_bdrk_mock","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":%s}}`, model, fmt.Sprintf(usage, 1)))
	send(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for i, word := range strings.SplitAfter(mockText, " ") {
		send(fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, word))
		if i != 2 {
			continue
		}
		switch scenario {
		case "exception":
			frame.Reset()
			enc.Encode(&frame, eventstream.Message{Headers: eventstream.Headers{
				{Name: ":exception-type", Value: eventstream.StringValue("modelStreamErrorException")},
				{Name: ":content-type", Value: eventstream.StringValue("application/json")},
				{Name: ":message-type", Value: eventstream.StringValue("exception")},
			}, Payload: []byte(`{"message":"The model stream was interrupted.","originalStatusCode":500}`)})
			w.Write(frame.Bytes())
			rc.Flush()
			return
		case "cut":
			// Half of the next frame, then the connection drops.
			next := frameOf(`{"type":"content_block_stop","index":0}`)
			w.Write(next[:len(next)/2])
			rc.Flush()
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
			}
			return
		}
	}
	send(`{"type":"content_block_stop","index":0}`)
	send(fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, mockOutput))
	send(fmt.Sprintf(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":%d,"outputTokenCount":%d,"invocationLatency":1234,"firstByteLatency":321,"cacheReadInputTokenCount":%d,"cacheWriteInputTokenCount":%d}}`,
		mockInput, mockOutput, mockCacheRead, mockCacheWrite5m+mockCacheWrite1h))
}

// checkBedrockBody rejects what Bedrock rejects: a body that is not a JSON
// object, lacks anthropic_version bedrock-2023-05-31, or still carries the
// Messages API's model or stream members.
func checkBedrockBody(body []byte) string {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return "Malformed input request: " + err.Error()
	}
	var version string
	_ = json.Unmarshal(v["anthropic_version"], &version)
	if version != mockBedrockVersion {
		return "Malformed input request: anthropic_version must be " + mockBedrockVersion + ", please reformat your input and try again."
	}
	for _, k := range []string{"model", "stream"} {
		if _, ok := v[k]; ok {
			return "Malformed input request: #: extraneous key [" + k + "] is not permitted, please reformat your input and try again."
		}
	}
	return ""
}

// verifyBedrockSigV4 recomputes, with the AWS SDK signer and the known test
// credentials, the SigV4 signature of a request as received (its escaped
// path, its signed headers, its X-Amz-Date, the SHA-256 of its body) and
// compares it with the one it carries, as AWS would.
func verifyBedrockSigV4(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("no SigV4 Authorization header")
	}
	var credential, signedHeaders string
	for part := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] != mockBedrockAccessKey || scope[2] != mockBedrockRegion || scope[3] != "bedrock" || scope[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q is not %s/…/%s/bedrock/aws4_request", credential, mockBedrockAccessKey, mockBedrockRegion)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %v", err)
	}
	if scope[1] != when.Format("20060102") {
		return fmt.Errorf("scope date %s does not match X-Amz-Date", scope[1])
	}
	u := &url.URL{Scheme: "http", Host: r.Host, Opaque: "//" + r.Host + r.URL.EscapedPath()}
	req, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.URL, req.Host, req.ContentLength = u, r.Host, int64(len(body))
	for _, name := range strings.Split(signedHeaders, ";") {
		if name == "host" || name == "content-length" {
			continue
		}
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			return fmt.Errorf("signed header %q missing", name)
		}
		req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
	}
	creds := aws.Credentials{AccessKeyID: mockBedrockAccessKey, SecretAccessKey: mockBedrockSecret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", mockBedrockRegion, when); err != nil {
		return err
	}
	if req.Header.Get("Authorization") != auth {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}
