package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// AnthropicMeter accumulates the usage of one Anthropic Messages response,
// streamed (Event, once per SSE event or decoded Bedrock chunk) or not
// (Body). It serves every family that speaks Anthropic events: Anthropic,
// Vertex, Foundry, and Bedrock after its event-stream frames are decoded.
//
// Usage starts from message_start's message.usage; every message_delta
// usage is cumulative and overrides only the fields it carries non-null
// (deltas are never summed). message_stop marks the stream complete; an
// error event records its error.type. ping and unknown events are ignored.
// The text carried by content_block_delta events (text, thinking and
// partial_json, not signatures) is counted in decoded UTF-8 bytes, without
// allocating, so that a stream cut before any message_delta is still charged
// for the output that passed (see Usage).
//
// The zero value is ready to use. An AnthropicMeter is not safe for
// concurrent use.
type AnthropicMeter struct {
	// Now is the clock that stamps the first content delta; nil means
	// time.Now.
	Now func() time.Time

	input, output, cacheRead, cacheCreation int64
	split5m, split1h                        int64
	webSearch                               int64
	haveSplit                               bool // a cache_creation split was reported
	haveCreation                            bool // cache_creation_input_tokens was reported
	speed, geo                              string
	final                                   bool // a cumulative output count (message_delta or body) was seen
	complete                                bool
	textBytes                               int64
	firstToken                              time.Time
	errType                                 string
	stopReason                              string
	model                                   string
}

// anthropicUsage is the wire usage object; pointer fields tell absent and
// null apart from zero.
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m *int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	ServerToolUse *struct {
		WebSearchRequests *int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
	Speed        *string `json:"speed"`
	InferenceGeo *string `json:"inference_geo"`
}

// Event meters one Anthropic event: typ is the SSE "event" field and data
// its JSON. When typ is empty (Bedrock chunks carry bare event JSON) the
// type is read from the data's top-level "type" member. The
// content_block_delta path, the hot one, does not allocate.
func (m *AnthropicMeter) Event(typ, data []byte) {
	if len(typ) == 0 {
		typ = JSONType(data)
	}
	switch string(typ) {
	case "content_block_delta":
		m.contentDelta(data)
	case "message_start":
		if msg, ok := llm.MemberValue(data, "message"); ok {
			if u, ok := llm.MemberValue(msg, "usage"); ok {
				_, _ = m.overlay(u)
			}
			if v, ok := llm.MemberValue(msg, "model"); ok {
				m.model = JSONString(v)
			}
		}
	case "message_delta":
		if u, ok := llm.MemberValue(data, "usage"); ok {
			if out, err := m.overlay(u); err == nil && out {
				m.final = true
			}
		}
		if d, ok := llm.MemberValue(data, "delta"); ok {
			if v, ok := llm.MemberValue(d, "stop_reason"); ok && v[0] == '"' {
				m.stopReason = JSONString(v)
			}
		}
	case "message_stop":
		m.complete = true
	case "error":
		m.errType = ErrorType(data)
		if m.errType == "" {
			m.errType = "error"
		}
	}
}

// contentDelta counts the text of a content_block_delta and stamps the
// first one.
func (m *AnthropicMeter) contentDelta(data []byte) {
	if m.firstToken.IsZero() {
		if m.Now != nil {
			m.firstToken = m.Now()
		} else {
			m.firstToken = time.Now()
		}
	}
	at := llm.MemberAt(data, "delta")
	if at < 0 {
		return
	}
	d := data[at:] // the delta object, and whatever follows it
	var field string
	switch t := llm.StringMember(d, "type"); string(t) {
	case `"text_delta"`:
		field = "text"
	case `"thinking_delta"`:
		field = "thinking"
	case `"input_json_delta"`:
		field = "partial_json"
	default:
		return // signature_delta, citations_delta, unknown kinds
	}
	if v := llm.StringMember(d, field); v != nil {
		if n, ok := DecodedLen(v); ok {
			m.textBytes += int64(n)
		}
	}
}

// JSONType returns the unquoted top-level "type" member of obj (nil when
// absent, not a plain string, or escaped: event types never are).
func JSONType(obj []byte) []byte {
	v := llm.StringMember(obj, "type")
	if v == nil || bytes.IndexByte(v, '\\') >= 0 {
		return nil
	}
	return v[1 : len(v)-1]
}

// JSONString decodes a JSON string value; "" when v is not one.
func JSONString(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// overlay applies the non-null, non-negative fields of a wire usage object
// and reports whether it carried output_tokens. A usage that does not decode
// changes nothing.
func (m *AnthropicMeter) overlay(raw []byte) (hasOutput bool, err error) {
	var u anthropicUsage
	if err := json.Unmarshal(raw, &u); err != nil {
		return false, err
	}
	set := func(dst *int64, src *int64) {
		if src != nil && *src >= 0 { // a negative count would be a refund
			*dst = *src
		}
	}
	set(&m.input, u.InputTokens)
	set(&m.output, u.OutputTokens)
	set(&m.cacheCreation, u.CacheCreationInputTokens)
	if u.CacheCreationInputTokens != nil && *u.CacheCreationInputTokens >= 0 {
		m.haveCreation = true
	}
	// They reach the ledger, the access log and report groups: plain
	// tokens only ("fast", "us").
	if u.Speed != nil {
		m.speed = PlainToken(*u.Speed)
	}
	if u.InferenceGeo != nil {
		m.geo = PlainToken(*u.InferenceGeo)
	}
	set(&m.cacheRead, u.CacheReadInputTokens)
	if cc := u.CacheCreation; cc != nil && (cc.Ephemeral5m != nil || cc.Ephemeral1h != nil) {
		m.haveSplit = true
		set(&m.split5m, cc.Ephemeral5m)
		set(&m.split1h, cc.Ephemeral1h)
	}
	if st := u.ServerToolUse; st != nil {
		set(&m.webSearch, st.WebSearchRequests)
	}
	return u.OutputTokens != nil, nil
}

// ErrNoObject is what a meter's Body returns for a body that is not a JSON
// object (AnthropicMeter's here, and the families' own meters).
var ErrNoObject = errors.New("stream: response body is not a JSON object")

// Body meters a non-streamed Messages response body: only its top-level
// "usage" member is decoded (a "usage" nested in content is ignored), plus
// "model" and "stop_reason". The usage is then final and Complete. A valid
// JSON object without usage (a count_tokens answer) is complete with zero
// usage. It returns an error, and leaves the meter incomplete, when b is not
// a JSON object or its usage does not decode.
func (m *AnthropicMeter) Body(b []byte) error {
	u, ok := llm.MemberValue(b, "usage")
	if !ok {
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(b) {
			return ErrNoObject
		}
		m.complete = true
		return nil
	}
	if bytes.Equal(u, []byte("null")) {
		m.complete = true
		return nil
	}
	if _, err := m.overlay(u); err != nil {
		return err
	}
	m.final = true
	m.complete = true
	if v, ok := llm.MemberValue(b, "model"); ok {
		m.model = JSONString(v)
	}
	if v, ok := llm.MemberValue(b, "stop_reason"); ok {
		m.stopReason = JSONString(v)
	}
	return nil
}

// Usage returns the usage metered so far. InputTokens are uncached input
// only. Cache writes without a 5m/1h split are all 5-minute writes; with a
// split, the split is used and any part of cache_creation_input_tokens it
// does not cover counts as 5-minute. A split larger than
// cache_creation_input_tokens never bills more than that total: the 1-hour
// part first, the rest as 5-minute writes. Speed and InferenceGeo are the
// last non-null values reported.
//
// Output is the last cumulative output_tokens once a message_delta (or a
// body) reported one. Before that — a stream cut after message_start — it
// is the larger of message_start's count and ceil(text bytes / 4) of the
// content deltas that passed, with OutputEstimated set when the estimate
// was used.
func (m *AnthropicMeter) Usage() llm.Usage {
	u := llm.Usage{
		InputTokens:       m.input,
		OutputTokens:      m.output,
		CacheReadTokens:   m.cacheRead,
		WebSearchRequests: m.webSearch,
		Speed:             m.speed,
		InferenceGeo:      m.geo,
		Complete:          m.complete,
	}
	if m.haveSplit {
		u.CacheWrite1hTokens = m.split1h
		u.CacheWrite5mTokens = m.split5m
		if rest := m.cacheCreation - m.split5m - m.split1h; rest > 0 {
			u.CacheWrite5mTokens += rest
		} else if rest < 0 && m.haveCreation {
			u.CacheWrite1hTokens = min(m.split1h, m.cacheCreation)
			u.CacheWrite5mTokens = m.cacheCreation - u.CacheWrite1hTokens
		}
	} else {
		u.CacheWrite5mTokens = m.cacheCreation
	}
	if !m.final {
		if est := OutputEstimate(m.textBytes); est > u.OutputTokens {
			u.OutputTokens = est
			u.OutputEstimated = true
		}
	}
	return u
}

// FirstToken is when the first content_block_delta passed; zero if none did.
func (m *AnthropicMeter) FirstToken() time.Time { return m.firstToken }

// ErrorType is the error.type of an error event ("overloaded_error"), or
// "error" for an error event without a readable type; "" when none came.
func (m *AnthropicMeter) ErrorType() string { return m.errType }

// StopReason is the last stop_reason reported ("end_turn", "max_tokens",
// "tool_use", "refusal", …); "" when none was.
func (m *AnthropicMeter) StopReason() string { return m.stopReason }

// Model is the model the response says answered (message_start's
// message.model, or the body's model); "" when not seen.
func (m *AnthropicMeter) Model() string { return m.model }

// TextBytes is the decoded UTF-8 length of the content-delta text counted so
// far (text, thinking and tool-input JSON).
func (m *AnthropicMeter) TextBytes() int64 { return m.textBytes }

// Reset readies the meter for another response, keeping its clock.
func (m *AnthropicMeter) Reset() { *m = AnthropicMeter{Now: m.Now} }

// SetClock sets Now.
func (m *AnthropicMeter) SetClock(now func() time.Time) { m.Now = now }

// ErrorType reads error.type from an error body
// ({"type":"error","error":{"type":"overloaded_error","message":"…"}}, and
// also OpenAI's {"error":{"type":…}}); "" when body is not one. To be safe as
// a log field or metric label, a type longer than 64 bytes or holding
// anything but letters, digits, '_', '-' and '.' is reported as "".
func ErrorType(body []byte) string {
	e, ok := llm.MemberValue(body, "error")
	if !ok {
		return ""
	}
	v, ok := llm.MemberValue(e, "type")
	if !ok {
		return ""
	}
	return string(TokenLiteral(v))
}

// maxToken is the longest plain token TokenLiteral and PlainToken accept.
const maxToken = 64

// TokenLiteral returns the inside of the JSON string literal v when it is a
// plain token — 1 to 64 bytes of letters, digits, '_', '-' and '.' — and
// nil otherwise: what an upstream's type names ("overloaded_error",
// "message_start") look like, and safe as a log field or metric label.
func TokenLiteral(v []byte) []byte {
	if len(v) < 3 || len(v) > maxToken+2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil
	}
	t := v[1 : len(v)-1]
	if !plain(string(t)) {
		return nil
	}
	return t
}

// PlainToken returns s when it is a plain token (as TokenLiteral), ""
// otherwise.
func PlainToken(s string) string {
	if len(s) == 0 || len(s) > maxToken || !plain(s) {
		return ""
	}
	return s
}

func plain(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// OutputEstimate is the output of a stream cut before any usage count came:
// ceil(bytes of generated text / 4), the rule every meter applies.
func OutputEstimate(textBytes int64) int64 { return (textBytes + 3) / 4 }
