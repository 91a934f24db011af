package vertex

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestNew(t *testing.T) {
	ts := newTokenServer(t)
	sa := ts.serviceAccountJSON(t)
	withSA := func(mut func(m map[string]string)) []byte {
		var m map[string]string
		if err := json.Unmarshal(sa, &m); err != nil {
			t.Fatal(err)
		}
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	var saKey map[string]string
	_ = json.Unmarshal(sa, &saKey)
	privateKey := saKey["private_key"]

	tok := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})
	base := func(c Config) Config {
		if c.Transport == nil {
			c.Transport = http.DefaultTransport
		}
		return c
	}
	const models = "/publishers/anthropic/models/"
	for _, tc := range []struct {
		name       string
		cfg        Config
		wantModels string
		wantErr    string
	}{
		{name: "regional default host", cfg: Config{Project: "p-1", Region: "us-east5", TokenSource: tok},
			wantModels: "https://us-east5-aiplatform.googleapis.com/v1/projects/p-1/locations/us-east5" + models},
		{name: "global default host", cfg: Config{Project: "p-1", Region: "global", TokenSource: tok},
			wantModels: "https://aiplatform.googleapis.com/v1/projects/p-1/locations/global" + models},
		{name: "us multi-region host", cfg: Config{Project: "p-1", Region: "us", TokenSource: tok},
			wantModels: "https://aiplatform.us.rep.googleapis.com/v1/projects/p-1/locations/us" + models},
		{name: "eu multi-region host", cfg: Config{Project: "p-1", Region: "eu", TokenSource: tok},
			wantModels: "https://aiplatform.eu.rep.googleapis.com/v1/projects/p-1/locations/eu" + models},
		{name: "base url with prefix and slash", cfg: Config{Project: "p-1", Region: "europe-west1", BaseURL: "http://127.0.0.1:9/vertex/", TokenSource: tok},
			wantModels: "http://127.0.0.1:9/vertex/v1/projects/p-1/locations/europe-west1" + models},
		{name: "domain-scoped project", cfg: Config{Project: "example.com:my-proj", Region: "global", TokenSource: tok},
			wantModels: "https://aiplatform.googleapis.com/v1/projects/example.com:my-proj/locations/global" + models},
		{name: "credentials json", cfg: Config{Project: "p", Region: "global", CredentialsJSON: sa},
			wantModels: "https://aiplatform.googleapis.com/v1/projects/p/locations/global" + models},
		{name: "authorized user json", cfg: Config{Project: "p", Region: "global",
			CredentialsJSON: []byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"r"}`)},
			wantModels: "https://aiplatform.googleapis.com/v1/projects/p/locations/global" + models},

		{name: "no project", cfg: Config{Region: "global", TokenSource: tok}, wantErr: "project is required"},
		{name: "project with slash", cfg: Config{Project: "a/b", Region: "global", TokenSource: tok}, wantErr: "not a valid project id"},
		{name: "project with space", cfg: Config{Project: "a b", Region: "global", TokenSource: tok}, wantErr: "not a valid project id"},
		{name: "no region", cfg: Config{Project: "p", TokenSource: tok}, wantErr: "region is required"},
		{name: "region with dot", cfg: Config{Project: "p", Region: "us.east5", TokenSource: tok}, wantErr: "not a valid Vertex AI location"},
		{name: "no transport", cfg: Config{Project: "p", Region: "global", TokenSource: tok, Transport: nil}, wantErr: "transport"},
		{name: "bad scheme", cfg: Config{Project: "p", Region: "global", BaseURL: "ftp://x", TokenSource: tok}, wantErr: "scheme"},
		{name: "no host", cfg: Config{Project: "p", Region: "global", BaseURL: "https:///x", TokenSource: tok}, wantErr: "no host"},
		{name: "query", cfg: Config{Project: "p", Region: "global", BaseURL: "https://x/?a=1", TokenSource: tok}, wantErr: "query"},
		{name: "fragment", cfg: Config{Project: "p", Region: "global", BaseURL: "https://x/#f", TokenSource: tok}, wantErr: "fragment"},
		{name: "user info", cfg: Config{Project: "p", Region: "global", BaseURL: "https://u:pw@x", TokenSource: tok}, wantErr: "credentials"},
		{name: "trailing v1", cfg: Config{Project: "p", Region: "global", BaseURL: "https://aiplatform.googleapis.com/v1/", TokenSource: tok}, wantErr: "ends in /v1"},
		{name: "unparseable", cfg: Config{Project: "p", Region: "global", BaseURL: "http://[::1", TokenSource: tok}, wantErr: "base_url"},
		{name: "file and json", cfg: Config{Project: "p", Region: "global", CredentialsFile: "/x", CredentialsJSON: sa}, wantErr: "mutually exclusive"},
		{name: "json and token source", cfg: Config{Project: "p", Region: "global", CredentialsJSON: sa, TokenSource: tok}, wantErr: "mutually exclusive"},
		{name: "missing file", cfg: Config{Project: "p", Region: "global", CredentialsFile: filepath.Join(t.TempDir(), "nope.json")}, wantErr: "credentials_file"},
		{name: "not json", cfg: Config{Project: "p", Region: "global", CredentialsJSON: []byte("-----BEGIN PRIVATE KEY-----")}, wantErr: "syntax error"},
		{name: "json array", cfg: Config{Project: "p", Region: "global", CredentialsJSON: []byte(`[1]`)}, wantErr: "not a Google credentials file"},
		{name: "unknown type", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { m["type"] = "gdch_service_account" })}, wantErr: "unsupported credential type"},
		{name: "no type", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { delete(m, "type") })}, wantErr: "unsupported credential type"},
		{name: "no email", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { delete(m, "client_email") })}, wantErr: "client_email"},
		{name: "no key", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { delete(m, "private_key") })}, wantErr: "no private_key"},
		{name: "garbage key", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { m["private_key"] = "not a key" })}, wantErr: "not a PEM or DER RSA"},
		{name: "ecdsa key", cfg: Config{Project: "p", Region: "global", CredentialsJSON: withSA(func(m map[string]string) { m["private_key"] = ecPEM })}, wantErr: "not an RSA key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if tc.name != "no transport" {
				cfg = base(cfg)
			}
			cfg.Name = "vx"
			p, err := New(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), `vertex provider "vx"`) {
					t.Errorf("error does not name the provider: %v", err)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), privateKey[40:80]) {
					t.Errorf("error leaks key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.models != tc.wantModels {
				t.Errorf("models URL %q, want %q", p.models, tc.wantModels)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	p := newProvider(t, Config{Name: "gcp"})
	if p.Name() != "gcp" || p.Family() != "vertex" {
		t.Fatalf("Name %q Family %q", p.Name(), p.Family())
	}
	served := map[llm.Surface]bool{
		llm.SurfaceAnthropicMessages: true, llm.SurfaceAnthropicCountTokens: true,
		llm.SurfaceVertexRawPredict: true, llm.SurfaceVertexStreamRawPredict: true, llm.SurfaceVertexCountTokens: true,
	}
	for s := llm.SurfaceUnknown; s <= llm.SurfaceVertexCountTokens+1; s++ {
		if p.Serves(s) != served[s] {
			t.Errorf("Serves(%s) = %v", s, !served[s])
		}
	}
}

func TestDefaultModelID(t *testing.T) {
	for in, want := range map[string]string{
		"claude-sonnet-4-5": "claude-sonnet-4-5@20250929",
		"claude-haiku-4-5":  "claude-haiku-4-5@20251001",
		"claude-opus-4-5":   "claude-opus-4-5@20251101",
		"claude-opus-4-1":   "claude-opus-4-1@20250805",
		"claude-sonnet-4":   "claude-sonnet-4@20250514",
		"claude-opus-4":     "claude-opus-4@20250514",
		"claude-3-7-sonnet": "claude-3-7-sonnet@20250219",
		"claude-3-5-haiku":  "claude-3-5-haiku@20241022",
		"claude-3-5-sonnet": "claude-3-5-sonnet-v2@20241022",
		"claude-sonnet-4-6": "claude-sonnet-4-6",
		"claude-opus-4-6":   "claude-opus-4-6",
		"claude-opus-5":     "claude-opus-5",
		"":                  "",
	} {
		if got := DefaultModelID(in); got != want {
			t.Errorf("DefaultModelID(%q) = %q, want %q", in, got, want)
		}
	}
	// Every built-in id names the model it is filed under.
	for canonical, id := range builtinModels {
		if c := llm.CanonicalModel(id); c != canonical && !(canonical == "claude-3-5-sonnet" && c == "claude-3-5-sonnet-v2") {
			t.Errorf("%s → %s, whose canonical name is %s", canonical, id, c)
		}
	}
}

const (
	gwModels = "/v1/projects/gw-project/locations/us-east5/publishers/anthropic/models/"
	version  = `"anthropic_version":"vertex-2023-10-16"`
)

func TestSendTranslation(t *testing.T) {
	haikuBody := `{"model":"claude-haiku-4-5", "max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name       string
		cfg        Config
		prefix     string // base URL path
		call       llm.Call
		wantPath   string // escaped
		wantQuery  string
		wantBody   string
		wantStream bool
	}{
		{
			name: "anthropic stream: model dropped, version appended, query dropped",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5",
				Stream: true, Body: []byte(claudeCodeBody), RawQuery: "beta=true", PathSuffix: "/v1/messages"},
			wantPath: gwModels + "claude-sonnet-4-5@20250929:streamRawPredict",
			wantBody: "{" + claudeCodeRest + "," + version + "}", wantStream: true,
		},
		{
			name: "anthropic non-stream: rawPredict",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-haiku-4-5", CanonicalModel: "claude-haiku-4-5",
				Body: []byte(haikuBody), PathSuffix: "/v1/messages"},
			wantPath: gwModels + "claude-haiku-4-5@20251001:rawPredict",
			wantBody: `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}],` + version + `}`,
		},
		{
			name: "anthropic: 4.6 and later use the canonical name",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-6", CanonicalModel: "claude-sonnet-4-6",
				Body: []byte(`{"model":"claude-sonnet-4-6","max_tokens":1}`)},
			wantPath: gwModels + "claude-sonnet-4-6:rawPredict",
			wantBody: `{"max_tokens":1,` + version + `}`,
		},
		{
			name: "anthropic: model map first",
			cfg:  Config{Models: providers.ModelMap{{Glob: "claude-opus-*", ID: "x"}, {Glob: "claude-sonnet-4-5*", ID: "claude-sonnet-4-5@20251231"}}},
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
				Body: []byte(`{"model":"claude-sonnet-4-5","max_tokens":1}`)},
			wantPath: gwModels + "claude-sonnet-4-5@20251231:rawPredict",
			wantBody: `{"max_tokens":1,` + version + `}`,
		},
		{
			name: "anthropic: a client's Vertex id resolves through its canonical name",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-1@20250805", CanonicalModel: "claude-opus-4-1",
				Body: []byte(`{"model":"claude-opus-4-1@20250805","max_tokens":1}`)},
			wantPath: gwModels + "claude-opus-4-1@20250805:rawPredict",
			wantBody: `{"max_tokens":1,` + version + `}`,
		},
		{
			name: "anthropic: a client anthropic_version is replaced in place",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-6", CanonicalModel: "claude-sonnet-4-6", Stream: true,
				Body: []byte(`{"anthropic_version":"2023-06-01","model":"claude-sonnet-4-6","stream":true}`)},
			wantPath: gwModels + "claude-sonnet-4-6:streamRawPredict",
			wantBody: `{` + version + `,"stream":true}`, wantStream: true,
		},
		{
			name:     "anthropic: ids are escaped as one path segment",
			cfg:      Config{Models: providers.ModelMap{{Glob: "odd", ID: "claude x;y/z"}}},
			call:     llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "odd", CanonicalModel: "odd", Body: []byte(`{"model":"odd"}`)},
			wantPath: gwModels + "claude%20x%3By%2Fz:rawPredict",
			wantBody: `{` + version + `}`,
		},
		{
			name: "anthropic count_tokens: model kept as the Vertex id",
			call: llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-opus-4-5-20251101", CanonicalModel: "claude-opus-4-5",
				Body: []byte(`{"messages":[{"role":"user","content":"hi"}], "model" : "claude-opus-4-5-20251101","tools":[]}`), RawQuery: "beta=true",
				PathSuffix: "/v1/messages/count_tokens"},
			wantPath: gwModels + "count-tokens:rawPredict",
			wantBody: `{"messages":[{"role":"user","content":"hi"}],"model":"claude-opus-4-5@20251101","tools":[],` + version + `}`,
		},
		{
			name:   "global region, base path prefix",
			cfg:    Config{Region: "global"},
			prefix: "/vertex-proxy/",
			call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5", Stream: true,
				Body: []byte(`{"model":"claude-sonnet-4-5","stream":true}`)},
			wantPath: "/vertex-proxy/v1/projects/gw-project/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
			wantBody: `{"stream":true,` + version + `}`, wantStream: true,
		},
		{
			name: "vertex stream: the client's project and region are ignored, body untouched",
			call: llm.Call{Surface: llm.SurfaceVertexStreamRawPredict, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5", Stream: true,
				Body:       []byte(vertexBody),
				PathSuffix: "/projects/client-proj/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"},
			wantPath: gwModels + "claude-sonnet-4-5@20250929:streamRawPredict",
			wantBody: vertexBody, wantStream: true,
		},
		{
			name: "vertex raw: the client's id when unmapped, query kept",
			call: llm.Call{Surface: llm.SurfaceVertexRawPredict, Model: "claude-3-5-sonnet-v2@20241022", CanonicalModel: "claude-3-5-sonnet-v2",
				Body: []byte(vertexBody), RawQuery: "alt=json",
				PathSuffix: "/projects/client-proj/locations/global/publishers/anthropic/models/claude-3-5-sonnet-v2@20241022:rawPredict"},
			wantPath: gwModels + "claude-3-5-sonnet-v2@20241022:rawPredict", wantQuery: "alt=json",
			wantBody: vertexBody,
		},
		{
			name: "vertex raw: mapped id",
			cfg:  Config{Models: providers.ModelMap{{Glob: "claude-haiku-4-5*", ID: "claude-haiku-4-5@20260101"}}},
			call: llm.Call{Surface: llm.SurfaceVertexRawPredict, Model: "claude-haiku-4-5@20251001", CanonicalModel: "claude-haiku-4-5",
				Body:       []byte(vertexBody),
				PathSuffix: "/projects/client-proj/locations/us-east5/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict"},
			wantPath: gwModels + "claude-haiku-4-5@20260101:rawPredict",
			wantBody: vertexBody,
		},
		{
			name: "vertex count-tokens: untouched",
			call: llm.Call{Surface: llm.SurfaceVertexCountTokens, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5",
				Body:       []byte(`{"anthropic_version":"vertex-2023-10-16", "model":"claude-sonnet-4-5@20250929","messages":[]}`),
				PathSuffix: "/projects/client-proj/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"},
			wantPath: gwModels + "count-tokens:rawPredict",
			wantBody: `{"anthropic_version":"vertex-2023-10-16", "model":"claude-sonnet-4-5@20250929","messages":[]}`,
		},
		{
			name: "vertex count-tokens: remapped model rewritten in place",
			cfg:  Config{Models: providers.ModelMap{{Glob: "claude-sonnet-4-5", ID: "claude-sonnet-4-5@20251231"}}},
			call: llm.Call{Surface: llm.SurfaceVertexCountTokens, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5",
				Body:       []byte(`{"anthropic_version":"vertex-2023-10-16", "model":"claude-sonnet-4-5@20250929","messages":[]}`),
				PathSuffix: "/projects/client-proj/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"},
			wantPath: gwModels + "count-tokens:rawPredict",
			wantBody: `{"anthropic_version":"vertex-2023-10-16","model":"claude-sonnet-4-5@20251231","messages":[]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, replyHandler)
			cfg := tc.cfg
			cfg.BaseURL = srv.URL + tc.prefix
			if cfg.Region == "global" {
				tc.wantPath = strings.Replace(tc.wantPath, "/us-east5/", "/global/", 1)
			}
			p := newProvider(t, cfg)
			call := tc.call
			call.Header = claudeCodeHeader()
			inbound := call.Header.Clone()
			origBody := string(call.Body)
			resp, err := p.Send(context.Background(), &call)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r := <-got
			if r.method != http.MethodPost || r.rawPath != tc.wantPath || r.rawQuery != tc.wantQuery {
				t.Errorf("upstream saw %s %s?%s\nwant POST %s?%s", r.method, r.rawPath, r.rawQuery, tc.wantPath, tc.wantQuery)
			}
			if string(r.body) != tc.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.wantBody)
			}
			if tc.wantBody != "" && !json.Valid(r.body) {
				t.Errorf("body is not valid JSON")
			}
			if string(call.Body) != origBody {
				t.Error("Send modified the inbound body")
			}
			checkHeaders(t, r.header, inbound, "Bearer "+staticToken)
			if !reflect.DeepEqual(call.Header, inbound) {
				t.Error("Send modified the inbound header")
			}
		})
	}
}

// checkHeaders asserts the upstream header policy.
func checkHeaders(t *testing.T, h, inbound http.Header, wantAuth string) {
	t.Helper()
	if got := h.Values("Authorization"); !reflect.DeepEqual(got, []string{wantAuth}) {
		t.Errorf("Authorization %q, want %q", got, wantAuth)
	}
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := h.Get("Accept-Encoding"); got != "identity" {
		t.Errorf("Accept-Encoding %q, want identity", got)
	}
	for name, vals := range h {
		for _, v := range vals {
			if strings.Contains(v, virtualKey) {
				t.Errorf("client credential reached upstream in %s", name)
			}
		}
	}
	for _, stripped := range []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key", "X-Goog-User-Project", "Proxy-Authorization", "Cookie", "X-Hop-Secret", "Te"} {
		if v, ok := h[stripped]; ok {
			t.Errorf("%s forwarded: %q", stripped, v)
		}
	}
	for _, kept := range []string{"Anthropic-Beta", "Anthropic-Version", "User-Agent", "X-App", "X-Claude-Code-Session-Id", "X-Stainless-Lang", "Accept", "X-Project"} {
		if got := h[kept]; !reflect.DeepEqual(got, inbound[kept]) {
			t.Errorf("%s = %q, want %q", kept, got, inbound[kept])
		}
	}
}

// TestDefaultHosts checks, at the wire, that requests go to the regional,
// global and multi-region hosts (rerouted to a local server before dialing).
func TestDefaultHosts(t *testing.T) {
	srv, got := recordingUpstream(t, replyHandler)
	target, _ := url.Parse(srv.URL)
	for _, tc := range []struct{ region, want string }{
		{"us-east5", "https://us-east5-aiplatform.googleapis.com/v1/projects/gw-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"},
		{"europe-west1", "https://europe-west1-aiplatform.googleapis.com/v1/projects/gw-project/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"},
		{"global", "https://aiplatform.googleapis.com/v1/projects/gw-project/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"},
		{"eu", "https://aiplatform.eu.rep.googleapis.com/v1/projects/gw-project/locations/eu/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"},
	} {
		rt := &redirectTransport{target: target}
		p := newProvider(t, Config{Region: tc.region, Transport: rt})
		call := &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5", Stream: true,
			Body: []byte(`{"model":"claude-sonnet-4-5","stream":true}`), Header: http.Header{}}
		resp, err := p.Send(context.Background(), call)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		<-got
		if seen := rt.seen(); len(seen) != 1 || seen[0] != tc.want {
			t.Errorf("%s: sent to %q, want %q", tc.region, seen, tc.want)
		}
	}
}

func TestSendRequestIsRewindable(t *testing.T) {
	var req *http.Request
	p := newProvider(t, Config{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		req = r
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
		Body: []byte(claudeCodeBody), Header: claudeCodeHeader(), Stream: true}
	resp, err := p.Send(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "{" + claudeCodeRest + "," + version + "}"
	if req.ContentLength != int64(len(want)) || req.GetBody == nil || req.Context() != ctx {
		t.Fatalf("ContentLength %d, GetBody %v, ctx kept %v", req.ContentLength, req.GetBody != nil, req.Context() == ctx)
	}
	for range 2 {
		b, _ := req.GetBody()
		if got, _ := io.ReadAll(b); string(got) != want {
			t.Fatalf("GetBody returned %s", got)
		}
	}
	if _, ok := req.Header["Content-Length"]; ok {
		t.Error("inbound Content-Length copied")
	}
}

type failingTokens struct{ err error }

func (f failingTokens) Token() (*oauth2.Token, error) { return nil, f.err }

func TestSendErrors(t *testing.T) {
	call := func() *llm.Call {
		return &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			Body: []byte(`{"model":"claude-sonnet-4-5"}`), Header: claudeCodeHeader()}
	}
	p := newProvider(t, Config{BaseURL: "http://127.0.0.1:1"})

	if _, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceOpenAIChat}); err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Errorf("unserved surface: %v", err)
	}
	if _, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceAnthropicMessages, Body: []byte(`{}`)}); err == nil || !strings.Contains(err.Error(), "names no model") {
		t.Errorf("no model: %v", err)
	}
	c := call()
	c.Body = []byte(`not json`)
	if _, err := p.Send(context.Background(), c); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("bad body: %v", err)
	}

	_, err := p.Send(context.Background(), call())
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Host != "127.0.0.1:1" || ue.Provider != "vertex-test" {
		t.Fatalf("connection refused: %#v", err)
	}
	if msg := err.Error(); strings.Contains(msg, staticToken) || strings.Contains(msg, virtualKey) || !strings.HasPrefix(msg, "vertex provider") {
		t.Errorf("message %q", msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = p.Send(ctx, call()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}

	// A transport that echoes the request's headers never leaks the token.
	echo := newProvider(t, Config{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused %s", r.Header.Get("Authorization"))
	})})
	if _, err = echo.Send(context.Background(), call()); err == nil || strings.Contains(err.Error(), staticToken) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("token leaked or not redacted: %v", err)
	}

	// Token failures: a *TokenError naming the provider, secrets redacted,
	// nothing sent upstream.
	sent := false
	noSend := roundTripFunc(func(r *http.Request) (*http.Response, error) { sent = true; return nil, errors.New("unreachable") })
	for _, tc := range []struct {
		name string
		ts   oauth2.TokenSource
		want string
	}{
		{"grant refused", failingTokens{&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400, Status: "400 Bad Request"},
			Body: []byte("{\"error\":\"invalid_grant\",\n\"error_description\":\"Invalid JWT Signature.\"}")}}, "Invalid JWT Signature."},
		{"empty token", oauth2.StaticTokenSource(&oauth2.Token{}), "no access token"},
		{"long error", failingTokens{errors.New(strings.Repeat("é", 2000))}, "…"},
	} {
		pt := newProvider(t, Config{Name: "gcp-east", TokenSource: tc.ts, Transport: noSend})
		_, err := pt.Send(context.Background(), call())
		var te *providers.TokenError
		if !errors.As(err, &te) || te.Provider != "gcp-east" || te.Family != "vertex" {
			t.Fatalf("%s: err %#v", tc.name, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, `vertex provider "gcp-east": could not obtain an access token: `) || !strings.Contains(msg, tc.want) ||
			strings.Contains(msg, "\n") || len(msg) > 700 {
			t.Errorf("%s: message %q", tc.name, msg)
		}
	}
	if sent {
		t.Error("a request was sent without a token")
	}
}

// TestRelayEndToEnd sends calls through a mock Vertex and relays the
// answers: bytes unchanged, usage metered.
func TestRelayEndToEnd(t *testing.T) {
	srv, got := recordingUpstream(t, replyHandler)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	p := newProvider(t, Config{BaseURL: srv.URL, Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name      string
		call      llm.Call
		wantBody  string
		wantUsage llm.Usage
		wantCT    string
	}{
		{"anthropic stream", llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5", Stream: true,
			Body: []byte(claudeCodeBody)}, strings.Join(replyEvents, ""), replyUsage, "text/event-stream"},
		{"anthropic json", llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			Body: []byte(`{"model":"claude-sonnet-4-5","max_tokens":9}`)}, replyJSON, replyUsage, "application/json"},
		{"vertex stream", llm.Call{Surface: llm.SurfaceVertexStreamRawPredict, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5", Stream: true,
			Body: []byte(vertexBody)}, strings.Join(replyEvents, ""), replyUsage, "text/event-stream"},
		{"vertex json", llm.Call{Surface: llm.SurfaceVertexRawPredict, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5",
			Body: []byte(vertexBody)}, replyJSON, replyUsage, "application/json"},
		{"anthropic count tokens", llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			Body: []byte(`{"model":"claude-sonnet-4-5","messages":[]}`)}, `{"input_tokens":1234}`, llm.Usage{InputTokens: 1234, Complete: true}, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := tc.call
			call.Header = claudeCodeHeader()
			resp, err := p.Send(context.Background(), &call)
			if err != nil {
				t.Fatal(err)
			}
			<-got
			w := httptest.NewRecorder()
			res := p.Relay(w, resp, &call)
			if w.Body.String() != tc.wantBody {
				t.Errorf("client body\n got %s\nwant %s", w.Body, tc.wantBody)
			}
			if tc.name != "anthropic count tokens" && res.Usage != tc.wantUsage {
				t.Errorf("usage %+v, want %+v", res.Usage, tc.wantUsage)
			}
			if res.Status != 200 || w.Code != 200 || res.BytesWritten != int64(len(tc.wantBody)) || res.UpstreamErr != nil || res.ClientErr != nil {
				t.Errorf("result %+v (code %d)", res, w.Code)
			}
			if tc.name != "anthropic count tokens" && !res.FirstToken.Equal(t0) {
				t.Errorf("first token %v", res.FirstToken)
			}
			if ct := w.Header().Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// googleBody is a Vertex error body.
func googleBody(code int, status, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":%q}}`, code, msg, status)
}

func TestRelayErrors(t *testing.T) {
	const quota = "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4-5. Please submit a quota increase request."
	anthropicOverloaded := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_vrtx_1"}`
	big := googleBody(429, "RESOURCE_EXHAUSTED", strings.Repeat("x", 70<<10))
	for _, tc := range []struct {
		name       string
		surface    llm.Surface
		status     int
		ct         string
		body       string
		wantStatus int
		wantBody   string
		wantType   string
	}{
		{"429 quota", llm.SurfaceAnthropicMessages, 429, "application/json", googleBody(429, "RESOURCE_EXHAUSTED", quota),
			429, `{"type":"error","error":{"type":"rate_limit_error","message":"` + quota + `"}}`, "rate_limit_error"},
		{"503 unavailable → 529", llm.SurfaceAnthropicMessages, 503, "application/json; charset=UTF-8", googleBody(503, "UNAVAILABLE", "The service is currently unavailable."),
			529, `{"type":"error","error":{"type":"overloaded_error","message":"The service is currently unavailable."}}`, "overloaded_error"},
		{"400 invalid", llm.SurfaceAnthropicMessages, 400, "application/json", googleBody(400, "INVALID_ARGUMENT", `Invalid JSON payload received. Unknown name "x": Cannot find field.`),
			400, `{"type":"error","error":{"type":"invalid_request_error","message":"Invalid JSON payload received. Unknown name \"x\": Cannot find field."}}`, "invalid_request_error"},
		{"401", llm.SurfaceAnthropicCountTokens, 401, "application/json", googleBody(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
			401, `{"type":"error","error":{"type":"authentication_error","message":"Request had invalid authentication credentials."}}`, "authentication_error"},
		{"403", llm.SurfaceAnthropicMessages, 403, "application/json", googleBody(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied"),
			403, `{"type":"error","error":{"type":"permission_error","message":"Permission 'aiplatform.endpoints.predict' denied"}}`, "permission_error"},
		{"404 model", llm.SurfaceAnthropicMessages, 404, "application/json", googleBody(404, "NOT_FOUND", "Publisher Model `claude-x` not found."),
			404, `{"type":"error","error":{"type":"not_found_error","message":"Publisher Model ` + "`claude-x`" + ` not found."}}`, "not_found_error"},
		{"500", llm.SurfaceAnthropicMessages, 500, "application/json", googleBody(500, "INTERNAL", "Internal error encountered."),
			500, `{"type":"error","error":{"type":"api_error","message":"Internal error encountered."}}`, "api_error"},
		{"504 deadline", llm.SurfaceAnthropicMessages, 504, "application/json", googleBody(504, "DEADLINE_EXCEEDED", "Deadline exceeded <slow>."),
			504, `{"type":"error","error":{"type":"timeout_error","message":"Deadline exceeded <slow>."}}`, "timeout_error"},
		{"array-wrapped (streaming methods)", llm.SurfaceAnthropicMessages, 429, "application/json", "[" + googleBody(429, "RESOURCE_EXHAUSTED", "quota") + "]\n",
			429, `{"type":"error","error":{"type":"rate_limit_error","message":"quota"}}`, "rate_limit_error"},
		{"anthropic-shaped passes through", llm.SurfaceAnthropicMessages, 529, "application/json", anthropicOverloaded,
			529, anthropicOverloaded, "overloaded_error"},
		{"html passes through", llm.SurfaceAnthropicMessages, 502, "text/html", "<html><body>502 Bad Gateway</body></html>",
			502, "<html><body>502 Bad Gateway</body></html>", ""},
		{"oauth-style error passes through", llm.SurfaceAnthropicMessages, 401, "application/json", `{"error":"invalid_token"}`,
			401, `{"error":"invalid_token"}`, ""},
		{"longer than the copy limit passes through", llm.SurfaceAnthropicMessages, 429, "application/json", big, 429, big, ""},
		{"vertex surface: google errors unmodified", llm.SurfaceVertexStreamRawPredict, 429, "application/json", googleBody(429, "RESOURCE_EXHAUSTED", quota),
			429, googleBody(429, "RESOURCE_EXHAUSTED", quota), ""},
		{"vertex surface: 503 stays 503", llm.SurfaceVertexRawPredict, 503, "application/json", googleBody(503, "UNAVAILABLE", "x"),
			503, googleBody(503, "UNAVAILABLE", "x"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.Header().Set("X-Goog-Trace", "abc")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			p := newProvider(t, Config{BaseURL: srv.URL})
			call := &llm.Call{Surface: tc.surface, Model: "claude-sonnet-4-5@20250929", CanonicalModel: "claude-sonnet-4-5",
				Body: []byte(`{"model":"claude-sonnet-4-5@20250929"}`), Header: http.Header{}}
			resp, err := p.Send(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("Send returned %d: statuses are translated by Relay only", resp.StatusCode)
			}
			w := httptest.NewRecorder()
			res := p.Relay(w, resp, call)
			if w.Code != tc.wantStatus || res.Status != tc.wantStatus {
				t.Errorf("status %d (result %d), want %d", w.Code, res.Status, tc.wantStatus)
			}
			if w.Body.String() != tc.wantBody {
				t.Errorf("body\n got %.300s\nwant %.300s", w.Body, tc.wantBody)
			}
			if res.ErrorType != tc.wantType && !(tc.wantType == "" && res.ErrorType != "") {
				t.Errorf("error type %q, want %q", res.ErrorType, tc.wantType)
			}
			if res.BytesWritten != int64(len(tc.wantBody)) || res.Usage != (llm.Usage{}) || res.UpstreamErr != nil {
				t.Errorf("result %+v", res)
			}
			if cl := w.Header().Get("Content-Length"); cl != fmt.Sprint(len(tc.wantBody)) && len(tc.body) < 4096 {
				t.Errorf("Content-Length %q for %d bytes", cl, len(tc.wantBody))
			}
			if w.Header().Get("X-Goog-Trace") != "abc" {
				t.Error("upstream headers not relayed")
			}
		})
	}
}

// TestRelayErrorCut: an error body cut while being read is relayed as far
// as it came, with the cut reported.
func TestRelayErrorCut(t *testing.T) {
	srv, _ := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n")
		bw.WriteString(`{"error":{"code":429,`)
		bw.Flush()
	})
	p := newProvider(t, Config{BaseURL: srv.URL})
	call := &llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
		Body: []byte(`{"model":"claude-sonnet-4-5"}`), Header: http.Header{}}
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	res := p.Relay(w, resp, call)
	if w.Code != 429 || w.Body.String() != `{"error":{"code":429,` || res.UpstreamErr == nil {
		t.Errorf("code %d body %q result %+v", w.Code, w.Body, res)
	}
}

// closeTracker records whether the body was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestRelayAlwaysCloses(t *testing.T) {
	p := newProvider(t, Config{})
	for _, tc := range []struct {
		status int
		body   string
		s      llm.Surface
	}{
		{200, replyJSON, llm.SurfaceAnthropicMessages},
		{429, googleBody(429, "RESOURCE_EXHAUSTED", "q"), llm.SurfaceAnthropicMessages},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, llm.SurfaceAnthropicMessages},
		{429, googleBody(429, "RESOURCE_EXHAUSTED", "q"), llm.SurfaceVertexRawPredict},
	} {
		body := &closeTracker{Reader: strings.NewReader(tc.body)}
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ContentLength: -1}
		p.Relay(httptest.NewRecorder(), resp, &llm.Call{Surface: tc.s})
		if !body.closed {
			t.Errorf("%d on %s: body not closed", tc.status, tc.s)
		}
	}
}

func TestTranslateError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		ok         bool
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{"429", 429, googleBody(429, "RESOURCE_EXHAUSTED", "q"), true, 429, "rate_limit_error", "q"},
		{"503", 503, googleBody(503, "UNAVAILABLE", "u"), true, 529, "overloaded_error", "u"},
		{"504", 504, googleBody(504, "DEADLINE_EXCEEDED", "d"), true, 504, "timeout_error", "d"},
		{"413", 413, googleBody(413, "", "too big"), true, 413, "request_too_large", "too big"},
		{"409 aborted keeps its status", 409, googleBody(409, "ABORTED", "a"), true, 409, "invalid_request_error", "a"},
		{"502 keeps its status", 502, googleBody(502, "", "bad gw"), true, 502, "api_error", "bad gw"},
		{"499 cancelled", 499, googleBody(499, "CANCELLED", "c"), true, 499, "invalid_request_error", "c"},
		{"unusual status decided by rpc status", 418, googleBody(418, "UNAVAILABLE", "x"), true, 529, "overloaded_error", "x"},
		{"failed precondition by name", 412, googleBody(412, "FAILED_PRECONDITION", "fp"), true, 400, "invalid_request_error", "fp"},
		{"no message", 429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`, true, 429, "rate_limit_error", "RESOURCE_EXHAUSTED Too Many Requests"},
		{"only a code", 500, `{"error":{"code":500}}`, true, 500, "api_error", "Internal Server Error"},
		{"whitespace around", 429, "\n " + googleBody(429, "RESOURCE_EXHAUSTED", "q") + "\n", true, 429, "rate_limit_error", "q"},
		{"anthropic shape", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, false, 0, "", ""},
		{"anthropic inner shape", 529, `{"error":{"type":"overloaded_error","message":"Overloaded"}}`, false, 0, "", ""},
		{"oauth error string", 401, `{"error":"invalid_token"}`, false, 0, "", ""},
		{"empty error object", 500, `{"error":{}}`, false, 0, "", ""},
		{"empty array", 500, `[]`, false, 0, "", ""},
		{"empty", 500, ``, false, 0, "", ""},
		{"html", 502, `<html></html>`, false, 0, "", ""},
		{"truncated json", 429, `{"error":{"code":429,`, false, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, typ, ok := TranslateError(tc.status, []byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			var got struct {
				Type  string
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("output %s: %v", body, err)
			}
			if status != tc.wantStatus || typ != tc.wantType || got.Type != "error" || got.Error.Type != tc.wantType || got.Error.Message != tc.wantMsg {
				t.Errorf("got %d %s %s, want %d %s %q", status, typ, body, tc.wantStatus, tc.wantType, tc.wantMsg)
			}
			if bytes.HasSuffix(body, []byte("\n")) {
				t.Error("trailing newline")
			}
		})
	}
}

func TestNilContext(t *testing.T) {
	// A nil context is tolerated (treated as Background).
	ts := newTokenServer(t)
	var nilCtx context.Context
	p, err := New(nilCtx, Config{Name: "n", Project: "p", Region: "global", CredentialsJSON: ts.serviceAccountJSON(t), Transport: http.DefaultTransport})
	if err != nil || p == nil {
		t.Fatalf("nil ctx: %v", err)
	}
}
