// Package azure is the Caddy module of the Microsoft Foundry provider
// family (http.handlers.llm_gateway.providers.azure): it reads the
// family's lines and builds the provider with providers/azure.
package azure

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	family "github.com/llmgateway/caddy-llm-gateway/providers/azure"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Microsoft Foundry provider: a resource (or the
// base_url), and api keys or an Entra ID app registration.
type Module struct {
	mp.Config
	// Resource is the Foundry resource name, instead of base_url.
	Resource string `json:"resource,omitempty"`
	// TenantID, ClientID, ClientSecret (and TokenURL, for sovereign clouds)
	// authenticate with Entra ID instead of api keys.
	TenantID     string `json:"tenant_id,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	TokenURL     string `json:"token_url,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".azure",
		New: func() caddy.Module { return new(Module) },
	}
}

// UnmarshalCaddyfile reads the provider block:
//
//	provider <name> {
//		type          azure
//		resource      <name>          # or base_url https://{resource}.services.ai.azure.com/anthropic
//		api_key       <key> [<key>…]  # or the Entra ID app registration:
//		tenant_id     <tenant>
//		client_id     <id>
//		client_secret <secret>
//		token_url     <url>           # sovereign clouds
//		<shared lines>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.UnmarshalBlock(d, "azure", m.line, m.Validate)
}

func (m *Module) line(d *caddyfile.Dispenser) (bool, error) {
	var err error
	switch d.Val() {
	case "resource":
		m.Resource, err = mp.OneArg(d)
	case "tenant_id":
		m.TenantID, err = mp.OneArg(d)
	case "client_id":
		m.ClientID, err = mp.OneArg(d)
	case "client_secret":
		m.ClientSecret, err = mp.OneArg(d)
	case "token_url":
		m.TokenURL, err = mp.OneArg(d)
	default:
		return false, nil
	}
	return true, err
}

// Provision resolves placeholders.
func (m *Module) Provision(ctx caddy.Context) error {
	if err := m.Config.Provision(ctx); err != nil {
		return err
	}
	p := m.Placeholders(ctx)
	for name, v := range map[string]*string{"resource": &m.Resource, "tenant_id": &m.TenantID, "client_id": &m.ClientID, "token_url": &m.TokenURL} {
		if err := p.Value(name, v); err != nil {
			return err
		}
	}
	return p.Secret("client_secret", &m.ClientSecret)
}

// Validate checks the configuration.
func (m *Module) Validate() error {
	switch {
	case m.Resource == "" && m.BaseURL == "":
		return fmt.Errorf("resource or base_url is required")
	case len(m.APIKeys) == 0 && m.ClientID == "":
		return fmt.Errorf("api_key, or tenant_id, client_id and client_secret, are required")
	}
	return nil
}

// NewProvider builds the provider.
func (m *Module) NewProvider(ctx caddy.Context, env mp.Env) (providers.Provider, error) {
	return family.New(ctx, family.Config{
		Name: m.Name, Resource: m.Resource, BaseURL: m.BaseURL, APIKeys: m.APIKeys, OnKeyEvent: env.OnKeyEvent,
		TenantID: m.TenantID, ClientID: m.ClientID, ClientSecret: m.ClientSecret, TokenURL: m.TokenURL,
		Models: m.ModelMapping(), Transport: env.Transport,
	})
}

// Interface guards
var (
	_ mp.Family             = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.Validator       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
