package module

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/cache"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// CacheConfig turns on the exact-match response cache (`cache { … }`): a
// repeated request with the same body, from the same scope, is answered
// from memory without reaching a provider, charged nothing, and ledgered
// with the dollars it saved. Off when absent.
type CacheConfig struct {
	// TTL is how long an entry is served after it was recorded. A reload
	// that changes it applies to every entry at once. Default: 1h.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// MaxSize bounds the bytes of all entries (enforced by ristretto's
	// cost). A reload that grows it keeps the entries; one that shrinks it
	// empties the cache. Default: 128 MiB; at least 64 KiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// MaxEntry is the largest response kept, in bytes; larger ones are
	// relayed but not kept. Default: 1 MiB, at most MaxSize.
	MaxEntry int64 `json:"max_entry,omitempty"`
	// Scope is who shares entries: "key" (default: one tenant never
	// receives another's cached answer), "team", "customer" or "global".
	Scope string `json:"scope,omitempty"`
	// Surfaces are the ledger's surface names the cache applies to.
	// Default: every surface it supports (anthropic.messages,
	// anthropic.count_tokens, openai.chat_completions, openai.responses,
	// openai.embeddings, bedrock.invoke, bedrock.count_tokens,
	// vertex.raw_predict, vertex.stream_raw_predict, vertex.count_tokens).
	Surfaces []string `json:"surfaces,omitempty"`
}

// Cache defaults.
const (
	DefaultCacheTTL      = time.Hour
	DefaultCacheMaxSize  = 128 << 20
	DefaultCacheMaxEntry = 1 << 20
)

// cacheProvider is the provider label and ledger provider of a cache hit.
const cacheProvider = "cache"

// cacheHeader tells the client how the cache treated its request.
const cacheHeader = "X-Llm-Gateway-Cache"

// The values of cacheHeader and of llm_gateway_cache_requests_total's
// result label.
const (
	cacheHit    = "hit"
	cacheMiss   = "miss"
	cacheBypass = "bypass"
)

// cacheState is one config load's cache settings over the process's cache.
type cacheState struct {
	core     *cache.Cache
	ttl      time.Duration
	size     int64 // max_size
	maxEntry int64
	scope    cache.Scope
	surfaces [32]bool // by llm.Surface
	// keys, teams and customers hold the explicit `cache on|off` of
	// entities; the narrowest one set decides, else the cache applies.
	keys, teams, customers map[string]bool
}

// cacheSettings validates the configuration's cache block and the
// entities' `cache on|off` switches; nil when the cache is off.
func (g *Gateway) cacheSettings() (*cacheState, error) {
	cs := &cacheState{keys: map[string]bool{}, teams: map[string]bool{}, customers: map[string]bool{}}
	switches := func(kind string, set map[string]bool, name, v string) error {
		switch v {
		case "":
		case "on", "off":
			set[name] = v == "on"
		default:
			return fmt.Errorf("%s %q: cache must be on or off, got %q", kind, name, v)
		}
		return nil
	}
	for _, k := range g.Keys {
		if err := switches("key", cs.keys, k.Name, k.Cache); err != nil {
			return nil, err
		}
	}
	for _, t := range g.Teams {
		if err := switches("team", cs.teams, t.Name, t.Cache); err != nil {
			return nil, err
		}
	}
	for _, c := range g.Customers {
		if err := switches("customer", cs.customers, c.Name, c.Cache); err != nil {
			return nil, err
		}
	}
	c := g.Cache
	if c == nil {
		return nil, nil
	}
	cs.ttl, cs.maxEntry, cs.size = time.Duration(c.TTL), c.MaxEntry, c.MaxSize
	if cs.ttl == 0 {
		cs.ttl = DefaultCacheTTL
	}
	if cs.ttl < 0 {
		return nil, fmt.Errorf("cache: ttl must be positive")
	}
	if cs.size == 0 {
		cs.size = DefaultCacheMaxSize
	}
	if cs.size < cache.MinSize {
		return nil, fmt.Errorf("cache: max_size must be at least %d bytes (64KiB), got %d", cache.MinSize, cs.size)
	}
	if cs.maxEntry == 0 {
		cs.maxEntry = min(DefaultCacheMaxEntry, cs.size)
	}
	if cs.maxEntry < 0 || cs.maxEntry > cs.size {
		return nil, fmt.Errorf("cache: max_entry must be positive and at most max_size (%d), got %d", cs.size, cs.maxEntry)
	}
	var ok bool
	if c.Scope == "" {
		cs.scope = cache.ScopeKey
	} else if cs.scope, ok = cache.ParseScope(c.Scope); !ok {
		return nil, fmt.Errorf("cache: scope must be key, team, customer or global, got %q", c.Scope)
	}
	if len(c.Surfaces) == 0 {
		for _, s := range cache.Surfaces {
			cs.surfaces[s] = true
		}
	}
	for _, name := range c.Surfaces {
		s := surfaceByName(name)
		if s == llm.SurfaceUnknown {
			return nil, fmt.Errorf("cache: surfaces: %q is not a surface the cache keeps (one of %s)", name, cacheSurfaceNames())
		}
		cs.surfaces[s] = true
	}
	return cs, nil
}

func surfaceByName(name string) llm.Surface {
	for _, s := range cache.Surfaces {
		if s.String() == name {
			return s
		}
	}
	return llm.SurfaceUnknown
}

func cacheSurfaceNames() string {
	names := make([]string, len(cache.Surfaces))
	for i, s := range cache.Surfaces {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// applies reports whether the cache serves requests of key k on surface s.
func (cs *cacheState) applies(s llm.Surface, k *governance.Key) bool {
	if int(s) >= len(cs.surfaces) || !cs.surfaces[s] {
		return false
	}
	if on, ok := cs.keys[k.Name]; ok {
		return on
	}
	if k.Team != nil {
		if on, ok := cs.teams[k.Team.Name]; ok {
			return on
		}
	}
	if k.Customer != nil {
		if on, ok := cs.customers[k.Customer.Name]; ok {
			return on
		}
	}
	return true
}

// The process's one response cache, shared by every config load through
// cachePool so that a reload keeps its entries.
var cachePool = caddy.NewUsagePool()

const cachePoolKey = "llm_gateway.cache"

// currentCache is the cache the llm_gateway_cache_bytes gauge reads.
var currentCache atomic.Pointer[cache.Cache]

type pooledCache struct{ c *cache.Cache }

// Destruct implements caddy.Destructor: the last config using the cache
// is gone.
func (p pooledCache) Destruct() error {
	currentCache.CompareAndSwap(p.c, nil)
	p.c.Close()
	return nil
}

// acquireCache takes this config's reference on the process's cache,
// creating it on first use and applying a changed max_size.
func (g *Gateway) acquireCache(cs *cacheState) error {
	v, loaded, err := cachePool.LoadOrNew(cachePoolKey, func() (caddy.Destructor, error) {
		c, err := cache.New(cs.size, nil)
		if err != nil {
			return nil, err
		}
		return pooledCache{c}, nil
	})
	if err != nil {
		return fmt.Errorf("cache: %v", err)
	}
	cs.core = v.(pooledCache).c
	if loaded && cs.core.MaxSize() != cs.size {
		if cs.size < cs.core.MaxSize() {
			g.logger.Info("cache: max_size shrank; the response cache starts empty",
				zap.Int64("max_size", cs.size), zap.Int64("was", cs.core.MaxSize()))
		}
		if err := cs.core.Resize(cs.size); err != nil {
			_, _ = cachePool.Delete(cachePoolKey)
			return fmt.Errorf("cache: %v", err)
		}
	}
	currentCache.Store(cs.core)
	return nil
}

// releaseCache drops this config's reference on the cache.
func (g *Gateway) releaseCache() {
	if g.state != nil && g.state.cache != nil && g.state.cache.core != nil {
		_, _ = cachePool.Delete(cachePoolKey)
	}
}

// cacheLookup runs before admission: it answers a hit itself (true), or
// marks the request a miss to be recorded as it is relayed, or a bypass.
func (x *exchange) cacheLookup(call *llm.Call) bool {
	cs := x.st.cache
	if cs == nil {
		return false
	}
	cc := cacheControl(x.r.Header)
	if !cs.applies(x.surface, x.key) || cc != 0 {
		x.cacheOutcome(cacheBypass)
		if cc == ccNoCache && cs.applies(x.surface, x.key) {
			// no-cache: do not answer from the cache, but keep the
			// fresh answer for the next request.
			x.cacheReq = x.cacheRequest(call)
		}
		return false
	}
	req := x.cacheRequest(call)
	if req == nil {
		return false // no provider serves it: forward refuses
	}
	key := cache.Derive(req)
	if e, ok := cs.core.Get(key, cs.ttl); ok {
		x.serveHit(e)
		return true
	}
	x.cacheOutcome(cacheMiss)
	x.cacheReq = req
	x.cacheKey = key
	x.cacheKeyed = true
	return false
}

// cacheOutcome tells the client, the access log and the metric how the
// cache treated a request it did not answer.
func (x *exchange) cacheOutcome(result string) {
	x.w.Header().Set(cacheHeader, result)
	x.cacheResult = result
	cacheMetrics.requests.WithLabelValues(result).Inc()
	if elf := logFields(x.r); elf != nil {
		elf.Add(zap.String("llm.cache", result))
	}
}

// cacheRequest is what the request's cache key is derived from, nil when
// no provider serves it.
func (x *exchange) cacheRequest(call *llm.Call) *cache.Request {
	var buf [4]providers.Provider
	cands := x.st.router.Candidates(buf[:0], call.Surface, call.CanonicalModel)
	if len(cands) == 0 {
		return nil
	}
	k := x.key
	return &cache.Request{
		Surface: call.Surface,
		Model:   call.CanonicalModel,
		Family:  cands[0].Family(),
		Scope:   cache.ScopeIdentity(x.st.cache.scope, k.Name, k.Hash[:], k.TeamName(), k.CustomerName()),
		Query:   call.RawQuery,
		Header:  call.Header,
		Body:    call.Body,
	}
}

// Values of cacheControl.
const (
	ccNoCache = 1 + iota
	ccNoStore
)

// cacheControl reads the request's Cache-Control: ccNoStore (not answered
// from the cache, not stored), ccNoCache (not answered from it, but the
// fresh answer is stored), or 0.
func cacheControl(h http.Header) int {
	out := 0
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			if name, _, _ := strings.Cut(d, "="); strings.EqualFold(name, "no-store") {
				return ccNoStore
			} else if strings.EqualFold(name, "no-cache") {
				out = ccNoCache
			}
		}
	}
	return out
}

// serveHit answers a request from the cache: admitted against request rate
// limits only (it reserves nothing), replayed, and ledgered with zero cost
// and the cost of the original as saved.
func (x *exchange) serveHit(e *cache.Entry) {
	if !x.admitHit() {
		return
	}
	x.cacheResult = cacheHit
	x.cacheHit = true
	x.saved = governance.Money(e.CostNanoUSD)
	x.provider = cacheProvider
	if repl := replacer(x.r); repl != nil {
		repl.Set(phProvider, x.provider)
	}
	h := x.w.Header()
	h.Set(cacheHeader, cacheHit)
	if !e.Stream {
		h.Set(costHeader, governance.Money(0).String())
	}
	x.ttft = time.Since(x.start)
	_, err := cache.Replay(x.w, e)
	x.record(e.Status, llm.Usage{}, 0, true)
	cacheMetrics.requests.WithLabelValues(cacheHit).Inc()
	// A hit is all gateway time: no provider was waited on.
	x.st.metrics.overhead.WithLabelValues(cacheProvider, x.modelLabel()).Observe(time.Since(x.start).Seconds())
	if x.saved != 0 {
		var lv [16]string
		values := append(lv[:0], x.key.Name, x.key.TeamName(), x.key.CustomerName(), x.provider, x.modelLabel())
		values = x.st.labels.appendValues(values, x.r.Header)
		x.st.metrics.saved.add(x.st.metrics.usage.get(values), x.saved)
	}
	if elf := logFields(x.r); elf != nil {
		elf.Add(zap.String("llm.cache", cacheHit))
		elf.Add(zap.Int64("llm.cache_saved_nano_usd", int64(x.saved)))
		if err != nil {
			elf.Add(zap.Bool("llm.client_gone", true))
		}
	}
}

// admitHit admits a hit against the request rate limits of its path: a
// hit costs nothing and uses no tokens, but it is a request.
func (x *exchange) admitHit() bool {
	if !x.key.HasLimits() {
		return true
	}
	levels := governance.RequestLimitsOnly(x.key.Levels())
	if levels == nil {
		return true
	}
	a := &governance.Admission{Now: x.start, Location: x.st.location, Levels: levels, Lease: x.st.lease}
	ticket, rej, err := x.st.store.counters.Admit(x.r.Context(), a)
	if err != nil {
		x.st.metrics.storeErrors.WithLabelValues("admit").Inc()
		if x.st.failOpen {
			x.ticket = governance.UncheckedTicket(a)
			return true
		}
		x.refuse("store", llm.ErrOverloaded, "the gateway cannot check rate limits right now; retry shortly")
		return false
	}
	if rej != nil {
		x.refuseAdmission(rej)
		return false
	}
	x.ticket = ticket
	return true
}

// cacheWriter wraps the relay's writer to record a miss as it passes.
func (x *exchange) cacheWriter(w http.ResponseWriter) http.ResponseWriter {
	if x.cacheReq == nil {
		return w
	}
	x.recorder = cache.NewRecorder(w, x.st.cache.maxEntry)
	return x.recorder
}

// cacheStore keeps a relayed response that ended normally: delivered whole
// to the client, complete with its final usage, and accepted by
// cache.Check (no refusal, no truncation). It runs after settle, so the
// entry carries what the original cost.
func (x *exchange) cacheStore(res *providers.Result) {
	rec := x.recorder
	if rec == nil {
		return
	}
	x.recorder = nil
	defer rec.Release()
	if res.UpstreamErr != nil || res.ClientErr != nil || res.ErrorType != "" ||
		(x.surface.Billable() && (!res.Usage.Complete || res.Usage.OutputEstimated || res.Usage.InputEstimated)) {
		return
	}
	e, err := rec.Entry(x.surface)
	if err != nil {
		if !errors.Is(err, cache.ErrNotCacheable) {
			x.st.logger.Debug("cache: response not kept", zap.Error(err))
		}
		return
	}
	e.Usage, e.CostNanoUSD, e.Provider = res.Usage, int64(x.cost), x.provider
	req, key := x.cacheReq, x.cacheKey
	if !x.cacheKeyed || req.Family != x.family {
		// A fallback provider of another family answered (or the key was
		// not derived, no-cache): key the entry by who answered.
		req.Family = x.family
		key = cache.Derive(req)
	}
	x.st.cache.core.Put(key, e)
}

// cacheExchange is a request's progress through the cache, embedded in
// exchange.
type cacheExchange struct {
	// cacheResult is hit, miss, bypass, or "" when no cache is configured.
	cacheResult string
	// cacheReq is set when the response is to be recorded (a miss, or a
	// no-cache bypass); cacheKey is its key when cacheKeyed.
	cacheReq   *cache.Request
	cacheKey   cache.Key
	cacheKeyed bool
	recorder   *cache.Recorder
	// cacheHit and saved go to the ledger: a hit, and what it saved.
	cacheHit bool
	saved    governance.Money
}
