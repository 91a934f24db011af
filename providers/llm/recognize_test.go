package llm

import "testing"

func TestRecognize(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		anthropic    bool
		want         Recognized
	}{
		{"POST", "/v1/messages", true, Recognized{Surface: SurfaceAnthropicMessages, Suffix: "/v1/messages"}},
		{"POST", "/anthropic/v1/messages", true, Recognized{Surface: SurfaceAnthropicMessages, Suffix: "/v1/messages"}},
		{"POST", "/a/b/v1/messages/count_tokens", true, Recognized{Surface: SurfaceAnthropicCountTokens, Suffix: "/v1/messages/count_tokens"}},
		{"GET", "/anthropic/v1/models", true, Recognized{Surface: SurfaceAnthropicModels, Suffix: "/v1/models"}},
		{"GET", "/v1/models", false, Recognized{Surface: SurfaceOpenAIModels, Suffix: "/v1/models"}},
		{"GET", "/v1/models/claude-sonnet-4-5", true, Recognized{Surface: SurfaceAnthropicModels, PathModel: "claude-sonnet-4-5", Suffix: "/v1/models/claude-sonnet-4-5"}},
		{"GET", "/v1/models/a/b", true, Recognized{}},
		{"POST", "/openai/v1/chat/completions", false, Recognized{Surface: SurfaceOpenAIChat, Suffix: "/v1/chat/completions"}},
		{"POST", "/v1/responses", false, Recognized{Surface: SurfaceOpenAIResponses, Suffix: "/v1/responses"}},
		{"POST", "/v1/embeddings", false, Recognized{Surface: SurfaceOpenAIEmbeddings, Suffix: "/v1/embeddings"}},
		{"POST", "/bedrock/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke", false,
			Recognized{Surface: SurfaceBedrockInvoke, PathModel: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Suffix: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"}},
		{"POST", "/model/anthropic.claude-haiku-4-5-20251001-v1:0/invoke-with-response-stream", false,
			Recognized{Surface: SurfaceBedrockInvokeStream, PathModel: "anthropic.claude-haiku-4-5-20251001-v1:0", Suffix: "/model/anthropic.claude-haiku-4-5-20251001-v1:0/invoke-with-response-stream"}},
		{"POST", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.x/count-tokens", false,
			Recognized{Surface: SurfaceBedrockCountTokens, PathModel: "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.x", Suffix: "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.x/count-tokens"}},
		{"GET", "/bedrock/inference-profiles", false, Recognized{Surface: SurfaceBedrockInferenceProfiles, Suffix: "/inference-profiles"}},
		{"POST", "/vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict", false,
			Recognized{Surface: SurfaceVertexStreamRawPredict, PathModel: "claude-sonnet-4-5@20250929", Suffix: "/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"}},
		{"POST", "/projects/p/locations/global/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict", false,
			Recognized{Surface: SurfaceVertexRawPredict, PathModel: "claude-haiku-4-5@20251001", Suffix: "/projects/p/locations/global/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict"}},
		{"POST", "/projects/p/locations/global/publishers/anthropic/models/count-tokens:rawPredict", false,
			Recognized{Surface: SurfaceVertexCountTokens, Suffix: "/projects/p/locations/global/publishers/anthropic/models/count-tokens:rawPredict"}},
		{"POST", "/v1/complete", true, Recognized{}},
		{"GET", "/v1/messages", true, Recognized{}},
		{"POST", "/model//invoke", false, Recognized{}},
	} {
		got := Recognize(tc.method, tc.path, tc.anthropic)
		if got != tc.want {
			t.Errorf("Recognize(%s %s) = %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
	}
}

func BenchmarkRecognize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Recognize("POST", "/anthropic/v1/messages", true)
	}
}
