package anthropic

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// benchEvents is a ~300-event turn: the test turn with its two text deltas
// repeated.
func benchEvents() []string {
	evs := append([]string(nil), turnEvents[:3]...)
	for i := 0; i < 150; i++ {
		evs = append(evs, turnEvents[3], turnEvents[4])
	}
	return append(evs, turnEvents[5:]...)
}

// discardWriter is a ResponseWriter that counts flushes.
type discardWriter struct {
	h       http.Header
	flushes int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      { d.flushes++ }

// BenchmarkRelayStream is Relay alone (no network): headers, one read and
// one flush per event, scanner and meter, for a 300-event stream.
func BenchmarkRelayStream(b *testing.B) {
	evs := benchEvents()
	p, _ := New(Config{Name: "a", APIKeys: []string{keyA}, Transport: http.DefaultTransport})
	call := messagesCall(nil)
	w := &discardWriter{h: http.Header{}}
	body := &eventBody{events: evs}
	resp := &http.Response{StatusCode: 200, Body: body, ContentLength: -1,
		Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "Request-Id": {"req_1"}, "Anthropic-Ratelimit-Tokens-Remaining": {"1"}}}
	n := 0
	for _, e := range evs {
		n += len(e)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		body.reads = 0
		clear(w.h)
		res := p.Relay(w, resp, call)
		if !res.Usage.Complete || res.Usage.OutputTokens != 9 {
			b.Fatalf("%+v", res)
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkSendRelayLoopback is a whole streamed call over loopback HTTP/1.1
// against an upstream that writes and flushes each of 300 events.
func BenchmarkSendRelayLoopback(b *testing.B) {
	evs := benchEvents()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, e := range evs {
			io.WriteString(w, e)
			rc.Flush()
		}
	}))
	defer srv.Close()
	p, _ := New(Config{Name: "a", BaseURL: srv.URL, APIKeys: []string{keyA}, Transport: http.DefaultTransport})
	call := messagesCall(claudeCodeHeader())
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Send(context.Background(), call)
		if err != nil {
			b.Fatal(err)
		}
		clear(w.h)
		if res := p.Relay(w, resp, call); !res.Usage.Complete {
			b.Fatalf("%+v", res)
		}
	}
}

// BenchmarkForwardHeaders is the header copy Send does for a Claude Code
// request.
func BenchmarkForwardHeaders(b *testing.B) {
	h := claudeCodeHeader()
	b.ReportAllocs()
	for b.Loop() {
		if out := stream.ForwardRequestHeaders(h); len(out) == 0 {
			b.Fatal("empty")
		}
	}
}
