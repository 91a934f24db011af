package module

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
)

// DefaultMaxIdleConnsPerHost replaces Caddy's reverse_proxy default of 32:
// hundreds of concurrent streams to one provider host must not churn
// connections.
const DefaultMaxIdleConnsPerHost = 1024

// buildProviders constructs every configured provider, each on its own
// Caddy HTTP transport, and the router over them.
func (g *Gateway) buildProviders(ctx caddy.Context, repl *caddy.Replacer) (*providers.Router, error) {
	seen := map[string]bool{}
	entries := make([]providers.Eligible, 0, len(g.Providers))
	for _, pc := range g.Providers {
		if pc.Name == "" {
			return nil, fmt.Errorf("provider without a name")
		}
		if seen[pc.Name] {
			return nil, fmt.Errorf("provider %q defined twice", pc.Name)
		}
		seen[pc.Name] = true
		rt, err := loadTransport(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("provider %s: transport: %v", pc.Name, err)
		}
		p, err := g.newProvider(pc, rt, repl)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %v", pc.Name, err)
		}
		entries = append(entries, providers.Eligible{Provider: p, Models: globs(pc.Models)})
	}
	return providers.NewRouter(entries), nil
}

// newProvider builds one provider of its family.
func (g *Gateway) newProvider(pc *ProviderConfig, rt http.RoundTripper, repl *caddy.Replacer) (providers.Provider, error) {
	keys := make([]string, 0, len(pc.APIKeys))
	for _, k := range pc.APIKeys {
		if !hasPlaceholder(k) {
			g.logger.Warn("provider api_key is a literal: it appears in `caddy adapt` output and the admin API's /config; prefer {env.NAME} or {file./path}",
				zap.String("provider", pc.Name))
		}
		v, err := repl.ReplaceOrErr(k, true, true)
		if err != nil {
			return nil, fmt.Errorf("api_key: %v", err)
		}
		if v == "" {
			return nil, fmt.Errorf("api_key resolves to an empty value")
		}
		keys = append(keys, v)
	}
	switch pc.Type {
	case "anthropic":
		return anthropic.New(anthropic.Config{
			Name:      pc.Name,
			BaseURL:   pc.BaseURL,
			APIKeys:   keys,
			Transport: rt,
		})
	case "":
		return nil, fmt.Errorf("type is required")
	}
	return nil, fmt.Errorf("unknown provider type %q (supported: anthropic)", pc.Type)
}

// loadTransport provisions the provider's reverse_proxy transport module,
// defaulting to the http transport with a large idle pool.
func loadTransport(ctx caddy.Context, pc *ProviderConfig) (http.RoundTripper, error) {
	raw, err := withTransportDefaults(pc.TransportRaw)
	if err != nil {
		return nil, err
	}
	pc.TransportRaw = raw
	mod, err := ctx.LoadModule(pc, "TransportRaw")
	if err != nil {
		return nil, err
	}
	rt, ok := mod.(http.RoundTripper)
	if !ok {
		return nil, fmt.Errorf("module %T is not an http.RoundTripper", mod)
	}
	return rt, nil
}

// withTransportDefaults fills in the http transport and its idle-pool size
// when the config leaves them out.
func withTransportDefaults(raw json.RawMessage) (json.RawMessage, error) {
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
	}
	if m["protocol"] == nil {
		m["protocol"] = "http"
	}
	if m["protocol"] == "http" {
		ka, _ := m["keep_alive"].(map[string]any)
		if ka == nil {
			ka = map[string]any{}
		}
		if ka["max_idle_conns_per_host"] == nil {
			ka["max_idle_conns_per_host"] = DefaultMaxIdleConnsPerHost
		}
		m["keep_alive"] = ka
	}
	return json.Marshal(m)
}
