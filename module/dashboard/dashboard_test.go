package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestServeHTTP: the page, its assets and its API by the last path
// segment, whatever the mount path; the page's directory gets its slash.
func TestServeHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, orig string
		status                   int
		contentType, location    string
		body                     string
	}{
		{name: "page", method: "GET", path: "/", orig: "/spend/", status: 200, contentType: "text/html; charset=utf-8", body: `<script src="app.js"`},
		{name: "page by name", method: "GET", path: "/index.html", orig: "/spend/index.html", status: 200, contentType: "text/html; charset=utf-8"},
		{name: "page unstripped", method: "GET", path: "/spend/", orig: "/spend/", status: 200, contentType: "text/html; charset=utf-8"},
		{name: "script", method: "GET", path: "/app.js", orig: "/spend/app.js", status: 200, contentType: "text/javascript; charset=utf-8", body: "'use strict'"},
		{name: "style", method: "GET", path: "/app.css", orig: "/spend/app.css", status: 200, contentType: "text/css; charset=utf-8"},
		{name: "head", method: "HEAD", path: "/app.js", orig: "/spend/app.js", status: 200},
		{name: "slash", method: "GET", path: "", orig: "/spend", status: 308, location: "/spend/"},
		{name: "slash keeps query", method: "GET", path: "", orig: "/spend?x=1", status: 308, location: "/spend/?x=1"},
		{name: "unknown file", method: "GET", path: "/secret.txt", orig: "/spend/secret.txt", status: 404},
		{name: "by last segment", method: "GET", path: "/assets/app.js", orig: "/spend/assets/app.js", status: 200},
		{name: "unknown endpoint", method: "GET", path: "/api/nope", orig: "/spend/api/nope", status: 404},
		{name: "post page", method: "POST", path: "/", orig: "/spend/", status: 405},
		{name: "post api", method: "POST", path: "/api/usage", orig: "/spend/api/usage", status: 405, contentType: "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://example.com"+tc.orig, nil)
			orig := *r
			u := *r.URL
			orig.URL = &u
			r.URL.Path = tc.path
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
			w := httptest.NewRecorder()
			err := new(Dashboard).ServeHTTP(w, r, nil)
			status := w.Code
			var he caddyhttp.HandlerError
			if errors.As(err, &he) {
				status = he.StatusCode
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, w.Body)
			}
			if tc.contentType != "" && w.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), tc.contentType)
			}
			if tc.location != "" && w.Header().Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", w.Header().Get("Location"), tc.location)
			}
			if !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
			if status == 200 && w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
		})
	}
}

// TestPageSecurityHeaders: the page may load and fetch only its own origin.
func TestPageSecurityHeaders(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	if err := new(Dashboard).ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	etag := w.Header().Get("ETag")
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	if err := new(Dashboard).ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
}

// TestAssetsStayOffline: nothing in the embedded files names another
// origin (no CDN, no web font).
func TestAssetsStayOffline(t *testing.T) {
	for name, a := range assets {
		body := string(a.body)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "fonts.googleapis", "url("} {
			if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input, err string
	}{
		{input: `llm_gateway_dashboard`},
		{input: `llm_gateway_dashboard {
		}`},
		{input: `llm_gateway_dashboard extra`, err: "wrong argument count"},
		{input: `llm_gateway_dashboard {
			title x
		}`, err: `unknown subdirective "title"`},
	} {
		t.Run(tc.input, func(t *testing.T) {
			err := new(Dashboard).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}
