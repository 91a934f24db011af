package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestAnthropicError(t *testing.T) {
	for _, tc := range []struct {
		status     int
		amzn       string
		wantStatus int
		wantType   string
	}{
		{400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", 400, "invalid_request_error"},
		{400, "", 400, "invalid_request_error"},
		{413, "ValidationException", 413, "request_too_large"},
		{403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/", 403, "permission_error"},
		{403, "UnrecognizedClientException", 403, "permission_error"},
		{403, "InvalidSignatureException", 403, "permission_error"},
		{403, "ExpiredTokenException", 403, "permission_error"},
		{401, "", 403, "permission_error"},
		{403, "", 403, "permission_error"},
		{404, "ResourceNotFoundException", 404, "not_found_error"},
		{404, "", 404, "not_found_error"},
		{408, "ModelTimeoutException", 504, "timeout_error"},
		{408, "", 504, "timeout_error"},
		{413, "", 413, "request_too_large"},
		{429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", 429, "rate_limit_error"},
		{429, "", 429, "rate_limit_error"},
		{400, "ServiceQuotaExceededException", 429, "rate_limit_error"},
		{429, "ModelNotReadyException", 529, "overloaded_error"},
		{424, "ModelErrorException", 500, "api_error"},
		{424, "", 500, "api_error"},
		{500, "InternalServerException", 500, "api_error"},
		{500, "", 500, "api_error"},
		{502, "", 502, "api_error"},
		{503, "ServiceUnavailableException", 529, "overloaded_error"},
		{503, "", 529, "overloaded_error"},
		{504, "", 504, "timeout_error"},
		{507, "", 500, "api_error"},
		{409, "ConflictException", 409, "invalid_request_error"},
		{302, "", 502, "api_error"},
		{500, "  throttlingexception  ", 429, "rate_limit_error"},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.amzn), func(t *testing.T) {
			s, typ := AnthropicError(tc.status, tc.amzn)
			if s != tc.wantStatus || typ != tc.wantType {
				t.Fatalf("AnthropicError(%d, %q) = %d %s, want %d %s", tc.status, tc.amzn, s, typ, tc.wantStatus, tc.wantType)
			}
		})
	}
}

// TestTranslateErrorResponses sends Anthropic-shaped calls to a Bedrock
// that answers errors, and checks what the Anthropic client gets.
func TestTranslateErrorResponses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		header      http.Header
		body        string
		wantStatus  int
		wantType    string
		wantMessage string
		wantHeader  http.Header
	}{
		{name: "validation", status: 400, header: http.Header{"X-Amzn-Errortype": {"ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"}},
			body: `{"message":"messages.0.content: Input should be a valid list"}`, wantStatus: 400, wantType: "invalid_request_error",
			wantMessage: "messages.0.content: Input should be a valid list"},
		{name: "access denied, capitalised Message", status: 403, header: http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}},
			body: `{"Message":"User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:InvokeModelWithResponseStream"}`, wantStatus: 403, wantType: "permission_error",
			wantMessage: "User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:InvokeModelWithResponseStream"},
		{name: "not found", status: 404, header: http.Header{"X-Amzn-Errortype": {"ResourceNotFoundException"}},
			body: `{"message":"Model use case details have not been submitted for this account."}`, wantStatus: 404, wantType: "not_found_error",
			wantMessage: "Model use case details have not been submitted for this account."},
		{name: "model timeout", status: 408, header: http.Header{"X-Amzn-Errortype": {"ModelTimeoutException"}},
			body: `{"message":"Model has timed out in processing the request."}`, wantStatus: 504, wantType: "timeout_error",
			wantMessage: "Model has timed out in processing the request."},
		{name: "throttled, retry-after kept", status: 429, header: http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}, "Retry-After": {"7"}},
			body: `{"message":"Too many tokens, please wait before trying again."}`, wantStatus: 429, wantType: "rate_limit_error",
			wantMessage: "Too many tokens, please wait before trying again.", wantHeader: http.Header{"Retry-After": {"7"}}},
		{name: "model error", status: 424, header: http.Header{"X-Amzn-Errortype": {"ModelErrorException"}},
			body: `{"message":"Received error from the model"}`, wantStatus: 500, wantType: "api_error", wantMessage: "Received error from the model"},
		{name: "internal", status: 500, header: http.Header{"X-Amzn-Errortype": {"InternalServerException"}},
			body: `{"message":"Internal Server Error"}`, wantStatus: 500, wantType: "api_error", wantMessage: "Internal Server Error"},
		{name: "unavailable is overloaded", status: 503, header: http.Header{"X-Amzn-Errortype": {"ServiceUnavailableException"}},
			body: `{"message":"Bedrock is unable to process your request."}`, wantStatus: 529, wantType: "overloaded_error", wantMessage: "Bedrock is unable to process your request."},
		{name: "html from a proxy", status: 502, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html>Bad Gateway</html>", wantStatus: 502, wantType: "api_error", wantMessage: "Bedrock answered HTTP 502"},
		{name: "no body", status: 503, header: http.Header{"X-Amzn-Errortype": {"ServiceUnavailableException:x"}},
			wantStatus: 529, wantType: "overloaded_error", wantMessage: "Bedrock answered HTTP 503 ServiceUnavailableException"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tc.name, stream), func(t *testing.T) {
				srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
					for k, v := range tc.header {
						w.Header()[k] = v
					}
					if w.Header().Get("Content-Type") == "" {
						w.Header().Set("Content-Type", "application/json")
					}
					w.Header().Set("X-Amzn-Requestid", "err-req-1")
					w.WriteHeader(tc.status)
					io.WriteString(w, tc.body)
				})
				p := newTestProvider(t, srv.URL, nil)
				call := messagesCall(claudeCodeHeader(), stream)
				resp, err := p.Send(context.Background(), call)
				if err != nil {
					t.Fatal(err)
				}
				rec := httptest.NewRecorder()
				res := p.Relay(rec, resp, call)
				if rec.Code != tc.wantStatus || res.Status != tc.wantStatus || res.ErrorType != tc.wantType {
					t.Fatalf("client got %d, result %+v; want %d %s", rec.Code, res, tc.wantStatus, tc.wantType)
				}
				var got struct {
					Type  string `json:"type"`
					Error struct {
						Type    string `json:"type"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", rec.Body.String(), err)
				}
				if got.Type != "error" || got.Error.Type != tc.wantType || got.Error.Message != tc.wantMessage {
					t.Errorf("body %s", rec.Body.String())
				}
				h := rec.Header()
				if h.Get("Content-Type") != "application/json" || h.Get("Content-Length") != fmt.Sprint(rec.Body.Len()) ||
					h.Get("Request-Id") != "err-req-1" || h.Get("X-Amzn-Errortype") != "" {
					t.Errorf("headers %v", h)
				}
				for k, v := range tc.wantHeader {
					if h.Get(k) != v[0] {
						t.Errorf("%s = %q, want %q", k, h.Get(k), v[0])
					}
				}
				if res.Usage != (llm.Usage{}) || res.UpstreamErr != nil || res.BytesWritten != int64(rec.Body.Len()) {
					t.Errorf("result %+v", res)
				}
			})
		}
	}
}

func TestTranslateCountTokens(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantBody   string
		wantType   string
	}{
		{name: "answer", status: 200, body: `{"inputTokens":1234}`, wantStatus: 200, wantBody: `{"input_tokens":1234}`},
		{name: "zero", status: 200, body: `{"inputTokens": 0 }`, wantStatus: 200, wantBody: `{"input_tokens":0}`},
		{name: "unreadable", status: 200, body: `{"tokens":1}`, wantStatus: 502, wantType: "api_error",
			wantBody: `{"type":"error","error":{"type":"api_error","message":"Bedrock's count-tokens answer could not be read."}}`},
		{name: "error", status: 400, body: `{"message":"The provided model doesn't support counting tokens."}`, wantStatus: 400, wantType: "invalid_request_error",
			wantBody: `{"type":"error","error":{"type":"invalid_request_error","message":"The provided model doesn't support counting tokens."}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			resp := &http.Response{StatusCode: tc.status, Body: io.NopCloser(bytes.NewReader([]byte(tc.body))), ContentLength: int64(len(tc.body)),
				Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {fmt.Sprint(len(tc.body))}, "X-Amzn-Requestid": {"ct-1"}}}
			call := &llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-haiku-4-5", CanonicalModel: "claude-haiku-4-5", Body: []byte(`{}`)}
			rec := httptest.NewRecorder()
			res := p.Relay(rec, resp, call)
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody || res.ErrorType != tc.wantType {
				t.Fatalf("client got %d %s, result %+v", rec.Code, rec.Body.String(), res)
			}
			if rec.Header().Get("Content-Length") != fmt.Sprint(len(tc.wantBody)) || rec.Header().Get("Request-Id") != "ct-1" {
				t.Errorf("headers %v", rec.Header())
			}
			if tc.wantStatus == 200 && (!res.Usage.Complete || !res.Usage.IsZero() || res.FirstToken.IsZero()) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

// TestTranslateNonStreamed: an invoke answer is Anthropic's message JSON,
// passed through and metered.
func TestTranslateNonStreamed(t *testing.T) {
	const message = `{"id":"msg_bdrk_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"x","input":{"usage":{"output_tokens":999}}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":9000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100},"output_tokens":42}}`
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Requestid", "inv-1")
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", "42")
		io.WriteString(w, message)
	})
	p := newTestProvider(t, srv.URL, nil)
	call := messagesCall(claudeCodeHeader(), false)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	res := p.Relay(rec, resp, call)
	if rec.Code != 200 || rec.Body.String() != message || res.Usage != claudeUsage || !res.FirstToken.Equal(t0) {
		t.Fatalf("client got %d, result %+v", rec.Code, res)
	}
	if h := rec.Header(); h.Get("Request-Id") != "inv-1" || h.Get("Content-Length") != fmt.Sprint(len(message)) || h.Get("X-Amzn-Bedrock-Output-Token-Count") != "42" {
		t.Errorf("headers %v", h)
	}
}

func TestRelayClosesBodyOnEveryPath(t *testing.T) {
	p := newTestProvider(t, "", nil)
	calls := []*llm.Call{messagesCall(nil, true), messagesCall(nil, false), bedrockCall(llm.SurfaceBedrockInvokeStream, haikuProfile),
		bedrockCall(llm.SurfaceBedrockInvoke, haikuProfile), {Surface: llm.SurfaceAnthropicCountTokens}}
	for _, call := range calls {
		for _, resp := range []*http.Response{
			{StatusCode: 200, Header: http.Header{"Content-Type": {EventStreamContentType}}},
			{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}},
			{StatusCode: 503, Header: http.Header{}},
		} {
			b := &chunkBody{chunks: [][]byte{[]byte("x")}}
			resp.Body = b
			resp.ContentLength = -1
			p.Relay(httptest.NewRecorder(), resp, call)
			if !b.closed {
				t.Errorf("%s, status %d %s: body not closed", call.Surface, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	}
}
