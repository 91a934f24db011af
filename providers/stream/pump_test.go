package stream

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// chunkReader returns its chunks one Read at a time, then err (io.EOF when
// nil). With withErr, the last chunk comes together with err.
type chunkReader struct {
	chunks  []string
	err     error
	withErr bool
	reads   int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.reads++
	end := r.err
	if end == nil {
		end = io.EOF
	}
	if len(r.chunks) == 0 {
		return 0, end
	}
	n := copy(p, r.chunks[0])
	if n < len(r.chunks[0]) {
		r.chunks[0] = r.chunks[0][n:]
		return n, nil
	}
	r.chunks = r.chunks[1:]
	if r.withErr && len(r.chunks) == 0 {
		return n, end
	}
	return n, nil
}

// recWriter records writes and what had been written at every flush; it
// fails the failAt-th write (1-based) with writeErr, or writes short.
type recWriter struct {
	buf      bytes.Buffer
	flushes  []string
	writes   int
	failAt   int
	short    bool
	writeErr error
	flushErr error
}

func (w *recWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes == w.failAt {
		if w.short {
			w.buf.Write(p[:len(p)/2])
			return len(p) / 2, nil
		}
		return 0, w.writeErr
	}
	return w.buf.Write(p)
}

func (w *recWriter) flush() error {
	w.flushes = append(w.flushes, w.buf.String())
	return w.flushErr
}

var (
	errCut  = errors.New("unexpected EOF from upstream")
	errGone = errors.New("write: broken pipe")
)

func TestPump(t *testing.T) {
	for _, tc := range []struct {
		name        string
		r           chunkReader
		w           recWriter
		noFlush     bool
		wantOut     string
		wantFlushes []string
		wantMeter   string
		wantUp      error
		wantClient  error
		wantReads   int
	}{
		{
			name:        "every read written and flushed",
			r:           chunkReader{chunks: []string{"event: a\ndata: 1\n\n", "event: b\n", "data: 2\n\n"}},
			wantOut:     "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
			wantFlushes: []string{"event: a\ndata: 1\n\n", "event: a\ndata: 1\n\nevent: b\n", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"},
			wantMeter:   "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
			wantReads:   4,
		},
		{
			name:        "data with EOF",
			r:           chunkReader{chunks: []string{"x", "yz"}, withErr: true},
			wantOut:     "xyz",
			wantFlushes: []string{"x", "xyz"},
			wantMeter:   "xyz",
			wantReads:   2,
		},
		{
			name:        "upstream cut",
			r:           chunkReader{chunks: []string{"ab", "cd"}, err: errCut},
			wantOut:     "abcd",
			wantFlushes: []string{"ab", "abcd"},
			wantMeter:   "abcd",
			wantUp:      errCut,
			wantReads:   3,
		},
		{
			name:        "upstream cut with data",
			r:           chunkReader{chunks: []string{"ab", "cd"}, err: errCut, withErr: true},
			wantOut:     "abcd",
			wantFlushes: []string{"ab", "abcd"},
			wantMeter:   "abcd",
			wantUp:      errCut,
			wantReads:   2,
		},
		{
			name:        "client gone: chunk metered, reading stops",
			r:           chunkReader{chunks: []string{"one", "two", "three"}},
			w:           recWriter{failAt: 2, writeErr: errGone},
			wantOut:     "one",
			wantFlushes: []string{"one"},
			wantMeter:   "onetwo",
			wantClient:  errGone,
			wantReads:   2,
		},
		{
			name:       "short write",
			r:          chunkReader{chunks: []string{"abcd", "efgh"}},
			w:          recWriter{failAt: 1, short: true},
			wantOut:    "ab",
			wantMeter:  "abcd",
			wantClient: io.ErrShortWrite,
			wantReads:  1,
		},
		{
			name:        "flush error",
			r:           chunkReader{chunks: []string{"abcd", "efgh"}},
			w:           recWriter{flushErr: errGone},
			wantOut:     "abcd",
			wantFlushes: []string{"abcd"},
			wantMeter:   "abcd",
			wantClient:  errGone,
			wantReads:   1,
		},
		{
			name:        "flush not supported is fine",
			r:           chunkReader{chunks: []string{"ab", "cd"}},
			w:           recWriter{flushErr: http.ErrNotSupported},
			wantOut:     "abcd",
			wantFlushes: []string{"ab", "abcd"},
			wantMeter:   "abcd",
			wantReads:   3,
		},
		{
			name:      "nil flush",
			r:         chunkReader{chunks: []string{"ab"}},
			noFlush:   true,
			wantOut:   "ab",
			wantMeter: "ab",
			wantReads: 2,
		},
		{
			name:      "empty body",
			r:         chunkReader{},
			wantReads: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var meter bytes.Buffer
			flush := tc.w.flush
			if tc.noFlush {
				flush = nil
			}
			n, up, cl := Pump(&tc.w, flush, &tc.r, func(p []byte) { meter.Write(p) })
			if got := tc.w.buf.String(); got != tc.wantOut || n != int64(len(tc.wantOut)) {
				t.Errorf("wrote %q (n=%d), want %q", got, n, tc.wantOut)
			}
			if !reflect.DeepEqual(tc.w.flushes, tc.wantFlushes) {
				t.Errorf("flushes %q, want %q", tc.w.flushes, tc.wantFlushes)
			}
			if meter.String() != tc.wantMeter {
				t.Errorf("meter saw %q, want %q", meter.String(), tc.wantMeter)
			}
			if up != tc.wantUp || cl != tc.wantClient {
				t.Errorf("errors (%v, %v), want (%v, %v)", up, cl, tc.wantUp, tc.wantClient)
			}
			if tc.r.reads != tc.wantReads {
				t.Errorf("%d reads, want %d", tc.r.reads, tc.wantReads)
			}
		})
	}
}

func TestPumpLargeBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 KB: several buffers
	var out, seen bytes.Buffer
	n, up, cl := Pump(&out, nil, bytes.NewReader(body), func(p []byte) { seen.Write(p) })
	if up != nil || cl != nil || n != int64(len(body)) || !bytes.Equal(out.Bytes(), body) || !bytes.Equal(seen.Bytes(), body) {
		t.Fatalf("n=%d up=%v cl=%v, out equal %v, seen equal %v", n, up, cl, bytes.Equal(out.Bytes(), body), bytes.Equal(seen.Bytes(), body))
	}
}

// noFlushWriter hides every optional interface of the recorder.
type noFlushWriter struct{ w http.ResponseWriter }

func (n noFlushWriter) Header() http.Header         { return n.w.Header() }
func (n noFlushWriter) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n noFlushWriter) WriteHeader(s int)           { n.w.WriteHeader(s) }

// unwrapWriter exposes its inner writer only through Unwrap, as Caddy's
// wrappers do.
type unwrapWriter struct{ noFlushWriter }

func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.w }

type flushErrWriter struct {
	noFlushWriter
	err error
}

func (f flushErrWriter) FlushError() error { return f.err }

func TestRelay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrap      func(*httptest.ResponseRecorder) http.ResponseWriter
		wantFlush bool
		wantErr   error
	}{
		{name: "flusher", wrap: func(r *httptest.ResponseRecorder) http.ResponseWriter { return r }, wantFlush: true},
		{name: "through Unwrap", wrap: func(r *httptest.ResponseRecorder) http.ResponseWriter { return unwrapWriter{noFlushWriter{r}} }, wantFlush: true},
		{name: "not supported", wrap: func(r *httptest.ResponseRecorder) http.ResponseWriter { return noFlushWriter{r} }},
		{name: "flush error", wrap: func(r *httptest.ResponseRecorder) http.ResponseWriter {
			return flushErrWriter{noFlushWriter{r}, errGone}
		}, wantErr: errGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := tc.wrap(rec)
			if err := Flusher(w)(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Flusher() = %v, want %v", err, tc.wantErr)
			}
			rec = httptest.NewRecorder()
			w = tc.wrap(rec)
			n, up, cl := Relay(w, &chunkReader{chunks: []string{"data: 1\n\n"}}, nil)
			if up != nil || !errors.Is(cl, tc.wantErr) || n != 9 || rec.Body.String() != "data: 1\n\n" {
				t.Fatalf("Relay: n=%d up=%v cl=%v body %q", n, up, cl, rec.Body.String())
			}
			if rec.Flushed != tc.wantFlush {
				t.Fatalf("Flushed = %v, want %v", rec.Flushed, tc.wantFlush)
			}
		})
	}
}
