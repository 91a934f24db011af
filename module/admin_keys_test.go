package module

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// liveKeysTestGateway registers a gateway with team payments ($10 daily)
// and config key "alice", over a memory key store.
func liveKeysTestGateway(t *testing.T) *Gateway {
	t.Helper()
	g := newTestGateway(t, http.DefaultTransport, testSecret, governance.NewMemoryStore())
	reg, err := governance.NewRegistry(nil,
		[]governance.TeamSpec{{Name: "payments", Limits: governance.Limits{Budgets: []governance.Budget{{Limit: 10 * governance.Dollar, Period: governance.PeriodDay}}}}},
		[]governance.KeySpec{{Name: "alice", Hash: governance.HashSecret(testSecret), Team: "payments"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := governance.NewDirectory(context.Background(), governance.NewMemoryKeyStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.state.registry = reg
	g.state.keys = governance.NewKeyring(reg, dir)
	activeGateways.add(g)
	t.Cleanup(func() { activeGateways.remove(g) })
	return g
}

// adminCall runs one admin request and returns the status and body.
func adminCall(t *testing.T, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	var h caddy.AdminHandlerFunc
	switch {
	case path == "/llm_gateway/keys":
		h = serveKeys
	case strings.HasPrefix(path, "/llm_gateway/keys/"):
		h = serveKey
	default:
		h = serveAudit
	}
	if err := h(w, r); err != nil {
		var ae caddy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return ae.HTTPStatus, map[string]any{"error": ae.Err.Error()}
	}
	out := map[string]any{}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, w.Body)
	}
	return w.Code, out
}

func TestAdminKeysLifecycle(t *testing.T) {
	g := liveKeysTestGateway(t)
	code, out := adminCall(t, "POST", "/llm_gateway/keys",
		`{"name":"bob","team":"payments","budgets":[{"usd":"5","period":"day"}],"rate_limits":[{"limit":60,"unit":"requests","per":"minute"}],"models":["claude-sonnet-*"],"expires":"2030-01-01T00:00:00Z"}`,
		"X-Forwarded-User", "ops@corp.example")
	if code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	secret, _ := out["secret"].(string)
	if !strings.HasPrefix(secret, governance.SecretPrefix) || out["source"] != "api" || out["team"] != "payments" || out["created_by"] != "ops@corp.example" {
		t.Fatalf("create answer: %v", out)
	}
	if k := g.state.keys.Authenticate(secret); k == nil || k.Name != "bob" {
		t.Fatal("the new secret does not authenticate")
	}
	// Listed beside the config key, marked by source, never with a secret.
	code, out = adminCall(t, "GET", "/llm_gateway/keys", "")
	if code != 200 {
		t.Fatal(code)
	}
	sources := map[string]any{}
	for _, e := range out["keys"].([]any) {
		m := e.(map[string]any)
		sources[m["name"].(string)] = m["source"]
		if _, ok := m["secret"]; ok {
			t.Fatal("listing shows a secret")
		}
	}
	if sources["alice"] != "config" || sources["bob"] != "api" {
		t.Fatalf("sources %v", sources)
	}
	code, out = adminCall(t, "GET", "/llm_gateway/keys/bob", "")
	if code != 200 || out["secret"] != nil || len(out["budgets"].([]any)) != 1 {
		t.Fatalf("show: %d %v", code, out)
	}
	code, out = adminCall(t, "PATCH", "/llm_gateway/keys/bob", `{"disabled":true,"budgets":[{"usd":"2","period":"day"}]}`, "X-Llm-Gateway-Admin", "lead@corp.example")
	if code != 200 || out["disabled"] != true {
		t.Fatalf("patch: %d %v", code, out)
	}
	if k := g.state.keys.Key("bob"); k == nil || !k.Disabled || k.Budgets[0].Limit != 2*governance.Dollar {
		t.Fatalf("patch not applied: %+v", k)
	}
	code, out = adminCall(t, "POST", "/llm_gateway/keys/bob/rotate", `{"grace":"1h"}`)
	if code != 200 {
		t.Fatalf("rotate: %d %v", code, out)
	}
	fresh := out["secret"].(string)
	if fresh == secret || g.state.keys.Authenticate(secret) == nil || g.state.keys.Authenticate(fresh) == nil {
		t.Fatal("rotate with grace")
	}
	if secrets := out["secrets"].([]any); len(secrets) != 2 || secrets[1].(map[string]any)["valid_until"] == nil {
		t.Fatalf("secrets %v", secrets)
	}
	code, out = adminCall(t, "DELETE", "/llm_gateway/keys/bob", "")
	if code != 200 || out["revoked"] == nil {
		t.Fatalf("revoke: %d %v", code, out)
	}
	if g.state.keys.Authenticate(fresh) != nil || g.state.keys.Authenticate(secret) != nil {
		t.Fatal("revoked key authenticates")
	}
	code, out = adminCall(t, "GET", "/llm_gateway/audit?key=bob", "")
	if code != 200 {
		t.Fatal(code, out)
	}
	var got []string
	for _, e := range out["entries"].([]any) {
		m := e.(map[string]any)
		got = append(got, m["action"].(string)+" by "+m["actor"].(string))
	}
	want := "revoke by anonymous,rotate by anonymous,update by lead@corp.example,create by ops@corp.example"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit %v", got)
	}
}

func TestAdminKeysBadInput(t *testing.T) {
	liveKeysTestGateway(t)
	if code, _ := adminCall(t, "POST", "/llm_gateway/keys", `{"name":"dup"}`); code != 201 {
		t.Fatal(code)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"malformed", "POST", "/llm_gateway/keys", `{"name":`, 400, "malformed JSON"},
		{"not an object", "POST", "/llm_gateway/keys", `[]`, 400, "malformed JSON"},
		{"trailing", "POST", "/llm_gateway/keys", `{"name":"x"} {}`, 400, "data after"},
		{"unknown field", "POST", "/llm_gateway/keys", `{"name":"x","colour":"red"}`, 400, "unknown field"},
		{"empty", "POST", "/llm_gateway/keys", ``, 400, "JSON object is required"},
		{"no name", "POST", "/llm_gateway/keys", `{"team":"payments"}`, 400, "name is required"},
		{"unknown team", "POST", "/llm_gateway/keys", `{"name":"x","team":"nope"}`, 400, "unknown team"},
		{"duplicate", "POST", "/llm_gateway/keys", `{"name":"dup"}`, 400, "exists"},
		{"config name", "POST", "/llm_gateway/keys", `{"name":"alice"}`, 400, "defined in the configuration"},
		{"over the cap", "POST", "/llm_gateway/keys", `{"name":"x","team":"payments","budgets":[{"usd":"50","period":"day"}]}`, 400, "over the cap"},
		{"bad amount", "POST", "/llm_gateway/keys", `{"name":"x","budgets":[{"usd":"lots","period":"day"}]}`, 400, "budget"},
		{"bad period", "POST", "/llm_gateway/keys", `{"name":"x","budgets":[{"usd":"1","period":"fortnight"}]}`, 400, "period"},
		{"bad unit", "POST", "/llm_gateway/keys", `{"name":"x","rate_limits":[{"limit":1,"unit":"bytes","per":"minute"}]}`, 400, "unit"},
		{"bad expiry", "POST", "/llm_gateway/keys", `{"name":"x","expires":"tomorrow"}`, 400, "RFC 3339"},
		{"control name", "POST", "/llm_gateway/keys", `{"name":"a\nb"}`, 400, "control"},
		{"patch config key", "PATCH", "/llm_gateway/keys/alice", `{"disabled":true}`, 409, "read-only"},
		{"rotate config key", "POST", "/llm_gateway/keys/alice/rotate", `{}`, 409, "read-only"},
		{"revoke config key", "DELETE", "/llm_gateway/keys/alice", ``, 409, "read-only"},
		{"patch unknown", "PATCH", "/llm_gateway/keys/ghost", `{"disabled":true}`, 404, "no such key"},
		{"patch name", "PATCH", "/llm_gateway/keys/dup", `{"name":"other"}`, 400, "name cannot change"},
		{"patch unknown field", "PATCH", "/llm_gateway/keys/dup", `{"secret":"sk-mine"}`, 400, "unknown field"},
		{"patch over cap", "PATCH", "/llm_gateway/keys/dup", `{"team":"payments","budgets":[{"usd":"11","period":"day"}]}`, 400, "over the cap"},
		{"bad grace", "POST", "/llm_gateway/keys/dup/rotate", `{"grace":"soon"}`, 400, "grace"},
		{"long grace", "POST", "/llm_gateway/keys/dup/rotate", `{"grace":"1000d"}`, 400, "grace"},
		{"show unknown", "GET", "/llm_gateway/keys/ghost", ``, 404, "no key"},
		{"bad action", "POST", "/llm_gateway/keys/dup/explode", `{}`, 404, "unknown key action"},
		{"bad method", "PUT", "/llm_gateway/keys", `{}`, 405, "not allowed"},
		{"audit param", "GET", "/llm_gateway/audit?who=me", ``, 400, "unknown parameter"},
		{"audit limit", "GET", "/llm_gateway/audit?limit=0", ``, 400, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := adminCall(t, tt.method, tt.path, tt.body)
			msg, _ := out["error"].(string)
			if code != tt.status || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%d %q, want %d containing %q", code, msg, tt.status, tt.msg)
			}
		})
	}
	// Nothing half-applied: dup is unchanged, x never appeared.
	code, out := adminCall(t, "GET", "/llm_gateway/keys/dup", "")
	if code != 200 || out["team"] != nil || out["budgets"] != nil {
		t.Fatalf("dup changed: %v", out)
	}
	if code, _ := adminCall(t, "GET", "/llm_gateway/keys/x", ""); code != 404 {
		t.Fatal("x exists")
	}
}

func TestAdminIdentity(t *testing.T) {
	for _, tt := range []struct {
		hdr  []string
		want string
	}{
		{nil, "anonymous"},
		{[]string{"Remote-User", "bob"}, "bob"},
		{[]string{"X-Llm-Gateway-Admin", "lead", "X-Forwarded-User", "other"}, "lead"},
		{[]string{"X-Forwarded-User", "evil\x00\nname"}, "evilname"},
		{[]string{"X-Forwarded-User", strings.Repeat("é", 300)}, strings.Repeat("é", 100)},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for i := 0; i+1 < len(tt.hdr); i += 2 {
			r.Header.Set(tt.hdr[i], tt.hdr[i+1])
		}
		if got := adminIdentity(r); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.hdr, got, tt.want)
		}
	}
}
