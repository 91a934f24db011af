package llm

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseBody holds the gateway's reading of a request body to
// encoding/json's (which, like the providers' parsers, unescapes member
// names and keeps the last of duplicated members): either ParseBody refuses
// the body, or the body is valid JSON and both agree on every governed
// member. The seeds (below and in testdata/fuzz/FuzzParseBody) run with
// every `go test`; a longer run: go test -fuzz FuzzParseBody ./providers/llm/
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"claude-haiku-4-5","mod\u0065l":"claude-opus-4-1","max_tokens":10}`,
		`{"model":"m","max_tok\u0065ns":100000}`,
		`{"model":"gpt-4o","str\u0065am":true,"stream_options":{"include_usage":true},"n":3}`,
		`{"model":"m","MODEL":"x"}`,
		`{"model":"m","max_completion_tokens":1e3,"max_output_tokens":7.0}`,
		`{"model":"m","x":"\ud800","y":[{},[],null,true,false,-0.5e-3]}`,
		"{\"model\":\"m\",\"x\":\"\xff\"}",
		`{"model":"m"} `,
		`{"a":[[[[[[[[[[]]]]]]]]]]}`,
		`{"stream_options":{"include_usage":true,"include_usage":false}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseBody(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted a body encoding/json calls invalid: %q", b)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("accepted a body that is not an object: %q: %v", b, err)
		}
		for k := range m {
			for _, g := range GovernedMembers {
				if k != g && strings.EqualFold(k, g) {
					t.Fatalf("accepted %q beside governed %q", k, g)
				}
			}
		}
		var model string
		if v, ok := m["model"]; ok {
			if err := json.Unmarshal(v, &model); err != nil {
				t.Fatalf("model %s: %v", v, err)
			}
		}
		if model != got.Model {
			t.Fatalf("model: gateway %q, encoding/json %q in %q", got.Model, model, b)
		}
		var stream *bool
		if v, ok := m["stream"]; ok {
			if err := json.Unmarshal(v, &stream); err != nil {
				t.Fatalf("stream %s: %v", v, err)
			}
		}
		if (stream != nil && *stream) != got.Stream {
			t.Fatalf("stream: gateway %v, encoding/json %v in %q", got.Stream, stream, b)
		}
		count := func(name string) (int64, bool) {
			v, ok := m[name]
			if !ok || string(v) == "null" {
				return 0, false
			}
			var fl float64
			if err := json.Unmarshal(v, &fl); err != nil || fl != float64(int64(fl)) || fl < 0 {
				t.Fatalf("%s %s accepted: %v", name, v, err)
			}
			return int64(fl), true
		}
		var maxTokens int64
		has := false
		for _, name := range []string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
			if n, ok := count(name); ok {
				maxTokens, has = max(maxTokens, n), true
			}
		}
		if maxTokens != got.MaxTokens || has != got.HasMaxTokens {
			t.Fatalf("max tokens: gateway %d/%v, encoding/json %d/%v in %q", got.MaxTokens, got.HasMaxTokens, maxTokens, has, b)
		}
		n, _ := count("n")
		if max(n, 1) != got.N {
			t.Fatalf("n: gateway %d, encoding/json %d in %q", got.N, n, b)
		}
		include := false
		if v, ok := m["stream_options"]; ok {
			var so map[string]json.RawMessage
			if json.Unmarshal(v, &so) == nil {
				include = string(so["include_usage"]) == "true"
			}
		}
		if include != got.IncludeUsage {
			t.Fatalf("include_usage: gateway %v, encoding/json %v in %q", got.IncludeUsage, include, b)
		}
	})
}
