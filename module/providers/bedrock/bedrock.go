// Package bedrock is the Caddy module of the AWS Bedrock provider family
// (http.handlers.llm_gateway.providers.bedrock): it reads the family's
// lines and builds the provider with providers/bedrock.
package bedrock

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	family "github.com/llmgateway/caddy-llm-gateway/providers/bedrock"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Bedrock provider.
type Module struct {
	mp.Config
	// Region is the AWS region; it may be left out when base_url names a
	// bedrock-runtime.{region} host.
	Region string `json:"region,omitempty"`
	// AccessKeyID, SecretAccessKey and SessionToken are static AWS
	// credentials; without them the standard AWS chain is used (or the
	// api_key, a Bedrock API key sent as a bearer token).
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	SessionToken    string `json:"session_token,omitempty"`
	// PingInterval is how long a translated stream may stay silent before
	// the gateway sends a ping. Default 10s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".bedrock",
		New: func() caddy.Module { return new(Module) },
	}
}

// UnmarshalCaddyfile reads the provider block:
//
//	provider <name> {
//		type              bedrock
//		region            <aws region>
//		access_key_id     <id>          # with secret_access_key; default: the standard AWS chain
//		secret_access_key <secret>
//		session_token     <token>
//		api_key           <bedrock api key>   # instead of AWS credentials
//		ping_interval     <duration>    # silence before a ping on translated streams; default 10s
//		<shared lines>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.UnmarshalBlock(d, "bedrock", m.line, m.Validate)
}

func (m *Module) line(d *caddyfile.Dispenser) (bool, error) {
	var err error
	switch d.Val() {
	case "region":
		m.Region, err = mp.OneArg(d)
	case "access_key_id":
		m.AccessKeyID, err = mp.OneArg(d)
	case "secret_access_key":
		m.SecretAccessKey, err = mp.OneArg(d)
	case "session_token":
		m.SessionToken, err = mp.OneArg(d)
	case "ping_interval":
		v, err := mp.OneArg(d)
		if err != nil {
			return true, err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur <= 0 {
			return true, d.Errf("ping_interval: invalid duration %q", v)
		}
		m.PingInterval = caddy.Duration(dur)
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
	for _, f := range []struct {
		name   string
		v      *string
		secret bool
	}{
		{"region", &m.Region, false}, {"access_key_id", &m.AccessKeyID, false},
		{"secret_access_key", &m.SecretAccessKey, true}, {"session_token", &m.SessionToken, true},
	} {
		resolve := p.Value
		if f.secret {
			resolve = p.Secret
		}
		if err := resolve(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the configuration.
func (m *Module) Validate() error {
	switch {
	case m.Region == "" && m.BaseURL == "":
		return fmt.Errorf("region is required")
	case len(m.APIKeys) > 1:
		return fmt.Errorf("a bedrock provider takes one api_key (a Bedrock API key)")
	case (m.AccessKeyID == "") != (m.SecretAccessKey == ""):
		return fmt.Errorf("access_key_id and secret_access_key go together")
	case m.PingInterval < 0:
		return fmt.Errorf("ping_interval: invalid duration %v", time.Duration(m.PingInterval))
	}
	return nil
}

// NewProvider builds the provider.
func (m *Module) NewProvider(ctx caddy.Context, env mp.Env) (providers.Provider, error) {
	cfg := family.Config{
		Name: m.Name, Region: m.Region, BaseURL: m.BaseURL, Models: m.ModelMapping(), Transport: env.Transport,
		AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey, SessionToken: m.SessionToken,
		PingInterval: time.Duration(m.PingInterval),
	}
	if len(m.APIKeys) == 1 {
		cfg.APIKey = m.APIKeys[0]
	}
	return family.New(ctx, cfg)
}

// Interface guards
var (
	_ mp.Family             = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.Validator       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)

	// Claude Code's Bedrock mode asks the gateway for inference profiles.
	_ providers.InferenceProfileLister = (*family.Provider)(nil)
)
