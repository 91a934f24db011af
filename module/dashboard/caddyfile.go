package dashboard

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("llm_gateway_dashboard", parseCaddyfile)
	// After the authentication directives, so basic_auth and forward_auth in
	// the same route run first and no `order` line is needed.
	httpcaddyfile.RegisterDirectiveOrder("llm_gateway_dashboard", httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Dashboard)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// UnmarshalCaddyfile reads the directive, which takes no arguments and no
// block:
//
//	llm_gateway_dashboard
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // directive name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	if disp.NextBlock(0) {
		return disp.Errf("llm_gateway_dashboard takes no block (unknown subdirective %q)", disp.Val())
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Dashboard)(nil)
