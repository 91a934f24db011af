package cache

import (
	"net/http"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func req(s llm.Surface, body string) *Request {
	return &Request{Surface: s, Model: "claude-sonnet-4-5", Family: "anthropic", Scope: ScopeIdentity(ScopeKey, "alice", []byte{1}, "", ""), Body: []byte(body)}
}

func TestDeriveKey(t *testing.T) {
	msgs := llm.SurfaceAnthropicMessages
	chat := llm.SurfaceOpenAIChat
	tests := []struct {
		name string
		a, b *Request
		same bool
	}{
		{"identical bodies", req(msgs, `{"model":"claude-sonnet-4-5","max_tokens":5}`), req(msgs, `{"model":"claude-sonnet-4-5","max_tokens":5}`), true},
		{"anthropic metadata.user_id is volatile",
			req(msgs, `{"model":"m","metadata":{"user_id":"user_a_session_1"},"max_tokens":5}`),
			req(msgs, `{"model":"m","metadata":{"user_id":"user_b_session_2"},"max_tokens":5}`), true},
		{"other metadata members are not",
			req(msgs, `{"model":"m","metadata":{"user_id":"u","x":1}}`),
			req(msgs, `{"model":"m","metadata":{"user_id":"u","x":2}}`), false},
		{"openai chat user is volatile",
			req(chat, `{"model":"gpt-4o","user":"alice@example.com","messages":[]}`),
			req(chat, `{"model":"gpt-4o","user":"bob@example.com","messages":[]}`), true},
		{"openai chat safety_identifier is volatile",
			req(chat, `{"model":"gpt-4o","safety_identifier":"a","messages":[]}`),
			req(chat, `{"model":"gpt-4o","safety_identifier":"b","messages":[]}`), true},
		{"responses echo user: not volatile",
			req(llm.SurfaceOpenAIResponses, `{"model":"gpt-4o","user":"a","input":"hi"}`),
			req(llm.SurfaceOpenAIResponses, `{"model":"gpt-4o","user":"b","input":"hi"}`), false},
		{"user is not volatile on the anthropic surface",
			req(msgs, `{"model":"m","user":"a"}`), req(msgs, `{"model":"m","user":"b"}`), false},
		{"model aliases share: the canonical model is hashed, not the body's",
			req(msgs, `{"model":"claude-sonnet-4-5-20250929","max_tokens":5}`),
			req(msgs, `{"model":"sonnet","max_tokens":5}`), true},
		{"sampling parameters are part of the key",
			req(msgs, `{"model":"m","temperature":0}`), req(msgs, `{"model":"m","temperature":1}`), false},
		{"stream and not stream differ",
			req(msgs, `{"model":"m","stream":true}`), req(msgs, `{"model":"m","stream":false}`), false},
		{"whitespace between members does not matter",
			req(msgs, `{"model":"m","max_tokens":5}`), req(msgs, "{ \"model\" : \"m\",\n \"max_tokens\" : 5 }"), true},
		{"member order matters",
			req(msgs, `{"a":1,"b":2}`), req(msgs, `{"b":2,"a":1}`), false},
		{"a message's text matters",
			req(msgs, `{"messages":[{"role":"user","content":"hi"}]}`), req(msgs, `{"messages":[{"role":"user","content":"ho"}]}`), false},
		{"a dropped member cannot be smuggled into another",
			req(chat, `{"a":"x","user":"y"}`), req(chat, `{"a":"x,\"user\":y"}`), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Derive(tc.a) == Derive(tc.b); got != tc.same {
				t.Errorf("same key = %v, want %v", got, tc.same)
			}
		})
	}
}

func TestDeriveKeyParts(t *testing.T) {
	base := func() *Request { return req(llm.SurfaceAnthropicMessages, `{"model":"m","max_tokens":5}`) }
	k := Derive(base())
	for name, change := range map[string]func(*Request){
		"surface":         func(r *Request) { r.Surface = llm.SurfaceVertexRawPredict },
		"canonical model": func(r *Request) { r.Model = "claude-opus-4-1" },
		"family":          func(r *Request) { r.Family = "bedrock" },
		"scope":           func(r *Request) { r.Scope = ScopeIdentity(ScopeKey, "bob", []byte{2}, "", "") },
		"query":           func(r *Request) { r.Query = "beta=true" },
		"anthropic-beta":  func(r *Request) { r.Header = http.Header{"Anthropic-Beta": {"context-1m-2025-08-07"}} },
		"anthropic-version": func(r *Request) {
			r.Header = http.Header{"Anthropic-Version": {"2023-01-01"}}
		},
		"openai-beta": func(r *Request) { r.Header = http.Header{"Openai-Beta": {"x"}} },
	} {
		r := base()
		change(r)
		if Derive(r) == k {
			t.Errorf("changing the %s kept the key", name)
		}
	}
	// Unrelated headers do not matter.
	r := base()
	r.Header = http.Header{"User-Agent": {"claude-cli/2.0"}, "X-Claude-Code-Session-Id": {"s"}}
	if Derive(r) != k {
		t.Error("an unrelated header changed the key")
	}
}

func TestScopeIdentity(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"two keys under scope key", ScopeIdentity(ScopeKey, "alice", []byte{1}, "t", "c"), ScopeIdentity(ScopeKey, "bob", []byte{2}, "t", "c"), false},
		{"one name, two secrets", ScopeIdentity(ScopeKey, "alice", []byte{1}, "", ""), ScopeIdentity(ScopeKey, "alice", []byte{2}, "", ""), false},
		{"same team under scope team", ScopeIdentity(ScopeTeam, "alice", []byte{1}, "t", "c"), ScopeIdentity(ScopeTeam, "bob", []byte{2}, "t", "c"), true},
		{"two teams under scope team", ScopeIdentity(ScopeTeam, "alice", []byte{1}, "t1", "c"), ScopeIdentity(ScopeTeam, "bob", []byte{2}, "t2", "c"), false},
		{"teamless keys stay apart under scope team", ScopeIdentity(ScopeTeam, "alice", []byte{1}, "", ""), ScopeIdentity(ScopeTeam, "bob", []byte{2}, "", ""), false},
		{"same customer under scope customer", ScopeIdentity(ScopeCustomer, "alice", []byte{1}, "t1", "c"), ScopeIdentity(ScopeCustomer, "bob", []byte{2}, "t2", "c"), true},
		{"customerless keys fall back to their team", ScopeIdentity(ScopeCustomer, "alice", []byte{1}, "t", ""), ScopeIdentity(ScopeCustomer, "bob", []byte{2}, "t", ""), true},
		{"a team and a key of the same name", ScopeIdentity(ScopeTeam, "x", []byte{1}, "x", ""), ScopeIdentity(ScopeKey, "x", []byte{1}, "x", ""), false},
		{"a team and a customer of the same name", ScopeIdentity(ScopeTeam, "k", nil, "x", ""), ScopeIdentity(ScopeCustomer, "k", nil, "", "x"), false},
		{"global", ScopeIdentity(ScopeGlobal, "alice", []byte{1}, "t1", "c1"), ScopeIdentity(ScopeGlobal, "bob", []byte{2}, "t2", "c2"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a == tc.b; got != tc.same {
				t.Errorf("same identity = %v, want %v (%q, %q)", got, tc.same, tc.a, tc.b)
			}
		})
	}
	for _, s := range []string{"key", "team", "customer", "global"} {
		if sc, ok := ParseScope(s); !ok || sc.String() != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, sc, ok)
		}
	}
	if _, ok := ParseScope("tenant"); ok {
		t.Error("ParseScope accepted tenant")
	}
}

func BenchmarkDerive10KB(b *testing.B) {
	body := make([]byte, 0, 10<<10)
	body = append(body, `{"model":"claude-sonnet-4-5","max_tokens":1024,"metadata":{"user_id":"u"},"messages":[{"role":"user","content":"`...)
	for len(body) < 10<<10-10 {
		body = append(body, "lorem ipsum "...)
	}
	body = append(body, `"}]}`...)
	r := req(llm.SurfaceAnthropicMessages, string(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Derive(r)
	}
}
