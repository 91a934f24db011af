package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// DefaultMaxIdleConnsPerHost replaces Caddy's reverse_proxy default of 32:
// hundreds of concurrent streams to one provider host must not churn
// connections.
const DefaultMaxIdleConnsPerHost = 1024

// providerHolder loads one entry of the providers list, so that an error
// names the provider rather than its position.
type providerHolder struct {
	Raw json.RawMessage `caddy:"namespace=http.handlers.llm_gateway.providers inline_key=type"`
}

// buildProviders loads every configured provider family module, builds
// each provider on its own Caddy HTTP transport, and the router over them.
// It returns the providers' shared configurations too.
func (g *Gateway) buildProviders(ctx caddy.Context, m *metrics) (*providers.Router, []*mp.Config, map[string]governance.Money, error) {
	seen := map[string]bool{}
	entries := make([]providers.Eligible, 0, len(g.ProvidersRaw))
	configs := make([]*mp.Config, 0, len(g.ProvidersRaw))
	multipliers := map[string]governance.Money{}
	for i, raw := range g.ProvidersRaw {
		var head struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, nil, nil, fmt.Errorf("provider #%d: %v", i+1, err)
		}
		if head.Name == "" {
			return nil, nil, nil, fmt.Errorf("provider without a name")
		}
		if seen[head.Name] {
			return nil, nil, nil, fmt.Errorf("provider %q defined twice", head.Name)
		}
		seen[head.Name] = true
		if _, err := mp.Lookup(head.Type); err != nil {
			return nil, nil, nil, fmt.Errorf("provider %s: %v", head.Name, err)
		}
		mod, err := ctx.LoadModule(&providerHolder{Raw: raw}, "Raw")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("provider %s: %v", head.Name, err)
		}
		fam, ok := mod.(mp.Family)
		if !ok {
			return nil, nil, nil, fmt.Errorf("provider %s: module %T is not a provider family", head.Name, mod)
		}
		pc := fam.ProviderConfig()
		if err := pc.ValidateShared(); err != nil {
			return nil, nil, nil, fmt.Errorf("provider %s: %v", head.Name, err)
		}
		mult, _ := pc.Multiplier()
		if mult != 0 {
			multipliers[pc.Name] = mult
		}
		rt, err := loadTransport(ctx, pc)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("provider %s: transport: %v", pc.Name, err)
		}
		p, err := fam.NewProvider(ctx, mp.Env{Transport: rt, OnKeyEvent: g.keyEvents(pc.Name, m), Logger: g.logger})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("provider %s: %v", pc.Name, err)
		}
		if p.Name() != pc.Name {
			return nil, nil, nil, fmt.Errorf("provider %s: the %s family built a provider named %q", pc.Name, head.Type, p.Name())
		}
		entries = append(entries, providers.Eligible{Provider: p, Models: pc.Globs()})
		configs = append(configs, pc)
	}
	routes := make([]providers.Route, 0, len(g.Routes))
	for _, r := range g.Routes {
		if r.Match == "" || len(r.Providers) == 0 {
			return nil, nil, nil, fmt.Errorf("route: a model glob and at least one provider are required")
		}
		for _, name := range r.Providers {
			if !seen[name] {
				return nil, nil, nil, fmt.Errorf("route %s: unknown provider %q", r.Match, name)
			}
		}
		routes = append(routes, providers.Route{Glob: llm.Glob(r.Match), Providers: r.Providers})
	}
	for alias, target := range g.Aliases {
		if alias == "" || target == "" {
			return nil, nil, nil, fmt.Errorf("alias: a name and a model are required")
		}
	}
	if g.FailAfter < 0 {
		return nil, nil, nil, fmt.Errorf("fail_after must be positive")
	}
	return providers.NewRouter(providers.RouterConfig{
		Providers:        entries,
		Routes:           routes,
		Aliases:          g.Aliases,
		FailureThreshold: g.FailAfter,
		Cooldown:         time.Duration(g.Cooldown),
	}), configs, multipliers, nil
}

// keyEvents logs and counts a provider's keys rejected or rate limited.
func (g *Gateway) keyEvents(name string, m *metrics) func(providers.KeyEvent) {
	logger := g.logger
	return func(e providers.KeyEvent) {
		event := "rate_limited"
		if e.Disabled {
			event = "disabled"
			logger.Error("provider key rejected: taken out of rotation until the next config load",
				zap.String("provider", name), zap.Int("key", e.Key), zap.Int("status", e.Status))
		}
		m.keyEvents.WithLabelValues(name, event).Inc()
	}
}

// loadTransport provisions the provider's reverse_proxy transport module,
// defaulting to the http transport with a large idle pool.
func loadTransport(ctx caddy.Context, pc *mp.Config) (http.RoundTripper, error) {
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
