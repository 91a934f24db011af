package module

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// parseNotify reads one notify line:
//
//	notify webhook <url> [{
//		events       budget_warn budget_exhausted session_cost rate_limited   # default: budget_warn budget_exhausted
//		session_cost <usd>       # alert when a Claude Code session's cost passes this (adds the session_cost event)
//		timeout      <duration>  # one delivery attempt; default 10s
//		retries      <n>         # retries with exponential backoff; default 5
//		backoff      <duration>  # the first retry's delay, doubled for each next one; default 1s
//	}]
//
// The URL may hold placeholders ({env.SLACK_WEBHOOK}).
func parseNotify(d *caddyfile.Dispenser) (*NotifyConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	if d.Val() != "webhook" {
		return nil, d.Errf("notify: unknown channel %q (want webhook)", d.Val())
	}
	if !d.NextArg() {
		return nil, d.Errf("notify webhook: a URL is required")
	}
	c := &NotifyConfig{Webhook: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "events":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, a := range args {
				if _, err := governance.ParseEventKind(a); err != nil {
					return nil, d.Errf("notify webhook: %v", err)
				}
			}
			c.Events = append(c.Events, args...)
		case "session_cost":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if m, err := governance.ParseMoney(d.Val()); err != nil || m <= 0 {
				return nil, d.Errf("notify webhook: session_cost: want a positive USD amount, got %q", d.Val())
			}
			c.SessionCost = d.Val()
			if d.NextArg() {
				if d.Val() != "usd" || d.NextArg() {
					return nil, d.ArgErr()
				}
			}
		case "timeout":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 || dur > time.Hour {
				return nil, d.Errf("notify webhook: timeout: invalid duration %q", d.Val())
			}
			c.Timeout = caddy.Duration(dur)
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "backoff":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return nil, d.Errf("notify webhook: backoff: invalid duration %q", d.Val())
			}
			c.Backoff = caddy.Duration(dur)
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "retries":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 0 || n > maxNotifyRetries {
				return nil, d.Errf("notify webhook: retries: want 0 to %d, got %q", maxNotifyRetries, d.Val())
			}
			c.Retries = &n
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("notify webhook: unknown subdirective %q", d.Val())
		}
	}
	if _, _, err := c.parseEvents(); err != nil {
		return nil, d.Errf("notify webhook: %v", err)
	}
	return c, nil
}
