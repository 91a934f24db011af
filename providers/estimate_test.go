package providers

import (
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestEstimateUnreported(t *testing.T) {
	body := []byte(strings.Repeat("x", 401)) // 101 tokens
	msgs := func(stream bool) *llm.Call {
		return &llm.Call{Surface: llm.SurfaceAnthropicMessages, Stream: stream, Body: body}
	}
	for _, tc := range []struct {
		name string
		call *llm.Call
		res  Result
		want llm.Usage
	}{
		{"reported usage is kept", msgs(false),
			Result{Status: 200, BytesWritten: 900, Usage: llm.Usage{InputTokens: 5, OutputTokens: 7, Complete: true}},
			llm.Usage{InputTokens: 5, OutputTokens: 7, Complete: true}},
		{"non-streamed body cut before its usage", msgs(false),
			Result{Status: 200, BytesWritten: 901},
			llm.Usage{InputTokens: 101, InputEstimated: true, OutputTokens: 226, OutputEstimated: true}},
		{"non-streamed body, client gone before any byte", msgs(false),
			Result{Status: 200},
			llm.Usage{InputTokens: 101, InputEstimated: true}},
		{"stream cut after message_start keeps the meter's counts", msgs(true),
			Result{Status: 200, BytesWritten: 5000, Usage: llm.Usage{InputTokens: 12, CacheReadTokens: 9000, OutputTokens: 4, OutputEstimated: true}},
			llm.Usage{InputTokens: 12, CacheReadTokens: 9000, OutputTokens: 4, OutputEstimated: true}},
		{"stream cut before message_start", msgs(true),
			Result{Status: 200, BytesWritten: 300},
			llm.Usage{InputTokens: 101, InputEstimated: true}},
		{"complete stream that never reported usage", &llm.Call{Surface: llm.SurfaceOpenAIChat, Stream: true, Body: body},
			Result{Status: 200, BytesWritten: 300, Usage: llm.Usage{OutputTokens: 9, OutputEstimated: true, Complete: true}},
			llm.Usage{InputTokens: 101, InputEstimated: true, OutputTokens: 9, OutputEstimated: true, Complete: true}},
		{"embeddings: no output from vectors", &llm.Call{Surface: llm.SurfaceOpenAIEmbeddings, Body: body},
			Result{Status: 200, BytesWritten: 90000},
			llm.Usage{InputTokens: 101, InputEstimated: true}},
		{"error statuses are free", msgs(false),
			Result{Status: 429, BytesWritten: 120},
			llm.Usage{}},
		{"free surfaces stay free", &llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Body: body},
			Result{Status: 200, BytesWritten: 20},
			llm.Usage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res
			EstimateUnreported(&res, tc.call)
			if res.Usage != tc.want {
				t.Fatalf("usage %+v, want %+v", res.Usage, tc.want)
			}
		})
	}
}
