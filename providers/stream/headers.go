package stream

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// hopByHop are the connection-level headers a proxy never forwards
// (RFC 9110 §7.6.1), plus Proxy-Connection, which some clients still send.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// droppedResponse are end-to-end upstream response headers the gateway does
// not pass on: cookies and Alt-Svc belong to the upstream's origin, not the
// gateway's, and Content-Length is decided by the relay (see
// CopyResponseHeaders).
var droppedResponse = map[string]bool{
	"Content-Length": true,
	"Set-Cookie":     true,
	"Set-Cookie2":    true,
	"Alt-Svc":        true,
}

// IsHopByHop reports whether the canonical header name is a hop-by-hop
// header that no proxy forwards.
func IsHopByHop(name string) bool { return hopByHop[name] }

// ConnectionListed reports whether the canonical header name is listed in
// the Connection header of h (and so hop-by-hop for that message).
func ConnectionListed(h http.Header, name string) bool {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f)) == name {
				return true
			}
		}
	}
	return false
}

// CopyResponseHeaders adds to dst the upstream response headers src a client
// should see: everything (request-id, retry-after, anthropic-ratelimit-*,
// x-should-retry, content-type, content-encoding if an upstream ignored
// "identity", unknown headers) except hop-by-hop headers and those named in
// Connection, Set-Cookie, Alt-Svc and Content-Length.
//
// Content-Length is dropped because a relay does not always send the body it
// received (translating families re-encode it, and an encoder in front of the
// gateway changes its length); a relay that passes a body through
// byte-for-byte restores it with KeepContentLength. Values are copied, not
// shared with src.
func CopyResponseHeaders(dst, src http.Header) {
	listed := connectionTokens(src)
	for k, vv := range src {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if hopByHop[ck] || droppedResponse[ck] || listedIn(listed, ck) {
			continue
		}
		dst[ck] = append(dst[ck], vv...)
	}
}

// connectionTokens returns the canonical header names listed in h's
// Connection header, skipping the common "keep-alive" and "close" (nil when
// nothing else is listed, which is almost always).
func connectionTokens(h http.Header) []string {
	var out []string
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" || strings.EqualFold(f, "keep-alive") || strings.EqualFold(f, "close") {
				continue
			}
			out = append(out, textproto.CanonicalMIMEHeaderKey(f))
		}
	}
	return out
}

func listedIn(list []string, name string) bool {
	for _, s := range list {
		if s == name {
			return true
		}
	}
	return false
}

// KeepContentLength sets dst's Content-Length from resp when the upstream
// declared an exact one and the body will be passed through unchanged (it
// is not transparently decompressed, which "Accept-Encoding: identity"
// upstream requests rule out). Keeping it lets the client detect a body cut
// short, and lets the connection carry the body without chunking.
//
// Nothing is set for statuses that carry no body (1xx, 204, 304).
func KeepContentLength(dst http.Header, resp *http.Response) {
	if s := resp.StatusCode; s < 200 || s == http.StatusNoContent || s == http.StatusNotModified {
		return
	}
	if resp.ContentLength >= 0 && !resp.Uncompressed {
		dst.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
}
