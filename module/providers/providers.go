// Package providers is the seam between the llm_gateway handler and its
// provider families, the way reverse_proxy has transports: each family is a
// Caddy module in the Namespace namespace (…providers.anthropic,
// …providers.bedrock, …), loaded by the gateway from
//
//	"providers": [{"name": "x", "type": "<family>", …}]
//
// and, in a Caddyfile, from the `provider <name> { type <family> … }`
// block, which the gateway hands whole to the family's UnmarshalCaddyfile.
// This package knows no family: it holds the interface a family module
// implements (Family), what the gateway gives it (Env), and the lines every
// family shares (Config), which a family module embeds.
//
// A family outside this repository is a package that registers such a
// module; `xcaddy build --with` it next to the gateway and its type is
// available to every provider block.
package providers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	plain "github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Namespace is the Caddy module namespace of provider families: a family
// named "x" is the module Namespace + ".x", and "x" is what `type` says.
const Namespace = "http.handlers.llm_gateway.providers"

// Family is what a provider family module implements. The gateway loads
// the module (Caddy decodes its JSON, then calls Provision and Validate
// when it implements them), loads its transport, and calls NewProvider.
//
// A family embeds Config, which gives it ProviderConfig; its Caddyfile
// unmarshaler usually calls Config.UnmarshalBlock with its own lines.
type Family interface {
	caddy.Module
	// ProviderConfig returns the lines every family shares (the embedded
	// Config).
	ProviderConfig() *Config
	// NewProvider builds the provider from the provisioned configuration.
	NewProvider(ctx caddy.Context, env Env) (plain.Provider, error)
}

// Env is what the gateway gives a family to build its provider with.
type Env struct {
	// Transport sends the provider's upstream requests: the module of its
	// `transport` line (Caddy's reverse_proxy transports), by default the
	// http transport with a large idle pool.
	Transport http.RoundTripper
	// OnKeyEvent logs and counts a provider key rejected or rate limited
	// by the upstream (providers.KeyRing calls it).
	OnKeyEvent func(plain.KeyEvent)
	// Logger is the gateway's logger.
	Logger *zap.Logger
}

// ModelLine is a `model <glob> <id>` line: canonical models matching Match
// are asked of the provider as ID.
type ModelLine struct {
	Match string `json:"match"`
	ID    string `json:"id"`
}

// Config is the configuration every family shares. A family module embeds
// it (its JSON fields then sit next to the family's own).
type Config struct {
	// Name is how routes, metrics and logs refer to the provider.
	Name string `json:"name"`
	// Models are canonical model globs the provider serves. Empty means
	// the family's own models: claude-* for the Claude families, every
	// other model for openai (providers.FamilyServes).
	Models []string `json:"models,omitempty"`
	// ModelMap maps canonical model globs to the provider's own ids
	// (Bedrock ids or inference profiles, Vertex ids, deployment names).
	ModelMap []ModelLine `json:"model_map,omitempty"`
	// BaseURL overrides the family's endpoint (docs/providers.md: each
	// family follows its official SDK's convention).
	BaseURL string `json:"base_url,omitempty"`
	// APIKeys are the provider's keys, rotated per request, for the
	// families that take keys. Placeholders such as {env.ANTHROPIC_API_KEY}
	// or {file./run/key} work.
	APIKeys []string `json:"api_keys,omitempty"`
	// PriceMultiplier scales every price for requests this provider serves
	// (decimal, e.g. "1.1" for regional endpoints). Default 1.
	PriceMultiplier string `json:"price_multiplier,omitempty"`
	// TransportRaw is a reverse_proxy transport module (http) configuring the
	// connection pool, TLS, proxies and timeouts. Default: the http
	// transport with 1024 idle connections per host.
	TransportRaw json.RawMessage `json:"transport,omitempty" caddy:"namespace=http.reverse_proxy.transport inline_key=protocol"`
}

// ProviderConfig returns c: a family that embeds Config implements that
// part of Family.
func (c *Config) ProviderConfig() *Config { return c }

// Globs are the models line as globs.
func (c *Config) Globs() []llm.Glob {
	if len(c.Models) == 0 {
		return nil
	}
	out := make([]llm.Glob, len(c.Models))
	for i, s := range c.Models {
		out[i] = llm.Glob(s)
	}
	return out
}

// ModelMapping is the model lines as the families take them.
func (c *Config) ModelMapping() plain.ModelMap {
	var mm plain.ModelMap
	for _, e := range c.ModelMap {
		mm = append(mm, plain.ModelMapping{Glob: llm.Glob(e.Match), ID: e.ID})
	}
	return mm
}

// Multiplier is the price_multiplier, 0 when there is none.
func (c *Config) Multiplier() (governance.Money, error) {
	if c.PriceMultiplier == "" {
		return 0, nil
	}
	m, err := governance.ParseMoney(c.PriceMultiplier)
	if err != nil || m <= 0 {
		return 0, fmt.Errorf("price_multiplier: want a positive decimal such as 1.1, got %q", c.PriceMultiplier)
	}
	return m, nil
}

// ValidateShared checks the shared lines. The gateway calls it for every
// family, whatever the family's own Validate does.
func (c *Config) ValidateShared() error {
	if c.Name == "" {
		return fmt.Errorf("provider without a name")
	}
	if _, err := c.Multiplier(); err != nil {
		return err
	}
	for _, m := range c.Models {
		if m == "" {
			return fmt.Errorf("models: an empty model glob")
		}
	}
	for _, e := range c.ModelMap {
		if e.Match == "" || e.ID == "" {
			return fmt.Errorf("model_map: usage: model <canonical model glob> <provider model id>")
		}
	}
	return nil
}

// Provision resolves the placeholders of the shared lines (base_url and
// api_key; a literal api key is logged as a warning). A family that has its
// own Provision calls it first.
func (c *Config) Provision(ctx caddy.Context) error {
	p := c.Placeholders(ctx)
	if err := p.Value("base_url", &c.BaseURL); err != nil {
		return err
	}
	for i := range c.APIKeys {
		if err := p.Secret("api_key", &c.APIKeys[i]); err != nil {
			return err
		}
	}
	return nil
}

// Placeholders resolves a provider's fields: {env.*}, {file.*} and the
// other global placeholders.
type Placeholders struct {
	repl     *caddy.Replacer
	logger   *zap.Logger
	provider string
}

// Placeholders returns the resolver for this provider's fields; it logs
// through the module's logger.
func (c *Config) Placeholders(ctx caddy.Context) *Placeholders {
	return &Placeholders{repl: caddy.NewReplacer(), logger: ctx.Logger(), provider: c.Name}
}

// Value resolves a non-secret field in place.
func (p *Placeholders) Value(field string, v *string) error {
	if *v == "" {
		return nil
	}
	out, err := p.repl.ReplaceOrErr(*v, true, true)
	if err != nil {
		return fmt.Errorf("%s: %v", field, err)
	}
	*v = out
	return nil
}

// Secret resolves a secret-bearing field in place, warning when it is a
// literal (it would show in `caddy adapt` output and GET /config/); a
// secret that resolves to nothing is an error.
func (p *Placeholders) Secret(field string, v *string) error {
	if *v == "" {
		return nil
	}
	if !HasPlaceholder(*v) {
		p.logger.Warn("provider "+field+" is a literal: it appears in `caddy adapt` output and the admin API's /config; prefer {env.NAME} or {file./path}",
			zap.String("provider", p.provider))
	}
	out, err := p.repl.ReplaceOrErr(*v, true, true)
	if err != nil {
		return fmt.Errorf("%s: %v", field, err)
	}
	if out == "" {
		return fmt.Errorf("%s resolves to an empty value", field)
	}
	*v = out
	return nil
}

// HasPlaceholder reports whether a config value is a placeholder rather
// than a literal.
func HasPlaceholder(s string) bool { return strings.Contains(s, "{") && strings.Contains(s, "}") }

// LineFunc parses one line of a provider block that is not a shared line,
// the dispenser on its first token; false when the family has no such line.
type LineFunc func(d *caddyfile.Dispenser) (bool, error)

// UnmarshalBlock reads a provider block as the gateway hands it to the
// family module:
//
//	provider <name> {
//		type     <family>
//		models   <glob>…           # canonical models served; default: the family's
//		model    <glob> <id>       # repeatable: the provider's own id for matching models
//		base_url <url>             # the family's endpoint, as its official SDK spells it
//		api_key  <key> [<key>…]    # repeatable, rotated (families that take keys)
//		price_multiplier <x>       # e.g. 1.1 for regional endpoints
//		transport http { … }       # Caddy's reverse_proxy http transport (pool, TLS, timeouts)
//		<the family's own lines>
//	}
//
// The shared lines set c; every other line goes to line. Then validate
// (the family's Validate, or nil) runs, so that a Caddyfile gets at parse
// time, with its file and line, the message a JSON configuration gets when
// it loads.
func (c *Config) UnmarshalBlock(d *caddyfile.Dispenser, family string, line LineFunc, validate func() error) error {
	d.Next() // provider
	if !d.NextArg() {
		return d.ArgErr()
	}
	c.Name = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		ok, err := c.unmarshalLine(d, family)
		if err != nil {
			return err
		}
		if !ok && line != nil {
			if ok, err = line(d); err != nil {
				return err
			}
		}
		if !ok {
			return d.Errf("unknown provider subdirective %q (type %s)", d.Val(), family)
		}
	}
	if err := c.ValidateShared(); err != nil {
		return d.Errf("provider %s: %v", c.Name, err)
	}
	if validate != nil {
		if err := validate(); err != nil {
			return d.Errf("provider %s: %v", c.Name, err)
		}
	}
	return nil
}

func (c *Config) unmarshalLine(d *caddyfile.Dispenser, family string) (bool, error) {
	var err error
	switch d.Val() {
	case "type":
		v, err := OneArg(d)
		if err != nil {
			return true, err
		}
		if v != family {
			return true, d.Errf("provider %s: type %s given to the %s family", c.Name, v, family)
		}
	case "base_url":
		if c.BaseURL, err = OneArg(d); err != nil {
			return true, err
		}
	case "api_key":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		c.APIKeys = append(c.APIKeys, args...)
	case "models":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		c.Models = append(c.Models, args...)
	case "model":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return true, d.Err("usage: model <canonical model glob> <provider model id>")
		}
		c.ModelMap = append(c.ModelMap, ModelLine{Match: args[0], ID: args[1]})
	case "price_multiplier":
		if c.PriceMultiplier, err = OneArg(d); err != nil {
			return true, err
		}
		if _, err := c.Multiplier(); err != nil {
			return true, d.Err(err.Error())
		}
	case "transport":
		if c.TransportRaw != nil {
			return true, d.Err("transport already specified")
		}
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		modName := d.Val()
		unm, err := caddyfile.UnmarshalModule(d, "http.reverse_proxy.transport."+modName)
		if err != nil {
			return true, err
		}
		var warnings []caddyconfig.Warning
		c.TransportRaw = caddyconfig.JSONModuleObject(unm, "protocol", modName, &warnings)
	default:
		return false, nil
	}
	return true, nil
}

// OneArg reads exactly one argument of a line.
func OneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// Families are the registered family names, sorted.
func Families() []string {
	var out []string
	for _, m := range caddy.GetModules(Namespace) {
		out = append(out, m.ID.Name())
	}
	sort.Strings(out)
	return out
}

// Lookup returns a new instance of family's module, or an error naming the
// registered families.
func Lookup(family string) (Family, error) {
	if family == "" {
		return nil, fmt.Errorf("type is required")
	}
	info, err := caddy.GetModule(Namespace + "." + family)
	if err != nil {
		return nil, fmt.Errorf("unknown provider type %q (supported: %s)", family, strings.Join(Families(), ", "))
	}
	f, ok := info.New().(Family)
	if !ok {
		return nil, fmt.Errorf("module %s is not a provider family (it does not implement providers.Family)", info.ID)
	}
	return f, nil
}
