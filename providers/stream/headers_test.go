package stream

import (
	"net/http"
	"reflect"
	"testing"
)

func TestCopyResponseHeaders(t *testing.T) {
	src := http.Header{
		"Content-Type":                           {"text/event-stream; charset=utf-8"},
		"Request-Id":                             {"req_011CSHoEeqs5C35K2UUqR7Fy"},
		"Retry-After":                            {"17"},
		"X-Should-Retry":                         {"true"},
		"Anthropic-Ratelimit-Requests-Limit":     {"4000"},
		"Anthropic-Ratelimit-Tokens-Remaining":   {"1999000"},
		"Anthropic-Organization-Id":              {"0c0f6b7e"},
		"Cf-Ray":                                 {"8f1e2d3c4b5a6978-CDG"},
		"Via":                                    {"1.1 google"},
		"Content-Encoding":                       {"gzip"},
		"Cache-Control":                          {"no-cache"},
		"Connection":                             {"keep-alive, X-Hop"},
		"X-Hop":                                  {"secret-hop"},
		"Keep-Alive":                             {"timeout=5"},
		"Transfer-Encoding":                      {"chunked"},
		"Trailer":                                {"X-Checksum"},
		"Upgrade":                                {"h2c"},
		"Te":                                     {"trailers"},
		"Proxy-Authenticate":                     {"Basic"},
		"Proxy-Connection":                       {"keep-alive"},
		"Content-Length":                         {"1234"},
		"Set-Cookie":                             {"__cf_bm=abc; path=/; HttpOnly", "_cfuvid=def; path=/"},
		"Alt-Svc":                                {`h3=":443"; ma=86400`},
		"x-lowercase-noncanonical":               {"kept"},
		"Anthropic-Ratelimit-Input-Tokens-Reset": {"2026-01-02T03:04:05Z"},
	}
	dst := http.Header{"X-Already": {"1"}}
	CopyResponseHeaders(dst, src)
	want := http.Header{
		"X-Already":                              {"1"},
		"Content-Type":                           {"text/event-stream; charset=utf-8"},
		"Request-Id":                             {"req_011CSHoEeqs5C35K2UUqR7Fy"},
		"Retry-After":                            {"17"},
		"X-Should-Retry":                         {"true"},
		"Anthropic-Ratelimit-Requests-Limit":     {"4000"},
		"Anthropic-Ratelimit-Tokens-Remaining":   {"1999000"},
		"Anthropic-Organization-Id":              {"0c0f6b7e"},
		"Cf-Ray":                                 {"8f1e2d3c4b5a6978-CDG"},
		"Via":                                    {"1.1 google"},
		"Content-Encoding":                       {"gzip"},
		"Cache-Control":                          {"no-cache"},
		"X-Lowercase-Noncanonical":               {"kept"},
		"Anthropic-Ratelimit-Input-Tokens-Reset": {"2026-01-02T03:04:05Z"},
	}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("got  %v\nwant %v", dst, want)
	}
	// Values are copied, not aliased.
	src["Request-Id"][0] = "changed"
	if dst.Get("Request-Id") != "req_011CSHoEeqs5C35K2UUqR7Fy" {
		t.Fatal("dst shares value slices with src")
	}
}

func TestHopByHopHelpers(t *testing.T) {
	h := http.Header{"Connection": {"close", " x-foo ,Keep-Alive"}}
	for _, tc := range []struct {
		name string
		want bool
	}{{"X-Foo", true}, {"Keep-Alive", true}, {"Close", true}, {"X-Bar", false}} {
		if got := ConnectionListed(h, tc.name); got != tc.want {
			t.Errorf("ConnectionListed(%q) = %v", tc.name, got)
		}
	}
	for _, tc := range []struct {
		name string
		want bool
	}{{"Te", true}, {"Transfer-Encoding", true}, {"Proxy-Authorization", true}, {"Content-Type", false}, {"Request-Id", false}} {
		if got := IsHopByHop(tc.name); got != tc.want {
			t.Errorf("IsHopByHop(%q) = %v", tc.name, got)
		}
	}
}

func TestKeepContentLength(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp http.Response
		want string
	}{
		{name: "exact", resp: http.Response{StatusCode: 200, ContentLength: 512}, want: "512"},
		{name: "error body", resp: http.Response{StatusCode: 529, ContentLength: 97}, want: "97"},
		{name: "zero", resp: http.Response{StatusCode: 200, ContentLength: 0}, want: "0"},
		{name: "unknown", resp: http.Response{StatusCode: 200, ContentLength: -1}},
		{name: "decompressed by transport", resp: http.Response{StatusCode: 200, ContentLength: -1, Uncompressed: true}},
		{name: "no content", resp: http.Response{StatusCode: 204, ContentLength: 0}},
		{name: "not modified", resp: http.Response{StatusCode: 304, ContentLength: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			KeepContentLength(h, &tc.resp)
			if got := h.Get("Content-Length"); got != tc.want {
				t.Fatalf("Content-Length %q, want %q", got, tc.want)
			}
		})
	}
}
