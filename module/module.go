// Package module is the Caddy glue of llm_gateway, and only glue: it
// registers the http.handlers.llm_gateway handler and the
// admin.api.llm_gateway admin routes, parses the Caddyfile, provisions the
// governance registry and store and the provider families from config, and
// runs the request pipeline in ServeHTTP. Wire formats live in providers,
// money and identities in governance.
package module

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func init() {
	caddy.RegisterModule(Gateway{})
}

// DefaultMaxRequestBody is Anthropic's own request size limit.
const DefaultMaxRequestBody = 32 << 20

// Gateway is the llm_gateway HTTP handler: an identity-aware LLM gateway
// that attributes every request to a virtual key, forwards it to a provider
// and meters and prices what it used.
type Gateway struct {
	// Store keeps usage across reloads and restarts. Default: sqlite in
	// Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Timezone is the IANA zone calendar periods and daily reports use.
	// Default: UTC.
	Timezone string `json:"timezone,omitempty"`
	// MaxRequestBody is the largest request body accepted, in bytes; larger
	// bodies get 413. Default: 32 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`
	// Providers are the upstreams, in fallback order.
	Providers []*ProviderConfig `json:"providers,omitempty"`
	// Customers, Teams and Keys are the spending hierarchy.
	Customers []*CustomerConfig `json:"customers,omitempty"`
	Teams     []*TeamConfig     `json:"teams,omitempty"`
	Keys      []*KeyConfig      `json:"keys,omitempty"`
	// Prices override or extend the built-in price table.
	Prices []*PriceConfig `json:"prices,omitempty"`
	// MetricsLabels add request-header values as metric labels.
	MetricsLabels []*MetricsLabelConfig `json:"metrics_labels,omitempty"`

	logger   *zap.Logger
	state    *state
	storeKey string
}

// StoreConfig selects where usage is kept.
type StoreConfig struct {
	// Type is "sqlite" or "memory".
	Type string `json:"type"`
	// Path is the SQLite file (sqlite only). Default:
	// <caddy data dir>/llm_gateway/usage.db.
	Path string `json:"path,omitempty"`
}

// ProviderConfig is one upstream.
type ProviderConfig struct {
	// Name is how routes, metrics and logs refer to the provider.
	Name string `json:"name"`
	// Type is the API family: "anthropic".
	Type string `json:"type"`
	// APIKeys are the provider's credentials, rotated per request. They may
	// be placeholders such as {env.ANTHROPIC_API_KEY} or {file./run/key}.
	APIKeys []string `json:"api_keys,omitempty"`
	// BaseURL overrides the family's default endpoint (anthropic:
	// https://api.anthropic.com, without /v1).
	BaseURL string `json:"base_url,omitempty"`
	// Models are canonical model globs the provider serves; empty means all.
	Models []string `json:"models,omitempty"`
	// TransportRaw is a reverse_proxy transport module (http) configuring the
	// connection pool, TLS, proxies and timeouts. Default: the http
	// transport with 1024 idle connections per host.
	TransportRaw json.RawMessage `json:"transport,omitempty" caddy:"namespace=http.reverse_proxy.transport inline_key=protocol"`
}

// CustomerConfig is a customer of the hierarchy.
type CustomerConfig struct {
	Name   string   `json:"name"`
	Models []string `json:"models,omitempty"`
}

// TeamConfig is a team, optionally under a customer.
type TeamConfig struct {
	Name     string   `json:"name"`
	Customer string   `json:"customer,omitempty"`
	Models   []string `json:"models,omitempty"`
}

// KeyConfig is a virtual key. Exactly one of Secret and SecretSHA256 is set.
type KeyConfig struct {
	Name string `json:"name"`
	// Secret is the key itself (or a placeholder resolving to it).
	Secret string `json:"secret,omitempty"`
	// SecretSHA256 is the hex SHA-256 of the key, so config holds nothing usable.
	SecretSHA256 string   `json:"secret_sha256,omitempty"`
	Team         string   `json:"team,omitempty"`
	Customer     string   `json:"customer,omitempty"`
	Models       []string `json:"models,omitempty"`
}

// PriceConfig overrides a model's price. Amounts are decimal USD per
// million tokens ("3.75"); WebSearch is USD per search request.
type PriceConfig struct {
	// Model is a canonical model id (dated ids are accepted) or a glob.
	Model        string `json:"model"`
	Input        string `json:"input,omitempty"`
	Output       string `json:"output,omitempty"`
	CacheWrite5m string `json:"cache_write_5m,omitempty"`
	CacheWrite1h string `json:"cache_write_1h,omitempty"`
	CacheRead    string `json:"cache_read,omitempty"`
	WebSearch    string `json:"web_search,omitempty"`
}

// MetricsLabelConfig adds a metric label taken from a request header.
type MetricsLabelConfig struct {
	// Name is the label name.
	Name string `json:"name"`
	// Header is the request header whose value becomes the label value.
	Header string `json:"header"`
	// Max caps the distinct values kept; later values become "_other".
	// Default: 100.
	Max int `json:"max,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_gateway",
		New: func() caddy.Module { return new(Gateway) },
	}
}

// Provision builds the registry, router and providers for this config and
// takes a reference on the store shared across reloads.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	loc := time.UTC
	if g.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(g.Timezone); err != nil {
			return fmt.Errorf("timezone: %v", err)
		}
	}
	if g.MaxRequestBody == 0 {
		g.MaxRequestBody = DefaultMaxRequestBody
	}
	repl := caddy.NewReplacer()

	reg, err := g.buildRegistry(repl)
	if err != nil {
		return err
	}
	router, err := g.buildProviders(ctx, repl)
	if err != nil {
		return err
	}
	m, err := provisionMetrics(ctx, g.MetricsLabels, g.logger)
	if err != nil {
		return err
	}

	key, err := storeKey(g.Store)
	if err != nil {
		return err
	}
	shared, err := acquireStore(key, g.Store, g.logger)
	if err != nil {
		return err
	}
	g.storeKey = key
	g.state = &state{
		registry: reg,
		router:   router,
		store:    shared,
		metrics:  m,
		location: loc,
		maxBody:  g.MaxRequestBody,
		logger:   g.logger,
		labels:   newLabelResolver(g.MetricsLabels),
	}
	activeGateways.add(g)
	return nil
}

// Validate checks what Provision could not.
func (g *Gateway) Validate() error {
	if len(g.Providers) == 0 {
		return fmt.Errorf("llm_gateway: at least one provider is required")
	}
	return nil
}

// Cleanup drops this config's references. In-flight requests keep their own
// reference to the store, so a reload never cuts a stream's accounting.
func (g *Gateway) Cleanup() error {
	activeGateways.remove(g)
	if g.storeKey != "" {
		_, err := storePool.Delete(g.storeKey)
		return err
	}
	return nil
}

func globs(in []string) []llm.Glob {
	if len(in) == 0 {
		return nil
	}
	out := make([]llm.Glob, len(in))
	for i, s := range in {
		out[i] = llm.Glob(s)
	}
	return out
}

// buildRegistry resolves secrets and links the hierarchy.
func (g *Gateway) buildRegistry(repl *caddy.Replacer) (*governance.Registry, error) {
	customers := make([]governance.CustomerSpec, 0, len(g.Customers))
	for _, c := range g.Customers {
		customers = append(customers, governance.CustomerSpec{Name: c.Name, Models: globs(c.Models)})
	}
	teams := make([]governance.TeamSpec, 0, len(g.Teams))
	for _, t := range g.Teams {
		teams = append(teams, governance.TeamSpec{Name: t.Name, Customer: t.Customer, Models: globs(t.Models)})
	}
	keys := make([]governance.KeySpec, 0, len(g.Keys))
	for _, k := range g.Keys {
		if k.Name == "" {
			return nil, fmt.Errorf("key without a name")
		}
		spec := governance.KeySpec{Name: k.Name, Team: k.Team, Customer: k.Customer, Models: globs(k.Models)}
		switch {
		case k.Secret != "" && k.SecretSHA256 != "":
			return nil, fmt.Errorf("key %q: set secret or secret_sha256, not both", k.Name)
		case k.Secret != "":
			secret, err := repl.ReplaceOrErr(k.Secret, true, true)
			if err != nil {
				return nil, fmt.Errorf("key %q: secret: %v", k.Name, err)
			}
			if secret == "" {
				return nil, fmt.Errorf("key %q: secret is empty", k.Name)
			}
			spec.Hash = governance.HashSecret(secret)
		case k.SecretSHA256 != "":
			h, err := governance.ParseSecretHash(k.SecretSHA256)
			if err != nil {
				return nil, fmt.Errorf("key %q: %v", k.Name, err)
			}
			spec.Hash = h
		default:
			return nil, fmt.Errorf("key %q: secret or secret_sha256 is required", k.Name)
		}
		keys = append(keys, spec)
	}
	rows := make([]governance.PriceOverride, 0, len(g.Prices))
	for _, p := range g.Prices {
		row, err := p.row()
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return governance.NewRegistry(customers, teams, keys, governance.NewPriceTable(rows))
}

func (p *PriceConfig) row() (governance.PriceOverride, error) {
	o := governance.PriceOverride{Model: llm.Glob(p.Model)}
	if p.Model == "" {
		return o, fmt.Errorf("price without a model")
	}
	for _, f := range []struct {
		name string
		in   string
		out  **governance.Money
	}{
		{"input", p.Input, &o.Input},
		{"output", p.Output, &o.Output},
		{"cache_write_5m", p.CacheWrite5m, &o.CacheWrite5m},
		{"cache_write_1h", p.CacheWrite1h, &o.CacheWrite1h},
		{"cache_read", p.CacheRead, &o.CacheRead},
		{"web_search", p.WebSearch, &o.WebSearch},
	} {
		if f.in == "" {
			continue
		}
		m, err := governance.ParseMoney(f.in)
		if err != nil {
			return o, fmt.Errorf("price %s %s: %v", p.Model, f.name, err)
		}
		*f.out = &m
	}
	return o, nil
}

// hasPlaceholder reports whether a config value is a placeholder rather
// than a literal secret.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{") && strings.Contains(s, "}") }

// Interface guards
var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddy.Validator             = (*Gateway)(nil)
	_ caddy.CleanerUpper          = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
)
