package llm

import (
	"net/url"
	"strings"
)

// Recognized is what the path of a request says about it.
type Recognized struct {
	// Surface is the API shape; SurfaceUnknown when the path is not served.
	Surface Surface
	// PathModel is the model id carried in the path (Bedrock, Vertex, and
	// GET …/v1/models/{id}), unescaped; empty otherwise.
	PathModel string
	// Suffix is the surface-specific tail of the path, from "/v1/…",
	// "/model/…", "/inference-profiles" or "/projects/…" on.
	Suffix string
}

// Recognize maps a request's method and escaped path to its surface, whatever
// prefix the site mounts the gateway under ("/anthropic/v1/messages",
// "/v1/messages", "/bedrock/model/{id}/invoke"). anthropicShaped tells
// GET …/v1/models apart: Anthropic clients send an anthropic-version header,
// OpenAI clients do not.
func Recognize(method, escapedPath string, anthropicShaped bool) Recognized {
	p := escapedPath
	switch method {
	case "POST":
		switch {
		case strings.HasSuffix(p, "/v1/messages"):
			return Recognized{Surface: SurfaceAnthropicMessages, Suffix: tailFrom(p, "/v1/messages")}
		case strings.HasSuffix(p, "/v1/messages/count_tokens"):
			return Recognized{Surface: SurfaceAnthropicCountTokens, Suffix: tailFrom(p, "/v1/messages/count_tokens")}
		case strings.HasSuffix(p, "/v1/chat/completions"):
			return Recognized{Surface: SurfaceOpenAIChat, Suffix: tailFrom(p, "/v1/chat/completions")}
		case strings.HasSuffix(p, "/v1/responses"):
			return Recognized{Surface: SurfaceOpenAIResponses, Suffix: tailFrom(p, "/v1/responses")}
		case strings.HasSuffix(p, "/v1/embeddings"):
			return Recognized{Surface: SurfaceOpenAIEmbeddings, Suffix: tailFrom(p, "/v1/embeddings")}
		}
		if r, ok := recognizeBedrock(p); ok {
			return r
		}
		if r, ok := recognizeVertex(p); ok {
			return r
		}
	case "GET":
		if i := strings.LastIndex(p, "/v1/models"); i >= 0 {
			rest := p[i+len("/v1/models"):]
			s := SurfaceOpenAIModels
			if anthropicShaped {
				s = SurfaceAnthropicModels
			}
			switch {
			case rest == "" || rest == "/":
				return Recognized{Surface: s, Suffix: "/v1/models"}
			case rest[0] == '/' && !strings.Contains(rest[1:], "/"):
				id, err := url.PathUnescape(rest[1:])
				if err != nil {
					return Recognized{}
				}
				return Recognized{Surface: s, PathModel: id, Suffix: p[i:]}
			}
		}
		if strings.HasSuffix(p, "/inference-profiles") {
			return Recognized{Surface: SurfaceBedrockInferenceProfiles, Suffix: "/inference-profiles"}
		}
	}
	return Recognized{}
}

func tailFrom(p, suffix string) string { return p[len(p)-len(suffix):] }

// recognizeBedrock matches …/model/{id}/invoke, …/invoke-with-response-stream
// and …/count-tokens, with {id} percent-encoded (ARNs carry %2F).
func recognizeBedrock(p string) (Recognized, bool) {
	var s Surface
	var action string
	switch {
	case strings.HasSuffix(p, "/invoke"):
		s, action = SurfaceBedrockInvoke, "/invoke"
	case strings.HasSuffix(p, "/invoke-with-response-stream"):
		s, action = SurfaceBedrockInvokeStream, "/invoke-with-response-stream"
	case strings.HasSuffix(p, "/count-tokens"):
		s, action = SurfaceBedrockCountTokens, "/count-tokens"
	default:
		return Recognized{}, false
	}
	head := p[:len(p)-len(action)]
	i := strings.LastIndex(head, "/model/")
	if i < 0 {
		return Recognized{}, false
	}
	raw := head[i+len("/model/"):]
	if raw == "" || strings.Contains(raw, "/") {
		return Recognized{}, false
	}
	id, err := url.PathUnescape(raw)
	if err != nil {
		return Recognized{}, false
	}
	return Recognized{Surface: s, PathModel: id, Suffix: p[i:]}, true
}

// recognizeVertex matches …/publishers/anthropic/models/{m}:rawPredict,
// :streamRawPredict and count-tokens:rawPredict.
func recognizeVertex(p string) (Recognized, bool) {
	const marker = "/publishers/anthropic/models/"
	i := strings.LastIndex(p, marker)
	if i < 0 {
		return Recognized{}, false
	}
	rest := p[i+len(marker):]
	colon := strings.LastIndexByte(rest, ':')
	if colon <= 0 || strings.Contains(rest, "/") {
		return Recognized{}, false
	}
	model, err := url.PathUnescape(rest[:colon])
	if err != nil {
		return Recognized{}, false
	}
	suffix := p[i:]
	if j := strings.LastIndex(p[:i], "/projects/"); j >= 0 {
		suffix = p[j:]
	}
	switch rest[colon+1:] {
	case "rawPredict":
		if model == "count-tokens" {
			return Recognized{Surface: SurfaceVertexCountTokens, Suffix: suffix}, true
		}
		return Recognized{Surface: SurfaceVertexRawPredict, PathModel: model, Suffix: suffix}, true
	case "streamRawPredict":
		return Recognized{Surface: SurfaceVertexStreamRawPredict, PathModel: model, Suffix: suffix}, true
	}
	return Recognized{}, false
}
