package stream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// textBytesOf decodes the content deltas of evs with encoding/json and sums
// the UTF-8 length of their text, thinking and partial_json: the reference
// the meter's allocation-free scan must agree with.
func textBytesOf(t *testing.T, evs []ev) int64 {
	t.Helper()
	var n int64
	for _, e := range evs {
		if e.event != "content_block_delta" {
			continue
		}
		var raw struct {
			Delta map[string]any `json:"delta"`
		}
		if err := json.Unmarshal([]byte(e.data), &raw); err != nil {
			t.Fatalf("fixture %q: %v", e.data, err)
		}
		for _, k := range []string{"text", "thinking", "partial_json"} {
			if s, ok := raw.Delta[k].(string); ok {
				n += int64(len(s))
			}
		}
	}
	return n
}

func ceil4(n int64) int64 { return (n + 3) / 4 }

func TestAnthropicMeter(t *testing.T) {
	turn := claudeTurn()
	turnText := int64(0)                                  // filled in below, needs t
	escaped := `"a\nb\"c\u00e9\ud83d\ude00\\ \u0041\/\t"` // a \n b " c é 😀 \ sp A / \t
	const escapedLen = 1 + 1 + 1 + 1 + 1 + 2 + 4 + 1 + 1 + 1 + 1 + 1

	for _, tc := range []struct {
		name       string
		evs        []ev
		bare       bool // pass no event names (Bedrock-decoded chunks)
		want       llm.Usage
		wantText   int64 // -1: compute from fixtures
		errType    string
		stop       string
		model      string
		firstToken bool
	}{
		{
			name:     "claude code turn, 1h cache split, web search",
			evs:      turn,
			want:     llm.Usage{InputTokens: 12, OutputTokens: 89, CacheReadTokens: 90112, CacheWrite1hTokens: 2048, WebSearchRequests: 2, Complete: true},
			wantText: -1, stop: "tool_use", model: "claude-sonnet-4-5-20250929", firstToken: true,
		},
		{
			name: "same turn as bare Bedrock chunks",
			evs:  turn, bare: true,
			want:     llm.Usage{InputTokens: 12, OutputTokens: 89, CacheReadTokens: 90112, CacheWrite1hTokens: 2048, WebSearchRequests: 2, Complete: true},
			wantText: -1, stop: "tool_use", model: "claude-sonnet-4-5-20250929", firstToken: true,
		},
		{
			name: "no split: cache writes are 5m, null cache read",
			evs: []ev{
				{"message_start", evMessageStartNoSplit},
				{"content_block_start", evTextStart1},
				{"content_block_delta", textDelta(1, `"Hi"`)},
				{"content_block_stop", evBlockStop1},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":15}`)},
				{"message_stop", evMessageStop},
			},
			want:     llm.Usage{InputTokens: 472, OutputTokens: 15, CacheWrite5mTokens: 1500, Complete: true},
			wantText: 2, stop: "end_turn", model: "claude-haiku-4-5-20251001", firstToken: true,
		},
		{
			name: "split short of total: remainder is 5m",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":5,"cache_creation_input_tokens":3000,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":1500},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite5mTokens: 1500, CacheWrite1hTokens: 1500, Complete: true},
			stop: "end_turn", model: "m",
		},
		{
			name: "split with null half",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":900,"cache_creation":{"ephemeral_5m_input_tokens":null,"ephemeral_1h_input_tokens":900},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite1hTokens: 900},
			stop: "end_turn",
		},
		{
			name: "split larger than total is clamped: 1h first, rest 5m",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":80,"ephemeral_1h_input_tokens":50},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite5mTokens: 50, CacheWrite1hTokens: 50, Complete: true},
			stop: "end_turn",
		},
		{
			name: "1h part alone over total is clamped to the total",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":150},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite1hTokens: 100},
			stop: "end_turn",
		},
		{
			name: "split without a total is billed on the split",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":20},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite5mTokens: 30, CacheWrite1hTokens: 20},
			stop: "end_turn",
		},
		{
			name: "fast mode and US-only inference are kept",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1,"service_tier":"standard","speed":"fast","inference_geo":"us"}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7,"speed":null}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, Speed: "fast", InferenceGeo: "us", Complete: true},
			stop: "end_turn",
		},
		{
			name: "empty split object means no split",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_creation":{},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":7}`)},
			},
			want: llm.Usage{InputTokens: 5, OutputTokens: 7, CacheWrite5mTokens: 100},
			stop: "end_turn",
		},
		{
			name: "delta overrides input and cache fields, nulls keep",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_creation_input_tokens":40,"cache_read_input_tokens":0,"output_tokens":1,"server_tool_use":{"web_search_requests":0}}}}`},
				{"message_delta", messageDelta("end_turn", `{"input_tokens":20,"cache_creation_input_tokens":null,"cache_read_input_tokens":500,"output_tokens":30,"server_tool_use":{"web_search_requests":1}}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 20, OutputTokens: 30, CacheReadTokens: 500, CacheWrite5mTokens: 40, WebSearchRequests: 1, Complete: true},
			stop: "end_turn",
		},
		{
			name: "cumulative deltas are not summed",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"message_delta", messageDelta("pause_turn", `{"output_tokens":10,"server_tool_use":{"web_search_requests":1}}`)},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":25,"server_tool_use":{"web_search_requests":3}}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 25, OutputTokens: 25, WebSearchRequests: 3, Complete: true},
			stop: "end_turn", model: "claude-opus-4-5-20251101",
		},
		{
			name: "counted usage beats a larger estimate",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"content_block_delta", textDelta(0, `"`+strings.Repeat("word ", 40)+`"`)},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":3}`)},
			},
			want:     llm.Usage{InputTokens: 25, OutputTokens: 3},
			wantText: 200, stop: "end_turn", model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name: "cut after deltas: estimate ceil(bytes/4)",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"content_block_start", evThinkingStart},
				{"content_block_delta", thinkingDelta(`"Thinking about it carefully."`)}, // 28
				{"content_block_delta", evSignature},
				{"content_block_stop", evBlockStop0},
				{"content_block_delta", textDelta(1, `"Sure."`)},   // 5
				{"content_block_delta", jsonDelta(`"{\"q\": 1}"`)}, // 8
			},
			want:     llm.Usage{InputTokens: 25, OutputTokens: ceil4(28 + 5 + 8), OutputEstimated: true},
			wantText: 41, model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name: "cut: estimate never below message_start output",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":50}}}`},
				{"content_block_delta", textDelta(0, `"12345678"`)},
			},
			want:     llm.Usage{InputTokens: 9, OutputTokens: 50},
			wantText: 8, firstToken: true,
		},
		{
			name: "cut with zero deltas",
			evs: []ev{
				{"message_start", evMessageStartCached},
				{"ping", evPing},
			},
			want:  llm.Usage{InputTokens: 12, OutputTokens: 1, CacheReadTokens: 90112, CacheWrite1hTokens: 2048},
			model: "claude-sonnet-4-5-20250929",
		},
		{
			name: "error event after 200",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"content_block_start", evTextStart1},
				{"content_block_delta", textDelta(1, `"Once upon a time"`)}, // 16
				{"error", evOverloaded},
			},
			want:     llm.Usage{InputTokens: 25, OutputTokens: 4, OutputEstimated: true},
			wantText: 16, errType: "overloaded_error", model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name:    "unreadable error event",
			evs:     []ev{{"message_start", evMessageStartPlain}, {"error", `{"oops"`}},
			want:    llm.Usage{InputTokens: 25, OutputTokens: 1},
			errType: "error", model: "claude-opus-4-5-20251101",
		},
		{
			name: "escaped text counted in decoded UTF-8 bytes",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"content_block_delta", textDelta(0, escaped)},
			},
			want:     llm.Usage{InputTokens: 25, OutputTokens: ceil4(escapedLen), OutputEstimated: true},
			wantText: escapedLen, model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name: "unknown events, unknown delta kinds and junk tolerated",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"future_event", `{"type":"future_event","usage":{"output_tokens":999}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"cited_text":"abcdefgh"}}}`},
				{"content_block_delta", `not json`},
				{"message_delta", `{"type":"message_delta","usage":{"output_tokens":"many"}}`},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":null}}`},
				{"ping", evPing},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":12}`)},
				{"message_stop", evMessageStop},
			},
			want: llm.Usage{InputTokens: 25, OutputTokens: 12, Complete: true},
			stop: "end_turn", model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name: "message_delta without usage is not a final count",
			evs: []ev{
				{"message_start", evMessageStartPlain},
				{"content_block_delta", textDelta(0, `"abcdefghij"`)},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`},
				{"message_stop", evMessageStop},
			},
			want:     llm.Usage{InputTokens: 25, OutputTokens: 3, Complete: true, OutputEstimated: true},
			wantText: 10, stop: "end_turn", model: "claude-opus-4-5-20251101", firstToken: true,
		},
		{
			name: "negative counts ignored",
			evs: []ev{
				{"message_start", `{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":-3,"cache_creation_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":-1,"ephemeral_1h_input_tokens":5},"output_tokens":1}}}`},
				{"message_delta", messageDelta("end_turn", `{"input_tokens":-10,"output_tokens":4}`)},
				{"message_delta", messageDelta("end_turn", `{"output_tokens":-4}`)},
			},
			want: llm.Usage{InputTokens: 10, OutputTokens: 4, CacheWrite1hTokens: 5},
			stop: "end_turn",
		},
		{
			name: "nothing at all",
			want: llm.Usage{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantText < 0 {
				if turnText == 0 {
					turnText = textBytesOf(t, turn)
				}
				tc.wantText = turnText
			}
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			calls := 0
			m := &AnthropicMeter{Now: func() time.Time { calls++; return t0.Add(time.Duration(calls) * time.Second) }}
			for _, e := range tc.evs {
				typ := []byte(e.event)
				if tc.bare {
					typ = nil
				}
				m.Event(typ, []byte(e.data))
			}
			if got := m.Usage(); got != tc.want {
				t.Errorf("Usage() = %+v\nwant      %+v", got, tc.want)
			}
			if got := m.TextBytes(); got != tc.wantText {
				t.Errorf("TextBytes() = %d, want %d", got, tc.wantText)
			}
			if got := m.ErrorType(); got != tc.errType {
				t.Errorf("ErrorType() = %q, want %q", got, tc.errType)
			}
			if got := m.StopReason(); got != tc.stop {
				t.Errorf("StopReason() = %q, want %q", got, tc.stop)
			}
			if got := m.Model(); got != tc.model {
				t.Errorf("Model() = %q, want %q", got, tc.model)
			}
			if tc.firstToken {
				if calls != 1 || !m.FirstToken().Equal(t0.Add(time.Second)) {
					t.Errorf("FirstToken() = %v after %d clock calls, want %v after 1", m.FirstToken(), calls, t0.Add(time.Second))
				}
			} else if !m.FirstToken().IsZero() || calls != 0 {
				t.Errorf("FirstToken() = %v after %d clock calls, want zero", m.FirstToken(), calls)
			}
		})
	}
}

// TestAnthropicSSE runs the turn through scanner and meter split at every
// byte, in every line-ending style: the usage never depends on chunking.
func TestAnthropicSSE(t *testing.T) {
	want := llm.Usage{InputTokens: 12, OutputTokens: 89, CacheReadTokens: 90112, CacheWrite1hTokens: 2048, WebSearchRequests: 2, Complete: true}
	wantText := textBytesOf(t, claudeTurn())
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		b := []byte(": comment\n" + encodeSSE(eol, claudeTurn()...))
		a := &AnthropicSSE{}
		for i := 0; i <= len(b); i++ {
			a.Reset()
			a.Feed(b[:i])
			a.Feed(b[i:])
			if got := a.Meter.Usage(); got != want || a.Meter.TextBytes() != wantText || a.Scanner.Pending() {
				t.Fatalf("eol %q split %d: usage %+v text %d pending %v", eol, i, got, a.Meter.TextBytes(), a.Scanner.Pending())
			}
		}
	}
}

func TestAnthropicMeterBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    llm.Usage
		stop    string
		model   string
		wantErr bool
	}{
		{
			name: "usage not last, nested usage ignored",
			body: `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
				"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":503,"service_tier":"standard","server_tool_use":{"web_search_requests":1,"web_fetch_requests":0}},
				"content":[{"type":"text","text":"\"usage\":{\"output_tokens\":1}"},{"type":"tool_use","id":"toolu_1","name":"report","input":{"usage":{"input_tokens":99999,"output_tokens":99999}}}],
				"stop_reason":"tool_use","stop_sequence":null}`,
			want: llm.Usage{InputTokens: 2095, OutputTokens: 503, CacheReadTokens: 1024, WebSearchRequests: 1, Complete: true},
			stop: "tool_use", model: "claude-sonnet-4-5-20250929",
		},
		{
			name: "usage last, no split",
			body: `{"content":[{"type":"text","text":"Hi"}],"id":"msg_2","model":"claude-haiku-4-5-20251001","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":null,"output_tokens":1}}`,
			want: llm.Usage{InputTokens: 10, OutputTokens: 1, CacheWrite5mTokens: 300, Complete: true},
			stop: "end_turn", model: "claude-haiku-4-5-20251001",
		},
		{name: "count_tokens answer", body: `{"input_tokens":2095}`, want: llm.Usage{Complete: true}},
		{name: "null usage", body: `{"usage":null}`, want: llm.Usage{Complete: true}},
		{name: "not json", body: `<html>bad gateway</html>`, wantErr: true},
		{name: "array", body: `[{"usage":{"output_tokens":1}}]`, wantErr: true},
		{name: "truncated", body: `{"id":"msg_3","content":[{"type":"text","text":"Hel`, wantErr: true},
		{name: "bad usage", body: `{"usage":{"output_tokens":"x"}}`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m AnthropicMeter
			err := m.Body([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Body err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := m.Usage(); got != tc.want {
				t.Errorf("Usage() = %+v\nwant      %+v", got, tc.want)
			}
			if m.StopReason() != tc.stop || m.Model() != tc.model {
				t.Errorf("stop %q model %q, want %q %q", m.StopReason(), m.Model(), tc.stop, tc.model)
			}
		})
	}
}

func TestErrorType(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{evOverloaded, "overloaded_error"},
		{`{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, "rate_limit_error"},
		{` {"type":"error","request_id":"req_1","error":{"message":"x","type":"invalid_request_error"}}`, "invalid_request_error"},
		{`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "invalid_request_error"},
		{`{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`, ""},
		{`{"message":"Too many requests"}`, ""},
		{`{"type":"error","error":{"type":"has space"}}`, ""},
		{`{"type":"error","error":{"type":"` + strings.Repeat("a", 65) + `"}}`, ""},
		{`{"type":"error","error":{"type":""}}`, ""},
		{`{"type":"error","error":"overloaded"}`, ""},
		{`upstream connect error`, ""},
		{``, ""},
	} {
		if got := ErrorType([]byte(tc.body)); got != tc.want {
			t.Errorf("ErrorType(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestDecodedLen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`""`, 0, true},
		{`"hello"`, 5, true},
		{`"caf\u00e9"`, 5, true},
		{`"café"`, 5, true},
		{`"\ud83d\ude00"`, 4, true},
		{`"\uD83D\uDE00x"`, 5, true},
		{`"😀"`, 4, true},
		{`"\u20ac"`, 3, true},
		{`"\ud83d"`, 3, true},       // lone high surrogate → U+FFFD
		{`"\ude00"`, 3, true},       // lone low surrogate → U+FFFD
		{`"\ud83dx"`, 4, true},      // U+FFFD then x
		{`"\ud83d\u0041"`, 4, true}, // U+FFFD then A
		{`"\ud83d\ud83d"`, 6, true}, // two lone highs
		{`"\n\r\t\b\f\/\\\""`, 8, true},
		{`"\u0000"`, 1, true},
		{`"\u07ff\u0800"`, 5, true},
		{`"abc`, 0, false},
		{`abc"`, 0, false},
		{`"\x"`, 0, false},
		{`"\u12"`, 0, false},
		{`"\u12g4"`, 0, false},
		{`"\"`, 0, false},
		{`"`, 0, false},
	} {
		n, ok := DecodedLen([]byte(tc.in))
		if n != tc.want || ok != tc.ok {
			t.Errorf("DecodedLen(%s) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
}

// FuzzDecodedLen checks the scan against encoding/json on every valid
// UTF-8 string literal.
func FuzzDecodedLen(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud83d\ude00"`, `"\ud83d"`, `"x\\\"y"`, `"\n"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		var dec string
		if err := json.Unmarshal([]byte(s), &dec); err != nil {
			return
		}
		if s == "" || s[0] != '"' || s[len(s)-1] != '"' {
			return // whitespace around the literal
		}
		n, ok := DecodedLen([]byte(s))
		if !ok || n != len(dec) {
			t.Fatalf("DecodedLen(%s) = %d, %v; encoding/json gives %d", s, n, ok, len(dec))
		}
	})
}

func TestAnthropicMeterContentDeltaAllocs(t *testing.T) {
	m := &AnthropicMeter{Now: time.Now}
	typ, ping, pingData := []byte("content_block_delta"), []byte("ping"), []byte(evPing)
	evs := [][]byte{
		[]byte(textDelta(1, `"Let me check the weather in Paris "`)),
		[]byte(thinkingDelta(`"I should call \"get_weather\"\nwith Paris \ud83d\ude00."`)),
		[]byte(jsonDelta(`"{\"location\": \"Pa"`)),
		[]byte(evSignature),
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, e := range evs {
			m.Event(typ, e)
			m.Event(nil, e)
		}
		m.Event(ping, pingData)
	}); n != 0 {
		t.Fatalf("%v allocs per run, want 0", n)
	}
}

// FuzzAnthropicMeter feeds arbitrary event data: the meter must never panic
// and never report negative usage.
func FuzzAnthropicMeter(f *testing.F) {
	for _, e := range claudeTurn() {
		f.Add(e.event, []byte(e.data))
	}
	f.Add("", []byte(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"\ud83d`))
	f.Add("message_delta", []byte(`{"usage":{"output_tokens":-5}}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		var m AnthropicMeter
		m.Event([]byte(typ), data)
		m.Event(nil, data)
		_ = m.Body(data)
		u := m.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWrite5mTokens < 0 ||
			u.CacheWrite1hTokens < 0 || u.WebSearchRequests < 0 {
			t.Fatalf("negative usage %+v", u)
		}
	})
}
