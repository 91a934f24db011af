package stream

import (
	"mime"
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

// strippedRequest are inbound headers never forwarded upstream: hop-by-hop
// headers, those the transport sets itself, the client's credentials (the
// gateway's virtual key), cookies, and Accept-Encoding (the meter reads
// plain bytes; identity is asked for instead). Expect is dropped because
// the gateway already read the body.
var strippedRequest = map[string]bool{
	"Host":                true,
	"Content-Length":      true,
	"Authorization":       true,
	"X-Api-Key":           true,
	"Api-Key":             true,
	"X-Goog-Api-Key":      true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Accept-Encoding":     true,
	"Expect":              true,
}

// ForwardRequestHeaders copies the inbound headers every family forwards
// into a new header: all of them (every anthropic-* header, x-stainless-*,
// User-Agent, session ids, unknown headers) except hop-by-hop ones and
// those named in Connection, Host, Content-Length, Expect, Cookie,
// Accept-Encoding (the meter reads plain bytes; families ask for identity)
// and the client's credentials (Authorization, X-Api-Key, Api-Key,
// X-Goog-Api-Key, Proxy-Authorization: the gateway's virtual key). Names
// are canonicalised and all values share one backing array.
func ForwardRequestHeaders(in http.Header) http.Header {
	var listed []string // names in the client's Connection header
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				listed = append(listed, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	n := 0
	for _, vv := range in {
		n += len(vv)
	}
	out := make(http.Header, len(in)+3)
	values := make([]string, 0, n)
outer:
	for k, vv := range in {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if strippedRequest[ck] || IsHopByHop(ck) || len(vv) == 0 {
			continue
		}
		for _, l := range listed {
			if l == ck {
				continue outer
			}
		}
		start := len(values)
		values = append(values, vv...)
		if prev, dup := out[ck]; dup { // two spellings of one name
			out[ck] = append(prev[:len(prev):len(prev)], values[start:]...)
			continue
		}
		out[ck] = values[start:len(values):len(values)]
	}
	return out
}

// IsEventStream reports whether a Content-Type is text/event-stream.
func IsEventStream(ct string) bool {
	if ct == "" {
		return false
	}
	if strings.HasPrefix(ct, "text/event-stream") && (len(ct) == len("text/event-stream") || ct[len("text/event-stream")] == ';') {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}
