package llm

import (
	"encoding/json"
	"testing"
)

func TestRewriteBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		drop []string
		set  []Member
		want string
	}{
		{"bedrock", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi \"model\""}],"x":{"model":1}}`,
			[]string{"model", "stream"}, []Member{{"anthropic_version", QuoteJSON("bedrock-2023-05-31")}, {"anthropic_beta", []byte(`["a","b"]`)}},
			`{"max_tokens":10,"messages":[{"role":"user","content":"hi \"model\""}],"x":{"model":1},"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a","b"]}`},
		{"replace in place", `{ "model" : "a" , "stream": true }`, nil, []Member{{"model", QuoteJSON("deploy-1")}},
			`{"model":"deploy-1","stream":true}`},
		{"stream options", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false}}`, nil,
			[]Member{{"stream_options", []byte(`{"include_usage":true}`)}},
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`},
		{"empty", `{}`, []string{"model"}, []Member{{"a", []byte(`1`)}}, `{"a":1}`},
		{"drop only member", `{"model":"m"}`, []string{"model"}, nil, `{}`},
		{"escaped key", `{"mod\u0065l":"m","k":1}`, []string{"model"}, nil, `{"k":1}`},
		{"duplicate set key", `{"model":"a","model":"b"}`, nil, []Member{{"model", QuoteJSON("c")}}, `{"model":"c"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RewriteBody([]byte(tc.in), tc.drop, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatal("invalid JSON")
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1`, `{"a":1} x`} {
		if _, err := RewriteBody([]byte(bad), nil, nil); err == nil {
			t.Errorf("RewriteBody(%q) accepted", bad)
		}
	}
	if got := string(QuoteJSON("a\"b\\c\nd")); got != `"a\"b\\c\u000ad"` {
		t.Errorf("QuoteJSON = %s", got)
	}
}
