package bedrock

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// dropped are the Messages members Bedrock takes elsewhere: the model is in
// the path and streaming is the choice of operation.
var dropped = []string{"model", "stream"}

// TranslateBody turns an Anthropic Messages (or count_tokens) body into a
// Bedrock InvokeModel body: "model" and "stream" are removed,
// "anthropic_version" is set to AnthropicVersion, and "anthropic_beta" is
// set to the betas of the anthropic-beta header (Betas) — replacing any
// anthropic_beta the body carried — or left as the body had it when the
// header names none. Everything else, unknown members included, is copied
// byte for byte (llm.RewriteBody: the body is never decoded).
func TranslateBody(body []byte, header http.Header) ([]byte, error) {
	set := make([]llm.Member, 1, 2)
	set[0] = llm.Member{Name: "anthropic_version", Value: versionValue}
	if betas := Betas(header); len(betas) > 0 {
		set = append(set, llm.Member{Name: "anthropic_beta", Value: betaArray(betas)})
	}
	return llm.RewriteBody(body, dropped, set)
}

var versionValue = []byte(`"` + AnthropicVersion + `"`)

// Betas splits every anthropic-beta header value on commas, trims the
// names, and drops empty ones and repeats, keeping the order.
func Betas(header http.Header) []string {
	var out []string
	for _, v := range header.Values("Anthropic-Beta") {
		for b := range strings.SplitSeq(v, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			dup := false
			for _, o := range out {
				if o == b {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, b)
			}
		}
	}
	return out
}

// betaArray encodes names as a JSON array of strings.
func betaArray(names []string) []byte {
	n := 2
	for _, s := range names {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, llm.QuoteJSON(s)...)
	}
	return append(b, ']')
}

// CountTokensBody wraps a translated invoke body for Bedrock's CountTokens
// operation: {"input":{"invokeModel":{"body":"<base64 of body>"}}}. An
// Anthropic count_tokens body has no max_tokens, which an InvokeModel body
// for Claude requires; "max_tokens": 1 is set when the call's body has none
// (hasMaxTokens, from llm.BodyFields; it does not change the input count).
func CountTokensBody(invokeBody []byte, hasMaxTokens bool) ([]byte, error) {
	if !hasMaxTokens {
		var err error
		invokeBody, err = llm.RewriteBody(invokeBody, nil, []llm.Member{{Name: "max_tokens", Value: []byte("1")}})
		if err != nil {
			return nil, err
		}
	}
	const head, tail = `{"input":{"invokeModel":{"body":"`, `"}}}`
	enc := base64.StdEncoding
	out := make([]byte, len(head), len(head)+enc.EncodedLen(len(invokeBody))+len(tail))
	copy(out, head)
	out = enc.AppendEncode(out, invokeBody)
	return append(out, tail...), nil
}
