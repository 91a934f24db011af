package providers

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Eligible pairs a provider with the canonical model globs it serves (its
// "models" line); no globs means its own family's models (FamilyServes).
type Eligible struct {
	Provider Provider
	Models   []llm.Glob
}

// Route sends models matching Glob to the named providers, in order (the
// fallback order): a "route <glob> <provider> [<provider>…]" line.
type Route struct {
	Glob      llm.Glob
	Providers []string
}

// RouterConfig is the routing part of a configuration.
type RouterConfig struct {
	// Providers in declaration order: the fallback order for models no
	// route names.
	Providers []Eligible
	// Routes are tried in order; the first whose glob matches decides.
	Routes []Route
	// Aliases map a model name clients send ("sonnet") to a model id.
	Aliases map[string]string
	// FailureThreshold consecutive failures (connection errors or
	// retryable statuses) put a provider in cool-down; default 3.
	FailureThreshold int
	// Cooldown is how long a failing provider is skipped; default 30s.
	Cooldown time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Default passive-health settings.
const (
	DefaultFailureThreshold = 3
	DefaultCooldown         = 30 * time.Second
)

// Router picks, for a surface and a canonical model, the ordered providers
// that may serve a call, and keeps passive health: a provider that keeps
// failing is skipped for a cool-down, then tried again. Built once per
// config load; safe for concurrent use.
type Router struct {
	entries   []*routed
	byName    map[string]*routed
	routes    []route
	aliases   map[string]string
	threshold int64
	cooldown  time.Duration
	now       func() time.Time
}

type route struct {
	glob    llm.Glob
	entries []*routed
}

// routed is a provider with its eligibility and health.
type routed struct {
	Eligible
	fails atomic.Int64
	// until is the end of the cool-down in unix nanoseconds; 0 when healthy.
	until atomic.Int64
}

// NewRouter builds a router; route lines naming unknown providers are
// reported by the caller's validation (they are skipped here).
func NewRouter(cfg RouterConfig) *Router {
	r := &Router{byName: map[string]*routed{}, aliases: cfg.Aliases, now: cfg.Now,
		threshold: int64(cfg.FailureThreshold), cooldown: cfg.Cooldown}
	if r.threshold <= 0 {
		r.threshold = DefaultFailureThreshold
	}
	if r.cooldown <= 0 {
		r.cooldown = DefaultCooldown
	}
	if r.now == nil {
		r.now = time.Now
	}
	for _, e := range cfg.Providers {
		re := &routed{Eligible: e}
		r.entries = append(r.entries, re)
		r.byName[e.Provider.Name()] = re
	}
	for _, rt := range cfg.Routes {
		var es []*routed
		for _, name := range rt.Providers {
			if e := r.byName[name]; e != nil {
				es = append(es, e)
			}
		}
		r.routes = append(r.routes, route{glob: rt.Glob, entries: es})
	}
	return r
}

// Alias resolves a model name through the aliases ("sonnet" →
// "claude-sonnet-4-5"); ok is false when it is not an alias.
func (r *Router) Alias(model string) (string, bool) {
	target, ok := r.aliases[model]
	return target, ok
}

// candidatesFor is the ordered provider list for a canonical model.
func (r *Router) candidatesFor(canonical string) []*routed {
	for i := range r.routes {
		if r.routes[i].glob.Match(canonical) {
			return r.routes[i].entries
		}
	}
	return r.entries
}

// FamilyServes reports whether a provider of a family, configured without a
// "models" line, serves a canonical model on a surface. The Claude families
// (anthropic, bedrock, vertex, azure) serve Claude models ("claude-*"), the
// openai family every other model; on a cloud's own API shape (Bedrock- or
// Vertex-shaped requests, which only that family serves) the client names
// the cloud's own ids, so any model goes. Families it does not know serve
// every model.
func FamilyServes(family string, s llm.Surface, canonical string) bool {
	if d := s.Dialect(); d == llm.DialectBedrock || d == llm.DialectVertex {
		return true
	}
	claude := strings.HasPrefix(canonical, "claude-")
	switch family {
	case "anthropic", "bedrock", "vertex", "azure":
		return claude
	case "openai":
		return !claude
	}
	return true
}

// serves reports whether the entry's models line (or, without one, its
// family) covers the canonical model on surface s.
func (e *routed) serves(s llm.Surface, canonical string) bool {
	if len(e.Models) > 0 {
		return llm.MatchAny(e.Models, canonical)
	}
	return FamilyServes(e.Provider.Family(), s, canonical)
}

// Candidates appends to dst the providers that may serve surface s for the
// canonical model, in route order: each must serve the surface and match
// its models globs (without any, serve its family's models: FamilyServes).
// Providers in cool-down go last (tried only if every healthy one fails), so
// a cool-down never turns into a refusal.
func (r *Router) Candidates(dst []Provider, s llm.Surface, canonical string) []Provider {
	now := r.now().UnixNano()
	var cooling []Provider
	for _, e := range r.candidatesFor(canonical) {
		if !e.Provider.Serves(s) || !e.serves(s, canonical) {
			continue
		}
		if until := e.until.Load(); until != 0 && now < until {
			cooling = append(cooling, e.Provider)
			continue
		}
		dst = append(dst, e.Provider)
	}
	return append(dst, cooling...)
}

// Routable reports whether any provider would serve the canonical model on
// any of the given surfaces (used to list the models a key may use), by the
// same rules as Candidates.
func (r *Router) Routable(canonical string, surfaces ...llm.Surface) bool {
	for _, e := range r.candidatesFor(canonical) {
		for _, s := range surfaces {
			if e.Provider.Serves(s) && e.serves(s, canonical) {
				return true
			}
		}
	}
	return false
}

// Providers lists every configured provider in declaration order.
func (r *Router) Providers() []Provider {
	out := make([]Provider, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.Provider
	}
	return out
}

// Report records the outcome of one attempt on a provider: ok when it
// answered (any status but a retryable one), false on connection errors,
// timeouts and retryable statuses. It returns true when this failure put
// the provider into cool-down.
func (r *Router) Report(p Provider, ok bool) (cooledDown bool) {
	e := r.byName[p.Name()]
	if e == nil {
		return false
	}
	if ok {
		e.fails.Store(0)
		e.until.Store(0)
		return false
	}
	now := r.now().UnixNano()
	// A provider whose cool-down ended is on probation: one more failure
	// sends it straight back.
	if until := e.until.Load(); until != 0 && now >= until {
		e.until.Store(now + int64(r.cooldown))
		return true
	}
	if e.fails.Add(1) >= r.threshold {
		e.fails.Store(0)
		e.until.Store(now + int64(r.cooldown))
		return true
	}
	return false
}

// CoolingDown reports whether a provider is currently skipped.
func (r *Router) CoolingDown(name string) bool {
	e := r.byName[name]
	if e == nil {
		return false
	}
	until := e.until.Load()
	return until != 0 && r.now().UnixNano() < until
}
