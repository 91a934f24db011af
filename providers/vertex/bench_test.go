package vertex

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// bigBody is a Claude Code-sized Messages body (~90 KB).
func bigBody() []byte {
	return []byte(`{"model":"claude-sonnet-4-5-20250929","system":[{"type":"text","text":"` + strings.Repeat("You are Claude Code. ", 4300) +
		`"}],"messages":[{"role":"user","content":"hi"}],"max_tokens":32000,"stream":true}`)
}

// BenchmarkSend is Send alone (no network, cached token): URL, body
// rewrite of a 90 KB body, header policy.
func BenchmarkSend(b *testing.B) {
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	for _, s := range []llm.Surface{llm.SurfaceAnthropicMessages, llm.SurfaceVertexStreamRawPredict} {
		b.Run(s.String(), func(b *testing.B) {
			p := newProvider(b, Config{Transport: ok})
			call := &llm.Call{Surface: s, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5", Stream: true,
				Body: bigBody(), Header: claudeCodeHeader()}
			b.SetBytes(int64(len(call.Body)))
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
