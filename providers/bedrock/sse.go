package bedrock

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// pingEvent is the ping the Anthropic API itself sends.
var pingEvent = []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n")

// sseOut writes Anthropic SSE events to the client, flushing each, and
// writes a ping whenever the client has received nothing for the ping
// interval. Writes come from the relay and from the ping timer's goroutine,
// hence the mutex; there is one timer per stream, and it re-arms itself only
// while the stream is open.
type sseOut struct {
	mu       sync.Mutex
	w        io.Writer
	flush    func() error
	written  int64
	err      error // the first write or flush error: the client is gone
	done     bool
	interval time.Duration // <= 0: no pings
	last     time.Time     // when the client last got bytes
	timer    *time.Timer
	clock    func() time.Time // time.Now; a test may stop it
	buf      []byte
	pings    int
}

func newSSEOut(w io.Writer, flush func() error, interval time.Duration) *sseOut {
	return &sseOut{w: w, flush: flush, interval: interval, clock: time.Now}
}

// start arms the ping timer; call it once the response headers are out.
func (o *sseOut) start() {
	if o.interval <= 0 {
		return
	}
	o.mu.Lock()
	o.last = o.clock()
	o.timer = time.AfterFunc(o.interval, o.tick)
	o.mu.Unlock()
}

// tick runs on the timer's goroutine: a ping if the stream has been silent
// for the whole interval, else a re-arm for the rest of it.
func (o *sseOut) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done || o.err != nil {
		return
	}
	if idle := o.clock().Sub(o.last); idle < o.interval {
		o.rearm(o.interval - idle)
		return
	}
	o.pings++
	o.writeLocked(pingEvent)
	if o.err == nil {
		o.rearm(o.interval)
	}
}

func (o *sseOut) rearm(d time.Duration) {
	if o.timer != nil {
		o.timer.Reset(d)
	}
}

// event writes "event: typ\ndata: data\n\n" and flushes. Data holding line
// breaks (never seen from Bedrock) is split over several data lines, which
// SSE readers join back with "\n". It returns the client's error, if any.
func (o *sseOut) event(typ, data []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	b := append(o.buf[:0], "event: "...)
	b = append(b, typ...)
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		b = append(b, "\ndata: "...)
		b = append(b, data...)
		b = append(b, '\n')
	} else {
		b = append(b, '\n')
		norm := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
		for line := range bytes.SplitSeq(norm, []byte("\n")) {
			b = append(b, "data: "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
	}
	b = append(b, '\n')
	o.buf = b
	o.writeLocked(b)
	return o.err
}

func (o *sseOut) writeLocked(b []byte) {
	n, err := o.w.Write(b)
	o.written += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil && o.flush != nil {
		err = o.flush()
	}
	if err != nil {
		o.err = err
	}
	o.last = o.clock()
}

// close stops the pings; nothing is written to the client afterwards.
func (o *sseOut) close() {
	o.mu.Lock()
	o.done = true
	t := o.timer
	o.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

// state returns what was written and the client's error.
func (o *sseOut) state() (written int64, pings int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written, o.pings, o.err
}
