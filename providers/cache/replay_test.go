package cache

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

type event struct{ name, data string }

func events(t *testing.T, body []byte) []event {
	t.Helper()
	var sc stream.SSEScanner
	var out []event
	sc.Feed(body, func(e, d []byte) { out = append(out, event{string(e), string(d)}) })
	if sc.Pending() {
		t.Fatal("stream ends inside an event")
	}
	return out
}

// relay writes body to w the way a relay does: headers, then one write and
// one flush per chunk of about size bytes.
func relay(t *testing.T, w http.ResponseWriter, ct string, body string, size int) {
	t.Helper()
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Request-Id", "req_upstream")
	w.WriteHeader(http.StatusOK)
	flush := stream.Flusher(w)
	for len(body) > 0 {
		n := min(size, len(body))
		if _, err := w.Write([]byte(body[:n])); err != nil {
			t.Fatal(err)
		}
		if err := flush(); err != nil {
			t.Fatal(err)
		}
		body = body[n:]
	}
}

// TestReplayFidelity records each stream format as a relay passes it to a
// client and replays it: the replayed events are byte for byte those the
// first client received, and a body is the same bytes with its
// Content-Length.
func TestReplayFidelity(t *testing.T) {
	tests := []struct {
		name    string
		surface llm.Surface
		ct      string
		body    string
	}{
		{"anthropic sse", llm.SurfaceAnthropicMessages, "text/event-stream; charset=utf-8", anthropicStream},
		{"openai chat sse", llm.SurfaceOpenAIChat, "text/event-stream; charset=utf-8", chatStream},
		{"responses sse", llm.SurfaceOpenAIResponses, "text/event-stream; charset=utf-8", responsesStream},
		{"anthropic json", llm.SurfaceAnthropicMessages, "application/json", anthropicMessage},
		{"chat json", llm.SurfaceOpenAIChat, "application/json", chatCompletion},
		{"responses json", llm.SurfaceOpenAIResponses, "application/json", responseObject},
		{"embeddings json", llm.SurfaceOpenAIEmbeddings, "application/json", embeddings},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 7, 64, 1 << 20} {
			first := httptest.NewRecorder()
			rec := NewRecorder(first, 1<<20)
			relay(t, rec, tc.ct, tc.body, chunk)
			e, err := rec.Entry(tc.surface)
			rec.Release()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if first.Body.String() != tc.body || !first.Flushed {
				t.Fatalf("%s: the recorder changed what the client received", tc.name)
			}
			again := httptest.NewRecorder()
			n, err := Replay(again, e)
			if err != nil || n != int64(len(tc.body)) {
				t.Fatalf("%s: Replay = %d, %v", tc.name, n, err)
			}
			if !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
				t.Fatalf("%s (chunks of %d): replayed body differs:\n%q\nwant\n%q", tc.name, chunk, again.Body.String(), first.Body.String())
			}
			if again.Code != 200 || again.Header().Get("Content-Type") != tc.ct {
				t.Errorf("%s: replay status %d content-type %q", tc.name, again.Code, again.Header().Get("Content-Type"))
			}
			if again.Header().Get("Request-Id") != "" {
				t.Errorf("%s: the original's provider request id was replayed", tc.name)
			}
			if strings.HasPrefix(tc.ct, "text/event-stream") {
				a, b := events(t, first.Body.Bytes()), events(t, again.Body.Bytes())
				if len(a) == 0 || len(a) != len(b) {
					t.Fatalf("%s: %d events replayed, want %d", tc.name, len(b), len(a))
				}
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("%s: event %d = %v, want %v", tc.name, i, b[i], a[i])
					}
				}
				if again.Header().Get("Content-Length") != "" || !again.Flushed {
					t.Errorf("%s: a replayed stream has Content-Length or was not flushed", tc.name)
				}
			} else if again.Header().Get("Content-Length") != itoa(len(tc.body)) {
				t.Errorf("%s: Content-Length %q", tc.name, again.Header().Get("Content-Length"))
			}
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

func TestRecorderKeepsOnlyWhatMayBeReplayed(t *testing.T) {
	t.Run("passes bytes through as they come", func(t *testing.T) {
		client := httptest.NewRecorder()
		rec := NewRecorder(client, 1<<20)
		defer rec.Release()
		rec.Header().Set("Content-Type", "text/event-stream")
		rec.WriteHeader(200)
		rec.Write([]byte("event: message_start\n"))
		if client.Body.Len() == 0 {
			t.Fatal("the recorder held a write back")
		}
	})
	t.Run("larger than max_entry", func(t *testing.T) {
		client := httptest.NewRecorder()
		rec := NewRecorder(client, 100)
		defer rec.Release()
		relay(t, rec, "text/event-stream", anthropicStream, 16)
		if _, err := rec.Entry(llm.SurfaceAnthropicMessages); err == nil {
			t.Fatal("a response over max_entry was kept")
		}
		if client.Body.String() != anthropicStream {
			t.Fatal("the client did not get the whole response")
		}
	})
	t.Run("announced larger than max_entry", func(t *testing.T) {
		rec := NewRecorder(httptest.NewRecorder(), 100)
		defer rec.Release()
		rec.Header().Set("Content-Length", "5000")
		rec.WriteHeader(200)
		if _, err := rec.Entry(llm.SurfaceAnthropicMessages); err == nil {
			t.Fatal("kept")
		}
	})
	t.Run("not a 200", func(t *testing.T) {
		rec := NewRecorder(httptest.NewRecorder(), 1<<20)
		defer rec.Release()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(529)
		rec.Write([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		if _, err := rec.Entry(llm.SurfaceAnthropicMessages); err == nil {
			t.Fatal("an error response was kept")
		}
	})
	t.Run("content-encoded", func(t *testing.T) {
		rec := NewRecorder(httptest.NewRecorder(), 1<<20)
		defer rec.Release()
		rec.Header().Set("Content-Encoding", "gzip")
		relay(t, rec, "application/json", anthropicMessage, 1<<20)
		if _, err := rec.Entry(llm.SurfaceAnthropicMessages); err == nil {
			t.Fatal("a gzip body was kept")
		}
	})
	t.Run("implicit 200", func(t *testing.T) {
		rec := NewRecorder(httptest.NewRecorder(), 1<<20)
		defer rec.Release()
		rec.Header().Set("Content-Type", "application/json")
		rec.Write([]byte(anthropicMessage))
		if _, err := rec.Entry(llm.SurfaceAnthropicMessages); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkReplay300Events(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 300*120 {
		sb.WriteString("event: content_block_delta\n")
		sb.WriteString(`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lorem ipsum dolor"}}` + "\n\n")
	}
	e := &Entry{Status: 200, ContentType: "text/event-stream", Stream: true, Body: []byte(sb.String())}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		_, _ = Replay(w, e)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
