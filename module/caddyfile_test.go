package module

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

const fullGatewayBlock = `llm_gateway {
	store sqlite /var/lib/llm/usage.db
	timezone Europe/Paris
	max_request_body 8MB
	provider anthropic {
		type anthropic
		api_key {env.ANTHROPIC_API_KEY}
		api_key {env.ANTHROPIC_API_KEY_2} {file./run/secrets/k3}
		base_url https://api.anthropic.com
		models claude-* 
		models my-*
		transport http {
			dial_timeout 5s
			keepalive_idle_conns_per_host 512
		}
	}
	customer acme {
		models claude-*
	}
	team platform {
		customer acme
		models claude-sonnet-* claude-haiku-*
	}
	key alice {
		secret_sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
		team platform
		models claude-sonnet-*
	}
	key bob {
		secret {env.BOB_KEY}
		customer acme
	}
	price claude-sonnet-4-5 input 3 output 15 cache_write_5m 3.75 cache_write_1h 6 cache_read 0.30
	price my-local-* input 0.1 web_search 0.01
	price claude-haiku-5-5 cache_read 0.01 {
		fast input 0.2 output 1 cache_write_5m 0.25 cache_write_1h 0.4 cache_read 0.02
		above 100000 input 0.5 output 2.5 cache_write_5m 0.625 cache_write_1h 1 cache_read 0.05
	}
	prices_file /etc/caddy/prices.json
	metrics_label project header X-Project
	metrics_label repo header X-Repo max 20
	model_label_cap 50
	unpriced refuse
}`

// priceAmounts is a price line's model and amounts, comparable.
func priceAmounts(p PriceConfig) [7]string {
	return [7]string{p.Model, p.Input, p.Output, p.CacheWrite5m, p.CacheWrite1h, p.CacheRead, p.WebSearch}
}

func TestUnmarshalCaddyfileFull(t *testing.T) {
	var g Gateway
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(fullGatewayBlock)); err != nil {
		t.Fatal(err)
	}
	if g.Store == nil || g.Store.CountersRaw != nil || !sameJSON(g.Store.LedgerRaw, `{"type":"sqlite","path":"/var/lib/llm/usage.db"}`) {
		t.Errorf("store = %s %s", g.Store.CountersRaw, g.Store.LedgerRaw)
	}
	if g.Timezone != "Europe/Paris" || g.MaxRequestBody != 8_000_000 {
		t.Errorf("timezone %q max %d", g.Timezone, g.MaxRequestBody)
	}
	if len(g.ProvidersRaw) != 1 {
		t.Fatalf("providers = %d", len(g.ProvidersRaw))
	}
	var p struct {
		Name, Type, BaseURL string
		APIKeys, Models     []string
		Transport           map[string]any
	}
	decodeProvider(t, g.ProvidersRaw[0], &p)
	if p.Name != "anthropic" || p.Type != "anthropic" || p.BaseURL != "https://api.anthropic.com" ||
		strings.Join(p.APIKeys, ",") != "{env.ANTHROPIC_API_KEY},{env.ANTHROPIC_API_KEY_2},{file./run/secrets/k3}" ||
		strings.Join(p.Models, ",") != "claude-*,my-*" {
		t.Errorf("provider = %s", g.ProvidersRaw[0])
	}
	if p.Transport["protocol"] != "http" || p.Transport["dial_timeout"] == nil {
		t.Errorf("transport = %v", p.Transport)
	}
	if len(g.Customers) != 1 || g.Customers[0].Name != "acme" || g.Customers[0].Models[0] != "claude-*" {
		t.Errorf("customers = %+v", g.Customers)
	}
	if len(g.Teams) != 1 || g.Teams[0].Customer != "acme" || len(g.Teams[0].Models) != 2 {
		t.Errorf("teams = %+v", g.Teams[0])
	}
	if len(g.Keys) != 2 || g.Keys[0].Team != "platform" || g.Keys[0].SecretSHA256 == "" || g.Keys[1].Secret != "{env.BOB_KEY}" || g.Keys[1].Customer != "acme" {
		t.Errorf("keys = %+v %+v", g.Keys[0], g.Keys[1])
	}
	if g.PricesFile != "/etc/caddy/prices.json" || len(g.Prices) != 3 || g.Prices[2].CacheRead != "0.01" ||
		*g.Prices[2].Fast != (RatesConfig{Input: "0.2", Output: "1", CacheWrite5m: "0.25", CacheWrite1h: "0.4", CacheRead: "0.02"}) ||
		len(g.Prices[2].Tiers) != 1 || *g.Prices[2].Tiers[0] != (TierConfig{Above: 100000, RatesConfig: RatesConfig{Input: "0.5", Output: "2.5", CacheWrite5m: "0.625", CacheWrite1h: "1", CacheRead: "0.05"}}) {
		t.Errorf("price block, prices_file: %q %+v", g.PricesFile, g.Prices[2:])
	}
	p0, p1 := *g.Prices[0], *g.Prices[1]
	if len(g.Prices) != 3 || p0.Tiers != nil || p1.Tiers != nil || priceAmounts(p0) != (priceAmounts(PriceConfig{Model: "claude-sonnet-4-5", Input: "3", Output: "15", CacheWrite5m: "3.75", CacheWrite1h: "6", CacheRead: "0.30"})) ||
		priceAmounts(p1) != priceAmounts(PriceConfig{Model: "my-local-*", Input: "0.1", WebSearch: "0.01"}) {
		t.Errorf("prices = %+v %+v", g.Prices[0], g.Prices[1])
	}
	if len(g.MetricsLabels) != 2 || *g.MetricsLabels[0] != (MetricsLabelConfig{Name: "project", Header: "X-Project"}) || g.MetricsLabels[1].Max != 20 {
		t.Errorf("labels = %+v", g.MetricsLabels)
	}
	if g.ModelLabelCap != 50 || g.Unpriced != "refuse" {
		t.Errorf("model_label_cap %d unpriced %q", g.ModelLabelCap, g.Unpriced)
	}
}

func TestUnmarshalCaddyfileStores(t *testing.T) {
	for in, want := range map[string][2]string{
		"llm_gateway {\n store memory\n}":                                                 {"", `{"type":"memory"}`},
		"llm_gateway {\n store sqlite\n}":                                                 {"", `{"type":"sqlite"}`},
		"llm_gateway {\n store sqlite ./x.db\n}":                                          {"", `{"type":"sqlite","path":"./x.db"}`},
		"llm_gateway {\n store redis redis://r:6379/0\n}":                                 {`{"type":"redis","url":"redis://r:6379/0"}`, ""},
		"llm_gateway {\n store redis redis://r {\n ledger ./l.db\n }\n}":                  {`{"type":"redis","url":"redis://r"}`, `{"type":"sqlite","path":"./l.db"}`},
		"llm_gateway {\n store redis redis://r {\n ledger memory\n prefix p\n }\n}":       {`{"type":"redis","url":"redis://r","prefix":"p"}`, `{"type":"memory"}`},
		"llm_gateway {\n store redis redis://r {\n prefix p\n ledger sqlite /l.db\n }\n}": {`{"type":"redis","url":"redis://r","prefix":"p"}`, `{"type":"sqlite","path":"/l.db"}`},
	} {
		var g Gateway
		if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !sameJSON(g.Store.CountersRaw, want[0]) || !sameJSON(g.Store.LedgerRaw, want[1]) {
			t.Errorf("%q: store counters %s ledger %s", in, g.Store.CountersRaw, g.Store.LedgerRaw)
		}
	}
}

// sameJSON compares a JSON value with the one want spells ("" for none).
func sameJSON(got json.RawMessage, want string) bool {
	if want == "" {
		return len(got) == 0
	}
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return mustJSON(a) == mustJSON(b)
}

// decodeProvider decodes a provider's JSON into v, whose fields are named
// like the JSON keys in CamelCase (base_url: BaseURL).
func decodeProvider(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	camel := map[string]any{}
	for k, val := range m {
		parts := strings.Split(k, "_")
		for i, p := range parts {
			switch p {
			case "url", "id", "api":
				parts[i] = strings.ToUpper(p)
			default:
				parts[i] = strings.ToUpper(p[:1]) + p[1:]
			}
		}
		camel[strings.Join(parts, "")] = val
	}
	b, _ := json.Marshal(camel)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	const prov = "provider a {\n type anthropic\n api_key k\n}\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"directive args", "llm_gateway foo {\n}", "wrong argument count"},
		{"unknown subdirective", "llm_gateway {\n bogus 1\n}", `unknown llm_gateway subdirective "bogus"`},
		{"store no arg", "llm_gateway {\n store\n}", "wrong argument count"},
		{"store bad type", "llm_gateway {\n store mysql\n}", `unknown store type "mysql"`},
		{"store extra", "llm_gateway {\n store memory x\n}", "wrong argument count"},
		{"store twice", "llm_gateway {\n store memory\n store memory\n}", "store already specified"},
		{"timezone bad", "llm_gateway {\n timezone Mars/Olympus\n}", "timezone"},
		{"timezone missing", "llm_gateway {\n timezone\n}", "wrong argument count"},
		{"max body bad", "llm_gateway {\n max_request_body lots\n}", "max_request_body: invalid size"},
		{"provider no name", "llm_gateway {\n provider {\n type anthropic\n }\n}", "wrong argument count"},
		{"provider no type", "llm_gateway {\n provider a {\n api_key k\n }\n}", "type is required"},
		{"provider bad type", "llm_gateway {\n provider a {\n type gemini\n }\n}", `unknown provider type "gemini"`},
		{"provider no key", "llm_gateway {\n provider a {\n type anthropic\n }\n}", "at least one api_key"},
		{"provider api_key empty", "llm_gateway {\n provider a {\n type anthropic\n api_key\n }\n}", "wrong argument count"},
		{"provider unknown sub", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n zone x\n }\n}", `unknown provider subdirective "zone"`},
		{"provider field of other type", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n region x\n }\n}", `unknown provider subdirective "region" (type anthropic)`},
		{"provider type twice", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n type openai\n }\n}", "type already specified"},
		{"provider type late", "llm_gateway {\n provider a {\n api_key k\n transport http {\n dial_timeout 5s\n }\n type gemini\n }\n}", `unknown provider type "gemini" (supported: anthropic, azure, bedrock, openai, vertex)`},
		{"provider base_url args", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n base_url a b\n }\n}", "wrong argument count"},
		{"provider models empty", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n models\n }\n}", "wrong argument count"},
		{"provider twice", "llm_gateway {\n" + prov + prov + "}", `provider "a" defined twice`},
		{"transport unknown", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n transport carrier-pigeon\n }\n}", "getting module named"},
		{"transport twice", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n transport http\n transport http\n }\n}", "transport already specified"},
		{"key no secret", "llm_gateway {\n key a {\n team t\n }\n}", "secret or secret_sha256 is required"},
		{"key both secrets", "llm_gateway {\n key a {\n secret s\n secret_sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n }\n}", "not both"},
		{"key bad hash", "llm_gateway {\n key a {\n secret_sha256 abc\n }\n}", "64 hexadecimal"},
		{"key unknown sub", "llm_gateway {\n key a {\n secret s\n owner x\n }\n}", `unknown key subdirective "owner"`},
		{"key twice", "llm_gateway {\n key a {\n secret s\n }\n key a {\n secret t\n }\n}", `key "a" defined twice`},
		{"key team args", "llm_gateway {\n key a {\n secret s\n team\n }\n}", "wrong argument count"},
		{"team unknown sub", "llm_gateway {\n team t {\n owner x\n }\n}", `unknown team subdirective "owner"`},
		{"team twice", "llm_gateway {\n team t\n team t\n}", `team "t" defined twice`},
		{"customer unknown sub", "llm_gateway {\n customer c {\n team x\n }\n}", `unknown customer subdirective "team"`},
		{"customer no name", "llm_gateway {\n customer\n}", "wrong argument count"},
		{"price no model", "llm_gateway {\n price\n}", "wrong argument count"},
		{"price no fields", "llm_gateway {\n price m\n}", "at least one of"},
		{"price bad field", "llm_gateway {\n price m inptu 3\n}", `unknown price field "inptu"`},
		{"price missing amount", "llm_gateway {\n price m input\n}", "needs an amount"},
		{"price bad amount", "llm_gateway {\n price m input three\n}", "invalid amount"},
		{"price too precise", "llm_gateway {\n price m input 0.0000000001\n}", "more than nine decimals"},
		{"price twice", "llm_gateway {\n price m input 1 input 2\n}", "input given twice"},
		{"price fast partial", "llm_gateway {\n price m {\n fast input 1 output 2\n }\n}", "cache_write_5m is required"},
		{"price tier order", "llm_gateway {\n price m {\n above 10 input 1 output 1 cache_write_5m 1 cache_write_1h 1 cache_read 1\n above 5 input 1\n }\n}", "ascending"},
		{"price tier size", "llm_gateway {\n price m {\n above lots input 1\n }\n}", "positive number of prompt tokens"},
		{"price block line", "llm_gateway {\n price m {\n slow input 1\n }\n}", `unknown line "slow"`},
		{"prices_file twice", "llm_gateway {\n prices_file a\n prices_file b\n}", "prices_file given twice"},
		{"label args", "llm_gateway {\n metrics_label project\n}", "usage: metrics_label"},
		{"label not header", "llm_gateway {\n metrics_label project cookie X\n}", "want 'header'"},
		{"label bad name", "llm_gateway {\n metrics_label my-label header X\n}", "not a valid Prometheus label name"},
		{"label builtin", "llm_gateway {\n metrics_label model header X\n}", "built-in label"},
		{"label bad max", "llm_gateway {\n metrics_label p header X max 0\n}", "max must be a positive integer"},
		{"label max keyword", "llm_gateway {\n metrics_label p header X cap 5\n}", "want 'max'"},
		{"label twice", "llm_gateway {\n metrics_label p header X\n metrics_label p header Y\n}", `metrics_label "p" defined twice`},
		{"unpriced bad", "llm_gateway {\n unpriced maybe\n}", `unpriced: want allow or refuse, got "maybe"`},
		{"unpriced missing", "llm_gateway {\n unpriced\n}", "wrong argument count"},
		{"unpriced args", "llm_gateway {\n unpriced allow refuse\n}", "wrong argument count"},
		{"model_label_cap zero", "llm_gateway {\n model_label_cap 0\n}", `model_label_cap: want a positive number of model names, got "0"`},
		{"model_label_cap word", "llm_gateway {\n model_label_cap many\n}", "model_label_cap: want a positive number"},
		{"key name newline", "llm_gateway {\n key \"ali\nce\" {\n secret s\n }\n}", `key "ali\nce": the name must not contain control characters`},
		{"team name tab", "llm_gateway {\n team \"a\tb\"\n}", `team "a\tb": the name must not contain control characters`},
		{"customer name escape", "llm_gateway {\n customer \"a\x1bb\"\n}", `customer "a\x1bb": the name must not contain control characters`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			d := caddyfile.NewTestDispenser(tc.in)
			err := g.UnmarshalCaddyfile(d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q does not name file and line", err)
			}
		})
	}
}

// TestAdaptRoundTrip adapts a whole Caddyfile to JSON (as `caddy adapt`
// does), checks the handler lands in the route without an order line, and
// decodes the JSON back into the same config.
func TestAdaptRoundTrip(t *testing.T) {
	cf := ":8080 {\n" + fullGatewayBlock + "\n}\n"
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt([]byte(cf), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("warning: %v", w)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var found *Gateway
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, h := range r.Handle {
				var probe struct {
					Handler string `json:"handler"`
				}
				_ = json.Unmarshal(h, &probe)
				if probe.Handler == "llm_gateway" {
					found = new(Gateway)
					if err := json.Unmarshal(h, found); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if found == nil {
		t.Fatalf("llm_gateway handler not in adapted config:\n%s", out)
	}
	var direct Gateway
	if err := direct.UnmarshalCaddyfile(caddyfile.NewTestDispenser(fullGatewayBlock)); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(found)
	b, _ := json.Marshal(&direct)
	// The adapter compacts the transport JSON the same way; compare decoded.
	var av, bv any
	_ = json.Unmarshal(a, &av)
	_ = json.Unmarshal(b, &bv)
	if ja, jb := mustJSON(av), mustJSON(bv); ja != jb {
		t.Errorf("round trip differs:\nadapted: %s\ndirect:  %s", ja, jb)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestExamplesAdapt adapts every Caddyfile shipped in caddyfile-examples.
func TestExamplesAdapt(t *testing.T) {
	files, err := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), `"handler":"llm_gateway"`) {
				t.Fatalf("no llm_gateway handler in %s", out)
			}
			// An example that writes an access log keeps virtual keys out of
			// it: the headers that carry them, and the query parameters.
			if strings.Contains(string(body), "\tlog {") {
				var cfg struct {
					Logging struct {
						Logs map[string]struct {
							Encoder struct {
								Format string `json:"format"`
								Fields map[string]struct {
									Filter  string `json:"filter"`
									Actions []struct {
										Parameter string `json:"parameter"`
										Type      string `json:"type"`
									} `json:"actions"`
								} `json:"fields"`
							} `json:"encoder"`
						} `json:"logs"`
					} `json:"logging"`
				}
				if err := json.Unmarshal(out, &cfg); err != nil {
					t.Fatal(err)
				}
				found := false
				for _, l := range cfg.Logging.Logs {
					f := l.Encoder.Fields
					if l.Encoder.Format != "filter" {
						continue
					}
					found = true
					for _, h := range []string{"request>headers>X-Api-Key", "request>headers>Api-Key", "request>headers>X-Goog-Api-Key"} {
						if f[h].Filter != "delete" {
							t.Errorf("%s is not deleted from the access log", h)
						}
					}
					deleted := map[string]bool{}
					for _, a := range f["request>uri"].Actions {
						if a.Type == "delete" {
							deleted[a.Parameter] = true
						}
					}
					if f["request>uri"].Filter != "query" || !deleted["key"] || !deleted["api_key"] || !deleted["api-key"] {
						t.Errorf("request>uri filter %+v does not delete key, api_key and api-key", f["request>uri"])
					}
				}
				if !found {
					t.Errorf("the access log has no filter: %s", out)
				}
			}
		})
	}
}

func TestUnmarshalCaddyfileLimits(t *testing.T) {
	in := `llm_gateway {
	store redis {env.REDIS_URL} {
		ledger /var/lib/llm/ledger.db
		on_error open
		prefix team-a
	}
	budget_warn 80%
	reservation_lease 90s
	count_cache_reads
	customer acme {
		budget 5000 usd per month
		budget 100000 usd total
		budget_warn 90
	}
	team platform {
		customer acme
		budget 1000 usd per month
		rate_limit 600 requests per minute
		disabled
	}
	key alice {
		secret_sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
		team platform
		budget 50 usd per day
		budget 400 usd per month
		budget 5 usd per hour
		budget 300 usd per week
		rate_limit 200000 tokens per minute
		rate_limit 10 requests per second
		expires 2026-12-31T23:59:59Z
		max_tokens_cap 8192
	}
}`
	var g Gateway
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if !sameJSON(g.Store.CountersRaw, `{"type":"redis","url":"{env.REDIS_URL}","on_error":"open","prefix":"team-a"}`) ||
		!sameJSON(g.Store.LedgerRaw, `{"type":"sqlite","path":"/var/lib/llm/ledger.db"}`) {
		t.Errorf("store %s %s", g.Store.CountersRaw, g.Store.LedgerRaw)
	}
	if g.BudgetWarn != 80 || time.Duration(g.ReservationLease) != 90*time.Second || !g.CountCacheReads {
		t.Errorf("top level: warn %d lease %v cache reads %v", g.BudgetWarn, g.ReservationLease, g.CountCacheReads)
	}
	c := g.Customers[0]
	if len(c.Budgets) != 2 || c.Budgets[0] != (BudgetConfig{"5000", "month"}) || c.Budgets[1] != (BudgetConfig{"100000", "total"}) || c.BudgetWarn != 90 {
		t.Errorf("customer %+v", c)
	}
	tm := g.Teams[0]
	if !tm.Disabled || tm.RateLimits[0] != (RateLimitConfig{600, "requests", "minute"}) {
		t.Errorf("team %+v", tm)
	}
	k := g.Keys[0]
	if len(k.Budgets) != 4 || len(k.RateLimits) != 2 || k.RateLimits[0] != (RateLimitConfig{200000, "tokens", "minute"}) ||
		k.Expires != "2026-12-31T23:59:59Z" || k.MaxTokensCap != 8192 {
		t.Errorf("key %+v", k)
	}
	l, err := k.LimitsConfig.limits()
	if err != nil || len(l.Budgets) != 4 || l.Budgets[0].Limit != 50*governance.Dollar || l.Budgets[0].Period != governance.PeriodDay ||
		l.RateLimits[1].Window != time.Second || l.Expires.IsZero() {
		t.Errorf("limits %+v %v", l, err)
	}
}

func TestUnmarshalCaddyfileLimitErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"budget usage", "llm_gateway {\n key k {\n secret s\n budget 5 per day\n }\n}", "usage: budget"},
		{"budget currency", "llm_gateway {\n key k {\n secret s\n budget 5 eur per day\n }\n}", "usage: budget"},
		{"budget per total", "llm_gateway {\n key k {\n secret s\n budget 5 usd per total\n }\n}", "usage: budget"},
		{"budget amount", "llm_gateway {\n key k {\n secret s\n budget five usd per day\n }\n}", "invalid amount"},
		{"budget zero", "llm_gateway {\n key k {\n secret s\n budget 0 usd per day\n }\n}", "more than 0"},
		{"budget huge", "llm_gateway {\n key k {\n secret s\n budget 2000000 usd per day\n }\n}", "at most $1000000.00"},
		{"budget period", "llm_gateway {\n key k {\n secret s\n budget 5 usd per fortnight\n }\n}", "unknown budget period"},
		{"budget twice", "llm_gateway {\n key k {\n secret s\n budget 5 usd per day\n budget 6 usd per day\n }\n}", "a day budget is already set"},
		{"rate usage", "llm_gateway {\n team t {\n rate_limit 5 requests minute\n }\n}", "usage: rate_limit"},
		{"rate unit", "llm_gateway {\n team t {\n rate_limit 5 calls per minute\n }\n}", "usage: rate_limit"},
		{"rate count", "llm_gateway {\n team t {\n rate_limit -5 requests per minute\n }\n}", "positive count"},
		{"rate window", "llm_gateway {\n team t {\n rate_limit 5 requests per week\n }\n}", "unknown rate-limit window"},
		{"disabled arg", "llm_gateway {\n customer c {\n disabled yes\n }\n}", "wrong argument count"},
		{"expires format", "llm_gateway {\n key k {\n secret s\n expires tomorrow\n }\n}", "RFC 3339"},
		{"warn range", "llm_gateway {\n key k {\n secret s\n budget_warn 150\n }\n}", "between 1 and 100"},
		{"top warn", "llm_gateway {\n budget_warn x\n}", "between 1 and 100"},
		{"cap", "llm_gateway {\n key k {\n secret s\n max_tokens_cap lots\n }\n}", "positive number of tokens"},
		{"cap on team", "llm_gateway {\n team t {\n max_tokens_cap 5\n }\n}", `unknown team subdirective "max_tokens_cap"`},
		{"lease", "llm_gateway {\n reservation_lease forever\n}", "invalid duration"},
		{"cache reads arg", "llm_gateway {\n count_cache_reads yes\n}", "wrong argument count"},
		{"redis no url", "llm_gateway {\n store redis\n}", "needs a URL"},
		{"redis on_error", "llm_gateway {\n store redis redis://r {\n on_error maybe\n }\n}", "want open or closed"},
		{"redis unknown sub", "llm_gateway {\n store redis redis://r {\n pool 5\n }\n}", `unknown store redis subdirective "pool"`},
		{"sqlite block", "llm_gateway {\n store sqlite x.db {\n ledger y\n }\n}", "takes no block"},
		{"redis ledger twice", "llm_gateway {\n store redis redis://r {\n ledger a\n ledger b\n }\n}", "ledger already specified"},
		{"redis ledger empty", "llm_gateway {\n store redis redis://r {\n ledger\n }\n}", "wrong argument count"},
		{"redis ledger args", "llm_gateway {\n store redis redis://r {\n ledger sqlite a b\n }\n}", "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Testfile:") {
				t.Fatalf("err = %v, want %q with file and line", err, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileProvidersAndRoutes(t *testing.T) {
	in := `llm_gateway {
	provider bedrock {
		type bedrock
		region us-east-1
		access_key_id {env.AK}
		secret_access_key {env.SK}
		session_token {env.ST}
		model claude-sonnet-4-5* us.anthropic.claude-sonnet-4-5-20250929-v1:0
		model claude-haiku-* arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0
		ping_interval 5s
		price_multiplier 1.1
	}
	provider vertex {
		type vertex
		project p1
		region global
		credentials_file /etc/sa.json
	}
	provider foundry {
		type azure
		resource res1
		tenant_id t
		client_id c
		client_secret {env.CS}
		token_url http://127.0.0.1:1/token
	}
	provider openai {
		type openai
		base_url https://example.openai.azure.com/openai/v1
		api_key {env.OAI}
		auth_header api-key
		api_version 2024-10-21
		organization org1
		openai_project proj1
		model gpt-4o my-deployment
	}
	route claude-sonnet-* bedrock vertex
	route claude-* vertex
	alias sonnet claude-sonnet-4-5
	fail_after 5
	cooldown 1m
}`
	var g Gateway
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	type modelLine struct{ Match, ID string }
	var b struct {
		Type, Region, AccessKeyID, SessionToken, PriceMultiplier string
		ModelMap                                                 []modelLine
		PingInterval                                             time.Duration
	}
	decodeProvider(t, g.ProvidersRaw[0], &b)
	if b.Type != "bedrock" || b.Region != "us-east-1" || b.AccessKeyID != "{env.AK}" || b.SessionToken != "{env.ST}" || len(b.ModelMap) != 2 ||
		b.ModelMap[1].ID != "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0" ||
		b.PingInterval != 5*time.Second || b.PriceMultiplier != "1.1" {
		t.Errorf("bedrock %s", g.ProvidersRaw[0])
	}
	var v struct{ Type, Project, Region, CredentialsFile string }
	if decodeProvider(t, g.ProvidersRaw[1], &v); v.Type != "vertex" || v.Project != "p1" || v.Region != "global" || v.CredentialsFile != "/etc/sa.json" {
		t.Errorf("vertex %s", g.ProvidersRaw[1])
	}
	var a struct{ Type, Resource, ClientSecret, TokenURL string }
	if decodeProvider(t, g.ProvidersRaw[2], &a); a.Type != "azure" || a.Resource != "res1" || a.ClientSecret != "{env.CS}" || a.TokenURL == "" {
		t.Errorf("azure %s", g.ProvidersRaw[2])
	}
	var o struct {
		Type, AuthHeader, APIVersion, OpenaiProject string
		ModelMap                                    []modelLine
	}
	if decodeProvider(t, g.ProvidersRaw[3], &o); o.Type != "openai" || o.AuthHeader != "api-key" || o.APIVersion != "2024-10-21" || o.OpenaiProject != "proj1" ||
		len(o.ModelMap) != 1 || o.ModelMap[0] != (modelLine{"gpt-4o", "my-deployment"}) {
		t.Errorf("openai %s", g.ProvidersRaw[3])
	}
	if len(g.Routes) != 2 || g.Routes[0].Match != "claude-sonnet-*" || strings.Join(g.Routes[0].Providers, ",") != "bedrock,vertex" ||
		g.Aliases["sonnet"] != "claude-sonnet-4-5" || g.FailAfter != 5 || time.Duration(g.Cooldown) != time.Minute {
		t.Errorf("routing %+v %+v %d %v", g.Routes, g.Aliases, g.FailAfter, g.Cooldown)
	}
}

func TestUnmarshalCaddyfileProviderErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bedrock no region", "llm_gateway {\n provider b {\n type bedrock\n }\n}", "region is required"},
		{"vertex no project", "llm_gateway {\n provider v {\n type vertex\n region global\n }\n}", "project and region are required"},
		{"azure no resource", "llm_gateway {\n provider a {\n type azure\n api_key k\n }\n}", "resource or base_url is required"},
		{"azure no auth", "llm_gateway {\n provider a {\n type azure\n resource r\n }\n}", "api_key, or tenant_id"},
		{"vertex api_key", "llm_gateway {\n provider v {\n type vertex\n project p\n region r\n api_key k\n }\n}", "api_key does not apply to vertex providers"},
		{"openai region", "llm_gateway {\n provider o {\n type openai\n region r\n }\n}", `unknown provider subdirective "region" (type openai)`},
		{"anthropic model", "llm_gateway {\n provider a {\n type anthropic\n api_key k\n model a b\n }\n}", "model does not apply to anthropic providers"},
		{"bedrock two keys", "llm_gateway {\n provider b {\n type bedrock\n region r\n api_key a b\n }\n}", "one api_key"},
		{"bedrock half credentials", "llm_gateway {\n provider b {\n type bedrock\n region r\n access_key_id a\n }\n}", "access_key_id and secret_access_key go together"},
		{"model args", "llm_gateway {\n provider b {\n type bedrock\n region r\n model onlyone\n }\n}", "usage: model"},
		{"ping", "llm_gateway {\n provider b {\n type bedrock\n region r\n ping_interval soon\n }\n}", "ping_interval: invalid duration"},
		{"multiplier", "llm_gateway {\n provider b {\n type bedrock\n region r\n price_multiplier x\n }\n}", "price_multiplier"},
		{"auth header", "llm_gateway {\n provider o {\n type openai\n auth_header cookie\n }\n}", "auth_header"},
		{"route args", "llm_gateway {\n route claude-*\n}", "usage: route"},
		{"alias args", "llm_gateway {\n alias sonnet\n}", "usage: alias"},
		{"alias twice", "llm_gateway {\n alias s a\n alias s b\n}", `alias "s" defined twice`},
		{"fail_after", "llm_gateway {\n fail_after 0\n}", "fail_after"},
		{"cooldown", "llm_gateway {\n cooldown never\n}", "cooldown: invalid duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Testfile:") {
				t.Fatalf("err = %v, want %q with file and line", err, tc.want)
			}
		})
	}
}

// TestNameErrorsSameInJSON: a JSON config (the admin API, `caddy adapt`
// output edited by hand) gets the Caddyfile's message for an unsafe name.
func TestNameErrorsSameInJSON(t *testing.T) {
	for _, g := range []*Gateway{
		{Keys: []*KeyConfig{{Name: "ali\nce", Secret: "s"}}},
		{Teams: []*TeamConfig{{Name: "ali\nce"}}},
		{Customers: []*CustomerConfig{{Name: "ali\nce"}}},
	} {
		_, err := g.buildRegistry(caddy.NewReplacer())
		if err == nil || !strings.HasSuffix(err.Error(), `"ali\nce": the name must not contain control characters`) {
			t.Errorf("err = %v", err)
		}
	}
	g := &Gateway{Unpriced: "maybe"}
	if _, err := g.buildRegistry(caddy.NewReplacer()); err == nil || err.Error() != `unpriced: want allow or refuse, got "maybe"` {
		t.Errorf("unpriced: %v", err)
	}
	g = &Gateway{ModelLabelCap: -1}
	if _, err := g.buildRegistry(caddy.NewReplacer()); err == nil || err.Error() != "model_label_cap: want a positive number of model names, got -1" {
		t.Errorf("model_label_cap: %v", err)
	}
}
