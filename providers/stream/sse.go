// Package stream is the response plumbing every provider family shares: an
// incremental Server-Sent-Events scanner; the Anthropic Messages usage meter
// (used for Anthropic, Vertex, Foundry and Bedrock after decoding); the
// OpenAI meters (chat completions, responses, embeddings) and the chat
// filter that removes the usage chunk the gateway asked for on the client's
// behalf; the byte pump that relays an upstream body to the client flushing
// every read; and the header policy for both directions (hop-by-hop
// headers, request headers forwarded upstream, response headers copied
// back). It imports only the standard library and the leaf package
// providers/llm.
package stream

import "bytes"

// DefaultMaxEvent is the largest event an SSEScanner buffers when its Max is
// zero: 16 MiB, far above any real Anthropic or OpenAI event.
const DefaultMaxEvent = 16 << 20

// KeepCap is the buffer capacity an SSEScanner keeps between events; a
// buffer grown past it by one unusually large event is released so that a
// long-lived stream does not pin its peak size.
const KeepCap = 256 << 10

// SSEScanner is an incremental Server-Sent-Events parser (the WHATWG
// "event stream" interpretation rules). Feed it the body in chunks split at
// any byte boundary; it calls back once per complete event.
//
// Lines end in "\n", "\r\n" or "\r" (a "\r\n" split across two Feed calls is
// one line ending). Comment lines (starting with ':') and the id and retry
// fields are ignored, as are unknown fields. One space after a field's colon
// is stripped. Several data lines are joined with "\n". An event is
// delivered on the blank line that ends it, and only if it carried at least
// one data line (as the SSE spec says; an event with only an "event:" line is
// discarded). An event still unterminated when the stream ends is never
// delivered: see Pending.
//
// Only the partial line and the current event are buffered, in buffers
// reused from event to event, so steady-state scanning does not allocate.
// An event whose data (or name) is larger than Max is dropped whole (it is
// not delivered, and the stream resumes with the next event) and Overflowed
// reports it; which events are dropped does not depend on chunk boundaries.
// Over-long comment or unknown-field lines are skipped without dropping
// their event. A leading byte-order mark is not stripped (no LLM
// API sends one).
//
// The zero value is ready to use. An SSEScanner is not safe for concurrent
// use.
type SSEScanner struct {
	// Max caps the size of one event's data (its data lines joined) and,
	// separately, of its event name; 0 means DefaultMaxEvent. A partial line
	// is buffered up to Max plus a few bytes for the field name, so the
	// scanner holds at most about three times Max.
	Max int

	line  []byte // the partial line carried over from the previous Feed
	event []byte // the current event's "event" field
	data  []byte // the current event's data lines, joined with "\n"

	hasData    bool // a data line was seen in the current event
	cr         bool // the last line ended in '\r': a leading '\n' is part of it
	skipLine   bool // the partial line overflowed: drop bytes until its end
	dropEvent  bool // the current event overflowed: do not deliver it
	overflowed bool // some event overflowed
}

// Feed scans p and calls fn for every event p completes, with the event's
// "event" field ("" when it had none) and its data. The slices passed to fn
// alias the scanner's buffers (or p): they are valid only until fn returns.
// fn must not call Feed.
func (s *SSEScanner) Feed(p []byte, fn func(event, data []byte)) {
	for len(p) > 0 {
		if s.cr {
			s.cr = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := LineEnd(p)
		if i < 0 {
			s.carry(p)
			return
		}
		var line []byte
		switch {
		case s.skipLine:
			// The line was too long and is already dropped; it ends here.
			s.skipLine = false
			s.line = s.line[:0]
			s.cr = p[i] == '\r'
			p = p[i+1:]
			continue
		case len(s.line) > 0:
			if !s.carry(p[:i]) {
				s.skipLine = false
				s.cr = p[i] == '\r'
				p = p[i+1:]
				continue
			}
			line = s.line
		default:
			line = p[:i]
		}
		s.cr = p[i] == '\r'
		p = p[i+1:]
		s.processLine(line, fn)
		s.line = s.line[:0]
	}
}

// LineEnd returns the index of the first '\n' or '\r' in p, or -1.
func LineEnd(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	q := p
	if i >= 0 {
		q = p[:i]
	}
	if j := bytes.IndexByte(q, '\r'); j >= 0 {
		return j
	}
	return i
}

func (s *SSEScanner) max() int {
	if s.Max > 0 {
		return s.Max
	}
	return DefaultMaxEvent
}

// lineSlack is how far a partial line may outgrow Max before it is dropped:
// room for the field name, so that a line is dropped only when its value
// alone is over Max, whatever the chunk boundaries.
const lineSlack = 16

// carry appends part of an unterminated line to the line buffer. A line
// that outgrows Max is dropped instead (and the rest of it skipped), and
// carry reports false; if it was a data or event line, its event is dropped
// too and Overflowed is set, as it would be had the line arrived whole.
func (s *SSEScanner) carry(p []byte) bool {
	if s.skipLine {
		return false
	}
	if len(s.line)+len(p) <= s.max()+lineSlack {
		s.line = append(s.line, p...)
		return true
	}
	var head [lineSlack]byte
	h := copy(head[:], s.line)
	h += copy(head[h:], p)
	if f := head[:h]; bytes.HasPrefix(f, []byte("data:")) || bytes.HasPrefix(f, []byte("event:")) {
		s.overflow()
	}
	s.skipLine = true
	s.line = s.line[:0]
	if cap(s.line) > KeepCap {
		s.line = nil
	}
	return false
}

// overflow marks the current event as dropped.
func (s *SSEScanner) overflow() {
	s.overflowed = true
	s.dropEvent = true
	s.data = s.data[:0]
	if cap(s.data) > KeepCap {
		s.data = nil
	}
}

func (s *SSEScanner) processLine(line []byte, fn func(event, data []byte)) {
	if len(line) == 0 {
		s.dispatch(fn)
		return
	}
	if line[0] == ':' {
		return // comment
	}
	field, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		field, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		if len(value) > s.max() {
			s.overflow()
			return
		}
		s.event = append(s.event[:0], value...)
	case "data":
		if s.dropEvent {
			return
		}
		n := len(s.data) + len(value)
		if s.hasData {
			n++
		}
		if n > s.max() {
			s.overflow()
			return
		}
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.hasData = true
	}
	// id, retry and unknown fields are ignored.
}

func (s *SSEScanner) dispatch(fn func(event, data []byte)) {
	if s.hasData && !s.dropEvent {
		fn(s.event, s.data)
	}
	s.hasData, s.dropEvent = false, false
	s.event, s.data = s.event[:0], s.data[:0]
	if cap(s.data) > KeepCap {
		s.data = nil
	}
	if cap(s.event) > KeepCap {
		s.event = nil
	}
	if cap(s.line) > KeepCap {
		s.line = nil
	}
}

// Pending reports whether an event has begun but not been terminated by a
// blank line: at the end of a stream, such an event is lost (SSE delivers
// only terminated events), which usually means the stream was cut.
func (s *SSEScanner) Pending() bool {
	return len(s.line) > 0 || s.skipLine || s.hasData || s.dropEvent || len(s.event) > 0
}

// Overflowed reports whether any event exceeded Max and was dropped.
func (s *SSEScanner) Overflowed() bool { return s.overflowed }

// Reset readies the scanner for a new stream, keeping its buffers (unless
// they grew unusually large) and its Max.
func (s *SSEScanner) Reset() {
	max := s.Max
	line, event, data := s.line[:0], s.event[:0], s.data[:0]
	*s = SSEScanner{Max: max}
	if cap(line) <= KeepCap {
		s.line = line
	}
	if cap(event) <= KeepCap {
		s.event = event
	}
	if cap(data) <= KeepCap {
		s.data = data
	}
}
