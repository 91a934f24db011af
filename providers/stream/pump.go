package stream

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// BufferSize is the size of the pooled buffer Pump reads into.
const BufferSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// Pump relays body to w as it arrives: every read is handed to onChunk (the
// meter) and written to w at once, then flush is called, so each SSE event
// reaches the client when it leaves the upstream, never held in a buffer.
// onChunk sees the bytes before the write is attempted, so output that was
// generated is metered even when the client has just gone away; onChunk must
// not retain the slice. flush and onChunk may be nil.
//
// Pump returns the bytes written to w; upstreamErr when reading body failed
// (a cut stream; io.EOF is the normal end, not an error); clientErr when
// writing or flushing to w failed, after which Pump stops reading at once
// (cancelling the upstream request's context is the caller's job). A flush
// error that is http.ErrNotSupported is ignored.
func Pump(w io.Writer, flush func() error, body io.Reader, onChunk func([]byte)) (written int64, upstreamErr, clientErr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if onChunk != nil {
				onChunk(chunk)
			}
			nw, werr := w.Write(chunk)
			if nw > 0 {
				written += int64(nw)
			}
			if werr == nil && nw < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, nil, werr
			}
			if flush != nil {
				if ferr := flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return written, nil, ferr
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return written, nil, nil
			}
			return written, err, nil
		}
	}
}

// Flusher returns the function that flushes w through
// http.NewResponseController (so wrapped writers that implement Unwrap or
// FlushError work too), treating http.ErrNotSupported as success.
func Flusher(w http.ResponseWriter) func() error {
	rc := http.NewResponseController(w)
	return func() error {
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
}

// Relay is Pump to an http.ResponseWriter, flushing through Flusher(w).
// Write the status and headers before calling it.
func Relay(w http.ResponseWriter, body io.Reader, onChunk func([]byte)) (written int64, upstreamErr, clientErr error) {
	return Pump(w, Flusher(w), body, onChunk)
}
