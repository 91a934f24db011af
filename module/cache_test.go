package module

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/cache"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func init() { ensureCacheMetrics() }

// countingUpstream answers with a fixed body and counts the calls.
type countingUpstream struct {
	calls atomic.Int64
	ct    string
	body  func(n int64) []byte
}

func (u *countingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	n := u.calls.Add(1)
	b := u.body(n)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {u.ct}, "Request-Id": {fmt.Sprintf("req_%d", n)}},
		Body: io.NopCloser(bytes.NewReader(b)), Request: r}
	if u.ct == "application/json" {
		resp.ContentLength = int64(len(b))
	}
	return resp, nil
}

func jsonReply(stop string) func(int64) []byte {
	return func(n int64) []byte {
		return fmt.Appendf(nil, `{"id":"msg_%d","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"hi"}],"stop_reason":%q,"stop_sequence":null,"usage":{"input_tokens":1000,"output_tokens":200}}`, n, stop)
	}
}

// cacheGateway is a gateway with the response cache on (defaults but the
// scope), keys alice and bob (team platform) and carol (team other), and a
// price for claude-haiku-4-5.
func cacheGateway(t testing.TB, up http.RoundTripper, scope cache.Scope, keys ...governance.KeySpec) (*Gateway, *recordingLedger) {
	t.Helper()
	ledger := &recordingLedger{MemoryStore: governance.NewMemoryStore()}
	p, err := anthropic.New(anthropic.Config{Name: "anthropic", APIKeys: []string{"sk-ant-test"}, Transport: up})
	if err != nil {
		t.Fatal(err)
	}
	if keys == nil {
		keys = []governance.KeySpec{
			{Name: "alice", Hash: governance.HashSecret("sk-alice"), Team: "platform"},
			{Name: "bob", Hash: governance.HashSecret("sk-bob"), Team: "platform"},
			{Name: "carol", Hash: governance.HashSecret("sk-carol"), Team: "other"},
		}
	}
	in, out := mustMoney("1"), mustMoney("5")
	prices := governance.BuildPriceTable(nil, []governance.PriceOverride{{Model: "claude-haiku-4-5", Input: &in, Output: &out}})
	reg, err := governance.NewRegistry(nil, []governance.TeamSpec{{Name: "platform"}, {Name: "other"}}, keys, prices)
	if err != nil {
		t.Fatal(err)
	}
	store := &sharedStore{ledger: ledger, counters: governance.NewMemoryCounters(nil), logger: zap.NewNop()}
	store.leases = newLeaseTracker(store, zap.NewNop(), newMetrics(baseLabels))
	t.Cleanup(store.leases.stop)
	store.refs.Store(1)
	core, err := cache.New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	cs := &cacheState{core: core, ttl: time.Hour, size: 1 << 20, maxEntry: 1 << 20, scope: scope,
		keys: map[string]bool{}, teams: map[string]bool{}, customers: map[string]bool{}}
	for _, s := range cache.Surfaces {
		cs.surfaces[s] = true
	}
	return &Gateway{state: &state{
		registry: reg,
		keys:     governance.NewKeyring(reg, nil),
		router:   providers.NewRouter(providers.RouterConfig{Providers: []providers.Eligible{{Provider: p, Models: []llm.Glob{"claude-*"}}}}),
		store:    store,
		metrics:  newMetrics(baseLabels),
		location: time.UTC,
		maxBody:  DefaultMaxRequestBody,
		logger:   zap.NewNop(),
		labels:   newLabelResolver(nil, nil),
		cache:    cs,
	}}, ledger
}

// serveCached runs one Messages request as secret and returns the response
// and the access-log fields.
func serveCached(t testing.TB, g *Gateway, secret, body string, hdr ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	elf := new(caddyhttp.ExtraLogFields)
	ctx := context.WithValue(context.Background(), caddyhttp.ExtraLogFieldsCtxKey, elf)
	r := httptest.NewRequestWithContext(ctx, "POST", "http://gw/v1/messages", strings.NewReader(body))
	r.Header.Set("X-Api-Key", secret)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	if err := g.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	return w, extraFields(elf)
}

const haikuBody = `{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"session-%d"}}`

func TestCacheHitMissBypass(t *testing.T) {
	up := &countingUpstream{ct: "application/json", body: jsonReply("end_turn")}
	g, ledger := cacheGateway(t, up, cache.ScopeKey)

	first, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 1))
	if got := first.Header().Get(cacheHeader); got != cacheMiss || first.Code != 200 {
		t.Fatalf("first: %d, x-llm-gateway-cache %q", first.Code, got)
	}
	// Another session of the same key: metadata.user_id is volatile.
	hit, fields := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 2))
	if got := hit.Header().Get(cacheHeader); got != cacheHit {
		t.Fatalf("second: x-llm-gateway-cache %q, want hit", got)
	}
	if up.calls.Load() != 1 {
		t.Fatalf("the hit reached the provider (%d calls)", up.calls.Load())
	}
	if !bytes.Equal(hit.Body.Bytes(), first.Body.Bytes()) || hit.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("hit body %q, want %q", hit.Body.String(), first.Body.String())
	}
	if fields["llm.cache"] != cacheHit || fields["llm.provider"] != cacheProvider || fields["llm.cost_nano_usd"] != int64(0) {
		t.Errorf("hit log fields: %v", fields)
	}
	recs := ledger.records()
	if len(recs) != 2 {
		t.Fatalf("%d ledger rows", len(recs))
	}
	// 1000 input at $1/M + 200 output at $5/M = $0.002.
	want := mustMoney("0.002")
	if recs[0].CacheHit || recs[0].Cost != want || recs[0].Saved != 0 {
		t.Errorf("miss row: hit %v cost %v saved %v", recs[0].CacheHit, recs[0].Cost, recs[0].Saved)
	}
	if !recs[1].CacheHit || recs[1].Cost != 0 || recs[1].Saved != want || !recs[1].Usage.IsZero() || recs[1].Provider != cacheProvider {
		t.Errorf("hit row: %+v", recs[1])
	}

	for _, cc := range []string{"no-store", "no-cache", "max-age=0, No-Cache"} {
		w, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 3), "Cache-Control", cc)
		if got := w.Header().Get(cacheHeader); got != cacheBypass {
			t.Errorf("Cache-Control %s: x-llm-gateway-cache %q, want bypass", cc, got)
		}
	}
	if up.calls.Load() != 4 {
		t.Errorf("bypasses reached the provider %d times, want 3", up.calls.Load()-1)
	}
	// no-cache stored the fresh answer (the third call's).
	again, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 4))
	if !strings.Contains(again.Body.String(), `"msg_4"`) {
		t.Errorf("after no-cache the cache serves %s, want the refreshed msg_4", again.Body.String())
	}
}

func TestCacheScopes(t *testing.T) {
	tests := []struct {
		scope cache.Scope
		// calls after alice, bob (alice's team) and carol (another team)
		calls int64
	}{
		{cache.ScopeKey, 3},
		{cache.ScopeTeam, 2},
		{cache.ScopeGlobal, 1},
	}
	for _, tc := range tests {
		t.Run(tc.scope.String(), func(t *testing.T) {
			up := &countingUpstream{ct: "application/json", body: jsonReply("end_turn")}
			g, _ := cacheGateway(t, up, tc.scope)
			for _, s := range []string{"sk-alice", "sk-bob", "sk-carol"} {
				serveCached(t, g, s, fmt.Sprintf(haikuBody, 1))
			}
			if got := up.calls.Load(); got != tc.calls {
				t.Errorf("scope %s: %d provider calls, want %d", tc.scope, got, tc.calls)
			}
		})
	}
}

func TestCacheKeepsOnlyNormalEnds(t *testing.T) {
	for _, stop := range []string{"max_tokens", "refusal", "pause_turn"} {
		up := &countingUpstream{ct: "application/json", body: jsonReply(stop)}
		g, _ := cacheGateway(t, up, cache.ScopeKey)
		serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 1))
		w, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 1))
		if up.calls.Load() != 2 || w.Header().Get(cacheHeader) != cacheMiss {
			t.Errorf("stop_reason %s was replayed from the cache", stop)
		}
	}
}

func TestCacheStreamReplay(t *testing.T) {
	up := &countingUpstream{ct: "text/event-stream", body: func(int64) []byte { return claudeStream(30) }}
	g, _ := cacheGateway(t, up, cache.ScopeKey)
	body := `{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	first, _ := serveCached(t, g, "sk-alice", body)
	hit, _ := serveCached(t, g, "sk-alice", body)
	if hit.Header().Get(cacheHeader) != cacheHit || up.calls.Load() != 1 {
		t.Fatalf("stream not replayed: %q, %d calls", hit.Header().Get(cacheHeader), up.calls.Load())
	}
	if !bytes.Equal(hit.Body.Bytes(), first.Body.Bytes()) || !bytes.Equal(first.Body.Bytes(), claudeStream(30)) {
		t.Fatal("the replayed stream differs from the relayed one")
	}
	if !strings.HasPrefix(hit.Header().Get("Content-Type"), "text/event-stream") {
		t.Errorf("content-type %q", hit.Header().Get("Content-Type"))
	}
}

func TestCacheSwitches(t *testing.T) {
	up := &countingUpstream{ct: "application/json", body: jsonReply("end_turn")}
	g, _ := cacheGateway(t, up, cache.ScopeKey)
	g.state.cache.teams["platform"] = false
	g.state.cache.keys["bob"] = true
	for range 2 {
		w, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 1))
		if w.Header().Get(cacheHeader) != cacheBypass {
			t.Fatalf("team off: %q", w.Header().Get(cacheHeader))
		}
	}
	serveCached(t, g, "sk-bob", fmt.Sprintf(haikuBody, 1))
	w, _ := serveCached(t, g, "sk-bob", fmt.Sprintf(haikuBody, 1))
	if w.Header().Get(cacheHeader) != cacheHit || up.calls.Load() != 3 {
		t.Errorf("key on within a team that is off: %q, %d calls", w.Header().Get(cacheHeader), up.calls.Load())
	}
}

func TestCacheHitsCountTowardRequestLimits(t *testing.T) {
	up := &countingUpstream{ct: "application/json", body: jsonReply("end_turn")}
	limits := governance.Limits{RateLimits: []governance.RateLimit{{Limit: 2, Unit: governance.RateRequests, Window: time.Minute}}}
	g, ledger := cacheGateway(t, up, cache.ScopeKey, governance.KeySpec{Name: "alice", Hash: governance.HashSecret("sk-alice"), Team: "platform", Limits: limits})
	codes := []int{}
	for range 3 {
		w, _ := serveCached(t, g, "sk-alice", fmt.Sprintf(haikuBody, 1))
		codes = append(codes, w.Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("statuses %v, want 200 200 429 (the hit counted as a request)", codes)
	}
	if recs := ledger.records(); len(recs) != 3 || !recs[1].CacheHit || recs[2].Rejection != "rate_limit" {
		t.Errorf("ledger: %+v", recs)
	}
}

// tenKReply is a 10 KB non-streamed Messages answer.
func tenKReply() []byte {
	text := strings.Repeat("lorem ipsum dolor sit amet ", 10<<10/27)
	return fmt.Appendf(nil, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1000,"output_tokens":2500}}`, text)
}

// BenchmarkCacheHit10KB is a cache hit of a 10 KB non-streamed response
// through the whole handler: authenticate, read and parse the body, derive
// the key, look it up, admit, replay, ledger and count.
func BenchmarkCacheHit10KB(b *testing.B) {
	benchHit(b, "application/json", tenKReply(), `{"model":"claude-haiku-4-5","max_tokens":4000,"messages":[{"role":"user","content":"Summarise the design."}]}`)
}

// BenchmarkCacheHitStream300 is a cache hit of a 300-event stream.
func BenchmarkCacheHitStream300(b *testing.B) {
	benchHit(b, "text/event-stream", claudeStream(300), `{"model":"claude-haiku-4-5","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"Summarise the design."}]}`)
}

func benchHit(b *testing.B, ct string, reply []byte, body string) {
	up := &countingUpstream{ct: ct, body: func(int64) []byte { return reply }}
	g, _ := cacheGateway(b, up, cache.ScopeKey)
	// The production default ledger: SQLite, group-committed off the path.
	sqlite, err := governance.OpenSQLiteStore(b.TempDir()+"/bench.db", governance.SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sqlite.Close() })
	g.state.store.ledger = sqlite
	serveCached(b, g, "sk-alice", body)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest("POST", "http://gw/v1/messages", strings.NewReader(body))
		r.Header.Set("X-Api-Key", "sk-alice")
		r.Header.Set("Anthropic-Version", "2023-06-01")
		clear(w.h)
		if err := g.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if up.calls.Load() != 1 {
		b.Fatalf("%d provider calls: the benchmark did not hit", up.calls.Load())
	}
}

func mustMoney(s string) governance.Money {
	m, err := governance.ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

// distinctLoad sends n distinct non-streamed requests, each answered with
// a ~2 KB body, through a gateway whose cache holds maxSize bytes, and
// calls check after each.
func distinctLoad(tb testing.TB, n int, maxSize int64, check func(i int, g *Gateway)) {
	pad := strings.Repeat("x", 2<<10)
	up := &countingUpstream{ct: "application/json", body: func(i int64) []byte {
		return fmt.Appendf(nil, `{"id":"msg_%d","type":"message","role":"assistant","content":[{"type":"text","text":%q}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":500}}`, i, pad)
	}}
	g, _ := cacheGateway(tb, up, cache.ScopeKey)
	core, err := cache.New(maxSize, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(core.Close)
	g.state.cache.core, g.state.cache.size = core, maxSize
	w := &discardWriter{h: http.Header{}}
	for i := range n {
		body := fmt.Sprintf(`{"model":"claude-haiku-4-5","max_tokens":600,"messages":[{"role":"user","content":"question %d"}]}`, i)
		r, _ := http.NewRequest("POST", "http://gw/v1/messages", strings.NewReader(body))
		r.Header.Set("X-Api-Key", "sk-alice")
		r.Header.Set("Anthropic-Version", "2023-06-01")
		clear(w.h)
		if err := g.ServeHTTP(w, r, nil); err != nil {
			tb.Fatal(err)
		}
		check(i, g)
	}
}

// TestCacheMemoryUnderDistinctLoad: 10,000 distinct requests through the
// handler into a 1 MiB cache; what it holds never exceeds max_size.
func TestCacheMemoryUnderDistinctLoad(t *testing.T) {
	const maxSize = 1 << 20
	distinctLoad(t, 10_000, maxSize, func(i int, g *Gateway) {
		if b := g.state.cache.core.Bytes(); b > maxSize {
			t.Fatalf("after request %d the cache holds %d bytes, max_size %d", i, b, maxSize)
		}
	})
}

// BenchmarkCacheDistinctLoad reports the heap the process keeps after
// 10,000 distinct ~2 KB responses went through a 1 MiB cache (the whole
// run: the test's memory ledger keeps every row), against the same load
// with the cache off, and the cache's own bytes.
func BenchmarkCacheDistinctLoad(b *testing.B) {
	const maxSize = 1 << 20
	for _, on := range []bool{false, true} {
		name := "cache_off"
		if on {
			name = "cache_1MiB"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				var held int64
				distinctLoad(b, 10_000, maxSize, func(i int, g *Gateway) {
					if i == 0 && !on {
						g.state.cache = nil
					}
					if i == 9_999 {
						if g.state.cache != nil {
							held = g.state.cache.core.Bytes()
						}
						runtime.GC()
						runtime.ReadMemStats(&after)
					}
				})
				b.ReportMetric(float64(held), "cache-bytes")
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "live-heap-growth-bytes")
			}
		})
	}
}

func TestCacheModelAliasesShare(t *testing.T) {
	up := &countingUpstream{ct: "application/json", body: jsonReply("end_turn")}
	g, _ := cacheGateway(t, up, cache.ScopeKey)
	serveCached(t, g, "sk-alice", `{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}`)
	w, _ := serveCached(t, g, "sk-alice", `{"model":"claude-haiku-4-5-20251001","max_tokens":5,"messages":[]}`)
	if w.Header().Get(cacheHeader) != cacheHit || up.calls.Load() != 1 {
		t.Errorf("a dated id of the same model missed: %q, %d calls", w.Header().Get(cacheHeader), up.calls.Load())
	}
	w, _ = serveCached(t, g, "sk-alice", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`)
	if w.Header().Get(cacheHeader) != cacheMiss {
		t.Errorf("another model hit: %q", w.Header().Get(cacheHeader))
	}
}

// TestCacheCutStreamNotKept: a stream the upstream cut before its end is
// relayed as it came and never replayed.
func TestCacheCutStreamNotKept(t *testing.T) {
	full := claudeStream(30)
	cut := full[:bytes.Index(full, []byte("event: message_delta"))]
	up := &countingUpstream{ct: "text/event-stream", body: func(int64) []byte { return cut }}
	g, _ := cacheGateway(t, up, cache.ScopeKey)
	body := `{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[]}`
	for range 2 {
		func() {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					panic(v)
				}
			}()
			serveCached(t, g, "sk-alice", body)
		}()
	}
	if up.calls.Load() != 2 {
		t.Errorf("a cut stream was replayed (%d provider calls, want 2)", up.calls.Load())
	}
}
