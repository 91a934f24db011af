package providers

import "github.com/llmgateway/caddy-llm-gateway/providers/llm"

// Eligible pairs a provider with the canonical model globs it serves
// (its "models" line); no globs means every model.
type Eligible struct {
	Provider Provider
	Models   []llm.Glob
}

// Router picks, for a surface and a canonical model, the ordered list of
// providers that may serve the call. It is built once per config load and
// is immutable.
type Router struct {
	entries []Eligible
}

// NewRouter keeps providers in the order given: that order is the fallback
// order.
func NewRouter(entries []Eligible) *Router {
	return &Router{entries: entries}
}

// Candidates appends to dst every provider that serves surface s and whose
// globs match the canonical model, in order, and returns the extended slice.
func (r *Router) Candidates(dst []Provider, s llm.Surface, canonical string) []Provider {
	for _, e := range r.entries {
		if !e.Provider.Serves(s) {
			continue
		}
		if len(e.Models) > 0 && !llm.MatchAny(e.Models, canonical) {
			continue
		}
		dst = append(dst, e.Provider)
	}
	return dst
}

// Routable reports whether any provider serves the canonical model on any of
// the given surfaces (used to list the models a key may use).
func (r *Router) Routable(canonical string, surfaces ...llm.Surface) bool {
	for _, e := range r.entries {
		if len(e.Models) > 0 && !llm.MatchAny(e.Models, canonical) {
			continue
		}
		for _, s := range surfaces {
			if e.Provider.Serves(s) {
				return true
			}
		}
	}
	return false
}
