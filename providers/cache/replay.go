package cache

import (
	"net/http"
	"strconv"

	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

func isSSE(ct string) bool { return stream.IsEventStream(ct) }

// Replay writes a cached response to w: its status, Content-Type (with
// Content-Length for a body, and Cache-Control: no-cache for a stream, as
// the providers send it), and every byte of the body in one write, then
// flushes. A stream is the same event sequence, byte for byte, that the
// first client received. It returns the bytes written and the client's
// error, if any.
func Replay(w http.ResponseWriter, e *Entry) (int64, error) {
	h := w.Header()
	if e.ContentType != "" {
		h.Set("Content-Type", e.ContentType)
	}
	if e.Stream {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	w.WriteHeader(e.Status)
	n, err := w.Write(e.Body)
	if err == nil {
		err = stream.Flusher(w)()
	}
	return int64(n), err
}
