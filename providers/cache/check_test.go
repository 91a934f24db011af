package cache

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

const (
	ctJSON = "application/json"
	ctSSE  = "text/event-stream; charset=utf-8"
)

func TestCheck(t *testing.T) {
	replace := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			panic("fixture lacks " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
	tests := []struct {
		name    string
		surface llm.Surface
		ct      string
		body    string
		ok      bool
	}{
		{"anthropic message", llm.SurfaceAnthropicMessages, ctJSON, anthropicMessage, true},
		{"anthropic tool_use", llm.SurfaceAnthropicMessages, ctJSON, replace(anthropicMessage, "end_turn", "tool_use"), true},
		{"anthropic max_tokens is a truncation", llm.SurfaceAnthropicMessages, ctJSON, replace(anthropicMessage, "end_turn", "max_tokens"), false},
		{"anthropic refusal", llm.SurfaceAnthropicMessages, ctJSON, replace(anthropicMessage, "end_turn", "refusal"), false},
		{"anthropic pause_turn", llm.SurfaceAnthropicMessages, ctJSON, replace(anthropicMessage, "end_turn", "pause_turn"), false},
		{"anthropic context window exceeded", llm.SurfaceAnthropicMessages, ctJSON, replace(anthropicMessage, "end_turn", "model_context_window_exceeded"), false},
		{"anthropic error body", llm.SurfaceAnthropicMessages, ctJSON, `{"type":"error","error":{"type":"overloaded_error","message":"x"}}`, false},
		{"anthropic stream", llm.SurfaceAnthropicMessages, ctSSE, anthropicStream, true},
		{"vertex stream", llm.SurfaceVertexStreamRawPredict, ctSSE, anthropicStream, true},
		{"bedrock invoke", llm.SurfaceBedrockInvoke, ctJSON, anthropicMessage, true},
		{"anthropic stream cut at max_tokens", llm.SurfaceAnthropicMessages, ctSSE, replace(anthropicStream, `"stop_reason":"end_turn"`, `"stop_reason":"max_tokens"`), false},
		{"anthropic stream refusal", llm.SurfaceAnthropicMessages, ctSSE, replace(anthropicStream, `"stop_reason":"end_turn"`, `"stop_reason":"refusal"`), false},
		{"anthropic stream without message_stop", llm.SurfaceAnthropicMessages, ctSSE, anthropicStream[:strings.LastIndex(anthropicStream, "event: message_stop")], false},
		{"anthropic stream cut inside an event", llm.SurfaceAnthropicMessages, ctSSE, anthropicStream[:len(anthropicStream)-3], false},
		{"anthropic stream with an error event", llm.SurfaceAnthropicMessages, ctSSE, replace(anthropicStream, "event: message_stop\n", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\nevent: message_stop\n"), false},
		{"count_tokens", llm.SurfaceAnthropicCountTokens, ctJSON, `{"input_tokens":42}`, true},
		{"bedrock count_tokens", llm.SurfaceBedrockCountTokens, ctJSON, `{"inputTokens":42}`, true},
		{"count_tokens without a count", llm.SurfaceAnthropicCountTokens, ctJSON, `{}`, false},
		{"chat completion", llm.SurfaceOpenAIChat, ctJSON, chatCompletion, true},
		{"chat completion cut at length", llm.SurfaceOpenAIChat, ctJSON, replace(chatCompletion, `"finish_reason":"stop"`, `"finish_reason":"length"`), false},
		{"chat completion filtered", llm.SurfaceOpenAIChat, ctJSON, replace(chatCompletion, `"finish_reason":"stop"`, `"finish_reason":"content_filter"`), false},
		{"chat completion refusal", llm.SurfaceOpenAIChat, ctJSON, replace(chatCompletion, `"refusal":null`, `"refusal":"I can't help with that."`), false},
		{"chat completion without choices", llm.SurfaceOpenAIChat, ctJSON, `{"object":"chat.completion","choices":[]}`, false},
		{"chat stream", llm.SurfaceOpenAIChat, ctSSE, chatStream, true},
		{"chat stream without [DONE]", llm.SurfaceOpenAIChat, ctSSE, strings.TrimSuffix(chatStream, "data: [DONE]\n\n"), false},
		{"chat stream cut at length", llm.SurfaceOpenAIChat, ctSSE, replace(chatStream, `"finish_reason":"stop"`, `"finish_reason":"length"`), false},
		{"chat stream refusal", llm.SurfaceOpenAIChat, ctSSE, replace(chatStream, `"delta":{"content":"Hello"}`, `"delta":{"refusal":"No."}`), false},
		{"chat stream error chunk", llm.SurfaceOpenAIChat, ctSSE, replace(chatStream, "data: [DONE]", `data: {"error":{"message":"x"}}`+"\n\ndata: [DONE]"), false},
		{"response", llm.SurfaceOpenAIResponses, ctJSON, responseObject, true},
		{"response incomplete", llm.SurfaceOpenAIResponses, ctJSON, replace(responseObject, `"status":"completed","error"`, `"status":"incomplete","error"`), false},
		{"response refusal", llm.SurfaceOpenAIResponses, ctJSON, replace(responseObject, `"type":"output_text","text":"Hi"`, `"type":"refusal","refusal":"No"`), false},
		{"responses stream", llm.SurfaceOpenAIResponses, ctSSE, responsesStream, true},
		{"responses stream incomplete", llm.SurfaceOpenAIResponses, ctSSE, replace(replace(responsesStream, "event: response.completed", "event: response.incomplete"), `"type":"response.completed"`, `"type":"response.incomplete"`), false},
		{"responses stream refusal", llm.SurfaceOpenAIResponses, ctSSE, replace(responsesStream, `"type":"response.output_text.delta"`, `"type":"response.refusal.delta"`), false},
		{"responses stream without completion", llm.SurfaceOpenAIResponses, ctSSE, responsesStream[:strings.Index(responsesStream, "event: response.completed")], false},
		{"embeddings", llm.SurfaceOpenAIEmbeddings, ctJSON, embeddings, true},
		{"embeddings without data", llm.SurfaceOpenAIEmbeddings, ctJSON, `{"object":"list"}`, false},
		{"a surface the cache does not keep", llm.SurfaceBedrockInvokeStream, "application/vnd.amazon.eventstream", "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.surface, tc.ct, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotCacheable) {
				t.Errorf("error %v does not wrap ErrNotCacheable", err)
			}
		})
	}
}
