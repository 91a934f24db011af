package bedrock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

const haikuProfile = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

func passRelay(t testing.TB, p *Provider, chunks [][]byte, tail error) (*recorder, outcome) {
	t.Helper()
	body := &chunkBody{chunks: chunks, err: tail}
	w := newRecorder()
	out := p.relay(w, eventStreamResponse(body), bedrockCall(llm.SurfaceBedrockInvokeStream, haikuProfile))
	if !body.closed {
		t.Fatal("body not closed")
	}
	return w, out
}

func TestPassThroughStream(t *testing.T) {
	p := newTestProvider(t, "", nil)
	raw := streamOf(t, claudeEvents...)
	check := func(t *testing.T, name string, w *recorder, out outcome) {
		t.Helper()
		if got := w.String(); got != string(raw) {
			t.Fatalf("%s: client bytes differ from upstream bytes (%d vs %d)", name, len(got), len(raw))
		}
		if out.Usage != claudeUsage || out.UpstreamErr != nil || out.ClientErr != nil || out.ErrorType != "" ||
			out.Status != 200 || out.BytesWritten != int64(len(raw)) || !out.FirstToken.Equal(t0) {
			t.Fatalf("%s: result %+v", name, out.Result)
		}
		if out.metrics == nil || *out.metrics != claudeMetrics {
			t.Fatalf("%s: metrics %+v", name, out.metrics)
		}
	}
	w, out := passRelay(t, p, [][]byte{append([]byte(nil), raw...)}, nil)
	check(t, "whole", w, out)
	if h := w.Header(); h.Get("Content-Type") != EventStreamContentType || h.Get("X-Amzn-Requestid") == "" || h.Get("Request-Id") != "" {
		t.Errorf("headers %v", h)
	}
	for i := 1; i < len(raw); i++ {
		w, out := passRelay(t, p, [][]byte{append([]byte(nil), raw[:i]...), append([]byte(nil), raw[i:]...)}, nil)
		check(t, fmt.Sprintf("split at %d", i), w, out)
	}
	one := make([][]byte, len(raw))
	for i := range raw {
		one[i] = raw[i : i+1 : i+1]
	}
	w, out = passRelay(t, p, one, nil)
	check(t, "one byte at a time", w, out)
	if w.flushes < len(raw) {
		t.Errorf("%d flushes for %d reads", w.flushes, len(raw))
	}
}

func TestPassThroughStreamEndings(t *testing.T) {
	head := streamOf(t, claudeEvents[:8]...)
	next := chunkFrame(t, claudeEvents[8])
	estimated := llm.Usage{InputTokens: 12, OutputTokens: 13, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, OutputEstimated: true}
	corrupt := append([]byte(nil), next...)
	corrupt[len(corrupt)-1] ^= 0xff
	for _, tc := range []struct {
		name      string
		raw       []byte
		tail      error
		wantErr   error
		wantType  string
		wantUsage llm.Usage
	}{
		{name: "exception frame", raw: append(append([]byte(nil), head...), exceptionFrame(t, "throttlingException", `{"message":"Too many requests"}`)...),
			wantType: "rate_limit_error", wantUsage: estimated},
		{name: "cut mid-frame", raw: append(append([]byte(nil), head...), next[:33]...), wantErr: ErrCutMidFrame, wantUsage: estimated},
		{name: "read error", raw: append(append([]byte(nil), head...), next[:33]...), tail: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF, wantUsage: estimated},
		{name: "ends before message_stop", raw: head, wantErr: ErrNoMessageStop, wantUsage: estimated},
		// A frame the meter cannot read still reaches the client, and so
		// does everything after it.
		{name: "corrupt frame relayed anyway", raw: append(append(append([]byte(nil), head...), corrupt...), streamOf(t, claudeEvents[9:]...)...),
			wantErr: ErrMalformedStream, wantUsage: estimated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			w, out := passRelay(t, p, [][]byte{append([]byte(nil), tc.raw...)}, tc.tail)
			if !bytes.Equal([]byte(w.String()), tc.raw) || out.BytesWritten != int64(len(tc.raw)) {
				t.Fatalf("client got %d bytes, upstream sent %d", len(w.String()), len(tc.raw))
			}
			if (tc.wantErr == nil) != (out.UpstreamErr == nil) || (tc.wantErr != nil && !errors.Is(out.UpstreamErr, tc.wantErr)) {
				t.Errorf("UpstreamErr %v, want %v", out.UpstreamErr, tc.wantErr)
			}
			if out.ErrorType != tc.wantType || out.Usage != tc.wantUsage || out.ClientErr != nil {
				t.Errorf("result %+v", out.Result)
			}
		})
	}
}

func TestPassThroughClientGone(t *testing.T) {
	p := newTestProvider(t, "", nil)
	frames := make([][]byte, len(claudeEvents))
	for i, e := range claudeEvents {
		frames[i] = chunkFrame(t, e)
	}
	body := &chunkBody{chunks: frames}
	w := newRecorder()
	w.failAt = 8 // the second text delta's bytes never reach the client
	out := p.relay(w, eventStreamResponse(body), bedrockCall(llm.SurfaceBedrockInvokeStream, haikuProfile))
	if !errors.Is(out.ClientErr, errClientGoneTest) || out.UpstreamErr != nil || body.reads != 8 {
		t.Fatalf("ClientErr %v UpstreamErr %v after %d reads", out.ClientErr, out.UpstreamErr, body.reads)
	}
	// The read that failed to reach the client is metered all the same.
	if want := (llm.Usage{InputTokens: 12, OutputTokens: 13, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, OutputEstimated: true}); out.Usage != want {
		t.Errorf("usage %+v", out.Usage)
	}
	if want := streamOf(t, claudeEvents[:7]...); w.String() != string(want) || out.BytesWritten != int64(len(want)) {
		t.Errorf("client got %d bytes, want %d", len(w.String()), len(want))
	}
}

// TestPassThroughOverHTTP is a Claude Code Bedrock-mode call end to end:
// its path and body forwarded, signed with the gateway's credentials, the
// binary stream relayed byte for byte.
func TestPassThroughOverHTTP(t *testing.T) {
	raw := streamOf(t, claudeEvents...)
	srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", EventStreamContentType)
		w.Header().Set("X-Amzn-Requestid", "pass-1")
		rc := http.NewResponseController(w)
		for b := raw; len(b) > 0; {
			n := min(61, len(b))
			w.Write(b[:n])
			rc.Flush()
			b = b[n:]
		}
	})
	p := newTestProvider(t, srv.URL, nil)
	call := bedrockCall(llm.SurfaceBedrockInvokeStream, haikuProfile)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.req.RequestURI != "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke-with-response-stream" || string(r.body) != bedrockBody {
		t.Errorf("upstream saw %s %s", r.req.RequestURI, r.body)
	}
	if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
		t.Error(err)
	}
	w := newRecorder()
	res := p.Relay(w, resp, call)
	if w.String() != string(raw) || res.Usage != claudeUsage || res.UpstreamErr != nil || w.Header().Get("X-Amzn-Requestid") != "pass-1" {
		t.Fatalf("result %+v", res)
	}
}

func TestPassThroughJSON(t *testing.T) {
	const message = `{"id":"msg_bdrk_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"ok"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}`
	for _, tc := range []struct {
		name       string
		surface    llm.Surface
		status     int
		header     http.Header
		body       string
		wantUsage  llm.Usage
		wantType   string
		wantHeader http.Header
	}{
		{name: "invoke 200", surface: llm.SurfaceBedrockInvoke, status: 200,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amzn-Bedrock-Input-Token-Count": {"8"}}, body: message,
			wantUsage: llm.Usage{InputTokens: 8, OutputTokens: 1, Complete: true}, wantHeader: http.Header{"Content-Length": {fmt.Sprint(len(message))}, "X-Amzn-Bedrock-Input-Token-Count": {"8"}}},
		{name: "count-tokens 200", surface: llm.SurfaceBedrockCountTokens, status: 200,
			header: http.Header{"Content-Type": {"application/json"}}, body: `{"inputTokens":1234}`, wantUsage: llm.Usage{Complete: true}},
		{name: "429 throttling", surface: llm.SurfaceBedrockInvoke, status: 429,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}, "Retry-After": {"3"}},
			body:   `{"message":"Too many requests, please wait before trying again."}`, wantType: "rate_limit_error",
			wantHeader: http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}, "Retry-After": {"3"}}},
		{name: "stream 503", surface: llm.SurfaceBedrockInvokeStream, status: 503,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {"ServiceUnavailableException"}},
			body:   `{"message":"Bedrock is unable to process your request."}`, wantType: "overloaded_error"},
		{name: "400 validation", surface: llm.SurfaceBedrockInvoke, status: 400,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {"ValidationException"}},
			body:   `{"message":"The provided model identifier is invalid."}`, wantType: "invalid_request_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(bytes.NewReader([]byte(tc.body))), ContentLength: int64(len(tc.body))}
			rec := httptest.NewRecorder()
			res := p.Relay(rec, resp, bedrockCall(tc.surface, haikuProfile))
			if rec.Code != tc.status || res.Status != tc.status || rec.Body.String() != tc.body {
				t.Errorf("client got %d %q, want the upstream's %d %q", rec.Code, rec.Body.String(), tc.status, tc.body)
			}
			if res.Usage != tc.wantUsage || res.ErrorType != tc.wantType || res.UpstreamErr != nil {
				t.Errorf("result %+v", res)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header()[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}
