// Package dashboard is the llm_gateway_dashboard Caddy handler
// (http.handlers.llm_gateway_dashboard): a single-page spend dashboard
// served from files embedded in the binary, mountable on any route and
// protected by Caddy's own authentication:
//
//	handle_path /spend/* {
//		basic_auth { admin $2a$14$… }
//		llm_gateway_dashboard
//	}
//
// The page reads only its own origin: relative URLs under its mount path
// (api/usage, api/keys, …), which this handler answers with the admin API's
// own query handlers for the gateway configured in the same Caddy (found at
// request time, so the dashboard may be provisioned before the gateway).
// With a PostgreSQL ledger the numbers are the fleet's.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/module"
)

func init() {
	caddy.RegisterModule(Dashboard{})
}

//go:embed assets
var assetsFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are the embedded files by base name; "" is the page itself.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	out := map[string]*asset{}
	entries, err := fs.ReadDir(assetsFS, "assets")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := assetsFS.ReadFile("assets/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[e.Name()] = &asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	out[""] = out["index.html"]
	return out
}

// contentSecurityPolicy lets the page load and fetch only from its own
// origin: no inline script, no CDN, no web fonts, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Dashboard is the llm_gateway_dashboard handler. It serves the page and
// its assets on any path of its route (the last path segment picks the
// file; a trailing slash the page), and api/<endpoint> from the admin API's
// read-only llm_gateway endpoints. It is terminal: it never calls the next
// handler.
type Dashboard struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_gateway_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

// Provision sets up the logger.
func (d *Dashboard) Provision(ctx caddy.Context) error {
	d.logger = ctx.Logger()
	return nil
}

// Validate has nothing to check: the gateway is looked up per request.
func (d *Dashboard) Validate() error { return nil }

// Cleanup releases nothing: the dashboard holds no state.
func (d *Dashboard) Cleanup() error { return nil }

// ServeHTTP serves the page, its assets and its API.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	dir, base := path.Split(r.URL.Path)
	if path.Base(strings.TrimSuffix(dir, "/")) == "api" {
		h.Set("Cache-Control", "no-store")
		if module.ServeDashboardAPI(w, r, base) {
			return nil
		}
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	a := assets[base]
	if a == nil {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	if base == "" {
		// The page's relative URLs need its directory: /spend → /spend/.
		if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok &&
			!strings.HasSuffix(orig.URL.Path, "/") {
			u := *orig.URL
			u.Path += "/"
			u.RawPath = ""
			http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
			return nil
		}
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	h.Set("Content-Type", a.contentType)
	// Revalidate every time (cheap, by ETag), so an upgraded binary's page
	// is never mixed with an old script.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, base, time.Time{}, withETag(h, a))
	return nil
}

// withETag sets the asset's ETag (ServeContent answers If-None-Match with
// 304) and returns its body.
func withETag(h http.Header, a *asset) *bytes.Reader {
	h.Set("ETag", a.etag)
	return bytes.NewReader(a.body)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddy.Validator             = (*Dashboard)(nil)
	_ caddy.CleanerUpper          = (*Dashboard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
)
