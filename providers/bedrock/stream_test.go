package bedrock

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// relayBytes translates an event stream delivered in the given chunks.
func relayBytes(t testing.TB, p *Provider, chunks [][]byte, tail error) (*recorder, outcome) {
	t.Helper()
	body := &chunkBody{chunks: chunks, err: tail}
	w := newRecorder()
	out := p.relay(w, eventStreamResponse(body), messagesCall(nil, true))
	if !body.closed {
		t.Fatal("body not closed")
	}
	return w, out
}

func TestTranslateStreamEverySplit(t *testing.T) {
	p := newTestProvider(t, "", nil)
	raw := streamOf(t, claudeEvents...)
	want := sseOf(claudeEvents...)
	check := func(t *testing.T, name string, w *recorder, out outcome) {
		t.Helper()
		if got := w.String(); got != want {
			t.Fatalf("%s: client got\n%s\nwant\n%s", name, got, want)
		}
		if out.Usage != claudeUsage || out.UpstreamErr != nil || out.ClientErr != nil || out.ErrorType != "" ||
			out.Status != 200 || out.BytesWritten != int64(len(want)) || !out.FirstToken.Equal(t0) {
			t.Fatalf("%s: result %+v", name, out.Result)
		}
		if out.metrics == nil || *out.metrics != claudeMetrics || !out.metricsAgree {
			t.Fatalf("%s: metrics %+v agree %v", name, out.metrics, out.metricsAgree)
		}
	}

	w, out := relayBytes(t, p, [][]byte{append([]byte(nil), raw...)}, nil)
	check(t, "whole", w, out)
	if h := w.Header(); h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" ||
		h.Get("Request-Id") != "4b5c6d7e-0000-4000-8000-bedrock00001" || h.Get("X-Amzn-Requestid") == "" || h.Get("Content-Length") != "" {
		t.Errorf("headers %v", h)
	}
	if w.status != 200 || w.flushes < len(claudeEvents) {
		t.Errorf("status %d, %d flushes for %d events", w.status, w.flushes, len(claudeEvents))
	}

	for i := 1; i < len(raw); i++ {
		a, b := append([]byte(nil), raw[:i]...), append([]byte(nil), raw[i:]...)
		w, out := relayBytes(t, p, [][]byte{a, b}, nil)
		check(t, fmt.Sprintf("split at %d", i), w, out)
	}

	one := make([][]byte, len(raw))
	for i := range raw {
		one[i] = raw[i : i+1 : i+1]
	}
	w, out = relayBytes(t, p, one, nil)
	check(t, "one byte at a time", w, out)

	// Through a real reader that hands out one byte per Read, too.
	w = newRecorder()
	resp := eventStreamResponse(io.NopCloser(iotest.OneByteReader(strings.NewReader(string(raw)))))
	check(t, "iotest.OneByteReader", w, p.relay(w, resp, messagesCall(nil, true)))
}

func TestTranslateStreamOverHTTP(t *testing.T) {
	raw := streamOf(t, claudeEvents...)
	srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", EventStreamContentType)
		w.Header().Set("X-Amzn-Requestid", "req-over-http")
		rc := http.NewResponseController(w)
		for len(raw) > 0 { // 97-byte writes: frames straddle them
			n := min(97, len(raw))
			w.Write(raw[:n])
			rc.Flush()
			raw = raw[n:]
		}
	})
	p := newTestProvider(t, srv.URL, nil)
	call := messagesCall(claudeCodeHeader(), true)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
		t.Fatal(err)
	}
	w := newRecorder()
	res := p.Relay(w, resp, call)
	if w.String() != sseOf(claudeEvents...) || res.Usage != claudeUsage || res.UpstreamErr != nil || w.Header().Get("Request-Id") != "req-over-http" {
		t.Fatalf("result %+v\n%s", res, w.String())
	}
}

func TestTranslateStreamExceptions(t *testing.T) {
	head := claudeEvents[:7] // message_start … the first text delta
	for _, tc := range []struct {
		excType, payload string
		wantType         string
		wantMessage      string
	}{
		{"throttlingException", `{"message":"Too many requests, please wait before trying again."}`, "rate_limit_error", "Too many requests, please wait before trying again."},
		{"ThrottlingException", `{"message":"Rate exceeded"}`, "rate_limit_error", "Rate exceeded"},
		{"modelStreamErrorException", `{"message":"Model stream error","originalStatusCode":529,"originalMessage":"Overloaded"}`, "overloaded_error", "Model stream error"},
		{"modelStreamErrorException", `{"message":"An error occurred while streaming"}`, "api_error", "An error occurred while streaming"},
		{"modelStreamErrorException", `{"originalStatusCode":429,"originalMessage":"rate limited upstream"}`, "rate_limit_error", "rate limited upstream"},
		{"internalServerException", `{"message":"Internal server error"}`, "api_error", "Internal server error"},
		{"serviceUnavailableException", `{"message":"Bedrock is unable to process your request."}`, "overloaded_error", "Bedrock is unable to process your request."},
		{"validationException", `{"message":"Input is too long for requested model."}`, "invalid_request_error", "Input is too long for requested model."},
		{"modelTimeoutException", `{"message":"Model has timed out in processing the request."}`, "timeout_error", "Model has timed out in processing the request."},
		{"someNewException", `{"message":"new \"quoted\"\nthing"}`, "api_error", "new \"quoted\"\nthing"},
		{"internalServerException", ``, "api_error", "internalServerException"},
	} {
		t.Run(tc.excType+"/"+tc.wantType, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			raw := append(streamOf(t, head...), exceptionFrame(t, tc.excType, tc.payload)...)
			// A frame after the exception is never read.
			raw = append(raw, chunkFrame(t, claudeEvents[7])...)
			w, out := relayBytes(t, p, [][]byte{raw}, nil)
			errEvent := string(appendErrorEvent(nil, tc.wantType, tc.wantMessage))
			want := sseOf(head...) + "event: error\ndata: " + errEvent + "\n\n"
			if w.String() != want {
				t.Fatalf("client got\n%s\nwant\n%s", w.String(), want)
			}
			if out.ErrorType != tc.wantType || out.UpstreamErr != nil || out.ClientErr != nil || out.Usage.Complete {
				t.Fatalf("result %+v", out.Result)
			}
			// Usage as metered: input from message_start, output estimated
			// from the 11 bytes of text and the thinking that passed.
			if out.Usage.InputTokens != 12 || out.Usage.CacheReadTokens != 9000 || !out.Usage.OutputEstimated {
				t.Errorf("usage %+v", out.Usage)
			}
		})
	}

	// An error frame (":message-type: error") is reported the same way.
	p := newTestProvider(t, "", nil)
	raw := append(streamOf(t, head...), encodeFrame(t, eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("error")},
		{Name: ":error-code", Value: eventstream.StringValue("ThrottlingException")},
		{Name: ":error-message", Value: eventstream.StringValue("slow down")},
	}, nil)...)
	w, out := relayBytes(t, p, [][]byte{raw}, nil)
	if !strings.HasSuffix(w.String(), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n") || out.ErrorType != "rate_limit_error" {
		t.Fatalf("error frame: %+v\n%s", out.Result, w.String())
	}
}

// cutEvent is the error event a client gets when the stream is cut.
const cutEvent = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The Bedrock response stream ended before the message was complete.\"}}\n\n"

func TestTranslateStreamCut(t *testing.T) {
	whole := streamOf(t, claudeEvents[:8]...) // through both text deltas
	next := chunkFrame(t, claudeEvents[8])
	// Output is estimated from the text that passed: "The user wants a
	// greeting." (26 bytes), "Hello from " (11) and "Bedrock, café!" (15):
	// ceil(52/4) = 13.
	cutUsage := llm.Usage{InputTokens: 12, OutputTokens: 13, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, OutputEstimated: true}
	for _, tc := range []struct {
		name    string
		extra   []byte
		tail    error
		wantErr error
	}{
		{name: "mid-prelude, clean EOF", extra: next[:5], wantErr: ErrCutMidFrame},
		{name: "mid-headers, clean EOF", extra: next[:20], wantErr: ErrCutMidFrame},
		{name: "mid-payload, clean EOF", extra: next[:len(next)/2], wantErr: ErrCutMidFrame},
		{name: "mid-CRC, clean EOF", extra: next[:len(next)-2], wantErr: ErrCutMidFrame},
		{name: "between frames, clean EOF", wantErr: ErrNoMessageStop},
		{name: "mid-payload, read error", extra: next[:40], tail: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF},
		{name: "between frames, connection reset", tail: errors.New("read: connection reset by peer"), wantErr: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			raw := append(append([]byte(nil), whole...), tc.extra...)
			w, out := relayBytes(t, p, [][]byte{raw}, tc.tail)
			if out.UpstreamErr == nil || (tc.wantErr != nil && !errors.Is(out.UpstreamErr, tc.wantErr)) {
				t.Fatalf("UpstreamErr %v, want %v", out.UpstreamErr, tc.wantErr)
			}
			if tc.tail != nil && tc.wantErr == nil && out.UpstreamErr != tc.tail {
				t.Fatalf("UpstreamErr %v, want the read error", out.UpstreamErr)
			}
			if out.Usage != cutUsage {
				t.Errorf("usage %+v\nwant  %+v", out.Usage, cutUsage)
			}
			if want := sseOf(claudeEvents[:8]...) + cutEvent; w.String() != want {
				t.Errorf("client got\n%s\nwant\n%s", w.String(), want)
			}
			if out.ErrorType != "api_error" || out.ClientErr != nil || out.FirstToken.IsZero() {
				t.Errorf("result %+v", out.Result)
			}
		})
	}

	// A read error after message_stop is reported, but the client's stream
	// is complete: no error event.
	p := newTestProvider(t, "", nil)
	w, out := relayBytes(t, p, [][]byte{streamOf(t, claudeEvents...)}, errors.New("read: connection reset by peer"))
	if out.UpstreamErr == nil || out.Usage != claudeUsage || w.String() != sseOf(claudeEvents...) {
		t.Errorf("cut after message_stop: %+v\n%s", out.Result, w.String())
	}
}

// TestTranslateStreamCutOverHTTP cuts the connection inside a frame.
func TestTranslateStreamCutOverHTTP(t *testing.T) {
	raw := streamOf(t, claudeEvents[:8]...)
	next := chunkFrame(t, claudeEvents[8])
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", EventStreamContentType)
		part := append(append([]byte(nil), raw...), next[:30]...)
		fmt.Fprintf(bw, "%x\r\n%s\r\n", len(part), part)
		bw.Flush()
	})
	p := newTestProvider(t, srv.URL, nil)
	call := messagesCall(claudeCodeHeader(), true)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	w := newRecorder()
	res := p.Relay(w, resp, call)
	if res.UpstreamErr == nil || res.Usage.Complete || res.Usage.InputTokens != 12 || res.Usage.OutputTokens != 13 || !res.Usage.OutputEstimated {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasSuffix(w.String(), cutEvent) {
		t.Errorf("the client cannot tell the stream was cut:\n%s", w.String())
	}
}

func TestTranslateStreamClientGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failAt int // first failing write (write 1 is message_start)
		want   llm.Usage
	}{
		{name: "gone on message_start", failAt: 1, want: llm.Usage{InputTokens: 12, OutputTokens: 1, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100}},
		// The eighth event (second text delta) is metered though its write failed.
		{name: "gone on the second text delta", failAt: 8, want: llm.Usage{InputTokens: 12, OutputTokens: 13, CacheReadTokens: 9000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 100, OutputEstimated: true}},
		{name: "gone on message_stop", failAt: len(claudeEvents), want: claudeUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			frames := make([][]byte, len(claudeEvents))
			for i, e := range claudeEvents {
				frames[i] = chunkFrame(t, e)
			}
			body := &chunkBody{chunks: frames}
			w := newRecorder()
			w.failAt = tc.failAt
			out := p.relay(w, eventStreamResponse(body), messagesCall(nil, true))
			if !errors.Is(out.ClientErr, errClientGoneTest) || out.UpstreamErr != nil {
				t.Fatalf("ClientErr %v UpstreamErr %v", out.ClientErr, out.UpstreamErr)
			}
			if out.Usage != tc.want {
				t.Errorf("usage %+v\nwant  %+v", out.Usage, tc.want)
			}
			if body.reads != tc.failAt || !body.closed {
				t.Errorf("%d upstream reads, want %d (reading stops with the client)", body.reads, tc.failAt)
			}
			if want := sseOf(claudeEvents[:tc.failAt-1]...); w.String() != want || out.BytesWritten != int64(len(want)) {
				t.Errorf("client got %d bytes, want %d", out.BytesWritten, len(want))
			}
		})
	}
}

func TestTranslateStreamMetrics(t *testing.T) {
	p := newTestProvider(t, "", nil)
	// Metrics that disagree with the events: the events win.
	events := append(append([]string(nil), claudeEvents[:len(claudeEvents)-1]...),
		`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":13,"outputTokenCount":40,"invocationLatency":1,"firstByteLatency":1}}`)
	w, out := relayBytes(t, p, [][]byte{streamOf(t, events...)}, nil)
	if out.Usage != claudeUsage || out.metricsAgree || out.metrics.InputTokenCount != 13 || w.String() != sseOf(claudeEvents...) {
		t.Errorf("disagreeing metrics: %+v %+v agree %v", out.Usage, out.metrics, out.metricsAgree)
	}

	// Events without any usage: the metrics are all there is.
	bare := []string{
		`{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[]}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`,
		`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":7,"outputTokenCount":3,"cacheReadInputTokenCount":5,"cacheWriteInputTokenCount":2}}`,
	}
	_, out = relayBytes(t, p, [][]byte{streamOf(t, bare...)}, nil)
	if want := (llm.Usage{InputTokens: 7, OutputTokens: 3, CacheReadTokens: 5, CacheWrite5mTokens: 2, Complete: true}); out.Usage != want {
		t.Errorf("metrics fallback: %+v, want %+v", out.Usage, want)
	}

	// Unknown event types pass with their type; chunks without a type and
	// non-chunk events are skipped.
	odd := streamOf(t, claudeEvents[0], `{"type":"future_event","x":1}`, `{"no_type":true}`)
	odd = append(odd, encodeFrame(t, eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("event")},
		{Name: ":event-type", Value: eventstream.StringValue("initial-response")},
	}, []byte(`{}`))...)
	odd = append(odd, streamOf(t, claudeEvents[1:]...)...)
	w, out = relayBytes(t, p, [][]byte{odd}, nil)
	want := sseOf(claudeEvents[0]) + "event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n" + sseOf(claudeEvents[1:]...)
	if w.String() != want || out.Usage != claudeUsage {
		t.Errorf("odd events: client got\n%s", w.String())
	}
}

func TestTranslateStreamMalformed(t *testing.T) {
	good := streamOf(t, claudeEvents[:3]...)
	corrupt := chunkFrame(t, claudeEvents[3])
	corrupt[len(corrupt)-1] ^= 0xff // message CRC
	badPrelude := chunkFrame(t, claudeEvents[3])
	badPrelude[9] ^= 0xff // prelude CRC
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"message checksum", corrupt},
		{"prelude checksum", badPrelude},
		{"chunk without bytes", encodeFrame(t, eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
		}, []byte(`{"p":"x"}`))},
		{"chunk with bad base64", encodeFrame(t, eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
		}, []byte(`{"bytes":"!!!not base64"}`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", nil)
			raw := append(append([]byte(nil), good...), tc.frame...)
			w, out := relayBytes(t, p, [][]byte{raw}, nil)
			if !errors.Is(out.UpstreamErr, ErrMalformedStream) || out.Usage.Complete {
				t.Fatalf("result %+v", out.Result)
			}
			if want := sseOf(claudeEvents[:3]...) + cutEvent; w.String() != want {
				t.Errorf("client got\n%s", w.String())
			}
		})
	}

	// An escaped "/" in the base64 string is still decoded.
	ev := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"???>>>"}}`
	b64 := strings.ReplaceAll(encodeB64(ev), "/", `\/`)
	if !strings.Contains(b64, `\/`) {
		t.Fatal("test event has no '/' in its base64")
	}
	frame := encodeFrame(t, eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("event")},
		{Name: ":event-type", Value: eventstream.StringValue("chunk")},
	}, []byte(`{"bytes":"`+b64+`"}`))
	p := newTestProvider(t, "", nil)
	raw := append(append(streamOf(t, claudeEvents[0]), frame...), streamOf(t, claudeEvents[12:]...)...)
	w, out := relayBytes(t, p, [][]byte{raw}, nil)
	if !strings.Contains(w.String(), "data: "+ev+"\n\n") || out.UpstreamErr != nil {
		t.Errorf("escaped base64: %+v\n%s", out.Result, w.String())
	}
}

// TestPingsDuringSilence: an upstream that goes silent after message_start
// gets pings written for it; they stop when events flow again.
func TestPingsDuringSilence(t *testing.T) {
	release := make(chan struct{})
	first, rest := chunkFrame(t, claudeEvents[0]), streamOf(t, claudeEvents[1:]...)
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", EventStreamContentType)
		rc := http.NewResponseController(w)
		w.Write(first)
		rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(rest)
	})
	p := newTestProvider(t, srv.URL, func(c *Config) { c.PingInterval = 5 * time.Millisecond })
	call := messagesCall(claudeCodeHeader(), true)
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	w := newRecorder()
	done := make(chan outcome, 1)
	go func() { done <- p.relay(w, resp, call) }()

	timeout := time.After(10 * time.Second)
	for strings.Count(w.String(), "event: ping\n") < 2 {
		select {
		case <-w.notify:
		case <-timeout:
			t.Fatalf("no pings during the silence:\n%s", w.String())
		}
	}
	close(release)
	var out outcome
	select {
	case out = <-done:
	case <-timeout:
		t.Fatal("relay did not end")
	}
	got := w.String()
	start := sseOf(claudeEvents[0])
	if !strings.HasPrefix(got, start) || !strings.HasSuffix(got, sseOf(claudeEvents[1:]...)) {
		t.Fatalf("client got\n%s", got)
	}
	middle := strings.TrimSuffix(strings.TrimPrefix(got, start), sseOf(claudeEvents[1:]...))
	pings := strings.Count(middle, string(pingEvent))
	if pings < 2 || strings.ReplaceAll(middle, string(pingEvent), "") != "" || out.pings != pings {
		t.Errorf("between message_start and the rest: %q (%d pings reported)", middle, out.pings)
	}
	if out.Usage != claudeUsage || out.BytesWritten != int64(len(got)) {
		t.Errorf("result %+v", out.Result)
	}
	// The timer is stopped: nothing is written after Relay returned.
	n := len(w.String())
	time.Sleep(20 * time.Millisecond) // a check for absence, not synchronisation
	if len(w.String()) != n {
		t.Error("a ping was written after Relay returned")
	}
}

// TestNoPingsWhenEventsFlow: a stream that keeps the client busy gets no
// pings, and a disabled interval gets none ever.
func TestNoPingsWhenEventsFlow(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, -1} {
		p := newTestProvider(t, "", func(c *Config) { c.PingInterval = interval })
		frames := make([][]byte, len(claudeEvents))
		for i, e := range claudeEvents {
			frames[i] = chunkFrame(t, e)
		}
		w, out := relayBytes(t, p, frames, nil)
		if out.pings != 0 || strings.Contains(w.String(), "ping") || w.String() != sseOf(claudeEvents...) {
			t.Errorf("interval %v: %d pings", interval, out.pings)
		}
	}
	// Pass-through never pings, whatever the silence.
	release := make(chan struct{})
	first, rest := chunkFrame(t, claudeEvents[0]), streamOf(t, claudeEvents[1:]...)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(first)
		<-release
		pw.Write(rest)
		pw.Close()
	}()
	p := newTestProvider(t, "", func(c *Config) { c.PingInterval = time.Millisecond })
	w := newRecorder()
	done := make(chan outcome, 1)
	go func() {
		done <- p.relay(w, eventStreamResponse(pr), bedrockCall(llm.SurfaceBedrockInvokeStream, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"))
	}()
	<-w.notify                        // headers
	time.Sleep(10 * time.Millisecond) // ten ping intervals of silence
	close(release)
	out := <-done
	if w.String() != string(streamOf(t, claudeEvents...)) || out.Usage != claudeUsage {
		t.Errorf("pass-through altered: %+v", out.Result)
	}
}

// TestPingTimerLogic drives the ping decision with a fake clock: a ping
// only after a whole interval without bytes for the client.
func TestPingTimerLogic(t *testing.T) {
	now := t0
	w := newRecorder()
	o := newSSEOut(w, nil, 10*time.Second)
	o.clock = func() time.Time { return now }
	o.last = now

	tick := func(at time.Duration) {
		now = t0.Add(at)
		o.tick()
	}
	tick(9 * time.Second) // 9 s of silence: too early
	if o.pings != 0 {
		t.Fatal("ping before the interval")
	}
	tick(10 * time.Second)
	if o.pings != 1 || w.String() != string(pingEvent) {
		t.Fatalf("no ping after the interval: %q", w.String())
	}
	now = t0.Add(15 * time.Second)
	o.event([]byte("message_start"), []byte(`{}`)) // an event resets the silence
	tick(20 * time.Second)                         // only 5 s since the event
	tick(24 * time.Second)
	if o.pings != 1 {
		t.Fatal("ping while events flow")
	}
	tick(25 * time.Second)
	if o.pings != 2 {
		t.Fatal("no ping after 10 s of silence")
	}
	o.close()
	tick(60 * time.Second)
	if o.pings != 2 {
		t.Fatal("ping after close")
	}
	written, pings, err := o.state()
	if written != int64(len(w.String())) || pings != 2 || err != nil {
		t.Fatalf("state %d %d %v", written, pings, err)
	}
}

func TestSSEEventMultiline(t *testing.T) {
	w := newRecorder()
	o := newSSEOut(w, nil, 0)
	o.event([]byte("message_delta"), []byte("{\"a\":1,\r\n\"b\":2,\r\"c\":3}"))
	want := "event: message_delta\ndata: {\"a\":1,\ndata: \"b\":2,\ndata: \"c\":3}\n\n"
	if w.String() != want {
		t.Fatalf("got %q", w.String())
	}
	// An SSE reader gets the event back whole, lines joined with "\n".
	var sc stream.SSEScanner
	var events []string
	sc.Feed([]byte(w.String()), func(ev, data []byte) { events = append(events, string(ev)+"|"+string(data)) })
	if len(events) != 1 || events[0] != "message_delta|{\"a\":1,\n\"b\":2,\n\"c\":3}" {
		t.Errorf("read back %q", events)
	}
}

func encodeB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
