// Package redis is the Redis counters module
// (http.handlers.llm_gateway.counters.redis): budgets, reservations and
// rate limits shared by every Caddy instance of a fleet through atomic Lua
// scripts, so spend is never per replica. The ledger is the block's
// `ledger` line: by default this instance's SQLite file, or with
// `ledger postgres <dsn>` one PostgreSQL ledger for the whole fleet.
package redis

import (
	"fmt"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
)

func init() {
	caddy.RegisterModule(Counters{})
}

// Counters are counters in Redis.
type Counters struct {
	// URL is the Redis server: redis://[:password@]host:port/db, or
	// rediss:// for TLS; its query options (dial_timeout, pool_size…)
	// apply. Placeholders such as {env.REDIS_URL} work.
	URL string `json:"url"`
	// Prefix namespaces the Redis keys (default "llmgw"), so several
	// gateways can share one Redis.
	Prefix string `json:"prefix,omitempty"`
	// OnError is what happens when Redis cannot be reached: "closed"
	// (default: refuse requests that have budgets or rate limits, 529
	// overloaded_error on the Anthropic shape and 503 on the others) or
	// "open" (serve them unchecked; their spend is applied when Redis
	// answers again). Either way an error is logged and
	// llm_gateway_store_errors_total counts it.
	OnError string `json:"on_error,omitempty"`

	url string // placeholders resolved
}

// CaddyModule returns the Caddy module information.
func (Counters) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  stores.CountersNamespace + ".redis",
		New: func() caddy.Module { return new(Counters) },
	}
}

// UnmarshalCaddyfile reads the store line (the gateway keeps its `ledger`
// lines for itself):
//
//	store redis <url> {
//		on_error closed|open       # Redis unreachable: refuse (default) or serve unchecked
//		prefix   <prefix>          # Redis key namespace, default llmgw
//		ledger   postgres <dsn>    # (read by the gateway) the fleet's ledger; or ledger <path> for SQLite
//	}
func (c *Counters) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store
	d.Next() // redis
	if !d.NextArg() {
		return d.Errf("store redis needs a URL, e.g. redis://127.0.0.1:6379/0")
	}
	c.URL = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "on_error":
			if !d.NextArg() {
				return d.ArgErr()
			}
			c.OnError = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := c.checkOnError(); err != nil {
				return d.Err(err.Error())
			}
		case "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			c.Prefix = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown store redis subdirective %q", d.Val())
		}
	}
	return nil
}

// Provision resolves the URL's placeholders.
func (c *Counters) Provision(caddy.Context) error {
	u, err := caddy.NewReplacer().ReplaceOrErr(c.URL, true, true)
	if err != nil {
		return fmt.Errorf("url: %v", err)
	}
	c.url = u
	if c.Prefix == "" {
		c.Prefix = governance.DefaultRedisPrefix
	}
	return nil
}

// Validate checks the configuration.
func (c *Counters) Validate() error {
	if c.URL == "" || c.url == "" {
		return fmt.Errorf("store redis needs a url")
	}
	return c.checkOnError()
}

func (c *Counters) checkOnError() error {
	switch c.OnError {
	case "", "closed", "open":
		return nil
	}
	return fmt.Errorf("on_error: want open or closed, got %q", c.OnError)
}

// Key implements stores.Counters: the URL (which carries the timeouts,
// ?dial_timeout=…) and the prefix. on_error is not a store option.
func (c *Counters) Key() string { return c.url + "|" + c.Prefix }

// String implements stores.Counters, without the password.
func (c *Counters) String() string {
	u := c.url
	if parsed, err := url.Parse(u); err == nil {
		u = parsed.Redacted()
	} else {
		u = "(unparsable url)"
	}
	return "redis " + u
}

// Restores implements stores.Counters: Redis keeps its own counters.
func (*Counters) Restores() bool { return false }

// FailOpen implements stores.Counters.
func (c *Counters) FailOpen() bool { return c.OnError == "open" }

// OpenCounters implements stores.Counters. Spend the counters could not
// take (served unchecked under on_error open, or a settlement that failed)
// is queued and applied when Redis answers again.
func (c *Counters) OpenCounters(env stores.Env, _ governance.Store) (governance.Counters, error) {
	logger := env.Logger.Named("redis")
	rc, err := governance.NewRedisCounters(governance.RedisOptions{
		URL: c.url, Prefix: c.Prefix,
		// The client logs its failed dials itself; the gateway already
		// logs and counts store errors, so keep its lines at debug level.
		Log: func(msg string) { logger.Debug(msg) },
	})
	if err != nil {
		return nil, fmt.Errorf("store redis: %v", err)
	}
	return governance.NewQueuedCounters(rc, governance.QueuedOptions{
		OnDrop:    env.OnSettlementsDropped,
		OnApplied: env.OnSettlementsApplied,
	}), nil
}

// Interface guards
var (
	_ stores.Counters       = (*Counters)(nil)
	_ caddy.Provisioner     = (*Counters)(nil)
	_ caddy.Validator       = (*Counters)(nil)
	_ caddyfile.Unmarshaler = (*Counters)(nil)
)
