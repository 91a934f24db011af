package postgres

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile reads `store postgres <dsn>` (counters in memory), or
// `ledger postgres <dsn>` in a counters store's block (`store redis <url>
// { ledger postgres <dsn> }`), with an optional block:
//
//	store postgres <dsn> {
//		queue_size       <rows>      # rows kept in memory while PostgreSQL is down (default 65536)
//		refresh_interval <duration>  # how often the fleet's totals are re-read (default 2s)
//		max_conns        <n>         # connection pool size (default 4)
//	}
func (l *Ledger) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store or ledger
	directive := d.Val()
	d.Next() // postgres
	if !d.NextArg() {
		return d.Errf("%s postgres needs a DSN, e.g. postgres://llm_gateway:{env.PGPASSWORD}@db:5432/llm_gateway", directive)
	}
	l.DSN = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		v := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch sub {
		case "queue_size", "max_conns":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("%s: want a positive integer, got %q", sub, v)
			}
			if sub == "queue_size" {
				l.QueueSize = n
			} else {
				l.MaxConns = n
			}
		case "refresh_interval":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("refresh_interval: want a positive duration, got %q", v)
			}
			l.RefreshInterval = caddy.Duration(dur)
		default:
			return d.Errf("unknown %s postgres subdirective %q", directive, sub)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Ledger)(nil)
