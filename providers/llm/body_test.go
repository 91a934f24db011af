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
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBody([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.Model != tc.want.Model || got.MaxTokens != tc.want.MaxTokens || got.Stream != tc.want.Stream || got.IncludeUsage != tc.want.IncludeUsage {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseBodySpans(t *testing.T) {
	body := `{"model":"m", "stream":true,"x":1}`
	f, err := ParseBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := body[f.ModelMember.Start:f.ModelMember.End]; got != `"model":"m"` {
		t.Errorf("model member %q", got)
	}
	if got := body[f.StreamMember.Start:f.StreamMember.End]; got != `"stream":true` {
		t.Errorf("stream member %q", got)
	}
	if body[f.Close] != '}' || f.Members != 3 {
		t.Errorf("close %d members %d", f.Close, f.Members)
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
