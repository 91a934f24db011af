package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// ev is one SSE event as a test expects it delivered.
type ev struct{ event, data string }

// encodeSSE writes events in the SSE wire format with the given line ending.
// Multi-line data is written as several data lines.
func encodeSSE(eol string, evs ...ev) string {
	var b strings.Builder
	for _, e := range evs {
		if e.event != "" {
			b.WriteString("event: " + e.event + eol)
		}
		for _, line := range strings.Split(e.data, "\n") {
			b.WriteString("data: " + line + eol)
		}
		b.WriteString(eol)
	}
	return b.String()
}

// Chat Completions fixtures, in the shapes openai-go documents
// (ChatCompletionChunk, CompletionUsage) and the API sends: OpenAI puts
// "usage" after "choices" and the obfuscation padding last.

const oaiModel = "gpt-5-mini-2025-08-07"

// oaiChunk is one chat.completion.chunk; usage "" leaves the member out
// (what a stream without include_usage carries).
func oaiChunk(choices, usage string) string {
	s := `{"id":"chatcmpl-C9xYz1","object":"chat.completion.chunk","created":1750000000,"model":"` + oaiModel + `","service_tier":"default","system_fingerprint":null,"choices":` + choices
	if usage != "" {
		s += `,"usage":` + usage
	}
	return s + `,"obfuscation":"Qx3k"}`
}

func oaiDelta(delta, finish string) string {
	return `[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + finish + `}]`
}

// oaiUsage is the fixed usage of the fixtures: 1200 prompt tokens of which
// 1000 cached, 300 completion tokens of which 100 reasoning.
const oaiUsage = `{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":100,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`

var oaiWant = llm.Usage{InputTokens: 200, CacheReadTokens: 1000, OutputTokens: 300, Complete: true}

var oaiDeltas = []string{
	`{"role":"assistant","content":"","refusal":null}`,
	`{"content":"Hello"}`,
	`{"content":" caf\u00e9 \ud83d\ude00, "}`,
	`{"content":"\"quoted\"\n"}`,
}

// oaiChatStream is a streamed chat completion as OpenAI sends it, with or
// without stream_options.include_usage: with it, every chunk carries
// "usage":null and a last chunk with no choices carries the usage.
func oaiChatStream(includeUsage bool) []ev {
	null := ""
	if includeUsage {
		null = "null"
	}
	var evs []ev
	for _, d := range oaiDeltas {
		evs = append(evs, ev{"", oaiChunk(oaiDelta(d, "null"), null)})
	}
	evs = append(evs, ev{"", oaiChunk(oaiDelta(`{}`, `"stop"`), null)})
	if includeUsage {
		evs = append(evs, ev{"", oaiChunk(`[]`, oaiUsage)})
	}
	return append(evs, ev{"", "[DONE]"})
}

// oaiToolStream streams a tool call (name first, then argument fragments).
func oaiToolStream() []ev {
	return []ev{
		{"", oaiChunk(oaiDelta(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}`, "null"), "null")},
		{"", oaiChunk(oaiDelta(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]}`, "null"), "null")},
		{"", oaiChunk(oaiDelta(`{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]}`, "null"), "null")},
		{"", oaiChunk(oaiDelta(`{}`, `"tool_calls"`), "null")},
		{"", oaiChunk(`[]`, `{"prompt_tokens":81,"completion_tokens":17,"total_tokens":98,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`)},
		{"", "[DONE]"},
	}
}

// vllmChunk is a vLLM chunk: no usage member unless given, stop_reason.
func vllmChunk(delta, finish, usage string) string {
	s := `{"id":"chatcmpl-7f1e","object":"chat.completion.chunk","created":1750000001,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + finish + `,"stop_reason":null}]`
	if usage != "" {
		s += `,"usage":` + usage
	}
	return s + "}"
}

// oaiTextBytes decodes the deltas of chat chunks with encoding/json and sums
// the UTF-8 length of their generated text: the reference for the meter's
// allocation-free count.
func oaiTextBytes(t *testing.T, evs []ev) int64 {
	t.Helper()
	var n int64
	for _, e := range evs {
		if e.data == "[DONE]" || !strings.HasPrefix(e.data, "{") {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content          *string `json:"content"`
					Refusal          *string `json:"refusal"`
					ReasoningContent string  `json:"reasoning_content"`
					Reasoning        string  `json:"reasoning"`
					ToolCalls        []struct {
						Function struct{ Name, Arguments string } `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			continue
		}
		for _, ch := range c.Choices {
			d := ch.Delta
			if d.Content != nil {
				n += int64(len(*d.Content))
			}
			if d.Refusal != nil {
				n += int64(len(*d.Refusal))
			}
			n += int64(max(len(d.ReasoningContent), len(d.Reasoning)))
			for _, tc := range d.ToolCalls {
				n += int64(len(tc.Function.Name) + len(tc.Function.Arguments))
			}
		}
	}
	return n
}

// countingClock returns t0 plus one second per call, and counts the calls.
type countingClock struct {
	t0    time.Time
	calls int
}

func (c *countingClock) now() time.Time {
	c.calls++
	return c.t0.Add(time.Duration(c.calls) * time.Second)
}

var oaiT0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

type chatCase struct {
	name      string
	evs       []ev
	want      llm.Usage
	wantText  int64 // -1: compute with oaiTextBytes
	reasoning int64
	finish    string
	model     string
	errType   string
	first     bool
	done      bool
}

func chatCases() []chatCase {
	contentOnly := oaiChatStream(false)
	withUsage := oaiChatStream(true)
	return []chatCase{
		{
			name: "include_usage: usage chunk with cached and reasoning tokens",
			evs:  withUsage, want: oaiWant, wantText: -1, reasoning: 100,
			finish: "stop", model: oaiModel, first: true, done: true,
		},
		{
			name: "usage on the last content chunk, vLLM style",
			evs: []ev{
				{"", vllmChunk(`{"role":"assistant","content":""}`, "null", "")},
				{"", vllmChunk(`{"content":"Hi"}`, "null", "")},
				{"", vllmChunk(`{"content":" there!"}`, `"stop"`, `{"prompt_tokens":20,"total_tokens":25,"completion_tokens":5,"prompt_tokens_details":null}`)},
				{"", "[DONE]"},
			},
			want: llm.Usage{InputTokens: 20, OutputTokens: 5, Complete: true}, wantText: 9,
			finish: "stop", model: "meta-llama/Llama-3.1-8B-Instruct", first: true, done: true,
		},
		{
			name: "finish_reason plus usage completes a stream without [DONE]",
			evs: []ev{
				{"", vllmChunk(`{"content":"Hi"}`, "null", "")},
				{"", vllmChunk(`{"content":"!"}`, `"length"`, `{"prompt_tokens":20,"total_tokens":23,"completion_tokens":3}`)},
			},
			want: llm.Usage{InputTokens: 20, OutputTokens: 3, Complete: true}, wantText: 3,
			finish: "length", model: "meta-llama/Llama-3.1-8B-Instruct", first: true,
		},
		{
			name: "continuous usage stats on every chunk, cut: the last report wins",
			evs: []ev{
				{"", vllmChunk(`{"content":"One"}`, "null", `{"prompt_tokens":20,"total_tokens":21,"completion_tokens":1}`)},
				{"", vllmChunk(`{"content":" two"}`, "null", `{"prompt_tokens":20,"total_tokens":22,"completion_tokens":2}`)},
			},
			want: llm.Usage{InputTokens: 20, OutputTokens: 2}, wantText: 7,
			model: "meta-llama/Llama-3.1-8B-Instruct", first: true,
		},
		{
			name: "usage null on every chunk and no report: [DONE] completes, output estimated",
			evs:  append(append([]ev(nil), withUsage[:5]...), withUsage[6]),
			want: llm.Usage{OutputTokens: 7, OutputEstimated: true, Complete: true}, wantText: 27,
			finish: "stop", model: oaiModel, first: true, done: true,
		},
		{
			name: "no usage member at all (client stream without include_usage)",
			evs:  contentOnly,
			want: llm.Usage{OutputTokens: 7, OutputEstimated: true, Complete: true}, wantText: 27,
			finish: "stop", model: oaiModel, first: true, done: true,
		},
		{
			name: "cut after two content chunks: estimated, input unknown",
			evs:  withUsage[:3],
			want: llm.Usage{OutputTokens: 5, OutputEstimated: true}, wantText: 18,
			model: oaiModel, first: true,
		},
		{
			name: "cut after finish_reason, before the usage chunk",
			evs:  withUsage[:5],
			want: llm.Usage{OutputTokens: 7, OutputEstimated: true}, wantText: 27,
			finish: "stop", model: oaiModel, first: true,
		},
		{
			name: "cut after the usage chunk, before [DONE]",
			evs:  withUsage[:6],
			want: oaiWant, wantText: -1, reasoning: 100,
			finish: "stop", model: oaiModel, first: true,
		},
		{
			name: "role-only chunk is not content",
			evs:  []ev{withUsage[0], {"", "[DONE]"}},
			want: llm.Usage{Complete: true}, wantText: 0, model: oaiModel, done: true,
		},
		{
			name: "tool call: name and arguments counted",
			evs:  oaiToolStream(),
			want: llm.Usage{InputTokens: 81, OutputTokens: 17, Complete: true}, wantText: -1,
			finish: "tool_calls", model: oaiModel, first: true, done: true,
		},
		{
			name: "reasoning_content (vLLM, DeepSeek) and reasoning (OpenRouter, Ollama), both sent: the longer counts",
			evs: []ev{
				{"", vllmChunk(`{"reasoning_content":"Let me think."}`, "null", "")},
				{"", vllmChunk(`{"reasoning":"Hmm"}`, "null", "")},
				{"", vllmChunk(`{"reasoning":"abc","reasoning_content":"abcdef"}`, "null", "")},
				{"", vllmChunk(`{"content":"42"}`, `"stop"`, "")},
				{"", "[DONE]"},
			},
			want: llm.Usage{OutputTokens: 6, OutputEstimated: true, Complete: true}, wantText: 24,
			finish: "stop", model: "meta-llama/Llama-3.1-8B-Instruct", first: true, done: true,
		},
		{
			name: "refusal and legacy function_call",
			evs: []ev{
				{"", oaiChunk(oaiDelta(`{"refusal":"I can't help"}`, "null"), "")},
				{"", oaiChunk(oaiDelta(`{"function_call":{"name":"f","arguments":"{}"}}`, "null"), "")},
				{"", oaiChunk(oaiDelta(`{"audio":{"id":"audio_1","transcript":"hey","data":"AAAA"}}`, "null"), "")},
			},
			want: llm.Usage{OutputTokens: 5, OutputEstimated: true}, wantText: 12 + 3 + 3,
			model: oaiModel, first: true,
		},
		{
			name: "error chunk mid-stream",
			evs: []ev{
				withUsage[1],
				{"", `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`},
			},
			want: llm.Usage{OutputTokens: 2, OutputEstimated: true}, wantText: 5,
			model: oaiModel, first: true, errType: "server_error",
		},
		{
			name: "error chunk without a type",
			evs:  []ev{{"", `{"error":"upstream went away"}`}},
			want: llm.Usage{}, wantText: 0, errType: "error",
		},
		{
			name: "Azure content filter chunk (no choices, no usage), Ollama usage without details",
			evs: []ev{
				{"", `{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}`},
				{"", `{"id":"chatcmpl-478","object":"chat.completion.chunk","created":1750000002,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Yo"},"finish_reason":null}]}`},
				{"", `{"id":"chatcmpl-478","object":"chat.completion.chunk","created":1750000002,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`},
				{"", `{"id":"chatcmpl-478","object":"chat.completion.chunk","created":1750000002,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":26,"completion_tokens":298,"total_tokens":324}}`},
				{"", "[DONE]"},
			},
			want: llm.Usage{InputTokens: 26, OutputTokens: 298, Complete: true}, wantText: 2,
			finish: "stop", model: "llama3.2", first: true, done: true,
		},
		{
			name: "odd numbers: cached above prompt is clamped, negatives and strings ignored, 12.0 accepted",
			evs: []ev{
				{"", oaiChunk(`[]`, `{"prompt_tokens":10.0,"completion_tokens":-4,"prompt_tokens_details":{"cached_tokens":50},"completion_tokens_details":{"reasoning_tokens":"7"}}`)},
				{"", "[DONE]"},
			},
			want: llm.Usage{CacheReadTokens: 10, Complete: true}, wantText: 0, model: oaiModel, done: true,
		},
		{
			name: "garbage events are ignored",
			evs:  []ev{{"", "not json"}, {"", `{"choices":`}, {"", `[1,2]`}, {"", `{"usage":{"prompt_tokens":}`}, {"", "[DONE]"}},
			want: llm.Usage{Complete: true}, wantText: 0, done: true,
		},
	}
}

func checkChat(t *testing.T, tc chatCase, m *ChatMeter, clock *countingClock, where string) {
	t.Helper()
	wantText := tc.wantText
	if wantText < 0 {
		wantText = oaiTextBytes(t, tc.evs)
	}
	if got := m.Usage(); got != tc.want {
		t.Fatalf("%s: usage %+v\nwant      %+v", where, got, tc.want)
	}
	if m.TextBytes() != wantText || m.ReasoningTokens() != tc.reasoning || m.FinishReason() != tc.finish ||
		m.Model() != tc.model || m.ErrorType() != tc.errType || m.Done() != tc.done {
		t.Fatalf("%s: text %d (want %d) reasoning %d finish %q model %q error %q done %v",
			where, m.TextBytes(), wantText, m.ReasoningTokens(), m.FinishReason(), m.Model(), m.ErrorType(), m.Done())
	}
	if tc.first {
		if clock.calls != 1 || !m.FirstToken().Equal(oaiT0.Add(time.Second)) {
			t.Fatalf("%s: first token %v after %d clock calls", where, m.FirstToken(), clock.calls)
		}
	} else if !m.FirstToken().IsZero() || clock.calls != 0 {
		t.Fatalf("%s: first token %v, want none", where, m.FirstToken())
	}
}

func TestChatMeter(t *testing.T) {
	for _, tc := range chatCases() {
		t.Run(tc.name, func(t *testing.T) {
			clock := &countingClock{t0: oaiT0}
			m := &ChatMeter{Now: clock.now}
			for _, e := range tc.evs {
				m.Event([]byte(e.event), []byte(e.data))
			}
			checkChat(t, tc, m, clock, "events")

			m.Reset()
			if m.Usage() != (llm.Usage{}) || m.Now == nil || m.Model() != "" {
				t.Fatalf("Reset left %+v", m)
			}
		})
	}
}

// TestChatSSESplits feeds every case's raw stream split at every byte
// boundary, in every line-ending style: the results never depend on
// chunking.
func TestChatSSESplits(t *testing.T) {
	for _, tc := range chatCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, eol := range []string{"\n", "\r\n", "\r"} {
				b := []byte(": OPENROUTER PROCESSING" + eol + eol + encodeSSE(eol, tc.evs...))
				for i := 0; i <= len(b); i++ {
					clock := &countingClock{t0: oaiT0}
					a := &ChatSSE{}
					a.Meter.Now = clock.now
					a.Feed(b[:i])
					a.Feed(b[i:])
					checkChat(t, tc, &a.Meter, clock, fmt.Sprintf("eol %q split %d", eol, i))
				}
				clock := &countingClock{t0: oaiT0}
				a := &ChatSSE{}
				a.Meter.Now = clock.now
				for i := range b {
					a.Feed(b[i : i+1])
				}
				checkChat(t, tc, &a.Meter, clock, fmt.Sprintf("eol %q byte by byte", eol))
			}
		})
	}
}

func TestChatMeterBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    llm.Usage
		finish  string
		model   string
		errType string
		wantErr bool
	}{
		{
			name: "completion: usage not last, nested usage ignored",
			body: `{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {"role": "assistant", "content": "{\"usage\":{\"prompt_tokens\":99999}}", "refusal": null, "annotations": [],
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "report", "arguments": "{\"usage\":{\"completion_tokens\":5}}"}}]},
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0, "cache_write_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}`,
			want: llm.Usage{InputTokens: 93, CacheReadTokens: 1024, OutputTokens: 46, Complete: true}, finish: "tool_calls", model: "gpt-4o-2024-08-06",
		},
		{
			name: "no usage: output estimated from the message",
			body: `{"id":"x","object":"chat.completion","model":"local","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, friend"},"finish_reason":"stop"}]}`,
			want: llm.Usage{OutputTokens: 5, OutputEstimated: true, Complete: true}, finish: "stop", model: "local",
		},
		{
			name: "usage null",
			body: `{"choices":[],"usage":null}`,
			want: llm.Usage{Complete: true},
		},
		{
			name: "error body with a 200",
			body: `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`,
			want: llm.Usage{Complete: true}, errType: "server_error",
		},
		{name: "not JSON", body: "<html>Bad Gateway</html>", wantErr: true},
		{name: "truncated", body: `{"id":"x","choices":[{"message":{"content":"Hel`, wantErr: true},
		{name: "empty", body: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m ChatMeter
			err := m.Body([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				if m.Usage().Complete {
					t.Fatal("complete after an error")
				}
				return
			}
			if got := m.Usage(); got != tc.want || m.FinishReason() != tc.finish || m.Model() != tc.model || m.ErrorType() != tc.errType {
				t.Fatalf("usage %+v finish %q model %q error %q\nwant  %+v", got, m.FinishReason(), m.Model(), m.ErrorType(), tc.want)
			}
			if !m.FirstToken().IsZero() {
				t.Error("Body stamped a first token")
			}
		})
	}
}

// The Responses API fixtures, in the shapes of openai-go's
// ResponseStreamEventUnion and Response.

const respCreated = `{"id":"resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b","object":"response","created_at":1756315696,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"` + oaiModel + `","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":"medium","summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}`

func respFinal(status, errObj, incomplete, usage string) string {
	return `{"id":"resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b","object":"response","created_at":1756315696,"status":"` + status + `","background":false,"error":` + errObj + `,"incomplete_details":` + incomplete + `,"instructions":null,"max_output_tokens":null,"model":"` + oaiModel + `","output":[{"id":"rs_1","type":"reasoning","summary":[]},{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello caf\u00e9 {\"usage\":{\"input_tokens\":9}}"}],"role":"assistant"}],"parallel_tool_calls":true,"reasoning":{"effort":"medium","summary":null},"store":true,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"usage":` + usage + `,"user":null,"metadata":{}}`
}

const respUsage = `{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1000},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":100},"total_tokens":1500}`

func respEvent(typ string, seq int, rest string) ev {
	return ev{typ, fmt.Sprintf(`{"type":%q,"sequence_number":%d,%s}`, typ, seq, rest)}
}

func respTextDelta(seq int, delta string) ev {
	return respEvent("response.output_text.delta", seq, `"item_id":"msg_1","output_index":1,"content_index":0,"delta":`+delta+`,"logprobs":[],"obfuscation":"k2P"`)
}

// respStream is a Responses API stream up to (and without) its terminal
// event: reasoning item, a message with three text deltas (13 bytes).
func respStream() []ev {
	return []ev{
		respEvent("response.created", 0, `"response":`+respCreated),
		respEvent("response.in_progress", 1, `"response":`+respCreated),
		respEvent("response.output_item.added", 2, `"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}`),
		respEvent("response.output_item.done", 3, `"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}`),
		respEvent("response.output_item.added", 4, `"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}`),
		respEvent("response.content_part.added", 5, `"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`),
		respTextDelta(6, `"Hello"`),
		respTextDelta(7, `" caf\u00e9"`),
		respTextDelta(8, `"!\n"`),
		respEvent("response.output_text.done", 9, `"item_id":"msg_1","output_index":1,"content_index":0,"text":"Hello caf\u00e9!\n","logprobs":[]`),
		respEvent("response.content_part.done", 10, `"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello caf\u00e9!\n"}`),
		respEvent("response.output_item.done", 11, `"output_index":1,"item":{"id":"msg_1","type":"message","status":"completed","content":[],"role":"assistant"}`),
	}
}

func withTerminal(typ, response string) []ev {
	return append(respStream(), respEvent(typ, 12, `"response":`+response))
}

type respCase struct {
	name     string
	evs      []ev
	bare     bool // send no event names
	want     llm.Usage
	wantText int64
	status   string
	errType  string
	first    bool
}

func respCases() []respCase {
	return []respCase{
		{
			name: "response.completed",
			evs:  withTerminal("response.completed", respFinal("completed", "null", "null", respUsage)),
			want: oaiWant, wantText: 13, status: "completed", first: true,
		},
		{
			name: "same events without event names",
			evs:  withTerminal("response.completed", respFinal("completed", "null", "null", respUsage)), bare: true,
			want: oaiWant, wantText: 13, status: "completed", first: true,
		},
		{
			name: "response.incomplete (max_output_tokens)",
			evs:  withTerminal("response.incomplete", respFinal("incomplete", "null", `{"reason":"max_output_tokens"}`, `{"input_tokens":50,"input_tokens_details":{"cached_tokens":0},"output_tokens":16,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":66}`)),
			want: llm.Usage{InputTokens: 50, OutputTokens: 16, Complete: true}, wantText: 13, status: "incomplete", first: true,
		},
		{
			name: "response.failed without usage: its error code, output estimated",
			evs:  withTerminal("response.failed", respFinal("failed", `{"code":"server_error","message":"The model failed to generate a response."}`, "null", "null")),
			want: llm.Usage{OutputTokens: 4, OutputEstimated: true, Complete: true}, wantText: 13, status: "failed", errType: "server_error", first: true,
		},
		{
			name: "response.failed with usage and no error code",
			evs:  withTerminal("response.failed", respFinal("failed", "null", "null", respUsage)),
			want: oaiWant, wantText: 13, status: "failed", errType: "response_failed", first: true,
		},
		{
			name: "error event mid-stream",
			evs:  append(respStream()[:8], ev{"error", `{"type":"error","code":"rate_limit_exceeded","message":"Rate limit reached","param":null,"sequence_number":8}`}),
			want: llm.Usage{OutputTokens: 3, OutputEstimated: true}, wantText: 11, status: "", errType: "rate_limit_exceeded", first: true,
		},
		{
			name: "error event with a nested error object",
			evs:  []ev{{"error", `{"type":"error","error":{"type":"invalid_request_error","code":null,"message":"bad","param":null},"sequence_number":1}`}},
			want: llm.Usage{}, errType: "invalid_request_error",
		},
		{
			name: "cut after the deltas",
			evs:  respStream()[:9],
			want: llm.Usage{OutputTokens: 4, OutputEstimated: true}, wantText: 13, first: true,
		},
		{
			name: "tool, reasoning summary and audio deltas",
			evs: []ev{
				respEvent("response.reasoning_summary_text.delta", 1, `"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Plan**"`),
				respEvent("response.function_call_arguments.delta", 2, `"item_id":"fc_1","output_index":1,"delta":"{\"city\":\"Paris\"}"`),
				respEvent("response.audio.delta", 3, `"delta":"UklGRiQAAABXQVZF","response_id":"resp_1"`),
				respEvent("response.audio.transcript.delta", 4, `"delta":"hi","response_id":"resp_1"`),
				respEvent("response.output_text.delta", 5, `"item_id":"msg_1","output_index":2,"content_index":0,"delta":""`),
			},
			want: llm.Usage{OutputTokens: 7, OutputEstimated: true}, wantText: 8 + 16 + 2, first: true,
		},
	}
}

func checkResp(t *testing.T, tc respCase, m *ResponsesMeter, clock *countingClock, where string) {
	t.Helper()
	if got := m.Usage(); got != tc.want {
		t.Fatalf("%s: usage %+v\nwant      %+v", where, got, tc.want)
	}
	if m.TextBytes() != tc.wantText || m.Status() != tc.status || m.ErrorType() != tc.errType {
		t.Fatalf("%s: text %d (want %d) status %q error %q", where, m.TextBytes(), tc.wantText, m.Status(), m.ErrorType())
	}
	if tc.want.Complete && tc.want.CacheReadTokens > 0 && m.ReasoningTokens() != 100 {
		t.Fatalf("%s: reasoning %d", where, m.ReasoningTokens())
	}
	if tc.first {
		if clock.calls != 1 || !m.FirstToken().Equal(oaiT0.Add(time.Second)) {
			t.Fatalf("%s: first token %v after %d clock calls", where, m.FirstToken(), clock.calls)
		}
	} else if !m.FirstToken().IsZero() {
		t.Fatalf("%s: first token %v, want none", where, m.FirstToken())
	}
}

func (tc respCase) events() []ev {
	if !tc.bare {
		return tc.evs
	}
	out := make([]ev, len(tc.evs))
	for i, e := range tc.evs {
		out[i] = ev{"", e.data}
	}
	return out
}

func TestResponsesMeter(t *testing.T) {
	for _, tc := range respCases() {
		t.Run(tc.name, func(t *testing.T) {
			clock := &countingClock{t0: oaiT0}
			m := &ResponsesMeter{Now: clock.now}
			for _, e := range tc.events() {
				m.Event([]byte(e.event), []byte(e.data))
			}
			checkResp(t, tc, m, clock, "events")
			if tc.status != "" && m.Model() != oaiModel {
				t.Errorf("model %q", m.Model())
			}
			m.Reset()
			if m.Usage() != (llm.Usage{}) || m.Now == nil {
				t.Fatalf("Reset left %+v", m)
			}
		})
	}
}

func TestResponsesSSESplits(t *testing.T) {
	for _, tc := range respCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, eol := range []string{"\n", "\r\n"} {
				b := []byte(encodeSSE(eol, tc.events()...))
				for i := 0; i <= len(b); i++ {
					clock := &countingClock{t0: oaiT0}
					a := &ResponsesSSE{}
					a.Meter.Now = clock.now
					a.Feed(b[:i])
					a.Feed(b[i:])
					checkResp(t, tc, &a.Meter, clock, fmt.Sprintf("eol %q split %d", eol, i))
				}
			}
		})
	}
}

func TestResponsesMeterBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    llm.Usage
		status  string
		errType string
		wantErr bool
	}{
		{name: "completed", body: respFinal("completed", "null", "null", respUsage), want: oaiWant, status: "completed"},
		{name: "incomplete", body: respFinal("incomplete", "null", `{"reason":"content_filter"}`, `{"input_tokens":7,"output_tokens":2}`), want: llm.Usage{InputTokens: 7, OutputTokens: 2, Complete: true}, status: "incomplete"},
		{name: "failed", body: respFinal("failed", `{"code":"vector_store_timeout","message":"timed out"}`, "null", "null"), want: llm.Usage{Complete: true}, status: "failed", errType: "vector_store_timeout"},
		{name: "background, queued", body: `{"id":"resp_1","object":"response","status":"queued","background":true,"output":[],"usage":null}`, want: llm.Usage{Complete: true}, status: "queued"},
		{name: "not JSON", body: "upstream connect error", wantErr: true},
		{name: "truncated", body: `{"id":"resp_1","output":[{"content":"x`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m ResponsesMeter
			err := m.Body([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if got := m.Usage(); got != tc.want || m.Status() != tc.status || m.ErrorType() != tc.errType {
				t.Fatalf("usage %+v status %q error %q\nwant  %+v", got, m.Status(), m.ErrorType(), tc.want)
			}
		})
	}
}

func TestEmbeddingsUsage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    llm.Usage
		wantErr bool
	}{
		{
			name: "floats",
			body: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]},{"object":"embedding","index":1,"embedding":[1e-3,2.5E-2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
			want: llm.Usage{InputTokens: 8, Complete: true},
		},
		{
			name: "base64, usage first",
			body: `{"usage":{"prompt_tokens":5,"total_tokens":5},"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAAAAA8D8="}],"model":"nomic-embed-text"}`,
			want: llm.Usage{InputTokens: 5, Complete: true},
		},
		{name: "only total_tokens", body: `{"data":[],"usage":{"total_tokens":11}}`, want: llm.Usage{InputTokens: 11, Complete: true}},
		{name: "no usage", body: `{"object":"list","data":[]}`, want: llm.Usage{Complete: true}},
		{name: "usage null", body: `{"data":[],"usage":null}`, want: llm.Usage{Complete: true}},
		{name: "usage not an object", body: `{"data":[],"usage":7}`, wantErr: true},
		{name: "not JSON", body: `[1,2]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EmbeddingsUsage([]byte(tc.body))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("usage %+v err %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestErrorType(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"message":"Incorrect API key provided: sk-proj-****","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`: "invalid_request_error",
		`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`:          "insufficient_quota",
		`{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`:                              "DeploymentNotFound",
		`{"error":{"message":"x","type":null,"param":null,"code":"rate_limit_exceeded"}}`:                                                       "rate_limit_exceeded",
		`{"error":{"message":"Provider returned error","code":429}}`:                                                                            "",
		`{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}`:                               "BadRequestError",
		`{"type":"BadRequestError"}`:                "",
		`{"error":{"type":"bad type with spaces"}}`: "",
		`{"error":"model not found"}`:               "",
		`<html>502</html>`:                          "",
	} {
		if got := ErrorType([]byte(body)); got != want {
			t.Errorf("ErrorType(%s) = %q, want %q", body, got, want)
		}
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1200": 1200, "12.0": 12, "1e3": 1000, "9223372036854775807": -1, "99999999999999999999": -1,
		"-1": -1, "1.5": -1, "null": -1, `"7"`: -1, "true": -1, "": -1, "-0": 0} {
		n, ok := parseCount([]byte(in))
		if !ok {
			n = -1
		}
		if in == "9223372036854775807" {
			want = 9223372036854775807
		}
		if n != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
}

// The filter: what a client that did not ask for include_usage receives.

// filterRun feeds raw through a filter in the given chunks and returns
// what reached the client.
func filterRun(t *testing.T, chunks [][]byte) (string, *ChatFilter) {
	t.Helper()
	var out bytes.Buffer
	f := &ChatFilter{W: &out}
	for _, c := range chunks {
		if n, err := f.Write(c); err != nil || n != len(c) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := f.Finish(); err != nil {
		t.Fatal(err)
	}
	if f.Written() != int64(out.Len()) {
		t.Fatalf("Written %d, wrote %d", f.Written(), out.Len())
	}
	return out.String(), f
}

func TestChatFilter(t *testing.T) {
	for _, tc := range []struct {
		name            string
		in, want        func(eol string) string
		dropped, strip  int
		usage           llm.Usage
		eols            []string
		skipSplitChecks bool
	}{
		{
			name:    "OpenAI stream: usage chunk dropped, usage:null cut",
			in:      func(eol string) string { return encodeSSE(eol, oaiChatStream(true)...) },
			want:    func(eol string) string { return encodeSSE(eol, oaiChatStream(false)...) },
			dropped: 1, strip: 5, usage: oaiWant,
		},
		{
			name: "comments, a leading blank line and keep-alives pass",
			in: func(eol string) string {
				s := oaiChatStream(true)
				return eol + ": OPENROUTER PROCESSING" + eol + eol + encodeSSE(eol, s[:2]...) + ":" + eol + eol + encodeSSE(eol, s[2:]...)
			},
			want: func(eol string) string {
				s := oaiChatStream(false)
				return eol + ": OPENROUTER PROCESSING" + eol + eol + encodeSSE(eol, s[:2]...) + ":" + eol + eol + encodeSSE(eol, s[2:]...)
			},
			dropped: 1, strip: 5, usage: oaiWant,
		},
		{
			name: "usage:null first or alone, and with spaces",
			in: func(eol string) string {
				return encodeSSE(eol, ev{"", `{"usage":null,"choices":[{"index":0,"delta":{"content":"a"}}]}`}, ev{"", `{"usage":null}`},
					ev{"", `{"choices":[{"index":0,"delta":{"content":"b"}}] , "usage" : null }`}, ev{"", `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`}, ev{"", "[DONE]"})
			},
			want: func(eol string) string {
				return encodeSSE(eol, ev{"", `{"choices":[{"index":0,"delta":{"content":"a"}}]}`}, ev{"", `{}`},
					ev{"", `{"choices":[{"index":0,"delta":{"content":"b"}}] }`}, ev{"", "[DONE]"})
			},
			dropped: 1, strip: 3, usage: llm.Usage{InputTokens: 3, OutputTokens: 2, Complete: true},
		},
		{
			name: "usage on a content chunk passes (vLLM), no [DONE] terminator",
			in: func(eol string) string {
				return encodeSSE(eol, ev{"", vllmChunk(`{"content":"Hi"}`, `"stop"`, `{"prompt_tokens":20,"completion_tokens":3}`)}) + "data: [DONE]" + eol
			},
			want: func(eol string) string {
				return encodeSSE(eol, ev{"", vllmChunk(`{"content":"Hi"}`, `"stop"`, `{"prompt_tokens":20,"completion_tokens":3}`)}) + "data: [DONE]" + eol
			},
			usage: llm.Usage{InputTokens: 20, OutputTokens: 3, Complete: true},
		},
		{
			name: "multi-line data and extra fields are left alone",
			in: func(eol string) string {
				return "id: 7" + eol + "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]," + eol + "data: \"usage\":null}" + eol + eol +
					"data:{\"usage\":null,\"choices\":[]}" + eol + eol
			},
			want: func(eol string) string {
				return "id: 7" + eol + "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]," + eol + "data: \"usage\":null}" + eol + eol +
					"data:{\"choices\":[]}" + eol + eol
			},
			strip: 1, usage: llm.Usage{OutputTokens: 1, OutputEstimated: true},
		},
		{
			// The usage chunk, cut before its blank line, is never
			// dispatched (to the meter, or by the client's SSE parser):
			// its bytes pass as received.
			name: "cut mid-event: the unterminated tail is written by Finish",
			in:   func(eol string) string { s := encodeSSE(eol, oaiChatStream(true)...); return s[:len(s)-40] },
			want: func(eol string) string {
				u := encodeSSE(eol, oaiChatStream(true)[5])
				return encodeSSE(eol, oaiChatStream(false)[:5]...) + u[:len(u)-26]
			},
			strip: 5, usage: llm.Usage{OutputTokens: 7, OutputEstimated: true},
			eols: []string{"\n"},
		},
		{
			name: "cut after the usage chunk",
			in:   func(eol string) string { s := encodeSSE(eol, oaiChatStream(true)...); return s[:len(s)-10] },
			want: func(eol string) string {
				done := "data: [DONE]" + eol + eol
				return encodeSSE(eol, oaiChatStream(false)[:5]...) + done[:len(done)-10]
			},
			dropped: 1, strip: 5, usage: oaiWant,
			eols: []string{"\n", "\r\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eols := tc.eols
			if eols == nil {
				eols = []string{"\n", "\r\n", "\r"}
			}
			for _, eol := range eols {
				in, want := []byte(tc.in(eol)), tc.want(eol)
				check := func(where string, chunks [][]byte) {
					t.Helper()
					got, f := filterRun(t, chunks)
					if got != want {
						t.Fatalf("eol %q %s: client got\n%q\nwant\n%q", eol, where, got, want)
					}
					if f.Dropped() != tc.dropped || f.Stripped() != tc.strip {
						t.Fatalf("eol %q %s: dropped %d stripped %d", eol, where, f.Dropped(), f.Stripped())
					}
					if u := f.SSE.Meter.Usage(); u != tc.usage {
						t.Fatalf("eol %q %s: usage %+v, want %+v", eol, where, u, tc.usage)
					}
				}
				check("whole", [][]byte{in})
				for i := 0; i <= len(in); i++ {
					check(fmt.Sprintf("split %d", i), [][]byte{in[:i], in[i:]})
				}
				var bytewise [][]byte
				for i := range in {
					bytewise = append(bytewise, in[i:i+1])
				}
				check("byte by byte", bytewise)
			}
		})
	}
}

// TestChatFilterEventsWrittenWhole checks that an event is written
// as soon as its blank line arrives, and a partial one is held.
func TestChatFilterEventsWrittenWhole(t *testing.T) {
	var out bytes.Buffer
	f := &ChatFilter{W: &out}
	s := oaiChatStream(true)
	e0, e1 := encodeSSE("\n", s[0]), encodeSSE("\n", s[1])
	f.Write([]byte(e0 + e1[:10]))
	if want := encodeSSE("\n", oaiChatStream(false)[0]); out.String() != want {
		t.Fatalf("after one event and a half: %q, want %q", out.String(), want)
	}
	f.Write([]byte(e1[10 : len(e1)-1]))
	if out.Len() != len(encodeSSE("\n", oaiChatStream(false)[0])) {
		t.Fatalf("a partial event was written: %q", out.String())
	}
	f.Write([]byte(e1[len(e1)-1:]))
	if want := encodeSSE("\n", oaiChatStream(false)[:2]...); out.String() != want {
		t.Fatalf("after two events: %q", out.String())
	}
}

type failWriter struct {
	n, failAt int
	buf       bytes.Buffer
}

var errFilterGone = errors.New("write: broken pipe")

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n >= w.failAt {
		return 0, errFilterGone
	}
	return w.buf.Write(p)
}

func TestChatFilterClientGone(t *testing.T) {
	// The client fails on the third write (the first event, its usage:null
	// cut, took two), but the whole stream is metered, and Write and Finish
	// report the error.
	w := &failWriter{failAt: 3}
	f := &ChatFilter{W: w}
	var firstErr error
	for _, e := range oaiChatStream(true) {
		if _, err := f.Write([]byte(encodeSSE("\n", e))); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if !errors.Is(firstErr, errFilterGone) || !errors.Is(f.Finish(), errFilterGone) {
		t.Fatalf("errors %v %v", firstErr, f.Finish())
	}
	if u := f.SSE.Meter.Usage(); u != oaiWant {
		t.Fatalf("usage %+v", u)
	}
	if f.Written() != int64(w.buf.Len()) || w.buf.String() != encodeSSE("\n", oaiChatStream(false)[0]) {
		t.Fatalf("written %d: %q", f.Written(), w.buf.String())
	}

	// A short write is an error too.
	f = &ChatFilter{W: shortWriter{}}
	if _, err := f.Write([]byte("data: [DONE]\n\n")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }

func TestChatFilterOversizedEvent(t *testing.T) {
	var out bytes.Buffer
	f := &ChatFilter{W: &out}
	big := bytes.Repeat([]byte("x"), MaxHeldEvent+1)
	f.Write([]byte("data: "))
	f.Write(big)
	tail := encodeSSE("\n", oaiChatStream(true)[5:]...)
	f.Write([]byte("\n\n" + tail))
	if err := f.Finish(); err != nil {
		t.Fatal(err)
	}
	if want := "data: " + string(big) + "\n\n" + tail; out.String() != want {
		t.Fatalf("passthrough after an oversized event lost bytes: %d vs %d", out.Len(), len(want))
	}
	if u := f.SSE.Meter.Usage(); u != oaiWant {
		t.Fatalf("usage %+v", u)
	}
}

func TestChatFilterReset(t *testing.T) {
	var a, b bytes.Buffer
	f := &ChatFilter{W: &a}
	f.SSE.Meter.Now = time.Now
	f.Write([]byte(encodeSSE("\n", oaiChatStream(true)...) + "data: partial"))
	f.Reset(&b)
	if f.W != &b || f.Written() != 0 || f.Dropped() != 0 || f.SSE.Meter.Usage() != (llm.Usage{}) || f.SSE.Meter.Now == nil || f.SSE.Scanner.Pending() {
		t.Fatalf("Reset left state: %+v", f)
	}
	got, _ := filterRun(t, [][]byte{[]byte(encodeSSE("\n", oaiChatStream(true)...))})
	f.Write([]byte(encodeSSE("\n", oaiChatStream(true)...)))
	if b.String() != got {
		t.Fatal("a reset filter behaves differently")
	}
}

// FuzzOpenAIChatFilter: whatever the input, the output does not depend on
// how it is chunked, and a stream with no usage member passes unchanged.
func FuzzOpenAIChatFilter(f *testing.F) {
	f.Add([]byte(encodeSSE("\n", oaiChatStream(true)...)), 17)
	f.Add([]byte(encodeSSE("\r\n", oaiChatStream(true)...)), 3)
	f.Add([]byte(encodeSSE("\r", oaiToolStream()...)), 100)
	f.Add([]byte("data: {\"usage\":null}\r\r\n\n\r\ndata: x"), 1)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 || step > 1<<16 {
			step = 1
		}
		var whole, chunked bytes.Buffer
		f1 := &ChatFilter{W: &whole}
		f1.Write(in)
		f1.Finish()
		f2 := &ChatFilter{W: &chunked}
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			f2.Write(p[:n])
			p = p[n:]
		}
		f2.Finish()
		if whole.String() != chunked.String() {
			t.Fatalf("chunking changed the output:\n%q\n%q", whole.String(), chunked.String())
		}
		if u1, u2 := f1.SSE.Meter.Usage(), f2.SSE.Meter.Usage(); u1 != u2 {
			t.Fatalf("chunking changed the usage: %+v vs %+v", u1, u2)
		}
		if !bytes.Contains(in, []byte("usage")) && whole.String() != string(in) {
			t.Fatalf("a stream without usage changed:\n%q\n%q", in, whole.String())
		}
	})
}

func FuzzOpenAIChatMeter(f *testing.F) {
	f.Add([]byte(encodeSSE("\n", oaiChatStream(true)...)))
	f.Add([]byte(encodeSSE("\n", oaiToolStream()...)))
	f.Add([]byte(encodeSSE("\n", respStream()...)))
	f.Fuzz(func(t *testing.T, in []byte) {
		var a ChatSSE
		a.Feed(in)
		u := a.Meter.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		var r ResponsesSSE
		r.Feed(in)
		if u := r.Meter.Usage(); u.InputTokens < 0 || u.OutputTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		var m ChatMeter
		_ = m.Body(in)
		var rm ResponsesMeter
		_ = rm.Body(in)
		_, _ = EmbeddingsUsage(in)
	})
}

// Allocations and benchmarks.

// oaiBenchStream is a 300-chunk chat stream as OpenAI sends it with
// include_usage: role chunk, 298 content chunks with non-ASCII and escapes,
// the finish chunk, the usage chunk and [DONE].
func oaiBenchStream(n int) []ev {
	words := []string{`"Let me look at "`, `"the failing test \u2014 "`, `"it asserts \"ok\"\n"`, `"but the handler "`, `"returns caf\u00e9 \ud83d\ude00 "`}
	evs := []ev{{"", oaiChunk(oaiDelta(oaiDeltas[0], "null"), "null")}}
	for i := 0; i < n-2; i++ {
		evs = append(evs, ev{"", oaiChunk(oaiDelta(`{"content":`+words[i%len(words)]+`}`, "null"), "null")})
	}
	return append(evs,
		ev{"", oaiChunk(oaiDelta(`{}`, `"stop"`), "null")},
		ev{"", oaiChunk(`[]`, oaiUsage)},
		ev{"", "[DONE]"})
}

func TestMetersSteadyStateAllocs(t *testing.T) {
	allocs := func(n int, run func(b []byte)) float64 {
		b := []byte(encodeSSE("\n", oaiBenchStream(n)...))
		run(b)
		return testing.AllocsPerRun(20, func() { run(b) })
	}
	feed := func(fn func([]byte)) func([]byte) {
		return func(b []byte) {
			for p := b; len(p) > 0; {
				n := min(1400, len(p))
				fn(p[:n])
				p = p[n:]
			}
		}
	}
	a := &ChatSSE{}
	meter := feed(func(p []byte) { a.Feed(p) })
	meterRun := func(b []byte) { a.Reset(); meter(b) }
	if s, l := allocs(10, meterRun), allocs(500, meterRun); s != l {
		t.Errorf("chat meter: %v allocs for 500 chunks vs %v for 10", l, s)
	}
	f := &ChatFilter{W: io.Discard}
	filterRun := func(b []byte) { f.Reset(io.Discard); feed(func(p []byte) { f.Write(p) })(b); f.Finish() }
	if s, l := allocs(10, filterRun), allocs(500, filterRun); s != l {
		t.Errorf("chat filter: %v allocs for 500 chunks vs %v for 10", l, s)
	}

	m := &ChatMeter{Now: time.Now}
	chunk := []byte(oaiChunk(oaiDelta(`{"content":"caf\u00e9 \"x\""}`, "null"), "null"))
	m.Event(nil, chunk)
	if n := testing.AllocsPerRun(100, func() { m.Event(nil, chunk) }); n != 0 {
		t.Errorf("content chunk: %v allocs", n)
	}
	r := &ResponsesMeter{Now: time.Now}
	delta := respTextDelta(6, `"caf\u00e9"`)
	name, data := []byte(delta.event), []byte(delta.data)
	r.Event(name, data)
	if n := testing.AllocsPerRun(100, func() { r.Event(name, data) }); n != 0 {
		t.Errorf("responses delta: %v allocs", n)
	}
}

// BenchmarkOpenAIChatMeterStream meters a 300-chunk chat stream through
// scanner and meter, fed in 1400-byte chunks.
func BenchmarkOpenAIChatMeterStream(b *testing.B) {
	evs := oaiBenchStream(300)
	s := []byte(encodeSSE("\n", evs...))
	a := &ChatSSE{}
	a.Meter.Now = time.Now
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		for p := s; len(p) > 0; {
			n := min(1400, len(p))
			a.Feed(p[:n])
			p = p[n:]
		}
		if a.Meter.Usage() != oaiWant {
			b.Fatal(a.Meter.Usage())
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkOpenAIChatFilterStream relays the same stream one event per
// Write through the filter (usage:null cut from 299 chunks, the usage chunk
// dropped), as a relay for a client without include_usage does.
func BenchmarkOpenAIChatFilterStream(b *testing.B) {
	evs := oaiBenchStream(300)
	chunks := make([][]byte, len(evs))
	total := 0
	for i, e := range evs {
		chunks[i] = []byte(encodeSSE("\n", e))
		total += len(chunks[i])
	}
	f := &ChatFilter{W: io.Discard}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		f.Reset(io.Discard)
		for _, c := range chunks {
			f.Write(c)
		}
		f.Finish()
		if f.SSE.Meter.Usage() != oaiWant || f.Dropped() != 1 {
			b.Fatal(f.SSE.Meter.Usage())
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkOpenAIResponsesMeterStream meters a Responses stream with 300
// text deltas.
func BenchmarkOpenAIResponsesMeterStream(b *testing.B) {
	evs := respStream()[:6]
	for i := 0; i < 300; i++ {
		evs = append(evs, respTextDelta(6+i, `"returns caf\u00e9 \ud83d\ude00 "`))
	}
	evs = append(evs, respEvent("response.completed", 400, `"response":`+respFinal("completed", "null", "null", respUsage)))
	s := []byte(encodeSSE("\n", evs...))
	a := &ResponsesSSE{}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		for p := s; len(p) > 0; {
			n := min(1400, len(p))
			a.Feed(p[:n])
			p = p[n:]
		}
		if a.Meter.Usage() != oaiWant {
			b.Fatal(a.Meter.Usage())
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}
