package bedrock

import (
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// FuzzRelayEventStream relays arbitrary bytes as a Bedrock event stream,
// translated to Anthropic SSE and passed through, cut into two reads at an
// arbitrary point: the relay must return (no panic, no hang), close the
// body and never report negative usage. Seeds run with every `go test`; a
// longer run: go test -fuzz FuzzRelayEventStream ./providers/bedrock/
func FuzzRelayEventStream(f *testing.F) {
	f.Add(streamOf(f, claudeEvents...), uint16(100))
	f.Add(append(streamOf(f, claudeEvents[:3]...), exceptionFrame(f, "throttlingException", `{"message":"slow down"}`)...), uint16(7))
	f.Add(chunkFrame(f, `{"type":"message_start","message":{"usage":{"input_tokens":-4}}}`), uint16(0))
	f.Add(encodeFrame(f, nil, []byte(`{"bytes":"!!"}`)), uint16(3))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, uint16(5))
	f.Fuzz(func(t *testing.T, raw []byte, cut uint16) {
		at := int(cut) % (len(raw) + 1)
		p := newTestProvider(t, "", nil)
		for _, call := range []*llm.Call{messagesCall(nil, true), bedrockCall(llm.SurfaceBedrockInvokeStream, "us.anthropic.claude-sonnet-4-5-20250929-v1:0")} {
			body := &chunkBody{chunks: [][]byte{raw[:at:at], raw[at:]}}
			out := p.relay(newRecorder(), eventStreamResponse(body), call)
			if !body.closed {
				t.Fatal("body not closed")
			}
			u := out.Usage
			if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWrite5mTokens < 0 ||
				u.CacheWrite1hTokens < 0 || u.WebSearchRequests < 0 {
				t.Fatalf("negative usage %+v", u)
			}
		}
	})
}
