package cache

import (
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// FuzzDerive: any body derives a key without panicking, the same key every
// time, and the volatile members never change it.
func FuzzDerive(f *testing.F) {
	for _, s := range []string{`{"model":"m","metadata":{"user_id":"u"}}`, `{"user":"a","messages":[]}`, `{`, `[]`, `{"a":}`, `{"metadata":{"user_id":1,"x":[1,{"y":"}"}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range []llm.Surface{llm.SurfaceAnthropicMessages, llm.SurfaceOpenAIChat, llm.SurfaceOpenAIResponses} {
			r := &Request{Surface: s, Model: "m", Scope: "key\x00a\x00", Body: body}
			if Derive(r) != Derive(r) {
				t.Fatal("Derive is not deterministic")
			}
		}
	})
}

// FuzzCheck: any recorded body is judged without panicking.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{anthropicStream, anthropicMessage, chatStream, chatCompletion, responsesStream, responseObject, embeddings, "data: {\n\n", `{"choices":[{"message":{"refusal":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range Surfaces {
			_ = Check(s, "text/event-stream", body)
			_ = Check(s, "application/json", body)
		}
	})
}
