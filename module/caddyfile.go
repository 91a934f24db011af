package module

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("llm_gateway", parseCaddyfile)
	// A terminal handler like reverse_proxy: no `order` line needed.
	httpcaddyfile.RegisterDirectiveOrder("llm_gateway", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gateway)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

// UnmarshalCaddyfile sets up the gateway from Caddyfile tokens. Syntax:
//
//	llm_gateway {
//		store sqlite [<path>]          # default; path defaults to <data dir>/llm_gateway/usage.db
//		store memory                   # tests and throwaway set-ups
//		store redis <url> {            # a fleet: budgets, reservations and rate limits in Redis
//			ledger   <path>            # this instance's SQLite ledger (default as for sqlite); or ledger <type> <args>
//			on_error closed|open       # Redis unreachable: refuse (529 overloaded, 503 off the Anthropic shape; default) or serve unchecked
//			prefix   <prefix>          # Redis key namespace, default llmgw
//		}
//		timezone <IANA zone>           # calendar periods and daily reports; default UTC
//		max_request_body <size>        # default 32MiB; larger bodies get 413
//		budget_warn <percent>          # default warning threshold for every budget: 1–100 (80 or 80%); default none
//		reservation_lease <duration>   # reservations of requests that stop making progress expire; default 10m
//		count_cache_reads              # token rate limits also count cache reads
//		unpriced allow|refuse          # models without a price; default: refuse on a path with a budget
//		model_label_cap <n>            # model names (beyond those the config names) the model label keeps; default 100
//
//		provider <name> {
//			type     anthropic|bedrock|vertex|azure|openai
//			models   <glob>…           # canonical models served; default: the family's (Claude families claude-*, openai the rest)
//			model    <glob> <id>       # repeatable: the provider's own id for matching models
//			base_url <url>             # the family's endpoint, as its official SDK spells it
//			price_multiplier <x>       # e.g. 1.1 for regional endpoints
//			transport http { … }       # Caddy's reverse_proxy http transport (pool, TLS, timeouts)
//
//			# the family's own lines (each family is a module of its own, see
//			# module/providers; another family's module adds its type):
//			# anthropic:  api_key <key> [<key>…] (repeatable, rotated; 401/403 leave the rotation, 429 tries the next)
//			# bedrock:    region <r>; access_key_id <id> + secret_access_key <s> [session_token <t>]
//			#             (default: the standard AWS chain) or api_key <bedrock api key>; ping_interval <d>
//			# vertex:     project <p>; region <r|global>; credentials_file <service-account.json> (default: ADC)
//			# azure:      resource <name> (or base_url); api_key <key>…, or tenant_id + client_id + client_secret [token_url]
//			# openai:     api_key <key>… (optional for local servers); auth_header authorization|api-key;
//			#             api_version <v>; organization <org>; openai_project <p>
//		}
//
//		route <model glob> <provider> [<provider>…]   # ordered; falls back before the first byte
//		alias <name> <model>                          # e.g. alias sonnet claude-sonnet-4-5
//		fail_after <n>                                # consecutive failures before a cool-down (default 3)
//		cooldown <duration>                           # how long a failing provider is skipped (default 30s)
//
//		customer <name> {
//			<limits>
//		}
//		team <name> {
//			customer <name>
//			<limits>
//		}
//		key <name> {
//			secret        <key>        # or:
//			secret_sha256 <hex>        # from `caddy llm-gateway new-key`
//			team          <name>
//			customer      <name>       # for keys without a team
//			max_tokens_cap <n>         # refuse requests asking for more output (400)
//			<limits>
//		}
//
//		prices_file <path>             # an operator's price table (JSON), over the built-in one
//		price <model|glob> [input <usd>] [output <usd>] [cache_write_5m <usd>] [cache_write_1h <usd>] [cache_read <usd>] [web_search <usd>] [{
//			fast  input <usd> output <usd> cache_write_5m <usd> cache_write_1h <usd> cache_read <usd>
//			above <prompt tokens> input <usd> output <usd> cache_write_5m <usd> cache_write_1h <usd> cache_read <usd>
//		}]
//		metrics_label <label> header <Header-Name> [max <n>]
//		cache [{                       # the response cache (off without this line)
//			ttl <d>; max_size <size>; max_entry <size>   # defaults 1h, 128MiB, 1MiB
//			scope key|team|customer|global               # who shares entries (default key)
//			surfaces <surface>…                          # ledger surface names (default all)
//		}]
//		notify webhook <url> [{      # repeatable: alerts as JSON with a Slack-compatible text
//			events budget_warn budget_exhausted session_cost rate_limited   # default: the first two
//			session_cost <usd>     # a Claude Code session's cost passing this
//			timeout <d>            # default 10s
//			retries <n>            # default 5, exponential backoff
//		}]
//		oidc <issuer-url> {            # developers identified by SSO tokens (docs/sso.md)
//			audience <aud>; user_claim <claim>; team_claim <claim>; team_map <group> <team>
//			template { team <name>; customer <name>; max_tokens_cap <n>; <limits> }
//		}
//		identity <placeholder> [team <placeholder>] [{ team_map <group> <team>; template { … } }]
//	}
//
// where <limits> are any of, in customer, team and key blocks:
//
//	models      <glob>…                                  # allow-list; lists intersect down the path
//	budget      <amount> usd per hour|day|week|month     # several periods allowed, one budget each
//	budget      <amount> usd total
//	rate_limit  <n> requests|tokens per second|minute|hour|day
//	budget_warn <percent>                                # 1–100 (80 or 80%): log + metric when spend crosses it
//	disabled
//	expires     <RFC 3339 time>
//	cache       on|off                                   # the response cache for this entity (narrowest wins)
//
// Prices are USD per million tokens (web_search: USD per search); omitted
// amounts inherit the built-in row for that model. In a price block, fast
// gives the fast-mode rates and each above line a prompt-size tier (the
// prompt counts input + cache writes + cache reads); both need all five
// rates.
func (g *Gateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	names := map[string]map[string]bool{"provider": {}, "customer": {}, "team": {}, "key": {}, "metrics_label": {}}
	unique := func(kind, name string) error {
		if names[kind][name] {
			return d.Errf("%s %q defined twice", kind, name)
		}
		names[kind][name] = true
		return nil
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "store":
			if err := g.parseStore(d); err != nil {
				return err
			}
		case "retention":
			if err := g.parseRetention(d); err != nil {
				return err
			}
		case "timezone":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := time.LoadLocation(d.Val()); err != nil {
				return d.Errf("timezone: %v", err)
			}
			g.Timezone = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "max_request_body":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(d.Val())
			if err != nil || n == 0 {
				return d.Errf("max_request_body: invalid size %q", d.Val())
			}
			g.MaxRequestBody = int64(n)
			if d.NextArg() {
				return d.ArgErr()
			}
		case "provider":
			name, raw, err := parseProvider(d)
			if err != nil {
				return err
			}
			if err := unique("provider", name); err != nil {
				return err
			}
			g.ProvidersRaw = append(g.ProvidersRaw, raw)
		case "customer":
			c, err := parseCustomer(d)
			if err != nil {
				return err
			}
			if err := unique("customer", c.Name); err != nil {
				return err
			}
			g.Customers = append(g.Customers, c)
		case "team":
			t, err := parseTeam(d)
			if err != nil {
				return err
			}
			if err := unique("team", t.Name); err != nil {
				return err
			}
			g.Teams = append(g.Teams, t)
		case "key":
			k, err := parseKey(d)
			if err != nil {
				return err
			}
			if err := unique("key", k.Name); err != nil {
				return err
			}
			g.Keys = append(g.Keys, k)
		case "prices_file":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if g.PricesFile != "" {
				return d.Err("prices_file given twice")
			}
			g.PricesFile = v
		case "price":
			p, err := parsePrice(d)
			if err != nil {
				return err
			}
			g.Prices = append(g.Prices, p)
		case "budget_warn":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if g.BudgetWarn, err = parsePercent(d, v); err != nil {
				return err
			}
		case "reservation_lease":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("reservation_lease: invalid duration %q", v)
			}
			g.ReservationLease = caddy.Duration(dur)
		case "count_cache_reads":
			if d.NextArg() {
				return d.ArgErr()
			}
			g.CountCacheReads = true
		case "unpriced":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if _, err := governance.ParseUnpricedPolicy(v); err != nil || v == "" {
				return d.Errf("unpriced: want allow or refuse, got %q", v)
			}
			g.Unpriced = v
		case "model_label_cap":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("model_label_cap: want a positive number of model names, got %q", v)
			}
			g.ModelLabelCap = n
		case "route":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Err("usage: route <model glob> <provider> [<provider>…]")
			}
			g.Routes = append(g.Routes, &RouteConfig{Match: args[0], Providers: args[1:]})
		case "alias":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("usage: alias <name> <model>")
			}
			if g.Aliases == nil {
				g.Aliases = map[string]string{}
			}
			if _, dup := g.Aliases[args[0]]; dup {
				return d.Errf("alias %q defined twice", args[0])
			}
			g.Aliases[args[0]] = args[1]
		case "fail_after":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("fail_after: want a positive number of failures, got %q", v)
			}
			g.FailAfter = n
		case "cooldown":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("cooldown: invalid duration %q", v)
			}
			g.Cooldown = caddy.Duration(dur)
		case "cache":
			if g.Cache != nil {
				return d.Err("cache is set twice")
			}
			c, err := parseCache(d) // caddyfile_cache.go
			if err != nil {
				return err
			}
			g.Cache = c
		case "metrics_label":
			l, err := parseMetricsLabel(d)
			if err != nil {
				return err
			}
			if err := unique("metrics_label", l.Name); err != nil {
				return err
			}
			g.MetricsLabels = append(g.MetricsLabels, l)
		case "notify":
			n, err := parseNotify(d) // notify_caddyfile.go
			if err != nil {
				return err
			}
			g.Notify = append(g.Notify, n)
		case "oidc", "identity":
			if err := g.parseSSODirective(d); err != nil { // caddyfile_identity.go
				return err
			}
		default:
			return d.Errf("unknown llm_gateway subdirective %q", d.Val())
		}
	}
	return nil
}

// parseStore reads the store line. Its type names a store module: a ledger
// (`store sqlite [<path>]`, `store memory`), whose counters are then in
// memory, or counters (`store redis <url> { … }`), whose ledger is the
// block's `ledger [<type>] <args>` line (a bare path is a sqlite file;
// default: the sqlite ledger). Each module reads its own line.
func (g *Gateway) parseStore(d *caddyfile.Dispenser) error {
	if g.Store != nil {
		return d.Err("store already specified")
	}
	seg := d.NextSegment()
	head := caddyfile.NewDispenser(seg)
	head.Next() // store
	if !head.NextArg() {
		return head.ArgErr()
	}
	typ := head.Val()
	s := &StoreConfig{}
	var err error
	switch {
	case hasModule(stores.LedgersNamespace, typ):
		s.LedgerRaw, err = unmarshalStoreModule(seg, stores.LedgersNamespace, typ)
	case hasModule(stores.CountersNamespace, typ):
		var counters, ledger caddyfile.Segment
		if counters, ledger, err = splitLedgerLine(seg); err != nil {
			return err
		}
		if s.CountersRaw, err = unmarshalStoreModule(counters, stores.CountersNamespace, typ); err != nil {
			return err
		}
		if ledger != nil {
			s.LedgerRaw, err = parseLedgerLine(ledger)
		}
	default:
		types := append(stores.Types(stores.LedgersNamespace), stores.Types(stores.CountersNamespace)...)
		slices.Sort(types)
		return head.Errf("unknown store type %q (want %s)", typ, strings.Join(slices.Compact(types), ", "))
	}
	if err != nil {
		return err
	}
	g.Store = s
	return nil
}

func hasModule(namespace, name string) bool {
	_, err := caddy.GetModule(namespace + "." + name)
	return err == nil
}

// splitLedgerLine takes the `ledger` line out of a counters store line's
// block.
func splitLedgerLine(seg caddyfile.Segment) (counters, ledger caddyfile.Segment, err error) {
	d := caddyfile.NewDispenser(seg)
	d.Next() // store
	counters = append(counters, d.Token())
	for d.NextArg() {
		counters = append(counters, d.Token())
	}
	header := len(counters)
	var body caddyfile.Segment
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		line := d.NextSegment()
		if line[0].Text != "ledger" {
			body = append(body, line...)
			continue
		}
		if ledger != nil {
			return nil, nil, d.Err("ledger already specified")
		}
		ledger = line
	}
	if len(body) > 0 {
		// The block's own braces, around the lines the counters read.
		counters = append(counters, seg[header])
		counters = append(counters, body...)
		counters = append(counters, seg[len(seg)-1])
	}
	return counters, ledger, nil
}

// parseLedgerLine reads `ledger <type> [<args>…]`, or `ledger <path>` for
// a sqlite file.
func parseLedgerLine(line caddyfile.Segment) (json.RawMessage, error) {
	d := caddyfile.NewDispenser(line)
	d.Next() // ledger
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	typ := d.Val()
	if !hasModule(stores.LedgersNamespace, typ) {
		typ = "sqlite"
		t := line[0]
		t.Text = typ
		line = append(caddyfile.Segment{line[0], t}, line[1:]...)
	}
	return unmarshalStoreModule(line, stores.LedgersNamespace, typ)
}

// unmarshalStoreModule has a store module read its line.
func unmarshalStoreModule(line caddyfile.Segment, namespace, typ string) (json.RawMessage, error) {
	d := caddyfile.NewDispenser(line)
	info, err := caddy.GetModule(namespace + "." + typ)
	if err != nil {
		return nil, d.Errf("getting module named '%s.%s': %v", namespace, typ, err)
	}
	unm, ok := info.New().(caddyfile.Unmarshaler)
	if !ok {
		return nil, d.Errf("module %s cannot be configured from a Caddyfile", info.ID)
	}
	if err := unm.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	var warnings []caddyconfig.Warning
	return caddyconfig.JSONModuleObject(unm, "type", typ, &warnings), nil
}

// oneName reads the single name argument of a block directive.
func oneName(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	name := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return name, nil
}

// entityName reads the name of a customer, team or key block and refuses
// what governance.CheckName refuses, with the same message as a JSON
// config gets.
func entityName(d *caddyfile.Dispenser, kind string) (string, error) {
	name, err := oneName(d)
	if err != nil {
		return "", err
	}
	if err := governance.CheckName(kind, name); err != nil {
		return "", d.Err(err.Error())
	}
	return name, nil
}

// oneArg reads exactly one argument of a subdirective.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// someArgs reads one or more arguments of a subdirective.
func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, nil
}

// parseProvider reads a `provider <name> { type <family> … }` block: it
// finds the type, and hands the whole block to that family's module (see
// module/providers.Config.UnmarshalBlock for the lines every family
// shares).
func parseProvider(d *caddyfile.Dispenser) (string, json.RawMessage, error) {
	seg := d.NextSegment() // d stays on the block's closing brace
	head := caddyfile.NewDispenser(seg)
	head.Next() // provider
	name, err := oneName(head)
	if err != nil {
		return "", nil, err
	}
	var typ string
	var fam mp.Family
	for nesting := head.Nesting(); head.NextBlock(nesting); {
		if head.Val() != "type" {
			head.NextSegment() // the line, and its block
			continue
		}
		if typ != "" {
			return "", nil, head.Errf("provider %s: type already specified", name)
		}
		if typ, err = oneArg(head); err != nil {
			return "", nil, err
		}
		if fam, err = mp.Lookup(typ); err != nil {
			return "", nil, head.Errf("provider %s: %v", name, err)
		}
	}
	if typ == "" {
		return "", nil, d.Errf("provider %s: type is required", name)
	}
	unm, ok := fam.(caddyfile.Unmarshaler)
	if !ok {
		return "", nil, d.Errf("provider %s: the %s family cannot be configured from a Caddyfile", name, typ)
	}
	if err := unm.UnmarshalCaddyfile(caddyfile.NewDispenser(seg)); err != nil {
		return "", nil, err
	}
	var warnings []caddyconfig.Warning
	return name, caddyconfig.JSONModuleObject(unm, "type", typ, &warnings), nil
}

func parseCustomer(d *caddyfile.Dispenser) (*CustomerConfig, error) {
	name, err := entityName(d, "customer")
	if err != nil {
		return nil, err
	}
	c := &CustomerConfig{Name: name}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		ok, err := parseLimitsLine(d, &c.LimitsConfig)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, d.Errf("unknown customer subdirective %q", d.Val())
		}
	}
	return c, nil
}

func parseTeam(d *caddyfile.Dispenser) (*TeamConfig, error) {
	name, err := entityName(d, "team")
	if err != nil {
		return nil, err
	}
	t := &TeamConfig{Name: name}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "customer":
			if t.Customer, err = oneArg(d); err != nil {
				return nil, err
			}
		default:
			ok, err := parseLimitsLine(d, &t.LimitsConfig)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, d.Errf("unknown team subdirective %q", d.Val())
			}
		}
	}
	return t, nil
}

func parseKey(d *caddyfile.Dispenser) (*KeyConfig, error) {
	name, err := entityName(d, "key")
	if err != nil {
		return nil, err
	}
	k := &KeyConfig{Name: name}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "secret":
			if k.Secret, err = oneArg(d); err != nil {
				return nil, err
			}
		case "secret_sha256":
			if k.SecretSHA256, err = oneArg(d); err != nil {
				return nil, err
			}
			if _, err := governance.ParseSecretHash(k.SecretSHA256); err != nil {
				return nil, d.Errf("key %s: %v", name, err)
			}
		case "team":
			if k.Team, err = oneArg(d); err != nil {
				return nil, err
			}
		case "customer":
			if k.Customer, err = oneArg(d); err != nil {
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
			k.MaxTokensCap = n
		default:
			ok, err := parseLimitsLine(d, &k.LimitsConfig)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, d.Errf("unknown key subdirective %q", d.Val())
			}
		}
	}
	switch {
	case k.Secret == "" && k.SecretSHA256 == "":
		return nil, d.Errf("key %s: secret or secret_sha256 is required", name)
	case k.Secret != "" && k.SecretSHA256 != "":
		return nil, d.Errf("key %s: set secret or secret_sha256, not both", name)
	}
	return k, nil
}

func parsePrice(d *caddyfile.Dispenser) (*PriceConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	p := &PriceConfig{Model: d.Val()}
	fields := map[string]*string{
		"input": &p.Input, "output": &p.Output, "cache_write_5m": &p.CacheWrite5m,
		"cache_write_1h": &p.CacheWrite1h, "cache_read": &p.CacheRead, "web_search": &p.WebSearch,
	}
	n := 0
	for d.NextArg() {
		name := d.Val()
		dst, ok := fields[name]
		if !ok {
			return nil, d.Errf("price %s: unknown price field %q (want input, output, cache_write_5m, cache_write_1h, cache_read, web_search)", p.Model, name)
		}
		if *dst != "" {
			return nil, d.Errf("price %s: %s given twice", p.Model, name)
		}
		if !d.NextArg() {
			return nil, d.Errf("price %s: %s needs an amount in USD", p.Model, name)
		}
		if _, err := governance.ParseMoney(d.Val()); err != nil {
			return nil, d.Errf("price %s %s: %v", p.Model, name, err)
		}
		*dst = d.Val()
		n++
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "fast":
			if p.Fast != nil {
				return nil, d.Errf("price %s: fast given twice", p.Model)
			}
			r, err := parseRates(d, p.Model+" fast")
			if err != nil {
				return nil, err
			}
			p.Fast = r
		case "above":
			if !d.NextArg() {
				return nil, d.Errf("price %s: above needs a prompt size in tokens", p.Model)
			}
			above, err := strconv.ParseInt(d.Val(), 10, 64)
			if err != nil || above <= 0 {
				return nil, d.Errf("price %s: above %q: want a positive number of prompt tokens", p.Model, d.Val())
			}
			if k := len(p.Tiers); k > 0 && above <= p.Tiers[k-1].Above {
				return nil, d.Errf("price %s: above %d: tiers go in ascending order", p.Model, above)
			}
			r, err := parseRates(d, p.Model+" above "+strconv.FormatInt(above, 10))
			if err != nil {
				return nil, err
			}
			p.Tiers = append(p.Tiers, &TierConfig{Above: above, RatesConfig: *r})
		default:
			return nil, d.Errf("price %s: unknown line %q in the price block (want fast or above)", p.Model, d.Val())
		}
		n++
	}
	if n == 0 {
		return nil, d.Errf("price %s: at least one of input, output, cache_write_5m, cache_write_1h, cache_read, web_search is required", p.Model)
	}
	return p, nil
}

// parseRates reads the five "<kind> <usd>" pairs of a fast or above line;
// all five are required.
func parseRates(d *caddyfile.Dispenser, what string) (*RatesConfig, error) {
	r := &RatesConfig{}
	fields := map[string]*string{
		"input": &r.Input, "output": &r.Output, "cache_write_5m": &r.CacheWrite5m,
		"cache_write_1h": &r.CacheWrite1h, "cache_read": &r.CacheRead,
	}
	for d.NextArg() {
		name := d.Val()
		dst, ok := fields[name]
		if !ok {
			return nil, d.Errf("price %s: unknown rate %q (want input, output, cache_write_5m, cache_write_1h, cache_read)", what, name)
		}
		if *dst != "" {
			return nil, d.Errf("price %s: %s given twice", what, name)
		}
		if !d.NextArg() {
			return nil, d.Errf("price %s: %s needs an amount in USD", what, name)
		}
		if _, err := governance.ParseMoney(d.Val()); err != nil {
			return nil, d.Errf("price %s %s: %v", what, name, err)
		}
		*dst = d.Val()
	}
	if _, err := r.rates(what); err != nil {
		return nil, d.Errf("price %v", err)
	}
	return r, nil
}

func parseMetricsLabel(d *caddyfile.Dispenser) (*MetricsLabelConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 3 && len(args) != 5 {
		return nil, d.Err("usage: metrics_label <label> header <Header-Name> [max <n>]")
	}
	l := &MetricsLabelConfig{Name: args[0]}
	if !validLabelName(l.Name) {
		return nil, d.Errf("metrics_label: %q is not a valid Prometheus label name", l.Name)
	}
	for _, b := range baseLabels {
		if l.Name == b || l.Name == "type" {
			return nil, d.Errf("metrics_label: %q is a built-in label", l.Name)
		}
	}
	if args[1] != "header" {
		return nil, d.Errf("metrics_label %s: want 'header', got %q", l.Name, args[1])
	}
	l.Header = args[2]
	if len(args) == 5 {
		if args[3] != "max" {
			return nil, d.Errf("metrics_label %s: want 'max', got %q", l.Name, args[3])
		}
		n, err := strconv.Atoi(args[4])
		if err != nil || n <= 0 {
			return nil, d.Errf("metrics_label %s: max must be a positive integer", l.Name)
		}
		l.Max = n
	}
	return l, nil
}

// parseLimitsLine parses one of the lines customer, team and key blocks
// share; false when the line is not one of them.
func parseLimitsLine(d *caddyfile.Dispenser, l *LimitsConfig) (bool, error) {
	switch d.Val() {
	case "models":
		args, err := someArgs(d)
		if err != nil {
			return true, err
		}
		l.Models = append(l.Models, args...)
	case "budget":
		// budget <amount> usd per <period> | budget <amount> usd total
		args := d.RemainingArgs()
		usage := d.Err("usage: budget <amount> usd per hour|day|week|month, or budget <amount> usd total")
		var b BudgetConfig
		switch {
		case len(args) == 4 && args[1] == "usd" && args[2] == "per":
			b = BudgetConfig{Amount: args[0], Period: args[3]}
			if args[3] == "total" {
				return true, usage
			}
		case len(args) == 3 && args[1] == "usd" && args[2] == "total":
			b = BudgetConfig{Amount: args[0], Period: "total"}
		default:
			return true, usage
		}
		m, err := governance.ParseMoney(b.Amount)
		if err != nil {
			return true, d.Errf("budget: %v", err)
		}
		if m <= 0 || m > governance.MaxBudget {
			return true, d.Errf("budget: amount must be more than 0 and at most %s", governance.FormatUSD(governance.MaxBudget))
		}
		if _, err := governance.ParsePeriod(b.Period); err != nil {
			return true, d.Errf("budget: %v", err)
		}
		for _, other := range l.Budgets {
			if other.Period == b.Period {
				return true, d.Errf("budget: a %s budget is already set", b.Period)
			}
		}
		l.Budgets = append(l.Budgets, b)
	case "rate_limit":
		// rate_limit <n> requests|tokens per second|minute|hour|day
		args := d.RemainingArgs()
		if len(args) != 4 || args[2] != "per" || (args[1] != "requests" && args[1] != "tokens") {
			return true, d.Err("usage: rate_limit <n> requests|tokens per second|minute|hour|day")
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n <= 0 {
			return true, d.Errf("rate_limit: want a positive count, got %q", args[0])
		}
		if _, err := governance.ParseWindow(args[3]); err != nil {
			return true, d.Errf("rate_limit: %v", err)
		}
		l.RateLimits = append(l.RateLimits, RateLimitConfig{Limit: n, Unit: args[1], Per: args[3]})
	case "disabled":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		l.Disabled = true
	case "expires":
		v, err := oneArg(d)
		if err != nil {
			return true, err
		}
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return true, d.Errf("expires: want an RFC 3339 time such as 2026-12-31T23:59:59Z, got %q", v)
		}
		l.Expires = v
	case "budget_warn":
		v, err := oneArg(d)
		if err != nil {
			return true, err
		}
		if l.BudgetWarn, err = parsePercent(d, v); err != nil {
			return true, err
		}
	case "cache":
		v, err := parseCacheSwitch(d) // caddyfile_cache.go
		if err != nil {
			return true, err
		}
		l.Cache = v
	default:
		return false, nil
	}
	return true, nil
}

// parsePercent reads "80" or "80%" as a percentage between 1 and 100.
func parsePercent(d *caddyfile.Dispenser, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
	if err != nil || n < 1 || n > 100 {
		return 0, d.Errf("budget_warn: want a percentage between 1 and 100, got %q", v)
	}
	return n, nil
}

func validLabelName(s string) bool {
	if s == "" || len(s) >= 2 && s[0] == '_' && s[1] == '_' {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Gateway)(nil)
