package llm

// Surface is the API shape a request arrived in. It decides how the request
// is parsed, which provider families may serve it, and the shape of every
// error the gateway writes back.
type Surface uint8

// The surfaces the gateway recognises.
const (
	// SurfaceUnknown is a path the gateway does not serve.
	SurfaceUnknown Surface = iota
	// SurfaceAnthropicMessages is POST …/v1/messages.
	SurfaceAnthropicMessages
	// SurfaceAnthropicCountTokens is POST …/v1/messages/count_tokens.
	SurfaceAnthropicCountTokens
	// SurfaceAnthropicModels is GET …/v1/models[/{id}] asked in the Anthropic shape.
	SurfaceAnthropicModels
	// SurfaceOpenAIChat is POST …/v1/chat/completions.
	SurfaceOpenAIChat
	// SurfaceOpenAIResponses is POST …/v1/responses.
	SurfaceOpenAIResponses
	// SurfaceOpenAIEmbeddings is POST …/v1/embeddings.
	SurfaceOpenAIEmbeddings
	// SurfaceOpenAIModels is GET …/v1/models asked in the OpenAI shape.
	SurfaceOpenAIModels
	// SurfaceBedrockInvoke is POST …/model/{id}/invoke.
	SurfaceBedrockInvoke
	// SurfaceBedrockInvokeStream is POST …/model/{id}/invoke-with-response-stream.
	SurfaceBedrockInvokeStream
	// SurfaceBedrockCountTokens is POST …/model/{id}/count-tokens.
	SurfaceBedrockCountTokens
	// SurfaceBedrockInferenceProfiles is GET …/inference-profiles.
	SurfaceBedrockInferenceProfiles
	// SurfaceVertexRawPredict is POST …/publishers/anthropic/models/{m}:rawPredict.
	SurfaceVertexRawPredict
	// SurfaceVertexStreamRawPredict is POST …/publishers/anthropic/models/{m}:streamRawPredict.
	SurfaceVertexStreamRawPredict
	// SurfaceVertexCountTokens is POST …/publishers/anthropic/models/count-tokens:rawPredict.
	SurfaceVertexCountTokens
)

var surfaceNames = [...]string{
	SurfaceUnknown:                  "unknown",
	SurfaceAnthropicMessages:        "anthropic.messages",
	SurfaceAnthropicCountTokens:     "anthropic.count_tokens",
	SurfaceAnthropicModels:          "anthropic.models",
	SurfaceOpenAIChat:               "openai.chat_completions",
	SurfaceOpenAIResponses:          "openai.responses",
	SurfaceOpenAIEmbeddings:         "openai.embeddings",
	SurfaceOpenAIModels:             "openai.models",
	SurfaceBedrockInvoke:            "bedrock.invoke",
	SurfaceBedrockInvokeStream:      "bedrock.invoke_stream",
	SurfaceBedrockCountTokens:       "bedrock.count_tokens",
	SurfaceBedrockInferenceProfiles: "bedrock.inference_profiles",
	SurfaceVertexRawPredict:         "vertex.raw_predict",
	SurfaceVertexStreamRawPredict:   "vertex.stream_raw_predict",
	SurfaceVertexCountTokens:        "vertex.count_tokens",
}

// String is the surface's stable name, as stored in the ledger.
func (s Surface) String() string {
	if int(s) < len(surfaceNames) {
		return surfaceNames[s]
	}
	return "unknown"
}

// Dialect is the family of error shapes and wire conventions a surface belongs to.
type Dialect uint8

// The dialects.
const (
	DialectAnthropic Dialect = iota
	DialectOpenAI
	DialectBedrock
	DialectVertex
)

// Dialect tells which error shape the surface answers in.
func (s Surface) Dialect() Dialect {
	switch s {
	case SurfaceOpenAIChat, SurfaceOpenAIResponses, SurfaceOpenAIEmbeddings, SurfaceOpenAIModels:
		return DialectOpenAI
	case SurfaceBedrockInvoke, SurfaceBedrockInvokeStream, SurfaceBedrockCountTokens, SurfaceBedrockInferenceProfiles:
		return DialectBedrock
	case SurfaceVertexRawPredict, SurfaceVertexStreamRawPredict, SurfaceVertexCountTokens:
		return DialectVertex
	}
	return DialectAnthropic
}

// Billable reports whether calls on the surface consume tokens that cost money.
// Token counting and model listing are attributed (they count as requests) but
// are free.
func (s Surface) Billable() bool {
	switch s {
	case SurfaceAnthropicMessages, SurfaceOpenAIChat, SurfaceOpenAIResponses, SurfaceOpenAIEmbeddings,
		SurfaceBedrockInvoke, SurfaceBedrockInvokeStream, SurfaceVertexRawPredict, SurfaceVertexStreamRawPredict:
		return true
	}
	return false
}
