package testkit

import (
	"bytes"
	"errors"
	"net/http"
)

// ErrClientGone is the error FlushRecorder's writes fail with from FailAt
// on: what a write to a client that hung up returns.
var ErrClientGone = errors.New("write tcp 127.0.0.1:8080->127.0.0.1:50000: write: broken pipe")

// FlushRecorder is a ResponseWriter that keeps the body, counts writes and
// flushes, hands the body written so far to the test at every flush when
// Flushes is set (blocking until the test takes it), and fails writes from
// the FailAt-th on (1-based; 0 never). It is not safe for concurrent use.
type FlushRecorder struct {
	Status  int
	Body    bytes.Buffer
	Flushes chan string
	NFlush  int
	Writes  int
	FailAt  int

	header http.Header
}

// NewFlushRecorder returns a recorder; with sync, every flush blocks until
// the test receives the body from Flushes.
func NewFlushRecorder(sync bool) *FlushRecorder {
	r := &FlushRecorder{header: http.Header{}}
	if sync {
		r.Flushes = make(chan string)
	}
	return r
}

// Header implements http.ResponseWriter.
func (r *FlushRecorder) Header() http.Header { return r.header }

// WriteHeader implements http.ResponseWriter; the first status sticks.
func (r *FlushRecorder) WriteHeader(s int) {
	if r.Status == 0 {
		r.Status = s
	}
}

// Write implements http.ResponseWriter.
func (r *FlushRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.Writes++
	if r.FailAt > 0 && r.Writes >= r.FailAt {
		return 0, ErrClientGone
	}
	return r.Body.Write(p)
}

// Flush implements http.Flusher.
func (r *FlushRecorder) Flush() {
	r.NFlush++
	if r.Flushes != nil {
		r.Flushes <- r.Body.String()
	}
}
