// Package vertex is the Caddy module of the Google Vertex AI provider
// family (http.handlers.llm_gateway.providers.vertex): it reads the
// family's lines and builds the provider with providers/vertex.
package vertex

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	family "github.com/llmgateway/caddy-llm-gateway/providers/vertex"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Vertex AI provider.
type Module struct {
	mp.Config
	// Project is the Google Cloud project.
	Project string `json:"project,omitempty"`
	// Region is the Vertex AI location ("global", "us-east5").
	Region string `json:"region,omitempty"`
	// CredentialsFile is a service-account key file; without it,
	// Application Default Credentials.
	CredentialsFile string `json:"credentials_file,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".vertex",
		New: func() caddy.Module { return new(Module) },
	}
}

// UnmarshalCaddyfile reads the provider block:
//
//	provider <name> {
//		type             vertex
//		project          <project id>
//		region           <location>|global
//		credentials_file <service-account.json>   # default: Application Default Credentials
//		<shared lines>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.UnmarshalBlock(d, "vertex", m.line, m.Validate)
}

func (m *Module) line(d *caddyfile.Dispenser) (bool, error) {
	var err error
	switch d.Val() {
	case "project":
		m.Project, err = mp.OneArg(d)
	case "region":
		m.Region, err = mp.OneArg(d)
	case "credentials_file":
		m.CredentialsFile, err = mp.OneArg(d)
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
	for name, v := range map[string]*string{"project": &m.Project, "region": &m.Region, "credentials_file": &m.CredentialsFile} {
		if err := p.Value(name, v); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the configuration.
func (m *Module) Validate() error {
	switch {
	case m.Project == "" || m.Region == "":
		return fmt.Errorf("project and region are required")
	case len(m.APIKeys) > 0:
		return fmt.Errorf("api_key does not apply to vertex providers (they authenticate with Google credentials)")
	}
	return nil
}

// NewProvider builds the provider.
func (m *Module) NewProvider(ctx caddy.Context, env mp.Env) (providers.Provider, error) {
	return family.New(ctx, family.Config{
		Name: m.Name, Project: m.Project, Region: m.Region, BaseURL: m.BaseURL, Models: m.ModelMapping(),
		CredentialsFile: m.CredentialsFile, Transport: env.Transport,
	})
}

// Interface guards
var (
	_ mp.Family             = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.Validator       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
