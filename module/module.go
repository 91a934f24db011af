// Package module is the Caddy glue of llm_gateway, and only glue: it
// registers the http.handlers.llm_gateway handler and the
// admin.api.llm_gateway admin routes, parses the Caddyfile, provisions the
// governance registry and store and the provider families from config, and
// runs the request pipeline in ServeHTTP. Wire formats live in providers,
// money and identities in governance.
package module

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
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
	// Store keeps usage across reloads and restarts. Default: memory
	// counters over the sqlite ledger in Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Timezone is the IANA zone calendar periods and daily reports use.
	// Default: UTC.
	Timezone string `json:"timezone,omitempty"`
	// Retention is how long the ledger keeps its rows (0: for ever); older
	// rows are pruned off the request path while the ledger's rollup keeps
	// their totals (retention.go).
	Retention caddy.Duration `json:"retention,omitempty"`
	// MaxRequestBody is the largest request body accepted, in bytes; larger
	// bodies get 413. Default: 32 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`
	// ProvidersRaw are the upstreams, each a provider family module
	// ({"name": "x", "type": "anthropic", …}); without a matching route,
	// models go to the providers that serve them in this order.
	ProvidersRaw []json.RawMessage `json:"providers,omitempty" caddy:"namespace=http.handlers.llm_gateway.providers inline_key=type"`
	// Routes send model globs to ordered provider lists (fallback order).
	Routes []*RouteConfig `json:"routes,omitempty"`
	// Aliases map names clients send ("sonnet") to model ids.
	Aliases map[string]string `json:"aliases,omitempty"`
	// FailAfter consecutive failures put a provider in cool-down (default 3).
	FailAfter int `json:"fail_after,omitempty"`
	// Cooldown is how long a failing provider is skipped (default 30s).
	Cooldown caddy.Duration `json:"cooldown,omitempty"`
	// Customers, Teams and Keys are the spending hierarchy.
	Customers []*CustomerConfig `json:"customers,omitempty"`
	Teams     []*TeamConfig     `json:"teams,omitempty"`
	Keys      []*KeyConfig      `json:"keys,omitempty"`
	// Prices override or extend the built-in price table (and PricesFile):
	// each applies to every row of its model.
	Prices []*PriceConfig `json:"prices,omitempty"`
	// PricesFile is an operator's price table in the built-in table's
	// format (JSON, see docs/budgets.md), read at every provision (so a
	// `caddy reload` picks up an edit) and laid over the built-in rows: a
	// row replaces the built-in row of the same model and effective_from,
	// and adds a version otherwise.
	PricesFile string `json:"prices_file,omitempty"`
	// MetricsLabels add request-header values as metric labels.
	MetricsLabels []*MetricsLabelConfig `json:"metrics_labels,omitempty"`
	// ModelLabelCap bounds the model label: models named exactly by a price
	// row, an alias or a provider's model line keep their names; other
	// names are kept until this many have been seen (in the process) and
	// are counted as "_other" after that. The ledger keeps the real name.
	// Default: 100.
	ModelLabelCap int `json:"model_label_cap,omitempty"`
	// Unpriced is what billable requests for a model without a price get:
	// "allow" (forwarded, charged 0) or "refuse" (403 telling to add a
	// price line). Default: refuse on a path that has a budget, allow
	// elsewhere.
	Unpriced string `json:"unpriced,omitempty"`
	// BudgetWarn is the default budget_warn percentage (1–100) for every
	// level without its own; 0: no warnings.
	BudgetWarn int `json:"budget_warn,omitempty"`
	// ReservationLease is how long a budget reservation lives without
	// progress (renewed while the response flows). Default: 10m.
	ReservationLease caddy.Duration `json:"reservation_lease,omitempty"`
	// CountCacheReads makes token rate limits count cache reads too (by
	// default they count input, cache writes and output).
	CountCacheReads bool `json:"count_cache_reads,omitempty"`
	// Cache turns on the response cache (cache.go); off when nil.
	Cache *CacheConfig `json:"cache,omitempty"`
	// Notify sends alerts (budget_warn, budget_exhausted, session_cost,
	// rate_limited) to webhooks; see NotifyConfig.
	Notify []*NotifyConfig `json:"notify,omitempty"`
	// SSOConfig identifies developers by SSO: oidc and identity (sso.go).
	SSOConfig

	logger   *zap.Logger
	state    *state
	storeKey string
	dirKey   string        // the live key directory's key in directoryPool
	grace    time.Duration // the HTTP app's grace_period
	notify   *notifier
	sso      *ssoState // sso.go
}

// StoreConfig selects where counters and usage are kept: a counters module
// and a ledger module (see package module/stores).
type StoreConfig struct {
	// CountersRaw keeps budgets, reservations and rate limits:
	// {"type": "memory"} (default, restored from the ledger) or
	// {"type": "redis", "url": …, "prefix": …, "on_error": "closed"|"open"}.
	CountersRaw json.RawMessage `json:"counters,omitempty" caddy:"namespace=http.handlers.llm_gateway.counters inline_key=type"`
	// LedgerRaw keeps every request's usage record: {"type": "sqlite",
	// "path": …} (default: <caddy data dir>/llm_gateway/usage.db) or
	// {"type": "memory"}.
	LedgerRaw json.RawMessage `json:"ledger,omitempty" caddy:"namespace=http.handlers.llm_gateway.ledgers inline_key=type"`
}

// RouteConfig routes models matching Match to Providers, in fallback order.
type RouteConfig struct {
	Match     string   `json:"match"`
	Providers []string `json:"providers"`
}

// LimitsConfig are the controls customers, teams and keys share.
type LimitsConfig struct {
	// Models is an allow-list of canonical model globs; allow-lists
	// intersect down the path.
	Models []string `json:"models,omitempty"`
	// Budgets are hard spending limits per calendar period.
	Budgets []BudgetConfig `json:"budgets,omitempty"`
	// RateLimits limit requests or tokens per window.
	RateLimits []RateLimitConfig `json:"rate_limits,omitempty"`
	// Disabled refuses every request on the path (403).
	Disabled bool `json:"disabled,omitempty"`
	// Expires (RFC 3339) refuses requests from then on (401).
	Expires string `json:"expires,omitempty"`
	// BudgetWarn is the percentage of a budget (1–100) whose crossing is
	// logged and counted; 0 inherits the gateway's budget_warn.
	BudgetWarn int `json:"budget_warn,omitempty"`
	// Cache is "on" or "off": whether the response cache serves the
	// entity's requests; the narrowest entity that sets it decides, and
	// "" inherits (the cache applies when configured).
	Cache string `json:"cache,omitempty"`
}

// BudgetConfig is one budget: an amount of US dollars per period.
type BudgetConfig struct {
	// Amount is decimal USD ("5", "0.50").
	Amount string `json:"amount"`
	// Period is hour, day, week, month or total.
	Period string `json:"period"`
}

// RateLimitConfig is one rate limit: Limit units per window.
type RateLimitConfig struct {
	Limit int64 `json:"limit"`
	// Unit is requests or tokens.
	Unit string `json:"unit"`
	// Per is second, minute, hour or day.
	Per string `json:"per"`
}

// CustomerConfig is a customer of the hierarchy.
type CustomerConfig struct {
	Name string `json:"name"`
	LimitsConfig
}

// TeamConfig is a team, optionally under a customer.
type TeamConfig struct {
	Name     string `json:"name"`
	Customer string `json:"customer,omitempty"`
	LimitsConfig
}

// KeyConfig is a virtual key. Exactly one of Secret and SecretSHA256 is set.
type KeyConfig struct {
	Name string `json:"name"`
	// Secret is the key itself (or a placeholder resolving to it).
	Secret string `json:"secret,omitempty"`
	// SecretSHA256 is the hex SHA-256 of the key, so config holds nothing usable.
	SecretSHA256 string `json:"secret_sha256,omitempty"`
	Team         string `json:"team,omitempty"`
	Customer     string `json:"customer,omitempty"`
	// MaxTokensCap refuses requests whose max_tokens exceeds it (400), and
	// bounds the worst case of requests that omit max_tokens.
	MaxTokensCap int64 `json:"max_tokens_cap,omitempty"`
	LimitsConfig
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
	// Fast replaces the model's fast-mode rates (usage "speed":"fast").
	Fast *RatesConfig `json:"fast,omitempty"`
	// Tiers replace the model's prompt-size tiers.
	Tiers []*TierConfig `json:"tiers,omitempty"`
}

// RatesConfig is a full set of rates, decimal USD per million tokens; all
// five are required.
type RatesConfig struct {
	Input        string `json:"input"`
	Output       string `json:"output"`
	CacheWrite5m string `json:"cache_write_5m"`
	CacheWrite1h string `json:"cache_write_1h"`
	CacheRead    string `json:"cache_read"`
}

// TierConfig is the rates of a request whose prompt (input + cache writes
// + cache reads) is above Above tokens.
type TierConfig struct {
	Above int64 `json:"above"`
	RatesConfig
	// Fast is the tier's fast-mode rates.
	Fast *RatesConfig `json:"fast,omitempty"`
}

func (r *RatesConfig) rates(what string) (governance.Rates, error) {
	var out governance.Rates
	for _, f := range []struct {
		name string
		in   string
		out  *governance.Money
	}{{"input", r.Input, &out.Input}, {"output", r.Output, &out.Output}, {"cache_write_5m", r.CacheWrite5m, &out.CacheWrite5m},
		{"cache_write_1h", r.CacheWrite1h, &out.CacheWrite1h}, {"cache_read", r.CacheRead, &out.CacheRead}} {
		if f.in == "" {
			return out, fmt.Errorf("%s: %s is required (give all five rates: input, output, cache_write_5m, cache_write_1h, cache_read)", what, f.name)
		}
		m, err := governance.ParseMoney(f.in)
		if err != nil {
			return out, fmt.Errorf("%s %s: %v", what, f.name, err)
		}
		*f.out = m
	}
	return out, nil
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
	g.grace = httpGracePeriod(ctx)
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
	cs, err := g.cacheSettings() // cache.go
	if err != nil {
		return err
	}
	m, err := provisionMetrics(ctx, g.MetricsLabels, g.logger)
	if err != nil {
		return err
	}
	if cs != nil {
		if err := provisionCacheMetrics(ctx, m); err != nil {
			return err
		}
	}
	router, configs, multipliers, err := g.buildProviders(ctx, m)
	if err != nil {
		return err
	}

	if g.notify, err = provisionNotify(ctx, g.Notify, g.logger); err != nil {
		return err
	}
	if g.sso, err = g.provisionSSO(reg, repl, g.logger); err != nil {
		return err
	}
	spec, err := g.loadStore(ctx)
	if err != nil {
		return err
	}
	shared, err := acquireStore(spec, g.logger, m)
	if err != nil {
		return err
	}
	g.storeKey = spec.key()
	keys, err := g.buildKeyring(reg, spec.ledgerKey(), shared.ledger)
	if err != nil {
		return err
	}
	shared.leases.setLease(time.Duration(g.ReservationLease))
	g.applyLedgerSettings(shared.ledger, loc)
	// Budgets new to this config get their counters now, their spend so far
	// this period restored from the ledger, before any request is admitted.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = shared.counters.Prepare(pctx, keys.AllLevels(), time.Now(), loc)
	cancel()
	if err != nil {
		if !spec.counters.FailOpen() {
			g.logger.Error("preparing budget counters; requests with budgets will be refused until the store answers",
				zap.String("store", spec.describe()), zap.Error(err))
		} else {
			g.logger.Error("preparing budget counters; requests will be served unchecked until the store answers",
				zap.String("store", spec.describe()), zap.Error(err))
		}
	}
	labels := newLabelResolver(g.MetricsLabels, m.labelNames[len(baseLabels):])
	labels.models = newModelLabeler(reg.Prices, namedModels(g.Aliases, configs), g.ModelLabelCap)
	g.state = &state{
		registry:        reg,
		keys:            keys,
		router:          router,
		store:           shared,
		metrics:         m,
		location:        loc,
		maxBody:         g.MaxRequestBody,
		logger:          g.logger,
		labels:          labels,
		lease:           time.Duration(g.ReservationLease),
		multipliers:     multipliers,
		countCacheReads: g.CountCacheReads,
		failOpen:        spec.counters.FailOpen(),
		notify:          g.notify,
		sso:             g.sso,
	}
	if g.state.lease <= 0 {
		g.state.lease = DefaultReservationLease
	}
	if cs != nil {
		if err := g.acquireCache(cs); err != nil {
			return err
		}
		g.state.cache = cs
	}
	activeGateways.add(g)
	return nil
}

// Validate checks what Provision could not.
func (g *Gateway) Validate() error {
	if len(g.ProvidersRaw) == 0 {
		return fmt.Errorf("llm_gateway: at least one provider is required")
	}
	return nil
}

// Cleanup drops this config's references. In-flight requests keep their own
// reference to the store, so a reload never cuts a stream's accounting.
// When Caddy stops (rather than reloads), its HTTP server has already
// waited out the grace period: the requests still in flight are cut and
// settled, and Cleanup returns once they are ledgered, so the process never
// exits with served usage unbilled.
func (g *Gateway) Cleanup() error {
	activeGateways.remove(g)
	g.releaseCache()
	g.notify.close()
	g.releaseDirectory()
	g.sso.release()
	if processStopping() {
		logger := g.logger
		if logger == nil {
			logger = caddy.Log()
		}
		inflight.stop(logger, g.grace)
	}
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
		l, err := c.LimitsConfig.limits()
		if err != nil {
			return nil, fmt.Errorf("customer %q: %v", c.Name, err)
		}
		customers = append(customers, governance.CustomerSpec{Name: c.Name, Limits: l})
	}
	teams := make([]governance.TeamSpec, 0, len(g.Teams))
	for _, t := range g.Teams {
		l, err := t.LimitsConfig.limits()
		if err != nil {
			return nil, fmt.Errorf("team %q: %v", t.Name, err)
		}
		teams = append(teams, governance.TeamSpec{Name: t.Name, Customer: t.Customer, Limits: l})
	}
	keys := make([]governance.KeySpec, 0, len(g.Keys))
	for _, k := range g.Keys {
		if err := governance.CheckName("key", k.Name); err != nil {
			return nil, err
		}
		l, err := k.LimitsConfig.limits()
		if err != nil {
			return nil, fmt.Errorf("key %q: %v", k.Name, err)
		}
		if k.MaxTokensCap < 0 {
			return nil, fmt.Errorf("key %q: max_tokens_cap must be positive", k.Name)
		}
		spec := governance.KeySpec{Name: k.Name, Team: k.Team, Customer: k.Customer, Limits: l, MaxTokensCap: k.MaxTokensCap}
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
	var fileRows []governance.PriceRow
	if g.PricesFile != "" {
		path := repl.ReplaceKnown(g.PricesFile, "")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("prices_file: %v", err)
		}
		if fileRows, err = governance.ParsePrices(path, data); err != nil {
			return nil, fmt.Errorf("prices_file: %v", err)
		}
	}
	reg, err := governance.NewRegistry(customers, teams, keys, governance.BuildPriceTable(fileRows, rows))
	if err != nil {
		return nil, err
	}
	if g.BudgetWarn < 0 || g.BudgetWarn > 100 {
		return nil, fmt.Errorf("budget_warn must be a percentage between 1 and 100")
	}
	reg.DefaultBudgetWarn = g.BudgetWarn
	if reg.Unpriced, err = governance.ParseUnpricedPolicy(g.Unpriced); err != nil {
		return nil, err
	}
	if g.ModelLabelCap < 0 {
		return nil, fmt.Errorf("model_label_cap: want a positive number of model names, got %d", g.ModelLabelCap)
	}
	return reg, nil
}

// namedModels are the canonical model names this configuration names
// exactly, besides price rows: aliases (both sides) and providers' model
// lines (both sides). Globs do not name a model.
func namedModels(aliases map[string]string, providers []*mp.Config) map[string]bool {
	named := map[string]bool{}
	add := func(m string) {
		if m != "" && !strings.ContainsAny(m, "*?") {
			named[llm.CanonicalModel(m)] = true
		}
	}
	for alias, target := range aliases {
		add(alias)
		add(target)
	}
	for _, p := range providers {
		for _, e := range p.ModelMap {
			add(e.Match)
			add(e.ID)
		}
	}
	return named
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
	if p.Fast != nil {
		r, err := p.Fast.rates("price " + p.Model + " fast")
		if err != nil {
			return o, err
		}
		o.Fast = &r
	}
	for i, t := range p.Tiers {
		if t.Above <= 0 || i > 0 && t.Above <= p.Tiers[i-1].Above {
			return o, fmt.Errorf("price %s: tier above %d: tiers need positive prompt sizes in ascending order", p.Model, t.Above)
		}
		what := fmt.Sprintf("price %s above %d", p.Model, t.Above)
		r, err := t.RatesConfig.rates(what)
		if err != nil {
			return o, err
		}
		tier := governance.Tier{Above: t.Above, Rates: r}
		if t.Fast != nil {
			f, err := t.Fast.rates(what + " fast")
			if err != nil {
				return o, err
			}
			tier.Fast = &f
		}
		o.Tiers = append(o.Tiers, tier)
	}
	return o, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddy.Validator             = (*Gateway)(nil)
	_ caddy.CleanerUpper          = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
)
