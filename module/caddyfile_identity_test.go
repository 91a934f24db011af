package module

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func TestUnmarshalCaddyfileSSO(t *testing.T) {
	in := `llm_gateway {
		oidc https://login.example.com/realms/eng {
			audience llm-gateway
			user_claim email
			team_claim groups
			team_map eng-payments payments
			team_map eng-platform platform
			template {
				team research
				budget 5 usd per day
				rate_limit 60 requests per minute
				models claude-sonnet-* claude-haiku-*
				max_tokens_cap 32000
			}
		}
		oidc http://127.0.0.1:9000 {
			audience api://gateway
		}
		identity {http.auth.user.id} team {http.request.header.Remote-Groups} {
			team_map admins platform
			template {
				customer acme
				budget 2 usd per day
			}
		}
	}`
	var g Gateway
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := SSOConfig{
		OIDC: []*OIDCConfig{{
			Issuer: "https://login.example.com/realms/eng", Audience: "llm-gateway", UserClaim: "email", TeamClaim: "groups",
			TeamMap: []TeamMapConfig{{"eng-payments", "payments"}, {"eng-platform", "platform"}},
			Template: &TemplateConfig{Team: "research", MaxTokensCap: 32000, LimitsConfig: LimitsConfig{
				Models:     []string{"claude-sonnet-*", "claude-haiku-*"},
				Budgets:    []BudgetConfig{{Amount: "5", Period: "day"}},
				RateLimits: []RateLimitConfig{{Limit: 60, Unit: "requests", Per: "minute"}},
			}},
		}, {Issuer: "http://127.0.0.1:9000", Audience: "api://gateway"}},
		Identity: &IdentityConfig{
			User: "{http.auth.user.id}", Team: "{http.request.header.Remote-Groups}",
			TeamMap:  []TeamMapConfig{{"admins", "platform"}},
			Template: &TemplateConfig{Customer: "acme", LimitsConfig: LimitsConfig{Budgets: []BudgetConfig{{Amount: "2", Period: "day"}}}},
		},
	}
	if !reflect.DeepEqual(g.SSOConfig, want) {
		got, _ := json.MarshalIndent(g.SSOConfig, "", " ")
		t.Fatalf("parsed\n%s", got)
	}
	// The JSON form is the gateway's own fields, and reads back the same.
	b, err := json.Marshal(&g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"oidc":[{"issuer":"https://login.example.com/realms/eng"`) || !strings.Contains(string(b), `"identity":{"user":"{http.auth.user.id}"`) {
		t.Fatalf("JSON: %s", b)
	}
	var back Gateway
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.SSOConfig, want) {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func TestUnmarshalCaddyfileSSOErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no issuer", "oidc {\n audience a\n}", "wrong argument count"},
		{"bad scheme", "oidc ftp://idp {\n audience a\n}", "want an https:// URL"},
		{"no audience", "oidc https://idp.example.com {\n user_claim sub\n}", "audience is required"},
		{"audience twice", "oidc https://idp.example.com {\n audience a\n audience b\n}", "audience given twice"},
		{"unknown line", "oidc https://idp.example.com {\n audience a\n client_secret x\n}", `unknown oidc subdirective "client_secret"`},
		{"team_map args", "oidc https://idp.example.com {\n audience a\n team_claim groups\n team_map g\n}", "usage: team_map"},
		{"team_map twice", "oidc https://idp.example.com {\n audience a\n team_claim groups\n team_map g t\n team_map g u\n}", `team_map "g" given twice`},
		{"team_map without claim", "oidc https://idp.example.com {\n audience a\n team_map g t\n}", "team_map needs team_claim"},
		{"template line", "oidc https://idp.example.com {\n audience a\n template {\n secret s\n }\n}", `unknown template subdirective "secret"`},
		{"template budget", "oidc https://idp.example.com {\n audience a\n template {\n budget 5 eur per day\n }\n}", "usage: budget"},
		{"template twice", "oidc https://idp.example.com {\n audience a\n template\n template\n}", "template already specified"},
		{"template cap", "oidc https://idp.example.com {\n audience a\n template {\n max_tokens_cap -1\n }\n}", "max_tokens_cap"},
		{"issuer twice", "oidc https://idp.example.com {\n audience a\n}\n oidc https://idp.example.com {\n audience b\n}", "defined twice"},
		{"identity not a placeholder", "identity alice", "not a placeholder"},
		{"identity team not a placeholder", "identity {http.auth.user.id} team platform", "not a placeholder"},
		{"identity args", "identity {http.auth.user.id} group {x}", "usage: identity"},
		{"identity twice", "identity {a}\n identity {b}", "identity already specified"},
		{"identity team_map without team", "identity {http.auth.user.id} {\n team_map a b\n}", "team_map needs a team placeholder"},
		{"identity unknown line", "identity {http.auth.user.id} {\n audience a\n}", `unknown identity subdirective "audience"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("llm_gateway {\n" + tc.in + "\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q does not name file and line", err)
			}
		})
	}
}

// TestProvisionSSOErrors checks what only the whole configuration can
// tell (the JSON path too): teams and customers the policy names exist.
func TestProvisionSSOErrors(t *testing.T) {
	reg, err := governance.NewRegistry([]governance.CustomerSpec{{Name: "acme"}}, []governance.TeamSpec{{Name: "platform"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	oidc := func(edit func(*OIDCConfig)) SSOConfig {
		o := &OIDCConfig{Issuer: "https://sso-errors.example.com", Audience: "gw", TeamClaim: "groups"}
		edit(o)
		return SSOConfig{OIDC: []*OIDCConfig{o}}
	}
	for _, tc := range []struct {
		name string
		cfg  SSOConfig
		want string
	}{
		{"unknown team in team_map", oidc(func(o *OIDCConfig) { o.TeamMap = []TeamMapConfig{{"g", "nope"}} }), `unknown team "nope"`},
		{"unknown template team", oidc(func(o *OIDCConfig) { o.Template = &TemplateConfig{Team: "nope"} }), `template team: unknown team "nope"`},
		{"unknown template customer", oidc(func(o *OIDCConfig) { o.Template = &TemplateConfig{Customer: "nope"} }), `unknown customer "nope"`},
		{"bad template budget", oidc(func(o *OIDCConfig) {
			o.Template = &TemplateConfig{LimitsConfig: LimitsConfig{Budgets: []BudgetConfig{{Amount: "-1", Period: "day"}}}}
		}), "budget"},
		{"no audience (JSON)", oidc(func(o *OIDCConfig) { o.Audience = "" }), "audience is required"},
		{"bad issuer (JSON)", oidc(func(o *OIDCConfig) { o.Issuer = "idp.example.com" }), "https://"},
		{"team_map without claim (JSON)", oidc(func(o *OIDCConfig) { o.TeamClaim, o.TeamMap = "", []TeamMapConfig{{"g", "platform"}} }), "team_map needs team_claim"},
		{"claim name with a space", oidc(func(o *OIDCConfig) { o.UserClaim = "e mail" }), "not a claim name"},
		{"two oidc blocks, one issuer", SSOConfig{OIDC: []*OIDCConfig{
			{Issuer: "https://dup.example.com", Audience: "a"}, {Issuer: "https://dup.example.com", Audience: "b"},
		}}, "configured twice"},
		{"identity constant", SSOConfig{Identity: &IdentityConfig{User: "alice"}}, "not a placeholder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{SSOConfig: tc.cfg}
			s, err := g.provisionSSO(reg, caddy.NewReplacer(), zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if s != nil {
				t.Fatal("a state came back with the error")
			}
		})
	}
	// A good configuration takes the issuer from the pool, and gives it back.
	g := &Gateway{SSOConfig: oidc(func(o *OIDCConfig) { o.TeamMap = []TeamMapConfig{{"g", "platform"}} })}
	s, err := g.provisionSSO(reg, caddy.NewReplacer(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := issuerPool.References("https://sso-errors.example.com"); n != 1 {
		t.Fatalf("%d references to the pooled issuer, want 1", n)
	}
	s.release()
	if n, _ := issuerPool.References("https://sso-errors.example.com"); n != 0 {
		t.Fatalf("%d references after release", n)
	}
}
