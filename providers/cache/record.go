package cache

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Recorder is an http.ResponseWriter that passes everything to the client
// as it comes and keeps a copy of a 200 response's body, up to a limit, for
// the cache. It never holds bytes back: each Write reaches the wrapped
// writer at once, and flushes reach it through Unwrap
// (http.NewResponseController).
type Recorder struct {
	http.ResponseWriter
	max    int64
	status int
	buf    *bytes.Buffer
	over   bool
}

var recordPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps unusually large recordings out of the pool.
const maxPooled = 1 << 20

// NewRecorder records what is written to w, keeping at most maxEntry body
// bytes: a longer response is relayed whole but not kept.
func NewRecorder(w http.ResponseWriter, maxEntry int64) *Recorder {
	b := recordPool.Get().(*bytes.Buffer)
	b.Reset()
	return &Recorder{ResponseWriter: w, max: maxEntry, buf: b}
}

// WriteHeader implements http.ResponseWriter.
func (r *Recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		if code == http.StatusOK {
			// A body announced longer than the limit is not worth copying.
			if n, err := strconv.ParseInt(r.Header().Get("Content-Length"), 10, 64); err == nil && n > r.max {
				r.over = true
			}
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *Recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	if !r.over && r.status == http.StatusOK {
		if int64(r.buf.Len()+n) > r.max {
			r.over = true
		} else {
			r.buf.Write(p[:n])
		}
	}
	return n, err
}

// Unwrap lets http.NewResponseController reach the wrapped writer (Flush,
// deadlines).
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Status is the status written, 0 before any.
func (r *Recorder) Status() int { return r.status }

// Entry checks the recorded response of surface s with Check and returns a new entry
// holding a copy of it, or the reason it may not be kept: not a 200, larger
// than the limit, content-encoded, or refused by Check. The caller has
// established that the response was delivered whole (no upstream or client
// error, final usage seen) and fills in the usage, cost and provider.
func (r *Recorder) Entry(s llm.Surface) (*Entry, error) {
	if r.status != http.StatusOK {
		return nil, refuse("status %d", r.status)
	}
	if r.over {
		return nil, refuse("larger than max_entry")
	}
	h := r.Header()
	if ce := h.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return nil, refuse("content-encoding %s", ce)
	}
	ct := h.Get("Content-Type")
	if err := Check(s, ct, r.buf.Bytes()); err != nil {
		return nil, err
	}
	return &Entry{
		Status:      http.StatusOK,
		ContentType: ct,
		Stream:      isSSE(ct),
		Body:        bytes.Clone(r.buf.Bytes()),
	}, nil
}

// Release returns the recording buffer; the Recorder must not be used
// after it.
func (r *Recorder) Release() {
	if r.buf != nil && r.buf.Cap() <= maxPooled {
		recordPool.Put(r.buf)
	}
	r.buf = nil
}
