package azure

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// BenchmarkSend is Send alone (no network): a ~90 KB Claude Code body whose
// model is rewritten to the deployment name, and one sent as is.
func BenchmarkSend(b *testing.B) {
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	for _, model := range []string{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"} {
		b.Run(model, func(b *testing.B) {
			p := newProvider(b, Config{Resource: "r", Transport: ok})
			body := []byte(`{"model":"` + model + `","system":[{"type":"text","text":"` + strings.Repeat("You are Claude Code. ", 4300) +
				`"}],"messages":[{"role":"user","content":"hi"}],"max_tokens":32000,"stream":true}`)
			call := &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: model, CanonicalModel: "claude-sonnet-4-5", Stream: true,
				Body: body, Header: claudeCodeHeader(), RawQuery: "beta=true"}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				resp, err := p.Send(context.Background(), call)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
