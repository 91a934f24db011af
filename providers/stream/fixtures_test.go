package stream

import (
	"fmt"
	"strings"
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

// Real Anthropic Messages events (shapes as sent by the API in 2025–2026).
const (
	evMessageStartCached  = `{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":90112,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":2048},"output_tokens":1,"service_tier":"standard","server_tool_use":null,"inference_geo":null}}}`
	evMessageStartNoSplit = `{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":1500,"cache_read_input_tokens":null,"output_tokens":2}}}`
	evMessageStartPlain   = `{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-opus-4-5-20251101","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`
	evPing                = `{"type": "ping"}`
	evThinkingStart       = `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`
	evSignature           = `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds2mQ2BaaAyLMcd6xXrfqMCj5AiFMZXYsi7bSoRQmZDPjzAj3Ma0yWFRXXpvfGI0BAA=="}}`
	evBlockStop0          = `{"type":"content_block_stop","index":0}`
	evTextStart1          = `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`
	evBlockStop1          = `{"type":"content_block_stop","index":1}`
	evToolStart2          = `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}`
	evBlockStop2          = `{"type":"content_block_stop","index":2}`
	evMessageStop         = `{"type":"message_stop"}`
	evOverloaded          = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`
)

func thinkingDelta(s string) string {
	return fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":%s}}`, s)
}

func textDelta(idx int, s string) string {
	return fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}`, idx, s)
}

func jsonDelta(s string) string {
	return fmt.Sprintf(`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":%s}}`, s)
}

func messageDelta(stop, usage string) string {
	return fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":%s}`, stop, usage)
}

// claudeTurn is a complete Claude Code-like turn: thinking, text, tool use,
// pings, cumulative message_delta usage with a server tool count.
func claudeTurn() []ev {
	return []ev{
		{"message_start", evMessageStartCached},
		{"content_block_start", evThinkingStart},
		{"ping", evPing},
		{"content_block_delta", thinkingDelta(`"The user wants the weather. "`)},
		{"content_block_delta", thinkingDelta(`"I should call \"get_weather\"\nwith Paris."`)},
		{"content_block_delta", evSignature},
		{"content_block_stop", evBlockStop0},
		{"content_block_start", evTextStart1},
		{"content_block_delta", textDelta(1, `"Let me check the weather in Paris "`)},
		{"content_block_delta", textDelta(1, `"for you \u2014 caf\u00e9 \ud83d\ude00."`)},
		{"content_block_stop", evBlockStop1},
		{"content_block_start", evToolStart2},
		{"content_block_delta", jsonDelta(`""`)},
		{"content_block_delta", jsonDelta(`"{\"location\": \"Pa"`)},
		{"content_block_delta", jsonDelta(`"ris, France\"}"`)},
		{"content_block_stop", evBlockStop2},
		{"ping", evPing},
		{"message_delta", messageDelta("tool_use", `{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":90112,"output_tokens":89,"server_tool_use":{"web_search_requests":2}}`)},
		{"message_stop", evMessageStop},
	}
}
