package module

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestProviderErrorsSameInJSON: a provider the family refuses gets the same
// message from a Caddyfile (with its file and line) and from JSON (the
// admin API, `caddy adapt` output edited by hand).
func TestProviderErrorsSameInJSON(t *testing.T) {
	for _, tc := range []struct {
		name, block, json, want string
	}{
		{"bedrock region", "type bedrock", `{"type":"bedrock"}`, "region is required"},
		{"bedrock keys", "type bedrock\n region us-east-1\n api_key a b", `{"type":"bedrock","region":"us-east-1","api_keys":["a","b"]}`, "a bedrock provider takes one api_key"},
		{"bedrock credentials", "type bedrock\n region us-east-1\n secret_access_key s", `{"type":"bedrock","region":"us-east-1","secret_access_key":"s"}`, "access_key_id and secret_access_key go together"},
		{"vertex project", "type vertex\n region global", `{"type":"vertex","region":"global"}`, "project and region are required"},
		{"vertex key", "type vertex\n project p\n region global\n api_key k", `{"type":"vertex","project":"p","region":"global","api_keys":["k"]}`, "api_key does not apply to vertex providers"},
		{"azure resource", "type azure\n api_key k", `{"type":"azure","api_keys":["k"]}`, "resource or base_url is required"},
		{"azure auth", "type azure\n resource r", `{"type":"azure","resource":"r"}`, "api_key, or tenant_id, client_id and client_secret, are required"},
		{"anthropic key", "type anthropic", `{"type":"anthropic"}`, "at least one api_key is required"},
		{"anthropic model", "type anthropic\n api_key k\n model a b", `{"type":"anthropic","api_keys":["k"],"model_map":[{"match":"a","id":"b"}]}`, "model does not apply to anthropic providers"},
		{"openai auth header", "type openai\n auth_header cookie", `{"type":"openai","auth_header":"cookie"}`, `auth_header: want authorization or api-key, got "cookie"`},
		{"multiplier", "type openai\n price_multiplier -1", `{"type":"openai","price_multiplier":"-1"}`, `price_multiplier: want a positive decimal such as 1.1, got "-1"`},
		{"unknown type", "type gemini", `{"type":"gemini"}`, `unknown provider type "gemini" (supported: anthropic, azure, bedrock, openai, vertex)`},
		{"no type", "models x", `{"models":["x"]}`, "type is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("llm_gateway {\n provider p {\n " + tc.block + "\n }\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("Caddyfile: %v, want %q with file and line", err, tc.want)
			}
			raw := json.RawMessage(`{"name":"p",` + tc.json[1:])
			g = Gateway{ProvidersRaw: []json.RawMessage{raw}}
			g.logger = caddy.Log()
			ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
			defer cancel()
			_, _, _, err = g.buildProviders(ctx, newMetrics(baseLabels))
			if err == nil || !strings.HasPrefix(err.Error(), "provider p: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("JSON: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestProvidersFromJSON: each family builds from its JSON, with the shared
// lines (models, model map, price multiplier, transport) applied.
func TestProvidersFromJSON(t *testing.T) {
	t.Setenv("LLMGW_TEST_KEY", "sk-test")
	g := Gateway{ProvidersRaw: []json.RawMessage{
		json.RawMessage(`{"name":"a","type":"anthropic","api_keys":["{env.LLMGW_TEST_KEY}"],"models":["claude-*"],"price_multiplier":"1.1","transport":{"protocol":"http","dial_timeout":1000000000}}`),
		json.RawMessage(`{"name":"b","type":"bedrock","region":"eu-west-1","access_key_id":"AK","secret_access_key":"{env.LLMGW_TEST_KEY}","model_map":[{"match":"claude-sonnet-4-5*","id":"eu.anthropic.claude-sonnet-4-5-20250929-v1:0"}]}`),
		json.RawMessage(`{"name":"v","type":"vertex","project":"p","region":"global","credentials_file":"testdata/none.json"}`),
		json.RawMessage(`{"name":"z","type":"azure","resource":"res","api_keys":["k"]}`),
		json.RawMessage(`{"name":"o","type":"openai","base_url":"http://127.0.0.1:11434/v1"}`),
	}}
	g.logger = caddy.Log()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	// Vertex reads its credentials file when it builds: a missing one is
	// reported with the provider's name and the file's.
	if _, _, _, err := g.buildProviders(ctx, newMetrics(baseLabels)); err == nil || !strings.HasPrefix(err.Error(), "provider v: ") || !strings.Contains(err.Error(), "none.json") {
		t.Fatalf("missing credentials file: %v", err)
	}
	g.ProvidersRaw = append(g.ProvidersRaw[:2], g.ProvidersRaw[3:]...)
	router, configs, mult, err := g.buildProviders(ctx, newMetrics(baseLabels))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range router.Providers() {
		names = append(names, p.Name()+":"+p.Family())
	}
	if got := strings.Join(names, ","); got != "a:anthropic,b:bedrock,z:azure,o:openai" {
		t.Errorf("providers %s", got)
	}
	if configs[0].APIKeys[0] != "sk-test" || mult["a"] == 0 || len(configs[1].ModelMapping()) != 1 {
		t.Errorf("configs %+v %+v, multipliers %v", configs[0], configs[1], mult)
	}
	named := namedModels(nil, configs)
	if !named["claude-sonnet-4-5"] {
		t.Errorf("named models %v", named)
	}
}
