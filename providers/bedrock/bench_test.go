package bedrock

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// benchFrames is a 300-event Claude stream as Bedrock frames it:
// message_start, a text block of 296 deltas, message_delta and
// message_stop with invocation metrics.
func benchFrames(tb testing.TB) [][]byte {
	evs := []string{claudeEvents[0], claudeEvents[5]}
	for i := 0; i < 296; i++ {
		evs = append(evs, fmt.Sprintf(`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"word %03d of a long streamed answer "}}`, i))
	}
	evs = append(evs, claudeEvents[8], claudeEvents[12], claudeEvents[13])
	frames := make([][]byte, len(evs))
	for i, e := range evs {
		frames[i] = chunkFrame(tb, e)
	}
	return frames
}

// frameBody hands out one frame per Read, like a network read per event.
type frameBody struct {
	frames [][]byte
	i, off int
}

func (b *frameBody) Read(p []byte) (int, error) {
	if b.i == len(b.frames) {
		return 0, io.EOF
	}
	n := copy(p, b.frames[b.i][b.off:])
	b.off += n
	if b.off == len(b.frames[b.i]) {
		b.i, b.off = b.i+1, 0
	}
	return n, nil
}

func (b *frameBody) Close() error { return nil }

// discardWriter is a ResponseWriter that counts flushes.
type discardWriter struct {
	h       http.Header
	flushes int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      { d.flushes++ }

func benchRelay(b *testing.B, call *llm.Call) {
	frames := benchFrames(b)
	p := newTestProvider(b, "", nil)
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	w := &discardWriter{h: http.Header{}}
	body := &frameBody{frames: frames}
	resp := eventStreamResponse(body)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		body.i, body.off = 0, 0
		clear(w.h)
		res := p.Relay(w, resp, call)
		if !res.Usage.Complete || res.Usage.OutputTokens != 42 || res.UpstreamErr != nil {
			b.Fatalf("%+v", res)
		}
	}
	b.ReportMetric(float64(len(frames)), "events/op")
}

// BenchmarkTranslateStream is Relay alone (no network) turning a 300-event
// Bedrock event stream into Anthropic SSE: frame decoding, base64, meter,
// SSE writes with one flush per event, the ping timer.
func BenchmarkTranslateStream(b *testing.B) { benchRelay(b, messagesCall(nil, true)) }

// BenchmarkPassThroughStream relays the same stream byte for byte while
// decoding a copy for the meter.
func BenchmarkPassThroughStream(b *testing.B) {
	benchRelay(b, bedrockCall(llm.SurfaceBedrockInvokeStream, haikuProfile))
}

// BenchmarkSendSigned is Send's own work for a Claude Code body: model id,
// body translation, headers, SigV4 (SHA-256 of the body included), with a
// transport that answers at once.
func BenchmarkSendSigned(b *testing.B) {
	ct := &captureTransport{}
	ok := &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}
	ct.resp = func(*http.Request) *http.Response { return ok }
	p := newTestProvider(b, "", func(c *Config) {
		c.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil })
	})
	call := messagesCall(claudeCodeHeader(), true)
	b.SetBytes(int64(len(call.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Send(context.Background(), call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendRelayLoopback is a whole translated streamed call over
// loopback HTTP/1.1 against an upstream that writes and flushes each of the
// 300 frames.
func BenchmarkSendRelayLoopback(b *testing.B) {
	frames := benchFrames(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", EventStreamContentType)
		rc := http.NewResponseController(w)
		for _, f := range frames {
			w.Write(f)
			rc.Flush()
		}
	}))
	defer srv.Close()
	p := newTestProvider(b, srv.URL, nil)
	call := messagesCall(claudeCodeHeader(), true)
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
