package cache

import (
	"errors"
	"fmt"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// Surfaces are the surfaces whose responses the cache can keep and replay,
// in the ledger's names: the Anthropic Messages API and token counting
// (also in their Vertex and Bedrock shapes; Bedrock's binary event stream
// excepted) and OpenAI's chat completions, Responses and embeddings.
var Surfaces = []llm.Surface{
	llm.SurfaceAnthropicMessages,
	llm.SurfaceAnthropicCountTokens,
	llm.SurfaceOpenAIChat,
	llm.SurfaceOpenAIResponses,
	llm.SurfaceOpenAIEmbeddings,
	llm.SurfaceBedrockInvoke,
	llm.SurfaceBedrockCountTokens,
	llm.SurfaceVertexRawPredict,
	llm.SurfaceVertexStreamRawPredict,
	llm.SurfaceVertexCountTokens,
}

// Supported reports whether the cache can keep responses of surface s.
func Supported(s llm.Surface) bool {
	for _, c := range Surfaces {
		if c == s {
			return true
		}
	}
	return false
}

// ErrNotCacheable wraps every reason Check refuses a response.
var ErrNotCacheable = errors.New("not cacheable")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCacheable}, args...)...)
}

// anthropicStops are the stop reasons of a Messages response that ended
// normally. max_tokens and model_context_window_exceeded are truncations,
// refusal is a refusal, pause_turn asks the client to continue the turn.
var anthropicStops = map[string]bool{"end_turn": true, "stop_sequence": true, "tool_use": true}

// chatStops are the finish reasons of a chat completion that ended
// normally; length is a truncation, content_filter a refusal.
var chatStops = map[string]bool{"stop": true, "tool_calls": true, "function_call": true}

// Check reports whether body, a complete 200 response of surface s with
// Content-Type ct, may be replayed to the next identical request: a stream
// that reached its end (message_stop, [DONE], response.completed) with a
// normal stop reason, or a body with one, and no refusal or error in it.
func Check(s llm.Surface, ct string, body []byte) error {
	if !Supported(s) {
		return refuse("surface %s", s)
	}
	sse := stream.IsEventStream(ct)
	switch s {
	case llm.SurfaceAnthropicMessages, llm.SurfaceBedrockInvoke, llm.SurfaceVertexRawPredict, llm.SurfaceVertexStreamRawPredict:
		if sse {
			return checkAnthropicStream(body)
		}
		return checkAnthropicMessage(body)
	case llm.SurfaceAnthropicCountTokens, llm.SurfaceBedrockCountTokens, llm.SurfaceVertexCountTokens:
		if sse {
			return refuse("count_tokens answered with a stream")
		}
		if _, ok := llm.MemberValue(body, "input_tokens"); ok {
			return nil
		}
		if _, ok := llm.MemberValue(body, "inputTokens"); ok {
			return nil
		}
		return refuse("no input_tokens in a count_tokens answer")
	case llm.SurfaceOpenAIChat:
		if sse {
			return checkChatStream(body)
		}
		return checkChat(body)
	case llm.SurfaceOpenAIResponses:
		if sse {
			return checkResponsesStream(body)
		}
		return checkResponse(body)
	case llm.SurfaceOpenAIEmbeddings:
		if sse {
			return refuse("embeddings answered with a stream")
		}
		if v, ok := llm.MemberValue(body, "data"); ok && len(v) > 0 && v[0] == '[' {
			return nil
		}
		return refuse("no data in an embeddings answer")
	}
	return refuse("surface %s", s)
}

// str is the string member name of obj, unquoted when it holds no escape
// (the enum values read here never do); "" when absent or not a string.
func str(obj []byte, name string) string {
	lit := llm.StringMember(obj, name)
	if len(lit) < 2 {
		return ""
	}
	return string(lit[1 : len(lit)-1])
}

// isNull reports whether obj lacks member name or has it null.
func isNull(obj []byte, name string) bool {
	v, ok := llm.MemberValue(obj, name)
	return !ok || string(v) == "null"
}

// elements calls fn for each element of the JSON array arr, stopping when
// fn returns false; it reports false when arr is not an array it could
// walk.
func elements(arr []byte, fn func(elem []byte) bool) bool {
	i := llm.SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = llm.SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		end := llm.ValueEnd(arr, i)
		if end < 0 {
			return false
		}
		if !fn(arr[i:end]) {
			return true
		}
		i = llm.SkipSpace(arr, end)
		if i >= len(arr) {
			return false
		}
		switch arr[i] {
		case ',':
			i = llm.SkipSpace(arr, i+1)
		case ']':
			return true
		default:
			return false
		}
	}
	return false
}

func checkAnthropicMessage(body []byte) error {
	if t := str(body, "type"); t != "message" {
		return refuse("answer of type %q", t)
	}
	if sr := str(body, "stop_reason"); !anthropicStops[sr] {
		return refuse("stop_reason %q", sr)
	}
	return nil
}

// scan feeds a recorded stream to an SSE scanner; a stream that ends in
// the middle of an event is incomplete.
func scan(body []byte, fn func(event, data []byte)) error {
	var sc stream.SSEScanner
	sc.Feed(body, fn)
	if sc.Pending() || sc.Overflowed() {
		return refuse("stream ends inside an event")
	}
	return nil
}

func checkAnthropicStream(body []byte) error {
	var started, stopped bool
	var stop string
	var bad error
	err := scan(body, func(_, data []byte) {
		switch str(data, "type") {
		case "message_start":
			started = true
		case "message_delta":
			if d, ok := llm.MemberValue(data, "delta"); ok {
				if sr := str(d, "stop_reason"); sr != "" {
					stop = sr
				}
			}
		case "message_stop":
			stopped = true
		case "error":
			bad = refuse("error event")
		}
	})
	switch {
	case err != nil:
		return err
	case bad != nil:
		return bad
	case !started || !stopped:
		return refuse("stream without message_start and message_stop")
	case !anthropicStops[stop]:
		return refuse("stop_reason %q", stop)
	}
	return nil
}

// checkChoice refuses a chat choice that was cut (finish_reason length),
// filtered or refused; msg is the choice's "message" or "delta" member.
func checkChoice(choice []byte, msg string, final bool) (finished bool, err error) {
	fr := str(choice, "finish_reason")
	if m, ok := llm.MemberValue(choice, msg); ok && !isNull(m, "refusal") {
		if r, _ := llm.MemberValue(m, "refusal"); string(r) != `""` {
			return false, refuse("refusal")
		}
	}
	if fr == "" {
		if final {
			return false, refuse("choice without finish_reason")
		}
		return false, nil
	}
	if !chatStops[fr] {
		return false, refuse("finish_reason %q", fr)
	}
	return true, nil
}

func checkChat(body []byte) error {
	if o := str(body, "object"); o != "chat.completion" {
		return refuse("object %q", o)
	}
	choices, ok := llm.MemberValue(body, "choices")
	if !ok {
		return refuse("no choices")
	}
	var err error
	n := 0
	if !elements(choices, func(c []byte) bool {
		n++
		_, err = checkChoice(c, "message", true)
		return err == nil
	}) {
		return refuse("malformed choices")
	}
	if err == nil && n == 0 {
		err = refuse("no choices")
	}
	return err
}

func checkChatStream(body []byte) error {
	var done bool
	finished := 0
	var bad error
	err := scan(body, func(_, data []byte) {
		if bad != nil {
			return
		}
		if string(data) == "[DONE]" {
			done = true
			return
		}
		if !isNull(data, "error") {
			bad = refuse("error chunk")
			return
		}
		choices, ok := llm.MemberValue(data, "choices")
		if !ok {
			return
		}
		elements(choices, func(c []byte) bool {
			f, err := checkChoice(c, "delta", false)
			if err != nil {
				bad = err
				return false
			}
			if f {
				finished++
			}
			return true
		})
	})
	switch {
	case err != nil:
		return err
	case bad != nil:
		return bad
	case !done:
		return refuse("stream without [DONE]")
	case finished == 0:
		return refuse("stream without a finish_reason")
	}
	return nil
}

// checkResponseObject refuses a Responses API response object that did not
// complete or holds a refusal.
func checkResponseObject(resp []byte) error {
	if st := str(resp, "status"); st != "completed" {
		return refuse("status %q", st)
	}
	if !isNull(resp, "error") {
		return refuse("error")
	}
	out, ok := llm.MemberValue(resp, "output")
	if !ok {
		return nil
	}
	var bad error
	elements(out, func(item []byte) bool {
		if content, ok := llm.MemberValue(item, "content"); ok {
			elements(content, func(part []byte) bool {
				if str(part, "type") == "refusal" {
					bad = refuse("refusal")
					return false
				}
				return true
			})
		}
		return bad == nil
	})
	return bad
}

func checkResponse(body []byte) error {
	if o := str(body, "object"); o != "response" {
		return refuse("object %q", o)
	}
	return checkResponseObject(body)
}

func checkResponsesStream(body []byte) error {
	var completed bool
	var bad error
	err := scan(body, func(_, data []byte) {
		if bad != nil {
			return
		}
		t := str(data, "type")
		switch {
		case t == "response.completed":
			completed = true
			if r, ok := llm.MemberValue(data, "response"); ok {
				bad = checkResponseObject(r)
			}
		case t == "response.incomplete" || t == "response.failed" || t == "error":
			bad = refuse("event %s", t)
		case strings.Contains(t, ".refusal."):
			bad = refuse("event %s", t)
		}
	})
	switch {
	case err != nil:
		return err
	case bad != nil:
		return bad
	case !completed:
		return refuse("stream without response.completed")
	}
	return nil
}
