package module

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// cannedUpstream answers every request in memory with a recorded-shape
// Claude stream, so a benchmark measures the gateway's own work only.
type cannedUpstream struct {
	body []byte
}

func (c *cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"text/event-stream"}, "Request-Id": {"req_bench"}},
		Body:       io.NopCloser(bytes.NewReader(c.body)),
		Request:    r,
	}, nil
}

// claudeStream is a typical Claude Code turn: message_start with cache
// usage, a thinking block, a text block of n deltas, message_delta, stop.
func claudeStream(n int) []byte {
	var b bytes.Buffer
	ev := func(t, d string) { fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", t, d) }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":2000,"cache_read_input_tokens":90000,"cache_creation":{"ephemeral_5m_input_tokens":2000,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	ev("ping", `{"type": "ping"}`)
	for i := range n {
		ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"token %d of the reply "}}`, i))
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":400}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return b.Bytes()
}

// claudeCodeRequest is shaped like Claude Code's: ~90 KB, streaming.
func claudeCodeRequest() []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"claude-sonnet-4-5-20250929","messages":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"role":"user","content":[{"type":"text","text":"`)
		b.WriteString(strings.Repeat(`lorem ipsum \"dolor\" sit amet {[ `, 60))
		b.WriteString(`"}]}`)
	}
	b.WriteString(`],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true}`)
	return b.Bytes()
}

// discardWriter is a ResponseWriter that flushes into nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchGateway is a provisioned-equivalent gateway on an in-memory upstream.
func benchGateway(b *testing.B, upstream http.RoundTripper) *Gateway {
	// The production default store: SQLite, group-committed off the request path.
	sqlite, err := governance.OpenSQLiteStore(b.TempDir()+"/bench.db", governance.SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sqlite.Close() })
	return newTestGateway(b, upstream, "sk-llmgw-bench", sqlite)
}

// BenchmarkGatewayRequest is the gateway's own work for one Claude Code turn
// (~90 KB request, 300-delta stream): authenticate, read the body once,
// route, forward, relay and meter every event, price, record and count.
// The upstream is in memory, so nothing here is network time.
func BenchmarkGatewayRequest(b *testing.B) {
	g := benchGateway(b, &cannedUpstream{body: claudeStream(300)})
	body := claudeCodeRequest()
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest("POST", "http://gw/anthropic/v1/messages?beta=true", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer sk-llmgw-bench")
		r.Header.Set("Anthropic-Version", "2023-06-01")
		r.Header.Set("Anthropic-Beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
		r.Header.Set("Content-Type", "application/json")
		clear(w.h)
		if err := g.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGatewaySmallRequest isolates the fixed per-request cost: a tiny
// non-streamed request and reply.
func BenchmarkGatewaySmallRequest(b *testing.B) {
	reply := []byte(`{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"output_tokens":2}}`)
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(reply)), ContentLength: int64(len(reply)), Request: r}, nil
	})
	g := benchGateway(b, up)
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest("POST", "http://gw/v1/messages", bytes.NewReader(body))
		r.Header.Set("X-Api-Key", "sk-llmgw-bench")
		r.Header.Set("Anthropic-Version", "2023-06-01")
		clear(w.h)
		if err := g.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
