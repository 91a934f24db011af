package module

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/llmgateway/caddy-llm-gateway/providers/cache"
)

// parseCache reads the cache directive of llm_gateway:
//
//	cache [{
//		ttl       <duration>                  # default 1h
//		max_size  <size>                      # e.g. 256MiB; default 128MiB
//		max_entry <size>                      # largest response kept; default 1MiB
//		scope     key|team|customer|global    # who shares entries; default key
//		surfaces  <surface>…                  # ledger surface names; default all
//	}]
//
// A bare `cache` turns the cache on with the defaults.
func parseCache(d *caddyfile.Dispenser) (*CacheConfig, error) {
	c := &CacheConfig{}
	if d.NextArg() {
		return nil, d.Errf("cache: unexpected argument %q (cache takes a block: cache { ttl …; max_size …; scope … })", d.Val())
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("cache: %s is set twice", sub)
		}
		seen[sub] = true
		switch sub {
		case "ttl":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("cache: ttl: invalid duration %q", v)
			}
			c.TTL = caddy.Duration(dur)
		case "max_size", "max_entry":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<50 {
				return nil, d.Errf("cache: %s: want a size such as 256MiB, got %q", sub, v)
			}
			if sub == "max_size" {
				if n < cache.MinSize {
					return nil, d.Errf("cache: max_size must be at least 64KiB, got %q", v)
				}
				c.MaxSize = int64(n)
			} else {
				c.MaxEntry = int64(n)
			}
		case "scope":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if _, ok := cache.ParseScope(v); !ok {
				return nil, d.Errf("cache: scope must be key, team, customer or global, got %q", v)
			}
			c.Scope = v
		case "surfaces":
			args, err := someArgs(d)
			if err != nil {
				return nil, err
			}
			for _, a := range args {
				if surfaceByName(a) == 0 {
					return nil, d.Errf("cache: surfaces: %q is not a surface the cache keeps (one of %s)", a, cacheSurfaceNames())
				}
			}
			c.Surfaces = args
		default:
			return nil, d.Errf("unknown cache subdirective %q (ttl, max_size, max_entry, scope, surfaces)", sub)
		}
	}
	if c.MaxEntry > 0 && c.MaxSize > 0 && c.MaxEntry > c.MaxSize {
		return nil, d.Errf("cache: max_entry (%d bytes) is larger than max_size (%d bytes)", c.MaxEntry, c.MaxSize)
	}
	return c, nil
}

// parseCacheSwitch reads `cache on|off` in a customer, team or key block.
func parseCacheSwitch(d *caddyfile.Dispenser) (string, error) {
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	v = strings.ToLower(v)
	if v != "on" && v != "off" {
		return "", d.Errf("cache: want on or off, got %q", d.Val())
	}
	return v, nil
}
