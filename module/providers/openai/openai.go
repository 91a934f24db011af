// Package openai is the Caddy module of the OpenAI provider family
// (http.handlers.llm_gateway.providers.openai), for OpenAI and every
// OpenAI-compatible server: it reads the family's lines and builds the
// provider with providers/openai.
package openai

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	family "github.com/llmgateway/caddy-llm-gateway/providers/openai"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures an OpenAI or OpenAI-compatible provider.
type Module struct {
	mp.Config
	// AuthHeader is "authorization" (Bearer, default) or "api-key" (Azure
	// OpenAI).
	AuthHeader string `json:"auth_header,omitempty"`
	// APIVersion is appended as ?api-version= (Azure OpenAI).
	APIVersion string `json:"api_version,omitempty"`
	// Organization and OpenAIProject set OpenAI-Organization and
	// OpenAI-Project.
	Organization  string `json:"organization,omitempty"`
	OpenAIProject string `json:"openai_project,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".openai",
		New: func() caddy.Module { return new(Module) },
	}
}

// UnmarshalCaddyfile reads the provider block:
//
//	provider <name> {
//		type           openai
//		api_key        <key> [<key>…]            # optional for local servers
//		auth_header    authorization|api-key     # api-key for Azure OpenAI
//		api_version    <version>                 # Azure OpenAI
//		organization   <org>
//		openai_project <project>
//		<shared lines>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.UnmarshalBlock(d, "openai", m.line, m.Validate)
}

func (m *Module) line(d *caddyfile.Dispenser) (bool, error) {
	var err error
	switch d.Val() {
	case "auth_header":
		if m.AuthHeader, err = mp.OneArg(d); err == nil {
			if err := m.checkAuthHeader(); err != nil {
				return true, d.Err(err.Error())
			}
		}
	case "api_version":
		m.APIVersion, err = mp.OneArg(d)
	case "organization":
		m.Organization, err = mp.OneArg(d)
	case "openai_project":
		m.OpenAIProject, err = mp.OneArg(d)
	default:
		return false, nil
	}
	return true, err
}

func (m *Module) checkAuthHeader() error {
	switch m.AuthHeader {
	case "", "authorization", "api-key":
		return nil
	}
	return fmt.Errorf("auth_header: want authorization or api-key, got %q", m.AuthHeader)
}

// Validate checks the configuration.
func (m *Module) Validate() error {
	return m.checkAuthHeader()
}

// NewProvider builds the provider.
func (m *Module) NewProvider(_ caddy.Context, env mp.Env) (providers.Provider, error) {
	return family.New(family.Config{
		Name: m.Name, BaseURL: m.BaseURL, APIKeys: m.APIKeys, OnKeyEvent: env.OnKeyEvent, AuthHeader: m.AuthHeader,
		APIVersion: m.APIVersion, Organization: m.Organization, Project: m.OpenAIProject,
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
