package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/governance/sso"
	"github.com/llmgateway/caddy-llm-gateway/internal/clock"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// SSOConfig identifies developers by the organisation's single sign-on.
// It is embedded in Gateway: its fields are the gateway's own JSON fields.
type SSOConfig struct {
	// OIDC are the OpenID Connect providers whose signed tokens (JWTs) the
	// gateway accepts as bearer tokens, beside virtual keys.
	OIDC []*OIDCConfig `json:"oidc,omitempty"`
	// Identity takes the developer from Caddy's own authentication
	// (basic_auth, forward_auth's copy_headers, an auth module).
	Identity *IdentityConfig `json:"identity,omitempty"`
}

// OIDCConfig trusts one OpenID Connect provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (its discovery document is
	// Issuer/.well-known/openid-configuration); https, or http with a
	// warning. Placeholders ({env.…}) are resolved at load.
	Issuer string `json:"issuer"`
	// Audience must be among a token's aud values: the client id or API
	// identifier registered for the gateway. Required.
	Audience string `json:"audience"`
	// UserClaim is the claim naming the developer, their key name.
	// Default "email" (lower-cased; refused when email_verified is false).
	UserClaim string `json:"user_claim,omitempty"`
	// TeamClaim is the claim (a string or an array of strings, such as
	// "groups") that chooses the team. Without it, developers get the
	// template's team.
	TeamClaim string `json:"team_claim,omitempty"`
	// TeamMap maps groups to teams; the first entry whose group the token
	// carries wins. Without it, the claim's values are team names and the
	// first that names a configured team wins.
	TeamMap []TeamMapConfig `json:"team_map,omitempty"`
	// Template is what a developer gets at their first call.
	Template *TemplateConfig `json:"template,omitempty"`
}

// TeamMapConfig maps a group of the identity provider to a team.
type TeamMapConfig struct {
	Group string `json:"group"`
	Team  string `json:"team"`
}

// TemplateConfig is the key a developer identified for the first time
// gets: its team (when no group chooses one), customer (for keys without
// a team) and limits.
type TemplateConfig struct {
	// Team is the team of developers no group places. With a team claim
	// and no team here, such developers are refused (403).
	Team string `json:"team,omitempty"`
	// Customer places developers without a team under a customer.
	Customer string `json:"customer,omitempty"`
	// MaxTokensCap refuses requests asking for more output tokens (400).
	MaxTokensCap int64 `json:"max_tokens_cap,omitempty"`
	LimitsConfig
}

// IdentityConfig takes the developer, and optionally the team, from
// placeholders Caddy's authentication set.
type IdentityConfig struct {
	// User is the placeholder naming the developer, e.g.
	// "{http.auth.user.id}" or "{http.request.header.Remote-User}" (a
	// header forward_auth copies: copy_headers replaces what a client
	// sent).
	User string `json:"user"`
	// Team is the placeholder naming the team or, with TeamMap, the
	// groups (comma-separated), e.g. "{http.request.header.Remote-Groups}".
	Team string `json:"team,omitempty"`
	// TeamMap maps groups to teams, as in OIDCConfig.
	TeamMap []TeamMapConfig `json:"team_map,omitempty"`
	// Template is what a developer gets at their first call.
	Template *TemplateConfig `json:"template,omitempty"`
}

// Provisioners' names: the keys' source in the admin API and audit.
const (
	sourceOIDC     = "oidc"
	sourceIdentity = "identity"
)

// ssoState is one config load's SSO: the verifiers of its issuers and the
// templates, and the identity placeholders.
type ssoState struct {
	verifiers *sso.Verifiers
	templates map[string]governance.KeyTemplate // by issuer URL
	identity  *identitySource
	issuers   []string // issuerPool keys held
	logger    *zap.Logger
	// warned is when an unreachable provider was last logged (unix
	// nanoseconds): one line per retry period, not one per request.
	warned atomic.Int64
}

// identitySource is the identity directive, provisioned.
type identitySource struct {
	user, team string
	mapping    sso.Mapping
	tmpl       governance.KeyTemplate
}

// issuerPool shares issuers (discovery and key set) across config
// reloads, so a reload fetches nothing and survives a provider outage.
var issuerPool = caddy.NewUsagePool()

// pooledIssuer is an issuer in issuerPool.
type pooledIssuer struct{ *sso.Issuer }

// Destruct implements caddy.Destructor: nothing to close.
func (pooledIssuer) Destruct() error { return nil }

// provisionSSO builds the configuration's verifiers and identity source;
// nil when it configures neither.
func (g *Gateway) provisionSSO(reg *governance.Registry, repl *caddy.Replacer, logger *zap.Logger) (*ssoState, error) {
	if len(g.OIDC) == 0 && g.Identity == nil {
		return nil, nil
	}
	s := &ssoState{templates: map[string]governance.KeyTemplate{}, logger: logger}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()
	var vs []*sso.Verifier
	for _, o := range g.OIDC {
		issuer := repl.ReplaceKnown(o.Issuer, "")
		if err := sso.CheckIssuerURL(issuer); err != nil {
			return nil, err
		}
		if _, dup := s.templates[issuer]; dup {
			return nil, fmt.Errorf("oidc %s configured twice", issuer)
		}
		mapping, tmpl, err := ssoPolicy("oidc "+issuer, reg, o.TeamMap, o.Template, sourceOIDC)
		if err != nil {
			return nil, err
		}
		if o.TeamClaim == "" && len(o.TeamMap) > 0 {
			return nil, fmt.Errorf("oidc %s: team_map needs team_claim (the claim holding the groups)", issuer)
		}
		for _, name := range []string{o.UserClaim, o.TeamClaim} {
			if name != "" && (!isPrintable(name) || len(name) > 256) {
				return nil, fmt.Errorf("oidc %s: %q is not a claim name", issuer, name)
			}
		}
		v, _, err := issuerPool.LoadOrNew(issuer, func() (caddy.Destructor, error) {
			is, err := sso.NewIssuer(issuer, sso.IssuerOptions{Now: clock.Now})
			return pooledIssuer{is}, err
		})
		if err != nil {
			return nil, err
		}
		s.issuers = append(s.issuers, issuer)
		is := v.(pooledIssuer).Issuer
		if is.Insecure() {
			logger.Warn("oidc issuer over plain http: tokens and keys can be read and forged on the way; use https outside tests and trusted networks",
				zap.String("issuer", issuer))
		}
		ver, err := sso.NewVerifier(sso.Config{
			Issuer:    is,
			Audience:  repl.ReplaceKnown(o.Audience, ""),
			UserClaim: o.UserClaim,
			TeamClaim: o.TeamClaim,
			Mapping:   mapping,
		})
		if err != nil {
			return nil, err
		}
		vs = append(vs, ver)
		s.templates[issuer] = tmpl
	}
	if len(vs) > 0 {
		var err error
		if s.verifiers, err = sso.NewVerifiers(clock.Now, 0, vs...); err != nil {
			return nil, err
		}
	}
	if id := g.Identity; id != nil {
		if !isPlaceholder(id.User) {
			return nil, fmt.Errorf("identity: %q is not a placeholder (such as {http.auth.user.id})", id.User)
		}
		if id.Team != "" && !isPlaceholder(id.Team) {
			return nil, fmt.Errorf("identity: team %q is not a placeholder (such as {http.request.header.Remote-Groups})", id.Team)
		}
		if id.Team == "" && len(id.TeamMap) > 0 {
			return nil, errors.New("identity: team_map needs a team placeholder")
		}
		mapping, tmpl, err := ssoPolicy("identity", reg, id.TeamMap, id.Template, sourceIdentity)
		if err != nil {
			return nil, err
		}
		mapping.RequireTeam = id.Team != ""
		s.identity = &identitySource{user: id.User, team: id.Team, mapping: mapping, tmpl: tmpl}
		if strings.Contains(id.User, "{http.request.header.") {
			logger.Info("identity from a request header: only an authentication step that sets it (forward_auth copy_headers) makes it trustworthy; a client can send any header",
				zap.String("user", id.User))
		}
	}
	ok = true
	return s, nil
}

// ssoPolicy checks a team map and template against the configuration's
// teams and builds the mapping and key template.
func ssoPolicy(what string, reg *governance.Registry, teamMap []TeamMapConfig, t *TemplateConfig, source string) (sso.Mapping, governance.KeyTemplate, error) {
	m := sso.Mapping{KnownTeam: func(name string) bool { return reg.Team(name) != nil }}
	tmpl := governance.KeyTemplate{Source: source}
	groups := map[string]bool{}
	for _, gt := range teamMap {
		switch {
		case gt.Group == "":
			return m, tmpl, fmt.Errorf("%s: team_map without a group", what)
		case groups[gt.Group]:
			return m, tmpl, fmt.Errorf("%s: team_map %q given twice", what, gt.Group)
		case reg.Team(gt.Team) == nil:
			return m, tmpl, fmt.Errorf("%s: team_map %s: unknown team %q (define it with a team block)", what, gt.Group, gt.Team)
		}
		groups[gt.Group] = true
		m.TeamMap = append(m.TeamMap, sso.GroupTeam{Group: gt.Group, Team: gt.Team})
	}
	if t == nil {
		return m, tmpl, nil
	}
	if t.Team != "" && reg.Team(t.Team) == nil {
		return m, tmpl, fmt.Errorf("%s: template team: unknown team %q (define it with a team block)", what, t.Team)
	}
	if t.Customer != "" && reg.Customer(t.Customer) == nil {
		return m, tmpl, fmt.Errorf("%s: template customer: unknown customer %q", what, t.Customer)
	}
	if t.MaxTokensCap < 0 {
		return m, tmpl, fmt.Errorf("%s: template max_tokens_cap must be positive", what)
	}
	l, err := t.LimitsConfig.limits()
	if err != nil {
		return m, tmpl, fmt.Errorf("%s: template: %v", what, err)
	}
	m.DefaultTeam = t.Team
	tmpl.Customer, tmpl.Limits, tmpl.MaxTokensCap = t.Customer, l, t.MaxTokensCap
	return m, tmpl, nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return s != ""
}

// release gives the pooled issuers back.
func (s *ssoState) release() {
	if s == nil {
		return
	}
	for _, k := range s.issuers {
		_, _ = issuerPool.Delete(k)
	}
	s.issuers = nil
}

// authMessage is the refusal of a request without a usable credential.
const authMessage = "invalid or missing virtual key (send it as Authorization: Bearer or x-api-key)"

// identify finds the key of a request no virtual key matched: the
// developer Caddy's authentication established (identity), else the one a
// bearer token from a trusted identity provider names (oidc), provisioned
// at their first call. Without one it writes the refusal, in the
// surface's error shape, and returns nil.
func (st *state) identify(w http.ResponseWriter, r *http.Request, dialect llm.Dialect, secret string) *governance.Key {
	s := st.sso
	if s == nil {
		st.reject(w, dialect, "auth", llm.ErrAuthentication, authMessage)
		return nil
	}
	if src := s.identity; src != nil {
		if repl := replacer(r); repl != nil {
			if user := repl.ReplaceAll(src.user, ""); user != "" {
				var groups []string
				if src.team != "" {
					groups = splitGroups(repl.ReplaceAll(src.team, ""))
				}
				id, err := src.mapping.Resolve(user, groups)
				if err != nil {
					st.refuseIdentity(w, dialect, err)
					return nil
				}
				return st.provisionDeveloper(w, r, dialect, id, src.tmpl)
			}
		}
	}
	if s.verifiers != nil && sso.LooksLikeJWT(secret) {
		id, err := s.verifiers.Verify(r.Context(), secret)
		if err != nil {
			st.refuseIdentity(w, dialect, err)
			return nil
		}
		return st.provisionDeveloper(w, r, dialect, id, s.templates[id.Issuer])
	}
	msg := authMessage
	if s.verifiers != nil {
		msg = "invalid or missing virtual key or SSO token (send it as Authorization: Bearer or x-api-key)"
	}
	st.reject(w, dialect, "auth", llm.ErrAuthentication, msg)
	return nil
}

// splitGroups reads a comma-separated list of groups (a header an
// authenticating proxy set: Remote-Groups: admins,dev).
func splitGroups(v string) []string {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// refuseIdentity answers a developer the gateway could not identify: 401
// for a bad token (Claude Code then runs its apiKeyHelper again), 403 for
// a valid one whose developer may not use the gateway, an overload (529,
// retried) when the identity provider is unreachable.
func (st *state) refuseIdentity(w http.ResponseWriter, dialect llm.Dialect, err error) {
	var e *sso.Error
	if !errors.As(err, &e) {
		e = &sso.Error{Kind: sso.Invalid, Msg: err.Error()}
	}
	switch e.Kind {
	case sso.Forbidden:
		st.reject(w, dialect, "identity", llm.ErrPermission, e.Msg)
	case sso.Unavailable:
		st.sso.warnUnreachable(e.Cause)
		st.reject(w, dialect, "idp_unavailable", llm.ErrOverloaded, e.Msg)
	default:
		st.reject(w, dialect, "auth", llm.ErrAuthentication, e.Msg)
	}
}

// warnUnreachable logs an unreachable provider at most once per retry
// period.
func (s *ssoState) warnUnreachable(cause error) {
	now := time.Now().UnixNano()
	last := s.warned.Load()
	if now-last < int64(sso.DefaultRetryAfter) || !s.warned.CompareAndSwap(last, now) {
		return
	}
	fields := []zap.Field{}
	if cause != nil {
		fields = append(fields, zap.String("error", cause.Error()))
	}
	s.logger.Warn("identity provider unreachable: SSO developers are refused (529/503, retried) until it answers", fields...)
}

// provisionDeveloper returns the key of an identified developer, created
// from the template at their first call.
func (st *state) provisionDeveloper(w http.ResponseWriter, r *http.Request, dialect llm.Dialect, id sso.Identity, tmpl governance.KeyTemplate) *governance.Key {
	// A developer met before on the same team, or a Caddyfile key of that
	// name (which wins as it is): no I/O, no allocation.
	if k := st.keys.Key(id.User); k != nil && (k.TeamName() == id.Team || st.registry.Key(id.User) != nil) {
		st.logIdentity(r, tmpl.Source)
		return k
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	key, err := st.keys.Provision(ctx, id.User, id.Team, tmpl)
	switch {
	case err == nil:
		st.logIdentity(r, tmpl.Source)
		return key
	case errors.Is(err, governance.ErrKeyRevoked):
		st.reject(w, dialect, "revoked", llm.ErrPermission, fmt.Sprintf("key %s was revoked by an administrator", id.User))
	case errors.Is(err, governance.ErrInvalidKey):
		st.logger.Error("cannot provision an SSO developer: fix the template or the teams", zap.String("key", id.User),
			zap.String("team", id.Team), zap.Error(err))
		st.reject(w, dialect, "identity", llm.ErrPermission, fmt.Sprintf("cannot provision key %s: %v", id.User, err))
	default:
		st.logger.Warn("provisioning an SSO developer", zap.String("key", id.User), zap.Error(err))
		st.reject(w, dialect, "unavailable", llm.ErrOverloaded, "cannot provision the developer's key right now; retry")
	}
	return nil
}

// logIdentity names, in the access log, what identified the developer.
func (st *state) logIdentity(r *http.Request, source string) {
	if elf := logFields(r); elf != nil {
		elf.Add(zap.String("llm.identity", source))
	}
}
