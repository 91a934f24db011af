package llm

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    BodyFields
		wantErr bool
	}{
		{name: "claude code", body: `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"say \"hi\" {"}],"max_tokens":32000,"stream":true}`,
			want: BodyFields{Model: "claude-sonnet-4-5-20250929", MaxTokens: 32000, Stream: true}},
		{name: "whitespace", body: " {\n \"stream\" : false , \"model\" : \"m\" ,\"max_tokens\":1e3}\n",
			want: BodyFields{Model: "m", MaxTokens: 1000}},
		{name: "escaped model", body: `{"model":"cl\u0061ude"}`, want: BodyFields{Model: "claude"}},
		{name: "nested model ignored", body: `{"metadata":{"model":"x"},"model":"y"}`, want: BodyFields{Model: "y"}},
		{name: "openai", body: `{"model":"gpt-4o","max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`,
			want: BodyFields{Model: "gpt-4o", MaxTokens: 5, Stream: true, IncludeUsage: true}},
		{name: "responses", body: `{"model":"gpt-5","max_output_tokens":7}`, want: BodyFields{Model: "gpt-5", MaxTokens: 7}},
		{name: "empty object", body: `{}`, want: BodyFields{}},
		{name: "fast mode, US-only", body: `{"model":"m","speed":"fast","inference_geo":"us"}`, want: BodyFields{Model: "m", Speed: "fast", InferenceGeo: "us"}},
		{name: "null speed", body: `{"model":"m","speed":null}`, want: BodyFields{Model: "m"}},
		{name: "speed not string", body: `{"model":"m","speed":1}`, wantErr: true},
		{name: "duplicate speed", body: `{"model":"m","speed":"standard","sp\u0065ed":"fast"}`, wantErr: true},
		{name: "backslash before quote", body: `{"a":"x\\","model":"m"}`, want: BodyFields{Model: "m"}},
		{name: "not object", body: `[1]`, wantErr: true},
		{name: "truncated", body: `{"model":"m","messages":[{"a":1}`, wantErr: true},
		{name: "unterminated string", body: `{"model":"m`, wantErr: true},
		{name: "trailing garbage", body: `{"model":"m"} x`, wantErr: true},
		{name: "model not string", body: `{"model":3}`, wantErr: true},
		{name: "negative max", body: `{"model":"m","max_tokens":-1}`, wantErr: true},
		{name: "bad stream", body: `{"model":"m","stream":"yes"}`, wantErr: true},
		{name: "missing colon", body: `{"model" "m"}`, wantErr: true},
		{name: "bare word", body: `{"model":"m","x":hello}`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
		// What the gateway reads must be what the provider decodes.
		{name: "escaped duplicate model", body: `{"model":"claude-haiku-4-5","mod\u0065l":"claude-opus-4-1"}`, wantErr: true},
		{name: "duplicate model", body: `{"model":"a","model":"b"}`, wantErr: true},
		{name: "escaped max_tokens", body: `{"model":"m","max_tok\u0065ns":100000}`, want: BodyFields{Model: "m", MaxTokens: 100000}},
		{name: "escaped max_tokens duplicate", body: `{"model":"m","max_tokens":1,"max_tok\u0065ns":100000}`, wantErr: true},
		{name: "escaped stream", body: `{"model":"m","str\u0065am":true}`, want: BodyFields{Model: "m", Stream: true}},
		{name: "duplicate stream_options", body: `{"model":"m","stream_options":{},"stream_options":{"include_usage":true}}`, wantErr: true},
		{name: "duplicate n", body: `{"model":"m","n":1,"n":5}`, wantErr: true},
		{name: "case variant", body: `{"model":"m","Model":"x"}`, wantErr: true},
		{name: "kelvin case variant", body: `{"model":"m","max_to\u212aens":5}`, wantErr: true},
		{name: "largest of the max members", body: `{"model":"m","max_tokens":5,"max_completion_tokens":9}`, want: BodyFields{Model: "m", MaxTokens: 9}},
		{name: "n", body: `{"model":"m","n":4}`, want: BodyFields{Model: "m", N: 4}},
		{name: "include_usage last wins", body: `{"model":"m","stream_options":{"include_usage":false,"include_usage":true}}`, want: BodyFields{Model: "m", IncludeUsage: true}},
		{name: "include_usage escaped", body: `{"model":"m","stream_options":{"include_\u0075sage":true}}`, want: BodyFields{Model: "m", IncludeUsage: true}},
		{name: "duplicate ungoverned kept", body: `{"model":"m","metadata":{},"metadata":{}}`, want: BodyFields{Model: "m"}},
		// Not one valid JSON object.
		{name: "mismatched brackets", body: `{"model":"m","messages":[{"a":1]}`, wantErr: true},
		{name: "mismatched nested", body: `{"model":"m","x":[1,2}]}`, wantErr: true},
		{name: "trailing object", body: `{"model":"m"}{}`, wantErr: true},
		{name: "array body", body: `[{"model":"m"}]`, wantErr: true},
		{name: "string body", body: `"model"`, wantErr: true},
		{name: "invalid utf8 in content", body: "{\"model\":\"m\",\"x\":\"\xff\"}", wantErr: true},
		{name: "invalid utf8 in key", body: "{\"model\":\"m\",\"\xc3\":1}", wantErr: true},
		{name: "surrogate utf8", body: "{\"model\":\"m\",\"x\":\"\xed\xa0\x80\"}", wantErr: true},
		{name: "valid utf8", body: `{"model":"m","x":"é😀 lorem ipsum dolor sit amet"}`, want: BodyFields{Model: "m"}},
		{name: "control char in string", body: "{\"model\":\"m\",\"x\":\"a\nb\"}", wantErr: true},
		{name: "bad escape", body: `{"model":"m","x":"\q"}`, wantErr: true},
		{name: "short unicode escape", body: `{"model":"m","x":"\u12"}`, wantErr: true},
		{name: "lone surrogate escape in content", body: `{"model":"m","x":"\ud800"}`, want: BodyFields{Model: "m"}},
		{name: "leading zero", body: `{"model":"m","x":01}`, wantErr: true},
		{name: "bare minus", body: `{"model":"m","x":-}`, wantErr: true},
		{name: "bad exponent", body: `{"model":"m","x":1e}`, wantErr: true},
		{name: "trailing comma", body: `{"model":"m","x":[1,]}`, wantErr: true},
		{name: "trailing comma object", body: `{"model":"m",}`, wantErr: true},
		{name: "truncated literal", body: `{"model":"m","x":tru}`, wantErr: true},
		{name: "nesting at the limit", body: `{"x":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `,"model":"m"}`, want: BodyFields{Model: "m"}},
		{name: "nesting past the limit", body: `{"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `,"model":"m"}`, wantErr: true},
		// Governed values.
		{name: "string max_tokens", body: `{"model":"m","max_tokens":"5"}`, wantErr: true},
		{name: "fractional max_tokens", body: `{"model":"m","max_tokens":1.5}`, wantErr: true},
		{name: "huge max_tokens", body: `{"model":"m","max_tokens":1e300}`, wantErr: true},
		{name: "overflowing max_tokens", body: `{"model":"m","max_tokens":99999999999999999999}`, wantErr: true},
		{name: "model with control char", body: `{"model":"claude\u0000"}`, wantErr: true},
		{name: "model too long", body: `{"model":"` + strings.Repeat("a", MaxModelName+1) + `"}`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBody([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tc.want.N == 0 {
				tc.want.N = 1
			}
			if got.Model != tc.want.Model || got.MaxTokens != tc.want.MaxTokens || got.Stream != tc.want.Stream || got.IncludeUsage != tc.want.IncludeUsage || got.N != tc.want.N ||
				got.Speed != tc.want.Speed || got.InferenceGeo != tc.want.InferenceGeo {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// claudeCodeBody is shaped like what Claude Code sends: ~90 KB, model first,
// max_tokens and stream after the messages, system prompt and tools.
func claudeCodeBody() []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"claude-sonnet-4-5-20250929","messages":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"role":"user","content":[{"type":"text","text":"`)
		b.WriteString(strings.Repeat(`lorem ipsum \"dolor\" sit amet {[ `, 60))
		b.WriteString(`"}]}`)
	}
	b.WriteString(`],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[`)
	for i := range 12 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"name":"Tool","description":"` + strings.Repeat("does things ", 150) + `","input_schema":{"type":"object","properties":{"a":{"type":"string"}}}}`)
	}
	b.WriteString(`],"metadata":{"user_id":"{\"device_id\":\"d\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"stream":true}`)
	return b.Bytes()
}

func BenchmarkParseBody(b *testing.B) {
	body := claudeCodeBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := ParseBody(body)
		if err != nil || !f.Stream || f.MaxTokens != 32000 {
			b.Fatal(err, f)
		}
	}
}
