package bedrock

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// readBufferSize is the buffer the event-stream decoder reads through: the
// decoder asks for a few bytes at a time, the buffer turns that into one
// read per upstream chunk.
const readBufferSize = 32 << 10

// Errors a relay reports in Result.UpstreamErr besides the transport's own.
var (
	// ErrCutMidFrame is a stream that ended inside an event-stream frame.
	ErrCutMidFrame = errors.New("bedrock: event stream cut mid-frame")
	// ErrNoMessageStop is a stream that ended cleanly between frames but
	// before Claude's message_stop event or an exception.
	ErrNoMessageStop = errors.New("bedrock: event stream ended before message_stop")
	// ErrMalformedStream wraps a frame the decoder rejected (bad checksum,
	// bad lengths) or a chunk that is not {"bytes":"<base64 JSON>"}.
	ErrMalformedStream = errors.New("bedrock: malformed event stream")
)

// source is the upstream body as the decoder sees it: it remembers the
// first read error (other than io.EOF), and counts the bytes consumed so
// that an EOF inside a frame can be told from one between frames. With tee
// set (pass-through), every chunk read is also written, and flushed, to the
// client before the decoder sees it.
type source struct {
	body        io.Reader
	upstreamErr error

	tee       io.Writer
	flush     func() error
	written   int64
	clientErr error
}

// errClientGone stops the decoder once the pass-through client is gone.
var errClientGone = errors.New("bedrock: client gone")

func (s *source) Read(p []byte) (int, error) {
	if s.clientErr != nil {
		return 0, errClientGone
	}
	n, err := s.body.Read(p)
	if err != nil && err != io.EOF && s.upstreamErr == nil {
		s.upstreamErr = err
	}
	if n > 0 && s.tee != nil {
		nw, werr := s.tee.Write(p[:n])
		s.written += int64(nw)
		if werr == nil && nw < n {
			werr = io.ErrShortWrite
		}
		if werr == nil && s.flush != nil {
			werr = s.flush()
		}
		if werr != nil {
			// The bytes read are still decoded (and metered): they were
			// generated upstream even if the client did not get them.
			s.clientErr = werr
		}
	}
	return n, err
}

// counter counts what the decoder consumes from the buffered reader.
type counter struct {
	r *bufio.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// invocationMetrics is the amazon-bedrock-invocationMetrics member Bedrock
// adds to message_stop.
type invocationMetrics struct {
	InputTokenCount           int64 `json:"inputTokenCount"`
	OutputTokenCount          int64 `json:"outputTokenCount"`
	InvocationLatency         int64 `json:"invocationLatency"`
	FirstByteLatency          int64 `json:"firstByteLatency"`
	CacheReadInputTokenCount  int64 `json:"cacheReadInputTokenCount"`
	CacheWriteInputTokenCount int64 `json:"cacheWriteInputTokenCount"`
}

const metricsMember = "amazon-bedrock-invocationMetrics"

// decoder turns an upstream event stream into Anthropic events, metering
// them. One is pooled per stream; it is not safe for concurrent use.
type decoder struct {
	src     source
	br      *bufio.Reader
	cnt     counter
	dec     *eventstream.Decoder
	payload []byte // the decoder's payload buffer, reused frame to frame
	event   []byte // the base64-decoded event JSON
	errJSON []byte // a built error event

	meter     stream.AnthropicMeter
	metrics   *invocationMetrics
	exception bool // an exception or error frame ended the stream
}

var decoders = sync.Pool{New: func() any {
	return &decoder{br: bufio.NewReaderSize(nil, readBufferSize), dec: eventstream.NewDecoder()}
}}

// keepPooled caps the buffers a pooled decoder keeps.
const keepPooled = 1 << 20

func getDecoder() *decoder { return decoders.Get().(*decoder) }

func (d *decoder) reset(body io.Reader) {
	d.src = source{body: body}
	d.br.Reset(&d.src)
	d.cnt = counter{r: d.br}
	d.meter.Reset()
	d.meter.Now = nil
	d.metrics = nil
	d.exception = false
}

func (d *decoder) release() {
	d.src = source{}
	d.br.Reset(nil)
	d.cnt = counter{}
	d.meter.Now = nil
	if cap(d.payload) > keepPooled {
		d.payload = nil
	}
	if cap(d.event) > keepPooled {
		d.event = nil
	}
	decoders.Put(d)
}

// frameKind is what one decoded frame turned out to be.
type frameKind uint8

const (
	frameSkip  frameKind = iota // nothing for the client (unknown event type)
	frameEvent                  // an Anthropic event: typ and data are set
	frameError                  // an exception or error frame: typ "error", data the Anthropic error event; the stream ends
)

// next decodes the next frame. At the end of the stream it returns the
// reason: io.EOF for a clean end between frames, errClientGone, the
// upstream's read error, ErrCutMidFrame or a wrapped ErrMalformedStream.
// typ and data alias the decoder's buffers until the next call. With strip,
// the invocation metrics are removed from message_stop's data (they are
// recorded either way).
func (d *decoder) next(strip bool) (kind frameKind, typ, data []byte, err error) {
	start := d.cnt.n
	msg, err := d.dec.Decode(&d.cnt, d.payload[:0])
	if err != nil {
		switch {
		case d.src.clientErr != nil:
			return 0, nil, nil, errClientGone
		case d.src.upstreamErr != nil:
			return 0, nil, nil, d.src.upstreamErr
		case errors.Is(err, io.EOF) && d.cnt.n == start:
			return 0, nil, nil, io.EOF
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return 0, nil, nil, ErrCutMidFrame
		}
		return 0, nil, nil, fmt.Errorf("%w: %v", ErrMalformedStream, err)
	}
	if cap(msg.Payload) > cap(d.payload) {
		d.payload = msg.Payload[:0]
	}
	switch headerString(msg.Headers, eventstreamapi.MessageTypeHeader) {
	case eventstreamapi.EventMessageType:
		if headerString(msg.Headers, eventstreamapi.EventTypeHeader) != "chunk" {
			return frameSkip, nil, nil, nil
		}
		ev, err := d.chunk(msg.Payload)
		if err != nil {
			return 0, nil, nil, err
		}
		typ := eventType(ev)
		if typ == nil {
			return frameSkip, nil, nil, nil // an event without a readable type cannot be named in SSE
		}
		d.meter.Event(typ, ev)
		if string(typ) == "message_stop" {
			ev = d.takeMetrics(ev, strip)
		}
		return frameEvent, typ, ev, nil
	case eventstreamapi.ExceptionMessageType:
		name := headerString(msg.Headers, eventstreamapi.ExceptionTypeHeader)
		t, m := exceptionError(name, msg.Payload)
		return d.errorFrame(t, m), errorType, d.errJSON, nil
	case eventstreamapi.ErrorMessageType:
		code := headerString(msg.Headers, eventstreamapi.ErrorCodeHeader)
		m := headerString(msg.Headers, eventstreamapi.ErrorMessageHeader)
		if m == "" {
			m = code
		}
		if m == "" {
			m = "Bedrock reported an error in the event stream"
		}
		t := "api_error"
		if code != "" {
			t, _ = exceptionError(code, nil)
		}
		return d.errorFrame(t, m), errorType, d.errJSON, nil
	}
	return frameSkip, nil, nil, nil
}

var errorType = []byte("error")

// errorFrame builds the Anthropic error event for an exception, meters it
// and marks the stream ended.
func (d *decoder) errorFrame(typ, message string) frameKind {
	d.errJSON = appendErrorEvent(d.errJSON[:0], typ, message)
	d.meter.Event(errorType, d.errJSON)
	d.exception = true
	return frameError
}

// appendErrorEvent appends {"type":"error","error":{"type":typ,"message":message}}.
func appendErrorEvent(dst []byte, typ, message string) []byte {
	m, _ := json.Marshal(message)
	dst = append(dst, `{"type":"error","error":{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","message":`...)
	dst = append(dst, m...)
	return append(dst, "}}"...)
}

// chunk decodes a chunk payload, {"bytes":"<base64>"} (Bedrock may add a
// "p" padding member), into the Anthropic event JSON it carries.
func (d *decoder) chunk(payload []byte) ([]byte, error) {
	v, ok := llm.MemberValue(payload, "bytes")
	if !ok || len(v) < 2 || v[0] != '"' {
		return nil, fmt.Errorf("%w: chunk without bytes", ErrMalformedStream)
	}
	b64 := v[1 : len(v)-1]
	if bytes.IndexByte(b64, '\\') >= 0 { // an escaped "/" ("\/"), say
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: chunk bytes: %v", ErrMalformedStream, err)
		}
		b64 = []byte(s)
	}
	enc := base64.StdEncoding
	n := enc.DecodedLen(len(b64))
	if cap(d.event) < n {
		d.event = make([]byte, n)
	}
	n, err := enc.Decode(d.event[:n], b64)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk bytes: %v", ErrMalformedStream, err)
	}
	return d.event[:n], nil
}

// takeMetrics records message_stop's invocation metrics and, with strip,
// returns the event without them (the Anthropic API's own message_stop
// carries none).
func (d *decoder) takeMetrics(ev []byte, strip bool) []byte {
	raw, ok := llm.MemberValue(ev, metricsMember)
	if !ok {
		return ev
	}
	var m invocationMetrics
	if json.Unmarshal(raw, &m) == nil {
		d.metrics = &m
	}
	if !strip {
		return ev
	}
	if out, err := llm.RewriteBody(ev, []string{metricsMember}, nil); err == nil {
		return out
	}
	return ev
}

// usage is the metered usage. The Anthropic usage the events carried wins;
// Bedrock's invocation metrics fill in only what the events did not report:
// the input counts when no event carried any, the output count when it
// would otherwise be estimated from the text (no message_delta came).
func (d *decoder) usage() llm.Usage {
	u := d.meter.Usage()
	m := d.metrics
	if m == nil {
		return u
	}
	if u.TotalInput() == 0 {
		u.InputTokens = m.InputTokenCount
		u.CacheReadTokens = m.CacheReadInputTokenCount
		u.CacheWrite5mTokens = m.CacheWriteInputTokenCount
	}
	if u.OutputEstimated || u.OutputTokens == 0 {
		u.OutputTokens = m.OutputTokenCount
		u.OutputEstimated = false
	}
	return u
}

// metricsAgree reports whether the invocation metrics, when there were
// any, match the metered input and output counts.
func (d *decoder) metricsAgree() bool {
	if d.metrics == nil {
		return true
	}
	u := d.meter.Usage()
	return u.InputTokens == d.metrics.InputTokenCount && u.OutputTokens == d.metrics.OutputTokenCount
}

func headerString(h eventstream.Headers, name string) string {
	for _, x := range h {
		if x.Name == name {
			if s, ok := x.Value.(eventstream.StringValue); ok {
				return string(s)
			}
			return x.Value.String()
		}
	}
	return ""
}

// eventType returns the top-level "type" of an event JSON when it is a
// plain token ("message_start"), nil otherwise.
func eventType(ev []byte) []byte {
	v, ok := llm.MemberValue(ev, "type")
	if !ok {
		return nil
	}
	return stream.TokenLiteral(v)
}

// exceptionError maps a Bedrock stream exception (its :exception-type,
// any case) and payload ({"message":"…"}) to an Anthropic error type and
// message:
//
//	throttlingException          → rate_limit_error
//	serviceUnavailableException  → overloaded_error
//	validationException          → invalid_request_error
//	modelTimeoutException        → timeout_error
//	modelStreamErrorException    → by its originalStatusCode when present
//	                               (429 → rate_limit_error, 529/503 → overloaded_error),
//	                               else api_error
//	internalServerException and anything else → api_error
func exceptionError(name string, payload []byte) (typ, message string) {
	var p struct {
		Message            string `json:"message"`
		OriginalStatusCode int    `json:"originalStatusCode"`
		OriginalMessage    string `json:"originalMessage"`
	}
	if len(payload) > 0 {
		_ = json.Unmarshal(payload, &p)
	}
	message = p.Message
	if message == "" {
		message = p.OriginalMessage
	}
	if message == "" {
		message = name
	}
	if message == "" {
		message = "Bedrock reported an exception in the event stream"
	}
	switch strings.ToLower(name) {
	case "throttlingexception":
		typ = "rate_limit_error"
	case "serviceunavailableexception":
		typ = "overloaded_error"
	case "validationexception":
		typ = "invalid_request_error"
	case "modeltimeoutexception":
		typ = "timeout_error"
	case "modelstreamerrorexception":
		switch p.OriginalStatusCode {
		case 429:
			typ = "rate_limit_error"
		case 503, 529:
			typ = "overloaded_error"
		default:
			typ = "api_error"
		}
	default:
		typ = "api_error"
	}
	return typ, message
}
