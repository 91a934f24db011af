package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestBadInputTable sends what an attacker or a clumsy client would: every
// request is answered in its surface's error shape with the right status,
// nothing refused reaches a provider, and /metrics still answers 200.
func TestBadInputTable(t *testing.T) {
	ma := newMockAnthropic(t)
	mo := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: fmt.Sprintf(`store memory
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
			models claude-*
		}
		provider openai {
			type openai
			api_key %s
			base_url %s
			models gpt-*
		}
		key alice {
			secret %s
			models claude-haiku-* gpt-4o*
			budget 5 usd per day
		}
		key bob {
			secret %s
		}
		metrics_label project header X-Project`, ma.APIKey, ma.URL(), mockOpenAIKey, mo.URL(), aliceKey, bobKey)})

	msgs := `"messages":[{"role":"user","content":"hi"}]`
	haiku := func(rest string) string { return `{"model":"claude-haiku-4-5",` + msgs + rest + `}` }
	deep := `{"model":"claude-haiku-4-5","max_tokens":5,` + msgs + `,"metadata":` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat(`}`, 600) + `}`
	anthropicHeaders := func(key string) map[string]string {
		return map[string]string{"X-Api-Key": key, "Anthropic-Version": "2023-06-01", "Content-Type": "application/json"}
	}
	openaiHeaders := map[string]string{"Authorization": "Bearer " + aliceKey, "Content-Type": "application/json"}

	type tc struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		errType                  string // "" when the request is served
		mention                  string // a word the message must hold
	}
	cases := []tc{
		{name: "escaped duplicate model", body: `{"model":"claude-haiku-4-5","mod\u0065l":"claude-opus-4-1","max_tokens":10,` + msgs + `}`,
			status: 400, errType: "invalid_request_error", mention: `"model" appears more than once`},
		{name: "escaped model is the model", body: `{"mod\u0065l":"claude-opus-4-1","max_tokens":10,` + msgs + `}`,
			status: 403, errType: "permission_error", mention: "claude-opus-4-1"},
		{name: "escaped duplicate max_tokens", body: haiku(`,"max_tokens":10,"max_tok\u0065ns":100000`),
			status: 400, errType: "invalid_request_error", mention: `"max_tokens" appears more than once`},
		{name: "escaped max_tokens above the model's output", body: haiku(`,"max_tok\u0065ns":100000`),
			status: 400, errType: "invalid_request_error", mention: "maximum allowed number of output tokens"},
		{name: "duplicate stream", body: haiku(`,"max_tokens":10,"stream":false,"str\u0065am":true`),
			status: 400, errType: "invalid_request_error", mention: `"stream"`},
		{name: "model in another case", body: haiku(`,"max_tokens":10,"MODEL":"claude-opus-4-1"`),
			status: 400, errType: "invalid_request_error", mention: `"MODEL"`},
		{name: "malformed JSON", body: `{"model":"claude-haiku-4-5",` + msgs + `,}`, status: 400, errType: "invalid_request_error", mention: "malformed JSON"},
		{name: "mismatched brackets", body: `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}}]}`, status: 400, errType: "invalid_request_error"},
		{name: "truncated JSON", body: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"us`, status: 400, errType: "invalid_request_error"},
		{name: "trailing data", body: haiku(`,"max_tokens":10`) + `{"model":"claude-opus-4-1"}`, status: 400, errType: "invalid_request_error"},
		{name: "array body", body: `[` + haiku(`,"max_tokens":10`) + `]`, status: 400, errType: "invalid_request_error"},
		{name: "string body", body: `"claude-haiku-4-5"`, status: 400, errType: "invalid_request_error"},
		{name: "empty body", body: ``, status: 400, errType: "invalid_request_error"},
		{name: "deep nesting", body: deep, status: 400, errType: "invalid_request_error", mention: "nesting"},
		{name: "invalid UTF-8 in model", body: "{\"model\":\"claude-haiku-4-5\xff\",\"max_tokens\":10," + msgs + "}", status: 400, errType: "invalid_request_error", mention: "UTF-8"},
		{name: "invalid UTF-8 in content", body: haiku(",\"max_tokens\":10,\"system\":\"\xc3(\""), status: 400, errType: "invalid_request_error", mention: "UTF-8"},
		{name: "control character in model", body: `{"model":"claude-haiku-4-5\u0000",` + msgs + `,"max_tokens":10}`, status: 400, errType: "invalid_request_error"},
		{name: "negative max_tokens", body: haiku(`,"max_tokens":-1`), status: 400, errType: "invalid_request_error", mention: "max_tokens"},
		{name: "string max_tokens", body: haiku(`,"max_tokens":"10"`), status: 400, errType: "invalid_request_error", mention: "max_tokens"},
		{name: "huge max_tokens", body: haiku(`,"max_tokens":1e30`), status: 400, errType: "invalid_request_error", mention: "max_tokens"},
		{name: "max_tokens above the model's output", body: haiku(`,"max_tokens":64001`), status: 400, errType: "invalid_request_error", mention: "64000"},
		{name: "model no provider serves", body: `{"model":"llama-3-70b","max_tokens":10,` + msgs + `}`, header: anthropicHeaders(bobKey),
			status: 404, errType: "not_found_error", mention: "llama-3-70b"},
		{name: "unknown path", method: "POST", path: "/v1/messages/batches/x/y", body: haiku(`,"max_tokens":10`), status: 404, errType: "not_found_error"},
		{name: "invalid UTF-8 in a label header", body: haiku(`,"max_tokens":10`), header: map[string]string{"X-Project": "\xff\xfeproj"}, status: 200},
		{name: "credentials in the query", path: "/v1/messages?beta=true&key=" + aliceKey + "&api_key=sk-other&api-key=sk-x", body: haiku(`,"max_tokens":10`), status: 200},
		// The OpenAI surface answers in its own shape.
		{name: "openai escaped duplicate stream", path: "/openai/v1/chat/completions", header: openaiHeaders,
			body: `{"model":"gpt-4o-mini","stream":false,"str\u0065am":true,` + msgs + `}`, status: 400, errType: "invalid_request_error", mention: `"stream"`},
		{name: "openai duplicate n", path: "/openai/v1/chat/completions", header: openaiHeaders,
			body: `{"model":"gpt-4o-mini","n":1,"n":64,` + msgs + `}`, status: 400, errType: "invalid_request_error", mention: `"n"`},
		{name: "openai malformed", path: "/openai/v1/chat/completions", header: openaiHeaders,
			body: `{"model":"gpt-4o-mini",` + msgs, status: 400, errType: "invalid_request_error"},
		{name: "openai model not allowed", path: "/openai/v1/chat/completions", header: openaiHeaders,
			body: `{"model":"gpt-5",` + msgs + `}`, status: 403, errType: "invalid_request_error", mention: "gpt-5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "" {
				c.method = "POST"
			}
			if c.path == "" {
				c.path = "/v1/messages"
			}
			h := anthropicHeaders(aliceKey)
			for k, v := range c.header {
				h[k] = v
			}
			beforeA, beforeO := ma.count(), mo.count()
			resp, body := g.doRaw(c.method, c.path, h, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			forwarded := ma.count() - beforeA + mo.count() - beforeO
			if c.errType == "" {
				if forwarded != 1 {
					t.Fatalf("%d requests forwarded, want 1", forwarded)
				}
				return
			}
			if forwarded != 0 {
				t.Fatalf("a refused request reached a provider (%d)", forwarded)
			}
			typ, msg := errorOf(t, c.path, body)
			if typ != c.errType || !strings.Contains(msg, c.mention) {
				t.Fatalf("error %q %q, want %q mentioning %q", typ, msg, c.errType, c.mention)
			}
		})
	}

	// The query's credentials never reached the provider; beta=true did.
	for _, r := range ma.requests() {
		if strings.Contains(r.RawQuery, aliceKey) || strings.Contains(r.RawQuery, "sk-") || strings.Contains(r.RawQuery, "key=") {
			t.Fatalf("credential forwarded in the query: %q", r.RawQuery)
		}
	}

	t.Run("40 MiB body", func(t *testing.T) {
		before := ma.count()
		req, err := http.NewRequest("POST", g.URL+"/v1/messages", io.LimitReader(zeroes{}, 40<<20))
		must(t, err)
		req.ContentLength = 40 << 20
		for k, v := range anthropicHeaders(aliceKey) {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || ma.count() != before {
			t.Fatalf("status %d, %d forwarded: %s", resp.StatusCode, ma.count()-before, b)
		}
		if typ, _ := errorOf(t, "/v1/messages", string(b)); typ != "request_too_large" {
			t.Fatalf("error type %q", typ)
		}
	})

	t.Run("CR LF in a header", func(t *testing.T) {
		// Go's HTTP server refuses a header value holding a bare CR or LF
		// before any handler runs; no client library can send one.
		before := ma.count()
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		must(t, err)
		defer conn.Close()
		body := haiku(`,"max_tokens":10`)
		fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\nX-Project: a\rInjected: 1\r\nContent-Length: %d\r\n\r\n%s", aliceKey, len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 400 || ma.count() != before {
			t.Fatalf("status %d, %d forwarded", resp.StatusCode, ma.count()-before)
		}
	})

	if resp, err := http.Get(g.AdminURL + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics after the bad inputs: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// errorOf reads the error type and message of an Anthropic- or
// OpenAI-shaped error body.
func errorOf(t *testing.T, path, body string) (typ, msg string) {
	t.Helper()
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, body)
	}
	if !strings.Contains(path, "/openai/") && e.Type != "error" {
		t.Fatalf("not an Anthropic error body: %s", body)
	}
	return e.Error.Type, e.Error.Message
}

// zeroes reads as an endless run of '0' bytes.
type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
