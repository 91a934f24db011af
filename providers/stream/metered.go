package stream

import (
	"io"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// EventMeter meters one response's events: AnthropicMeter here, and the
// families' own meters (openai.ChatMeter, openai.ResponsesMeter).
type EventMeter interface {
	// Event meters one SSE event (its "event" field and its data).
	Event(typ, data []byte)
	// Usage is what was metered so far.
	Usage() llm.Usage
	// FirstToken is when the first generated content passed.
	FirstToken() time.Time
	// ErrorType is the type of an error event, when one passed.
	ErrorType() string
	// Reset readies the meter for another response, keeping its clock.
	Reset()
	// SetClock sets the clock that stamps the first content (nil: time.Now).
	SetClock(now func() time.Time)
}

// meterOf constrains the pointer to a meter type M.
type meterOf[M any] interface {
	*M
	EventMeter
}

// MeteredSSE meters a raw SSE byte stream: an SSEScanner splitting events
// for a meter. Feed is the onChunk of a Pump. The zero value is ready to
// use.
type MeteredSSE[M any, P meterOf[M]] struct {
	// Scanner splits the stream into events.
	Scanner SSEScanner
	// Meter meters them.
	Meter M
}

// Feed scans the next chunk of the stream and meters the events it
// completes.
func (a *MeteredSSE[M, P]) Feed(p []byte) { a.Scanner.Feed(p, P(&a.Meter).Event) }

// Reset readies a for another stream, keeping buffers and clock.
func (a *MeteredSSE[M, P]) Reset() {
	a.Scanner.Reset()
	P(&a.Meter).Reset()
}

// AnthropicSSE meters an Anthropic Messages stream.
type AnthropicSSE = MeteredSSE[AnthropicMeter, *AnthropicMeter]

// SSEPool recycles the MeteredSSE of one wire format (scanner buffers
// included) from stream to stream.
type SSEPool[M any, P meterOf[M]] struct{ p sync.Pool }

// Metered is what a metered relay saw.
type Metered struct {
	Usage       llm.Usage
	FirstToken  time.Time
	ErrorType   string
	Written     int64
	UpstreamErr error
	ClientErr   error
}

// Relay pumps body to w (flushing every read) through a pooled meter
// stamped by now, and returns what it metered: the relay sequence every
// family that passes an SSE stream through shares.
func (sp *SSEPool[M, P]) Relay(w io.Writer, flush func() error, body io.Reader, now func() time.Time) Metered {
	a, _ := sp.p.Get().(*MeteredSSE[M, P])
	if a == nil {
		a = new(MeteredSSE[M, P])
	}
	a.Reset()
	m := P(&a.Meter)
	m.SetClock(now)
	var out Metered
	out.Written, out.UpstreamErr, out.ClientErr = Pump(w, flush, body, a.Feed)
	out.Usage, out.FirstToken, out.ErrorType = m.Usage(), m.FirstToken(), m.ErrorType()
	m.SetClock(nil)
	a.Reset()
	sp.p.Put(a)
	return out
}
