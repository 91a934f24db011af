// Package anthropic is the Caddy module of the anthropic provider family
// (http.handlers.llm_gateway.providers.anthropic): it reads the family's
// lines and builds the provider with providers/anthropic.
package anthropic

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	family "github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures an Anthropic API provider: the shared lines, of which
// api_key (one or more, rotated) is required. It takes no model lines: the
// Anthropic API knows its models by their own names.
type Module struct {
	mp.Config
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".anthropic",
		New: func() caddy.Module { return new(Module) },
	}
}

// UnmarshalCaddyfile reads the provider block:
//
//	provider <name> {
//		type    anthropic
//		api_key <key> [<key>…]   # repeatable, rotated; 401/403 leave the rotation, 429 tries the next
//		<shared lines>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.UnmarshalBlock(d, "anthropic", nil, m.Validate)
}

// Validate checks the configuration.
func (m *Module) Validate() error {
	if len(m.APIKeys) == 0 {
		return fmt.Errorf("at least one api_key is required")
	}
	if len(m.ModelMap) > 0 {
		return fmt.Errorf("model does not apply to anthropic providers")
	}
	return nil
}

// NewProvider builds the provider.
func (m *Module) NewProvider(_ caddy.Context, env mp.Env) (providers.Provider, error) {
	return family.New(family.Config{Name: m.Name, BaseURL: m.BaseURL, APIKeys: m.APIKeys, Transport: env.Transport, OnKeyEvent: env.OnKeyEvent})
}

// Interface guards
var (
	_ mp.Family             = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.Validator       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
