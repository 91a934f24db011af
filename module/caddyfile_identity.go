package module

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/governance/sso"
)

// parseSSODirective reads the oidc and identity lines of the llm_gateway
// block (see docs/sso.md):
//
//	oidc <issuer-url> {
//		audience   <aud>            # required: the client id / API identifier in the tokens' aud
//		user_claim <claim>          # the developer's key name; default email (sub, preferred_username, upn…)
//		team_claim <claim>          # a string or array claim choosing the team, e.g. groups
//		team_map   <group> <team>   # repeatable; the first line whose group the token carries wins
//		template {                  # what a developer gets at their first call
//			team <name>             # developers no group places (else refused when team_claim is set)
//			customer <name>         # for developers without a team
//			max_tokens_cap <n>
//			<limits>                # models, budget, rate_limit, budget_warn, disabled, expires
//		}
//	}
//
//	identity <placeholder> [team <placeholder>] [{
//		team_map <group> <team>
//		template { … }
//	}]
func (g *Gateway) parseSSODirective(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "oidc":
		o, err := parseOIDC(d)
		if err != nil {
			return err
		}
		for _, other := range g.OIDC {
			if other.Issuer == o.Issuer {
				return d.Errf("oidc %s defined twice", o.Issuer)
			}
		}
		g.OIDC = append(g.OIDC, o)
	case "identity":
		if g.Identity != nil {
			return d.Err("identity already specified")
		}
		id, err := parseIdentity(d)
		if err != nil {
			return err
		}
		g.Identity = id
	}
	return nil
}

func parseOIDC(d *caddyfile.Dispenser) (*OIDCConfig, error) {
	issuer, err := oneArg(d)
	if err != nil {
		return nil, err
	}
	if err := sso.CheckIssuerURL(issuer); err != nil && !isPlaceholder(issuer) {
		return nil, d.Err(err.Error())
	}
	o := &OIDCConfig{Issuer: issuer}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "audience":
			if o.Audience, err = onceArg(d, o.Audience); err != nil {
				return nil, err
			}
		case "user_claim":
			if o.UserClaim, err = onceArg(d, o.UserClaim); err != nil {
				return nil, err
			}
		case "team_claim":
			if o.TeamClaim, err = onceArg(d, o.TeamClaim); err != nil {
				return nil, err
			}
		case "team_map":
			if o.TeamMap, err = parseTeamMap(d, o.TeamMap); err != nil {
				return nil, err
			}
		case "template":
			if o.Template, err = parseTemplate(d, o.Template); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unknown oidc subdirective %q (want audience, user_claim, team_claim, team_map, template)", d.Val())
		}
	}
	if o.Audience == "" {
		return nil, d.Errf("oidc %s: audience is required (the client id or API identifier the tokens for the gateway carry in aud)", issuer)
	}
	if len(o.TeamMap) > 0 && o.TeamClaim == "" {
		return nil, d.Errf("oidc %s: team_map needs team_claim (the claim holding the groups)", issuer)
	}
	return o, nil
}

func parseIdentity(d *caddyfile.Dispenser) (*IdentityConfig, error) {
	args := d.RemainingArgs()
	id := &IdentityConfig{}
	switch {
	case len(args) == 1:
	case len(args) == 3 && args[1] == "team":
		id.Team = args[2]
	default:
		return nil, d.Err("usage: identity <placeholder> [team <placeholder>], e.g. identity {http.auth.user.id}")
	}
	id.User = args[0]
	if !isPlaceholder(id.User) {
		return nil, d.Errf("identity: %q is not a placeholder (such as {http.auth.user.id})", id.User)
	}
	if id.Team != "" && !isPlaceholder(id.Team) {
		return nil, d.Errf("identity: team %q is not a placeholder (such as {http.request.header.Remote-Groups})", id.Team)
	}
	var err error
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "team_map":
			if id.TeamMap, err = parseTeamMap(d, id.TeamMap); err != nil {
				return nil, err
			}
		case "template":
			if id.Template, err = parseTemplate(d, id.Template); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unknown identity subdirective %q (want team_map, template)", d.Val())
		}
	}
	if len(id.TeamMap) > 0 && id.Team == "" {
		return nil, d.Err("identity: team_map needs a team placeholder (identity <placeholder> team <placeholder>)")
	}
	return id, nil
}

// parseTeamMap reads `team_map <group> <team>`.
func parseTeamMap(d *caddyfile.Dispenser, m []TeamMapConfig) ([]TeamMapConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return nil, d.Err("usage: team_map <group> <team>")
	}
	for _, e := range m {
		if e.Group == args[0] {
			return nil, d.Errf("team_map %q given twice", args[0])
		}
	}
	if err := governance.CheckName("team", args[1]); err != nil {
		return nil, d.Err(err.Error())
	}
	return append(m, TeamMapConfig{Group: args[0], Team: args[1]}), nil
}

// parseTemplate reads a template block: a key block's lines without a
// secret.
func parseTemplate(d *caddyfile.Dispenser, prev *TemplateConfig) (*TemplateConfig, error) {
	if prev != nil {
		return nil, d.Err("template already specified")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	t := &TemplateConfig{}
	var err error
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "team":
			if t.Team, err = onceArg(d, t.Team); err != nil {
				return nil, err
			}
		case "customer":
			if t.Customer, err = onceArg(d, t.Customer); err != nil {
				return nil, err
			}
		case "max_tokens_cap":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, d.Errf("max_tokens_cap: want a positive number of tokens, got %q", v)
			}
			t.MaxTokensCap = n
		default:
			ok, err := parseLimitsLine(d, &t.LimitsConfig)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, d.Errf("unknown template subdirective %q (want team, customer, max_tokens_cap, models, budget, rate_limit, budget_warn, disabled, expires)", d.Val())
			}
		}
	}
	return t, nil
}

// onceArg reads the single argument of a line that may appear once.
func onceArg(d *caddyfile.Dispenser, prev string) (string, error) {
	name := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	if prev != "" {
		return "", d.Errf("%s given twice", name)
	}
	return v, nil
}

// isPlaceholder reports whether s holds a Caddy placeholder ({…}).
func isPlaceholder(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '{' {
			for j := i + 1; j < len(s); j++ {
				if s[j] == '}' {
					return j > i+1
				}
			}
		}
	}
	return false
}
