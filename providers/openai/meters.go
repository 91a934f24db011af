package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// The OpenAI meters: Chat Completions (streamed chunks and bodies), the
// Responses API (named SSE events and bodies) and Embeddings (bodies).
//
// OpenAI's convention is the opposite of Anthropic's: prompt_tokens (and
// the Responses API's input_tokens) INCLUDE the cached tokens reported in
// prompt_tokens_details.cached_tokens (input_tokens_details.cached_tokens),
// so the meters split them: InputTokens = prompt − cached, CacheReadTokens =
// cached. completion_tokens (output_tokens) include the reasoning tokens and
// are OutputTokens as they are. Cache writes that newer APIs report
// (prompt_tokens_details.cache_write_tokens) are left inside InputTokens:
// OpenAI prices them as ordinary input, and llm.Usage's cache-write kinds
// are Anthropic's 5-minute and 1-hour writes with their own prices.
//
// Like the Anthropic meter, they walk the JSON of each event structurally
// without decoding it: a content chunk costs one pass over its bytes and no
// allocation.

// The SSE meters of the OpenAI wire formats: a stream.SSEScanner feeding
// the format's meter.
type (
	// ChatSSE meters a Chat Completions stream.
	ChatSSE = stream.MeteredSSE[ChatMeter, *ChatMeter]
	// ResponsesSSE meters a Responses API stream.
	ResponsesSSE = stream.MeteredSSE[ResponsesMeter, *ResponsesMeter]
)

// doneData is the data of the Chat Completions stream's last event.
var doneData = []byte("[DONE]")

// ChatMeter accumulates the usage of one Chat Completions response,
// streamed (Event, once per SSE event) or not (Body). It works for OpenAI
// and the OpenAI-compatible servers (vLLM, Ollama, OpenRouter, Azure
// OpenAI, LiteLLM):
//
//   - Usage is read from any chunk that carries a non-null top-level
//     "usage": OpenAI's extra chunk with "choices": [] that
//     stream_options.include_usage adds before [DONE], or the last content
//     chunk (vLLM, some proxies), or every chunk (vLLM's continuous usage
//     stats: each report is cumulative and the last one wins). "usage": null
//     on every other chunk is ignored. Fields are overlaid: a later report
//     replaces the counts it carries and keeps the others.
//   - The stream is complete when "data: [DONE]" arrives, or once a chunk
//     with a finish_reason and a usage report have both been seen (servers
//     that end without [DONE]).
//   - The first chunk whose delta carries non-empty content, reasoning
//     (reasoning_content, reasoning), refusal, tool call or function call
//     name/arguments, or audio transcript stamps the first-content time
//     through Now. Those texts are counted in decoded UTF-8 bytes, so that a
//     stream cut before any usage report is still charged ceil(bytes/4)
//     output tokens (OutputEstimated). Its input is then unknown and
//     reported as 0: the meter sees only the response (the request body's
//     size could estimate it; the caller may).
//   - A chunk with a top-level "error" member (OpenAI and vLLM send one
//     mid-stream when generation fails after the 200) records its type.
//
// The zero value is ready to use. An ChatMeter is not safe for
// concurrent use.
type ChatMeter struct {
	// Now is the clock that stamps the first content chunk; nil means
	// time.Now.
	Now func() time.Time

	prompt, completion, cached, reasoning int64
	haveUsage                             bool // a usage report with a token count was seen
	done                                  bool // data: [DONE]
	finished                              bool // a choice reported a finish_reason
	textBytes                             int64
	firstToken                            time.Time
	errType                               string
	finishReason                          string
	model                                 string

	// What the last Event saw, for ChatFilter.
	evUsageOnly            bool // a usage report and no choices: the include_usage chunk
	evNullStart, evNullEnd int  // the span in data of a top-level "usage":null member (and its comma), when End > Start
}

// Event meters one SSE event of a Chat Completions stream. The event name
// is ignored (chat streams carry none); data is a chunk's JSON or [DONE].
// Content chunks do not allocate; the first chunk that names the model, a
// finish_reason, and usage reports are read once.
func (m *ChatMeter) Event(_, data []byte) {
	m.evUsageOnly = false
	m.evNullStart, m.evNullEnd = 0, 0
	it, ok := newObjIter(data)
	if !ok {
		if bytes.Equal(bytes.TrimSpace(data), doneData) {
			m.done = true
		}
		return
	}
	choices := -1 // absent
	usage := false
	prevEnd := -1 // end of the previous member's value
	for {
		ks, key, vs, ok := it.key()
		if !ok {
			break
		}
		if string(key) == "choices" {
			// The hot path: walk the array in place rather than skip it
			// and walk it again.
			ve, n := m.choicesAt(data, vs, "delta", true)
			choices = n
			it.done(ve)
			prevEnd = ve
			continue
		}
		ve := llm.ValueEnd(data, vs)
		if !it.done(ve) {
			break
		}
		v := data[vs:ve]
		switch string(key) {
		case "usage":
			switch v[0] {
			case '{':
				if m.readUsage(v) {
					usage, m.haveUsage = true, true
				}
			case 'n':
				switch {
				case prevEnd >= 0: // ,"usage":null
					m.evNullStart, m.evNullEnd = prevEnd, ve
				case it.i >= 0: // "usage":null, at the start
					m.evNullStart, m.evNullEnd = ks, llm.SkipSpace(data, it.i)
				default: // the only member
					m.evNullStart, m.evNullEnd = ks, ve
				}
			}
		case "model":
			if m.model == "" {
				m.model = stream.JSONString(v)
			}
		case "error":
			if v[0] == '{' || v[0] == '"' {
				if t := ErrorType(data); t != "" {
					m.errType = t
				} else {
					m.errType = "error"
				}
			}
		}
		prevEnd = ve
	}
	m.evUsageOnly = usage && choices <= 0
}

// choicesAt walks the choices array starting at b[i], counting the
// content of each choice's field ("delta" in a stream, "message" in a
// body) and noting finish reasons. It returns the offset just past the
// array (-1 when malformed) and the number of choices (-1 when b[i] is not
// an array: null).
func (m *ChatMeter) choicesAt(b []byte, i int, field string, stamp bool) (end, n int) {
	if b[i] != '[' {
		return llm.ValueEnd(b, i), -1
	}
	j := llm.SkipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, 0
	}
	for {
		j = llm.SkipSpace(b, j)
		if j >= len(b) {
			return -1, n
		}
		var e int
		if b[j] == '{' {
			e = m.choiceAt(b, j, field, stamp)
		} else {
			e = llm.ValueEnd(b, j)
		}
		if e < 0 {
			return -1, n
		}
		n++
		k := llm.SkipSpace(b, e)
		switch {
		case k < len(b) && b[k] == ',':
			j = k + 1
		case k < len(b) && b[k] == ']':
			return k + 1, n
		default:
			return -1, n
		}
	}
}

// choiceAt walks the choice object at b[i] and returns the offset just past
// it, or -1.
func (m *ChatMeter) choiceAt(b []byte, i int, field string, stamp bool) int {
	it := objIterAt(b, i)
	for {
		_, key, vs, ok := it.key()
		if !ok {
			break
		}
		switch {
		case string(key) == field && b[vs] == '{':
			c, ve := contentAt(b, vs)
			if c > 0 {
				m.textBytes += int64(c)
				if stamp && m.firstToken.IsZero() {
					m.firstToken = now(m.Now)
				}
			}
			it.done(ve)
		case string(key) == "finish_reason":
			ve := llm.ValueEnd(b, vs)
			if it.done(ve) && b[vs] == '"' {
				m.finished = true
				if m.finishReason == "" {
					m.finishReason = stream.JSONString(b[vs:ve])
				}
			}
		default:
			it.done(llm.ValueEnd(b, vs))
		}
	}
	if it.err {
		return -1
	}
	return it.end
}

// contentAt walks a chat delta or message object at b[i] and returns the
// decoded length of its generated text — content, refusal, the longer of
// reasoning_content and reasoning (servers in transition send both), tool
// and function call names and arguments, the audio transcript — and the
// offset just past the object (-1 when malformed).
func contentAt(b []byte, i int) (n, end int) {
	it := objIterAt(b, i)
	reasoning := 0
	for {
		_, key, vs, ok := it.key()
		if !ok {
			break
		}
		ve := llm.ValueEnd(b, vs)
		if !it.done(ve) {
			break
		}
		v := b[vs:ve]
		switch string(key) {
		case "content", "refusal":
			n += strLen(v)
		case "reasoning_content", "reasoning":
			reasoning = max(reasoning, strLen(v))
		case "tool_calls":
			ai, ok := newArrIter(v)
			if !ok {
				break
			}
			for {
				es, ee, ok := ai.next()
				if !ok {
					break
				}
				if f := llm.MemberAt(v[es:ee], "function"); f >= 0 {
					n += callBytes(v[es+f : ee])
				}
			}
		case "function_call":
			n += callBytes(v)
		case "audio":
			if s := llm.StringMember(v, "transcript"); s != nil {
				n += strLen(s)
			}
		}
	}
	if it.err {
		return n + reasoning, -1
	}
	return n + reasoning, it.end
}

// callBytes counts the name and arguments of a function call object (and
// ignores what follows it).
func callBytes(obj []byte) int {
	if end := llm.ValueEnd(obj, 0); end > 0 {
		obj = obj[:end]
	}
	it, ok := newObjIter(obj)
	if !ok {
		return 0
	}
	n := 0
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			return n
		}
		if string(key) == "name" || string(key) == "arguments" {
			n += strLen(obj[vs:ve])
		}
	}
}

// strLen is the decoded length of a JSON string literal, 0 for anything else.
func strLen(v []byte) int {
	if len(v) == 0 || v[0] != '"' {
		return 0
	}
	n, _ := stream.DecodedLen(v)
	return n
}

// readUsage overlays a Chat Completions usage object and reports whether
// it carried a token count.
func (m *ChatMeter) readUsage(obj []byte) bool {
	it, _ := newObjIter(obj)
	found := false
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			return found
		}
		v := obj[vs:ve]
		switch string(key) {
		case "prompt_tokens":
			found = setCount(&m.prompt, v) || found
		case "completion_tokens":
			found = setCount(&m.completion, v) || found
		case "prompt_tokens_details":
			if s := llm.MemberAt(v, "cached_tokens"); s >= 0 {
				setCount(&m.cached, scalarAt(v, s))
			}
		case "completion_tokens_details":
			if s := llm.MemberAt(v, "reasoning_tokens"); s >= 0 {
				setCount(&m.reasoning, scalarAt(v, s))
			}
		}
	}
}

// Body meters a non-streamed chat completion: the top-level "usage" (a
// "usage" nested in a message or tool arguments is never mistaken for it),
// "model" and the first choice's finish_reason. The response is then
// complete. A completion without usage (some compatible servers omit it) is
// complete with its output estimated from the message text, as for a cut
// stream. It returns an error, and leaves the meter incomplete, when b is
// not a JSON object.
func (m *ChatMeter) Body(b []byte) error {
	it, ok := newObjIter(b)
	if !ok {
		return stream.ErrNoObject
	}
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			break
		}
		v := b[vs:ve]
		switch string(key) {
		case "usage":
			if v[0] == '{' {
				m.haveUsage = m.readUsage(v) || m.haveUsage
			}
		case "choices":
			m.choicesAt(v, 0, "message", false)
		case "model":
			if m.model == "" {
				m.model = stream.JSONString(v)
			}
		case "error":
			if t := ErrorType(b); t != "" {
				m.errType = t
			}
		}
	}
	if it.err {
		return stream.ErrNoObject
	}
	m.done = true
	return nil
}

// Usage returns the usage metered so far: from the last usage report when
// one was seen (InputTokens = prompt − cached, CacheReadTokens = cached,
// OutputTokens = completion, reasoning included); otherwise no input and
// ceil(content bytes / 4) output with OutputEstimated (a cut stream, or a
// server that ignored stream_options.include_usage). Complete tells
// whether the response reached its end ([DONE], a finish_reason with usage,
// or a body).
func (m *ChatMeter) Usage() llm.Usage {
	complete := m.done || (m.finished && m.haveUsage)
	if m.haveUsage {
		return splitUsage(m.prompt, m.cached, m.completion, complete)
	}
	return estimated(m.textBytes, complete)
}

// splitUsage maps OpenAI's inclusive input count to llm.Usage.
func splitUsage(input, cached, output int64, complete bool) llm.Usage {
	cached = min(cached, input)
	return llm.Usage{
		InputTokens:     input - cached,
		CacheReadTokens: cached,
		OutputTokens:    output,
		Complete:        complete,
	}
}

// estimated is the usage of a response that reported none.
func estimated(textBytes int64, complete bool) llm.Usage {
	u := llm.Usage{Complete: complete}
	if est := stream.OutputEstimate(textBytes); est > 0 {
		u.OutputTokens = est
		u.OutputEstimated = true
	}
	return u
}

// FirstToken is when the first chunk with generated content passed; zero if
// none did.
func (m *ChatMeter) FirstToken() time.Time { return m.firstToken }

// ReasoningTokens is completion_tokens_details.reasoning_tokens from the
// last usage report (already inside OutputTokens).
func (m *ChatMeter) ReasoningTokens() int64 { return m.reasoning }

// Done reports whether the stream's "data: [DONE]" was seen (or a body
// metered).
func (m *ChatMeter) Done() bool { return m.done }

// ErrorType is the type of an error chunk ("server_error"), "error" when it
// had no readable type; "" when none came.
func (m *ChatMeter) ErrorType() string { return m.errType }

// FinishReason is the first finish_reason reported ("stop", "length",
// "tool_calls", "content_filter"); "" when none was.
func (m *ChatMeter) FinishReason() string { return m.finishReason }

// Model is the model the response says answered; "" when not seen.
func (m *ChatMeter) Model() string { return m.model }

// TextBytes is the decoded UTF-8 length of the generated text counted so
// far.
func (m *ChatMeter) TextBytes() int64 { return m.textBytes }

// Reset readies the meter for another response, keeping its clock.
func (m *ChatMeter) Reset() { *m = ChatMeter{Now: m.Now} }

// SetClock sets Now.
func (m *ChatMeter) SetClock(now func() time.Time) { m.Now = now }

// MaxHeldEvent is the largest event a ChatFilter holds back while
// deciding its fate; a stream with a larger one is relayed unfiltered from
// there on.
const MaxHeldEvent = stream.DefaultMaxEvent

// ChatFilter relays a Chat Completions SSE stream to W while metering
// it, undoing what stream_options.include_usage changed in a stream whose
// client did not ask for it (the gateway asks on its behalf, to meter it):
//
//   - the usage-only chunk (no choices, a usage report) is dropped whole, its
//     framing included, after being metered;
//   - a top-level "usage":null member, which OpenAI adds to every other chunk
//     once include_usage is on, is cut out of the chunk with its comma (only
//     when the event is a single "data:" line, as OpenAI writes it;
//     otherwise the event passes unchanged);
//   - every other byte — the other events, comments, [DONE], line endings —
//     is written exactly as received.
//
// A usage report carried on a content chunk (some servers do) cannot be cut
// without re-encoding the chunk and passes through.
//
// Only the current event is held back, in a buffer reused from event to
// event, and an event is written as soon as its terminating blank line
// arrives; events that arrive whole in one Write are written straight from
// the caller's slice. An event still unterminated when the stream ends is
// written by Finish.
//
// Write meters every byte it is given before attempting to write, and
// keeps metering after W failed; it returns W's error. Use Written, not
// the counts Write returns, for the bytes the client received. The zero
// value with W set is ready to use; it is not safe for concurrent use.
type ChatFilter struct {
	// W receives the filtered stream.
	W io.Writer
	// SSE is the scanner and meter the stream is fed to.
	SSE ChatSSE

	held    []byte // the current event's bytes from earlier Writes
	midLine bool   // the current line has bytes
	cr      bool   // the last byte written was a '\r' line end: a '\n' next completes it
	crEnds  bool   // ... and that line ended an event
	crKept  bool   // ... which was written (so its '\n' is too)
	through bool   // an event outgrew MaxHeldEvent: no more filtering

	// per Write
	span, ev, fed int
	// per event, set by the scanner callback
	raw        []byte
	action     uint8
	cut0, cut1 int

	written           int64
	dropped, stripped int
	err               error
}

const (
	keepEvent uint8 = iota
	dropEvent
	stripEvent
)

// Write filters p (see ChatFilter) and reports len(p) consumed, or the
// first error writing to W.
func (f *ChatFilter) Write(p []byte) (int, error) {
	if f.through {
		f.SSE.Feed(p)
		f.emit(p)
		return f.result(p)
	}
	f.span, f.ev, f.fed = 0, 0, 0
	i := 0
	if f.cr && len(p) > 0 && p[0] == '\n' {
		i = 1
		if f.crEnds {
			// The '\n' completes the line ending of the event already decided.
			f.ev = 1
			if !f.crKept {
				f.span = 1
			}
		}
	}
	f.cr, f.crEnds = false, false
	for i < len(p) {
		j := stream.LineEnd(p[i:])
		if j < 0 {
			f.midLine = true
			break
		}
		t := i + j
		blank := !f.midLine && j == 0
		f.midLine = false
		i = t + 1
		pendingCR := false
		if p[t] == '\r' {
			if i < len(p) {
				if p[i] == '\n' {
					i++
				}
			} else {
				pendingCR = true
			}
		}
		if blank {
			f.endEvent(p, i)
			f.crEnds = pendingCR
		}
		f.cr = pendingCR
	}
	if f.fed < len(p) {
		f.raw = nil // no event ends here; only meter
		f.SSE.Scanner.Feed(p[f.fed:], f.onEvent)
	}
	f.emit(p[f.span:f.ev])
	f.held = append(f.held, p[f.ev:]...)
	if len(f.held) > MaxHeldEvent {
		f.through = true
		f.emit(f.held)
		f.held = nil
	}
	return f.result(p)
}

func (f *ChatFilter) result(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return len(p), nil
}

// endEvent decides the event ending at p[end] (exclusive): it feeds the
// scanner up to there and writes, drops or strips the event.
func (f *ChatFilter) endEvent(p []byte, end int) {
	heldBefore := len(f.held) > 0
	if heldBefore {
		f.held = append(f.held, p[f.ev:end]...)
		f.raw = f.held
	} else {
		f.raw = p[f.ev:end]
	}
	f.action = keepEvent
	f.SSE.Scanner.Feed(p[f.fed:end], f.onEvent)
	f.fed = end
	switch f.action {
	case keepEvent:
		if heldBefore {
			f.emit(f.held)
			f.span = end
		}
	case dropEvent:
		f.emit(p[f.span:f.ev])
		f.span = end
		f.dropped++
	case stripEvent:
		f.emit(p[f.span:f.ev])
		f.emit(f.raw[:f.cut0])
		f.emit(f.raw[f.cut1:])
		f.span = end
		f.stripped++
	}
	f.crKept = f.action != dropEvent
	f.raw = nil
	f.held = f.held[:0]
	if cap(f.held) > stream.KeepCap {
		f.held = nil
	}
	f.ev = end
}

// onEvent meters an event and, when it is the event being decided, picks
// its fate.
func (f *ChatFilter) onEvent(event, data []byte) {
	m := &f.SSE.Meter
	m.Event(event, data)
	if f.raw == nil {
		return
	}
	switch {
	case m.evUsageOnly:
		f.action = dropEvent
	case m.evNullEnd > m.evNullStart:
		if off := dataOffset(f.raw, data); off >= 0 {
			f.action = stripEvent
			f.cut0, f.cut1 = off+m.evNullStart, off+m.evNullEnd
		}
	}
}

// dataOffset returns where data sits in raw when raw is one "data:" line
// holding exactly data, else -1.
func dataOffset(raw, data []byte) int {
	if !bytes.HasPrefix(raw, []byte("data:")) {
		return -1
	}
	off := 5
	if len(raw) > off && raw[off] == ' ' {
		off++
	}
	end := off + len(data)
	if end >= len(raw) || (raw[end] != '\n' && raw[end] != '\r') || !bytes.Equal(raw[off:end], data) {
		return -1
	}
	return off
}

func (f *ChatFilter) emit(b []byte) {
	if len(b) == 0 || f.err != nil {
		return
	}
	n, err := f.W.Write(b)
	f.written += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	f.err = err
}

// Finish writes the bytes of an event the stream left unterminated (a cut,
// or a server that omits the last blank line) exactly as received, and
// returns the first write error, if any.
func (f *ChatFilter) Finish() error {
	f.emit(f.held)
	f.held = f.held[:0]
	return f.err
}

// Written is the number of bytes written to W.
func (f *ChatFilter) Written() int64 { return f.written }

// Dropped is the number of usage-only chunks dropped.
func (f *ChatFilter) Dropped() int { return f.dropped }

// Stripped is the number of chunks a "usage":null member was cut from.
func (f *ChatFilter) Stripped() int { return f.stripped }

// Reset readies f for another stream writing to w, keeping buffers and the
// meter's clock.
func (f *ChatFilter) Reset(w io.Writer) {
	sse := f.SSE
	sse.Reset()
	held := f.held[:0]
	if cap(held) > stream.KeepCap {
		held = nil
	}
	*f = ChatFilter{W: w, SSE: sse, held: held}
}

// ResponsesMeter accumulates the usage of one Responses API response,
// streamed (Event, once per SSE event) or not (Body).
//
// Usage is read from response.usage in the terminal event —
// response.completed, response.incomplete or response.failed — which also
// marks the stream complete. Every "….delta" event with a string delta
// (output text, refusal, reasoning and reasoning summary text, function,
// custom tool and MCP call arguments, code interpreter code, audio
// transcript) stamps the first-content time and is counted in decoded UTF-8
// bytes for the ceil(bytes/4) estimate of a stream cut before its terminal
// event (input is then unknown: 0); response.audio.delta's base64 audio
// stamps the time but is not counted. An "error" event records its code (or
// error.type), and response.failed its response.error.code
// ("response_failed" when it has none). Events are told apart by the SSE
// event name, or by the data's "type" when a server sends no names.
//
// The zero value is ready to use. An ResponsesMeter is not safe for
// concurrent use.
type ResponsesMeter struct {
	// Now is the clock that stamps the first content delta; nil means
	// time.Now.
	Now func() time.Time

	input, cached, output, reasoning int64
	haveUsage                        bool
	complete                         bool
	textBytes                        int64
	firstToken                       time.Time
	errType                          string
	status                           string
	model                            string
}

// Event meters one Responses API event: typ is the SSE event name, data its
// JSON. Delta events do not allocate.
func (m *ResponsesMeter) Event(typ, data []byte) {
	if len(typ) == 0 {
		typ = stream.JSONType(data)
	}
	if bytes.HasSuffix(typ, []byte(".delta")) {
		m.delta(typ, data)
		return
	}
	switch string(typ) {
	case "response.completed", "response.incomplete", "response.failed":
		if r, ok := llm.MemberValue(data, "response"); ok {
			m.readResponse(r)
		}
		m.complete = true
		if string(typ) == "response.failed" && m.errType == "" {
			m.errType = "response_failed"
		}
	case "response.created", "response.in_progress", "response.queued":
		if m.model == "" {
			if r, ok := llm.MemberValue(data, "response"); ok {
				if v := llm.StringMember(r, "model"); v != nil {
					m.model = stream.JSONString(v)
				}
			}
		}
	case "error":
		m.errType = responsesErrorType(data)
	}
}

func (m *ResponsesMeter) delta(typ, data []byte) {
	v := llm.StringMember(data, "delta")
	if len(v) <= 2 {
		return // absent, not a string, or empty
	}
	if m.firstToken.IsZero() {
		m.firstToken = now(m.Now)
	}
	if string(typ) == "response.audio.delta" {
		return
	}
	if n, ok := stream.DecodedLen(v); ok {
		m.textBytes += int64(n)
	}
}

// readResponse reads a response object's usage, status, model and error.
func (m *ResponsesMeter) readResponse(obj []byte) bool {
	it, ok := newObjIter(obj)
	if !ok {
		return false
	}
	var errCode []byte
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			break
		}
		v := obj[vs:ve]
		switch string(key) {
		case "usage":
			if v[0] == '{' {
				m.haveUsage = m.readUsage(v) || m.haveUsage
			}
		case "status":
			if v[0] == '"' {
				m.status = stream.JSONString(v)
			}
		case "model":
			if m.model == "" {
				m.model = stream.JSONString(v)
			}
		case "error":
			if v[0] == '{' {
				errCode = llm.StringMember(v, "code")
			}
		}
	}
	if m.status == "failed" {
		if t := safeType(errCode); t != "" {
			m.errType = t
		} else if m.errType == "" {
			m.errType = "response_failed"
		}
	}
	return !it.err
}

// readUsage overlays a Responses API usage object and reports whether it
// carried a token count.
func (m *ResponsesMeter) readUsage(obj []byte) bool {
	it, _ := newObjIter(obj)
	found := false
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			return found
		}
		v := obj[vs:ve]
		switch string(key) {
		case "input_tokens":
			found = setCount(&m.input, v) || found
		case "output_tokens":
			found = setCount(&m.output, v) || found
		case "input_tokens_details":
			if s := llm.MemberAt(v, "cached_tokens"); s >= 0 {
				setCount(&m.cached, scalarAt(v, s))
			}
		case "output_tokens_details":
			if s := llm.MemberAt(v, "reasoning_tokens"); s >= 0 {
				setCount(&m.reasoning, scalarAt(v, s))
			}
		}
	}
}

// Body meters a non-streamed response object: its top-level "usage",
// "status", "model" and, for a failed response, error.code. The response
// is then complete (a background response that is still queued reports no
// usage: zero). It returns an error when b is not a JSON object.
func (m *ResponsesMeter) Body(b []byte) error {
	if !m.readResponse(b) {
		return stream.ErrNoObject
	}
	m.complete = true
	return nil
}

// Usage returns the usage metered so far: from the terminal event's (or
// body's) usage when one was seen (InputTokens = input − cached,
// CacheReadTokens = cached, OutputTokens = output, reasoning included);
// otherwise no input and ceil(delta bytes / 4) output with OutputEstimated.
func (m *ResponsesMeter) Usage() llm.Usage {
	if m.haveUsage {
		return splitUsage(m.input, m.cached, m.output, m.complete)
	}
	return estimated(m.textBytes, m.complete)
}

// FirstToken is when the first content delta passed; zero if none did.
func (m *ResponsesMeter) FirstToken() time.Time { return m.firstToken }

// ReasoningTokens is output_tokens_details.reasoning_tokens (already inside
// OutputTokens).
func (m *ResponsesMeter) ReasoningTokens() int64 { return m.reasoning }

// ErrorType is the code of an error event or failed response
// ("server_error", "rate_limit_exceeded"); "" when none came.
func (m *ResponsesMeter) ErrorType() string { return m.errType }

// Status is the last response status seen ("completed", "incomplete",
// "failed", "queued"); "" when none was.
func (m *ResponsesMeter) Status() string { return m.status }

// Model is the model the response says answered; "" when not seen.
func (m *ResponsesMeter) Model() string { return m.model }

// TextBytes is the decoded UTF-8 length of the delta text counted so far.
func (m *ResponsesMeter) TextBytes() int64 { return m.textBytes }

// Reset readies the meter for another response, keeping its clock.
func (m *ResponsesMeter) Reset() { *m = ResponsesMeter{Now: m.Now} }

// SetClock sets Now.
func (m *ResponsesMeter) SetClock(now func() time.Time) { m.Now = now }

// EmbeddingsUsage meters an embeddings response body: the top-level
// usage.prompt_tokens (total_tokens when prompt_tokens is absent) is
// InputTokens; the usage is Complete. A JSON object without usage is
// complete with zero usage. It returns an error when b is not a JSON object
// or its usage is not an object.
func EmbeddingsUsage(b []byte) (llm.Usage, error) {
	u, ok := llm.MemberValue(b, "usage")
	if !ok {
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(b) {
			return llm.Usage{}, stream.ErrNoObject
		}
		return llm.Usage{Complete: true}, nil
	}
	return EmbeddingsUsageObject(u)
}

var errBadUsage = errors.New("openai: usage is not an object")

// EmbeddingsUsageObject maps an embeddings usage object
// ({"prompt_tokens":8,"total_tokens":8}) to a complete llm.Usage.
func EmbeddingsUsageObject(u []byte) (llm.Usage, error) {
	if string(u) == "null" {
		return llm.Usage{Complete: true}, nil
	}
	it, ok := newObjIter(u)
	if !ok {
		return llm.Usage{}, errBadUsage
	}
	var prompt, total int64 = -1, -1
	for {
		_, key, vs, ve, ok := it.next()
		if !ok {
			break
		}
		switch string(key) {
		case "prompt_tokens":
			setCount(&prompt, u[vs:ve])
		case "total_tokens":
			setCount(&total, u[vs:ve])
		}
	}
	if prompt < 0 {
		prompt = max(total, 0)
	}
	return llm.Usage{InputTokens: prompt, Complete: true}, nil
}

// ErrorType reads the type of an OpenAI-shaped error body:
// error.type ({"error":{"message","type","param","code"}}, OpenAI, Ollama,
// LiteLLM), else error.code when it is a string (Azure OpenAI's
// {"error":{"code":"DeploymentNotFound",…}}), else the top-level type of
// vLLM's {"object":"error","type":"BadRequestError",…}; "" when body is none
// of those. Like stream.ErrorType, anything longer than 64 bytes or holding
// other than letters, digits, '_', '-' and '.' is reported as "".
func ErrorType(body []byte) string {
	if e, ok := llm.MemberValue(body, "error"); ok && len(e) > 0 && e[0] == '{' {
		if t := safeType(llm.StringMember(e, "type")); t != "" {
			return t
		}
		return safeType(llm.StringMember(e, "code"))
	}
	if o := llm.StringMember(body, "object"); string(o) == `"error"` {
		return safeType(llm.StringMember(body, "type"))
	}
	return ""
}

// responsesErrorType reads a Responses API error event: its top-level code
// ({"type":"error","code":"server_error",…}), else error.type or error.code,
// else "error".
func responsesErrorType(data []byte) string {
	if t := safeType(llm.StringMember(data, "code")); t != "" {
		return t
	}
	if t := ErrorType(data); t != "" {
		return t
	}
	return "error"
}

// safeType unquotes a JSON string literal when it is a short plain
// identifier, safe as a metric label; "" otherwise.
func safeType(v []byte) string { return string(stream.TokenLiteral(v)) }

func now(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}

// setCount stores a non-negative integer JSON number in dst and reports
// whether v was one (null, strings and negatives leave dst alone).
func setCount(dst *int64, v []byte) bool {
	n, ok := parseCount(v)
	if ok {
		*dst = n
	}
	return ok
}

// parseCount parses a non-negative integer JSON number without allocating;
// integral floats ("12.0", "1e3") are accepted on a slower path. null,
// strings, negative and fractional numbers are not counts.
func parseCount(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return parseFloatCount(v)
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func parseFloatCount(v []byte) (int64, bool) {
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f > 1<<53 || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// scalarAt returns the raw scalar value starting at obj[i].
func scalarAt(obj []byte, i int) []byte {
	if e := llm.ValueEnd(obj, i); e > i {
		return obj[i:e]
	}
	return nil
}

// objIter walks the members of a JSON object without decoding them. next
// returns a member with its value skipped; key and done let a caller walk a
// value itself instead of skipping it first (and so scan it once).
type objIter struct {
	b     []byte
	i     int // offset of the next member, or -1 once finished
	first bool
	err   bool // the object was malformed (or truncated)
	end   int  // offset just past the closing brace, once reached
}

// newObjIter starts walking b, which must begin (after whitespace) with '{'.
func newObjIter(b []byte) (objIter, bool) {
	i := llm.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return objIter{}, false
	}
	return objIterAt(b, i), true
}

// objIterAt starts walking the object whose '{' is at b[i].
func objIterAt(b []byte, i int) objIter {
	return objIter{b: b, i: i + 1, first: true}
}

// key returns the next member's key: the offset of its opening quote, the
// raw key (unescaped keys only: OpenAI's never are) and where its value
// starts. The caller must then call done with the value's end. ok is false
// after the last member or at anything malformed (err).
func (it *objIter) key() (ks int, key []byte, vs int, ok bool) {
	if it.i < 0 {
		return 0, nil, 0, false
	}
	b := it.b
	i := llm.SkipSpace(b, it.i)
	if it.first && i < len(b) && b[i] == '}' {
		it.i, it.end = -1, i+1
		return 0, nil, 0, false
	}
	it.first = false
	if i >= len(b) || b[i] != '"' {
		it.i, it.err = -1, true
		return 0, nil, 0, false
	}
	end := llm.StringEnd(b, i)
	if end < 0 {
		it.i, it.err = -1, true
		return 0, nil, 0, false
	}
	j := llm.SkipSpace(b, end)
	if j >= len(b) || b[j] != ':' {
		it.i, it.err = -1, true
		return 0, nil, 0, false
	}
	vs = llm.SkipSpace(b, j+1)
	if vs >= len(b) {
		it.i, it.err = -1, true
		return 0, nil, 0, false
	}
	it.i = vs
	return i, b[i+1 : end-1], vs, true
}

// done moves past the value key returned, which ends at ve (-1: malformed),
// and reports whether the value was well formed.
func (it *objIter) done(ve int) bool {
	if ve < 0 {
		it.i, it.err = -1, true
		return false
	}
	b := it.b
	k := llm.SkipSpace(b, ve)
	switch {
	case k < len(b) && b[k] == ',':
		it.i = k + 1
	case k < len(b) && b[k] == '}':
		it.i, it.end = -1, k+1
	default:
		it.i, it.err = -1, true
	}
	return true
}

// next returns the next member, its value skipped.
func (it *objIter) next() (ks int, key []byte, vs, ve int, ok bool) {
	ks, key, vs, ok = it.key()
	if !ok {
		return 0, nil, 0, 0, false
	}
	ve = llm.ValueEnd(it.b, vs)
	if !it.done(ve) {
		return 0, nil, 0, 0, false
	}
	return ks, key, vs, ve, true
}

// arrIter walks the elements of a JSON array without decoding them.
type arrIter struct {
	b     []byte
	i     int
	first bool
}

func newArrIter(b []byte) (arrIter, bool) {
	i := llm.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return arrIter{}, false
	}
	return arrIter{b: b, i: i + 1, first: true}, true
}

// next returns the span of the next element; ok is false after the last
// or at anything malformed.
func (it *arrIter) next() (vs, ve int, ok bool) {
	if it.i < 0 {
		return 0, 0, false
	}
	b := it.b
	vs = llm.SkipSpace(b, it.i)
	if it.first && vs < len(b) && b[vs] == ']' {
		it.i = -1
		return 0, 0, false
	}
	it.first = false
	ve = llm.ValueEnd(b, vs)
	if ve < 0 {
		it.i = -1
		return 0, 0, false
	}
	k := llm.SkipSpace(b, ve)
	if k < len(b) && b[k] == ',' {
		it.i = k + 1
	} else {
		it.i = -1
	}
	return vs, ve, true
}
