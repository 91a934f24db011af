package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/azure"
	"github.com/llmgateway/caddy-llm-gateway/providers/bedrock"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/openai"
	"github.com/llmgateway/caddy-llm-gateway/providers/vertex"
)

// DefaultMaxIdleConnsPerHost replaces Caddy's reverse_proxy default of 32:
// hundreds of concurrent streams to one provider host must not churn
// connections.
const DefaultMaxIdleConnsPerHost = 1024

// buildProviders constructs every configured provider, each on its own
// Caddy HTTP transport, and the router over them.
func (g *Gateway) buildProviders(ctx caddy.Context, repl *caddy.Replacer, m *metrics) (*providers.Router, map[string]governance.Money, error) {
	seen := map[string]bool{}
	entries := make([]providers.Eligible, 0, len(g.Providers))
	multipliers := map[string]governance.Money{}
	for _, pc := range g.Providers {
		if pc.Name == "" {
			return nil, nil, fmt.Errorf("provider without a name")
		}
		if seen[pc.Name] {
			return nil, nil, fmt.Errorf("provider %q defined twice", pc.Name)
		}
		seen[pc.Name] = true
		if pc.PriceMultiplier != "" {
			mult, err := governance.ParseMoney(pc.PriceMultiplier)
			if err != nil || mult <= 0 {
				return nil, nil, fmt.Errorf("provider %s: price_multiplier must be a positive decimal such as 1.1", pc.Name)
			}
			multipliers[pc.Name] = mult
		}
		rt, err := loadTransport(ctx, pc)
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: transport: %v", pc.Name, err)
		}
		p, err := g.newProvider(ctx, pc, rt, repl, m)
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: %v", pc.Name, err)
		}
		entries = append(entries, providers.Eligible{Provider: p, Models: globs(pc.Models)})
	}
	routes := make([]providers.Route, 0, len(g.Routes))
	for _, r := range g.Routes {
		if r.Match == "" || len(r.Providers) == 0 {
			return nil, nil, fmt.Errorf("route: a model glob and at least one provider are required")
		}
		for _, name := range r.Providers {
			if !seen[name] {
				return nil, nil, fmt.Errorf("route %s: unknown provider %q", r.Match, name)
			}
		}
		routes = append(routes, providers.Route{Glob: llm.Glob(r.Match), Providers: r.Providers})
	}
	for alias, target := range g.Aliases {
		if alias == "" || target == "" {
			return nil, nil, fmt.Errorf("alias: a name and a model are required")
		}
	}
	if g.FailAfter < 0 {
		return nil, nil, fmt.Errorf("fail_after must be positive")
	}
	return providers.NewRouter(providers.RouterConfig{
		Providers:        entries,
		Routes:           routes,
		Aliases:          g.Aliases,
		FailureThreshold: g.FailAfter,
		Cooldown:         time.Duration(g.Cooldown),
	}), multipliers, nil
}

// secretValue resolves a secret-bearing field's placeholders, warning when
// it is a literal (it would show in `caddy adapt` and GET /config/).
func (g *Gateway) secretValue(repl *caddy.Replacer, provider, field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !hasPlaceholder(v) {
		g.logger.Warn("provider "+field+" is a literal: it appears in `caddy adapt` output and the admin API's /config; prefer {env.NAME} or {file./path}",
			zap.String("provider", provider))
	}
	out, err := repl.ReplaceOrErr(v, true, true)
	if err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	if out == "" {
		return "", fmt.Errorf("%s resolves to an empty value", field)
	}
	return out, nil
}

// plainValue resolves placeholders in a non-secret field.
func plainValue(repl *caddy.Replacer, field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	out, err := repl.ReplaceOrErr(v, true, true)
	if err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	return out, nil
}

// fieldsOf lists the type-specific fields a provider config sets, to
// refuse the ones its type does not use.
func (pc *ProviderConfig) fieldsOf() map[string]bool {
	set := map[string]bool{}
	for name, v := range map[string]string{
		"region": pc.Region, "access_key_id": pc.AccessKeyID, "secret_access_key": pc.SecretAccessKey,
		"session_token": pc.SessionToken, "project": pc.Project, "credentials_file": pc.CredentialsFile,
		"resource": pc.Resource, "tenant_id": pc.TenantID, "client_id": pc.ClientID, "client_secret": pc.ClientSecret,
		"token_url": pc.TokenURL, "auth_header": pc.AuthHeader, "api_version": pc.APIVersion,
		"organization": pc.Organization, "openai_project": pc.OpenAIProject,
	} {
		if v != "" {
			set[name] = true
		}
	}
	if pc.PingInterval != 0 {
		set["ping_interval"] = true
	}
	if len(pc.ModelMap) > 0 {
		set["model"] = true
	}
	if len(pc.APIKeys) > 0 {
		set["api_key"] = true
	}
	return set
}

// allowedFields are the type-specific fields each family takes.
var allowedFields = map[string][]string{
	"anthropic": {"api_key"},
	"bedrock":   {"region", "access_key_id", "secret_access_key", "session_token", "api_key", "model", "ping_interval"},
	"vertex":    {"project", "region", "credentials_file", "model"},
	"azure":     {"resource", "api_key", "tenant_id", "client_id", "client_secret", "token_url", "model"},
	"openai":    {"api_key", "auth_header", "api_version", "organization", "openai_project", "model"},
}

// newProvider builds one provider of its family.
func (g *Gateway) newProvider(ctx caddy.Context, pc *ProviderConfig, rt http.RoundTripper, repl *caddy.Replacer, m *metrics) (providers.Provider, error) {
	allowed, known := allowedFields[pc.Type]
	switch {
	case pc.Type == "":
		return nil, fmt.Errorf("type is required")
	case !known:
		return nil, fmt.Errorf("unknown provider type %q (supported: anthropic, bedrock, vertex, azure, openai)", pc.Type)
	}
	for f := range pc.fieldsOf() {
		if !slices.Contains(allowed, f) {
			return nil, fmt.Errorf("%s does not apply to %s providers", f, pc.Type)
		}
	}
	keys := make([]string, 0, len(pc.APIKeys))
	for _, k := range pc.APIKeys {
		v, err := g.secretValue(repl, pc.Name, "api_key", k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, v)
	}
	var mm providers.ModelMap
	for _, e := range pc.ModelMap {
		mm = append(mm, providers.ModelMapping{Glob: llm.Glob(e.Match), ID: e.ID})
	}
	baseURL, err := plainValue(repl, "base_url", pc.BaseURL)
	if err != nil {
		return nil, err
	}
	logger, name := g.logger, pc.Name
	onKey := func(e providers.KeyEvent) {
		event := "rate_limited"
		if e.Disabled {
			event = "disabled"
			logger.Error("provider key rejected: taken out of rotation until the next config load",
				zap.String("provider", name), zap.Int("key", e.Key), zap.Int("status", e.Status))
		}
		m.keyEvents.WithLabelValues(name, event).Inc()
	}
	switch pc.Type {
	case "anthropic":
		return anthropic.New(anthropic.Config{Name: pc.Name, BaseURL: baseURL, APIKeys: keys, Transport: rt, OnKeyEvent: onKey})
	case "bedrock":
		cfg := bedrock.Config{Name: pc.Name, BaseURL: baseURL, Models: mm, Transport: rt, PingInterval: time.Duration(pc.PingInterval)}
		if cfg.Region, err = plainValue(repl, "region", pc.Region); err != nil {
			return nil, err
		}
		if cfg.AccessKeyID, err = plainValue(repl, "access_key_id", pc.AccessKeyID); err != nil {
			return nil, err
		}
		if cfg.SecretAccessKey, err = g.secretValue(repl, pc.Name, "secret_access_key", pc.SecretAccessKey); err != nil {
			return nil, err
		}
		if cfg.SessionToken, err = g.secretValue(repl, pc.Name, "session_token", pc.SessionToken); err != nil {
			return nil, err
		}
		if len(keys) > 1 {
			return nil, fmt.Errorf("a bedrock provider takes one api_key (a Bedrock API key)")
		}
		if len(keys) == 1 {
			cfg.APIKey = keys[0]
		}
		if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
			return nil, fmt.Errorf("access_key_id and secret_access_key go together")
		}
		return bedrock.New(ctx, cfg)
	case "vertex":
		cfg := vertex.Config{Name: pc.Name, BaseURL: baseURL, Models: mm, Transport: rt}
		if cfg.Project, err = plainValue(repl, "project", pc.Project); err != nil {
			return nil, err
		}
		if cfg.Region, err = plainValue(repl, "region", pc.Region); err != nil {
			return nil, err
		}
		if cfg.CredentialsFile, err = plainValue(repl, "credentials_file", pc.CredentialsFile); err != nil {
			return nil, err
		}
		return vertex.New(ctx, cfg)
	case "azure":
		cfg := azure.Config{Name: pc.Name, BaseURL: baseURL, APIKeys: keys, Models: mm, Transport: rt}
		for _, f := range []struct {
			name string
			in   string
			out  *string
		}{{"resource", pc.Resource, &cfg.Resource}, {"tenant_id", pc.TenantID, &cfg.TenantID}, {"client_id", pc.ClientID, &cfg.ClientID}, {"token_url", pc.TokenURL, &cfg.TokenURL}} {
			if *f.out, err = plainValue(repl, f.name, f.in); err != nil {
				return nil, err
			}
		}
		if cfg.ClientSecret, err = g.secretValue(repl, pc.Name, "client_secret", pc.ClientSecret); err != nil {
			return nil, err
		}
		return azure.New(ctx, cfg)
	case "openai":
		return openai.New(openai.Config{Name: pc.Name, BaseURL: baseURL, APIKeys: keys, AuthHeader: pc.AuthHeader,
			APIVersion: pc.APIVersion, Organization: pc.Organization, Project: pc.OpenAIProject, Models: mm, Transport: rt})
	}
	return nil, fmt.Errorf("unknown provider type %q", pc.Type)
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
