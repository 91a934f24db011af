package module

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestIsMeRequest(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/llm_gateway/me", true},
		{"GET", "/anthropic/llm_gateway/me", true},
		{"GET", "/a/b/llm_gateway/me", true},
		{"POST", "/llm_gateway/me", false},
		{"GET", "/llm_gateway/me/", false},
		{"GET", "/xllm_gateway/me", false},
		{"GET", "/llm_gateway/mine", false},
		{"GET", "/v1/messages", false},
	} {
		r := httptest.NewRequest(c.method, "http://gw"+c.path, nil)
		if got := isMeRequest(r); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

// TestCostWriter: a held response goes out whole with its cost header; one
// that outgrows the hold passes through intact, without it.
func TestCostWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	c := holdForCost(rec)
	c.Header().Set("Content-Type", "application/json")
	c.WriteHeader(201)
	_, _ = c.Write([]byte(`{"a":`))
	if err := http.NewResponseController(c).Flush(); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte(`1}`))
	if rec.Body.Len() != 0 || rec.Flushed {
		t.Fatal("a held response reached the client before its cost was known")
	}
	c.release(1234, true)
	if rec.Code != 201 || rec.Body.String() != `{"a":1}` || rec.Header().Get(costHeader) != "0.000001234" {
		t.Errorf("released: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get(costHeader))
	}

	// Unpriced: no header.
	rec = httptest.NewRecorder()
	c = holdForCost(rec)
	_, _ = c.Write([]byte("x"))
	c.release(0, false)
	if _, ok := rec.Header()[costHeader]; ok || rec.Body.String() != "x" {
		t.Errorf("unpriced: %v %q", rec.Header(), rec.Body.String())
	}

	// Too large to hold.
	rec = httptest.NewRecorder()
	c = holdForCost(rec)
	c.WriteHeader(200)
	big := bytes.Repeat([]byte("0123456789abcdef"), maxHeldResponse/16)
	_, _ = c.Write(big)
	_, _ = c.Write([]byte("tail"))
	if err := http.NewResponseController(c).Flush(); err != nil || !rec.Flushed {
		t.Errorf("passing through: flush %v, flushed %v", err, rec.Flushed)
	}
	c.release(99, true)
	if rec.Body.Len() != len(big)+4 || !strings.HasSuffix(rec.Body.String(), "tail") || rec.Header().Get(costHeader) != "" {
		t.Errorf("large body: %d bytes, header %q", rec.Body.Len(), rec.Header().Get(costHeader))
	}
}

// meGateway is a test gateway whose key alice has a daily budget and a
// ledger of n requests today.
func meGateway(tb testing.TB, n int) *Gateway {
	ledger := governance.NewMemoryStore()
	g := newTestGateway(tb, http.DefaultTransport, "sk-llmgw-me", ledger)
	reg, err := governance.NewRegistry(nil, []governance.TeamSpec{{Name: "platform"}},
		[]governance.KeySpec{{Name: "alice", Hash: governance.HashSecret("sk-llmgw-me"), Team: "platform",
			Limits: governance.Limits{Budgets: []governance.Budget{{Limit: 5 * governance.Dollar, Period: governance.PeriodDay}}}}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	g.state.registry = reg
	g.state.keys = governance.NewKeyring(reg, nil)
	now := time.Now()
	for i := range n {
		model := "claude-sonnet-4-5"
		if i%3 == 0 {
			model = "claude-haiku-4-5"
		}
		ledger.Record(&governance.Record{Time: now, Key: "alice", Team: "platform", Model: model, Cost: 10_000_000,
			SessionID: "s1", Surface: llm.SurfaceAnthropicMessages.String(), Status: 200})
	}
	return g
}

func meGet(g *Gateway, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://gw/llm_gateway/me"+query, nil)
	r.Header.Set("Authorization", "Bearer sk-llmgw-me")
	r.Header.Set("X-Claude-Code-Session-Id", "s1")
	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, r, nil)
	return w
}

func TestServeMe(t *testing.T) {
	g := meGateway(t, 3)
	w := meGet(g, "?format=text")
	if w.Code != 200 || w.Body.String() != "alice · today $0.03 · $5.00 left of $5/day · session $0.03\n" {
		t.Errorf("text: %d %q", w.Code, w.Body.String())
	}
	w = meGet(g, "")
	var doc meJSON
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	day := doc.Spend["day"]
	if day.CostNanoUSD != 30_000_000 || len(day.ByModel) != 2 || day.ByModel[0].Model != "claude-sonnet-4-5" || day.ByModel[0].Requests != 2 {
		t.Errorf("spend today: %+v", day)
	}
	if doc.Session == nil || doc.Session.CostNanoUSD != 30_000_000 || len(doc.Budgets) != 1 || doc.Budgets[0].RemainingNanoUSD != 5e9 {
		t.Errorf("doc: %+v", doc)
	}
	// A new record of the key shows at once: the cache is per key and
	// dropped when the key is recorded.
	rec := governance.Record{Time: time.Now(), Key: "alice", Cost: governance.Dollar, SessionID: "s1"}
	g.state.store.ledger.Record(&rec)
	g.state.recorded(&rec)
	if w := meGet(g, "?format=text"); w.Body.String() != "alice · today $1.03 · $5.00 left of $5/day · session $1.03\n" {
		t.Errorf("after a record: %q", w.Body.String())
	}
	for _, q := range []string{"?format=csv", "?key=bob"} {
		if w := meGet(g, q); w.Code != 400 {
			t.Errorf("%s: %d", q, w.Code)
		}
	}
}

// BenchmarkMeCached is a status line refreshing while the key spends
// nothing: budgets from the counters, spend from the cached view.
func BenchmarkMeCached(b *testing.B) {
	g := meGateway(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		meGet(g, "?format=text")
	}
}

// BenchmarkMeAfterSpend reads the ledger every time (the key was recorded
// since the last call): 1000 requests today in a memory ledger.
func BenchmarkMeAfterSpend(b *testing.B) {
	g := meGateway(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		meCache.touch("alice")
		meGet(g, "?format=text")
	}
}

// BenchmarkCostWriter is what holding a 2 KB non-streamed reply costs.
func BenchmarkCostWriter(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 2048)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		c := holdForCost(w)
		c.WriteHeader(200)
		_, _ = c.Write(body)
		c.release(123456, true)
	}
}

// BenchmarkMeSQLite reads a 100,000-row month of 100 keys from the SQLite
// ledger (its rollup) each time, as after the key spent.
func BenchmarkMeSQLite(b *testing.B) {
	sqlite, err := governance.OpenSQLiteStore(b.TempDir()+"/me.db", governance.SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sqlite.Close() })
	g := meGateway(b, 0)
	g.state.store.ledger = sqlite
	reg, err := governance.NewRegistry(nil, []governance.TeamSpec{{Name: "platform", Limits: governance.Limits{
		Budgets: []governance.Budget{{Limit: 1000 * governance.Dollar, Period: governance.PeriodMonth}}}}},
		[]governance.KeySpec{{Name: "alice", Hash: governance.HashSecret("sk-llmgw-me"), Team: "platform",
			Limits: governance.Limits{Budgets: []governance.Budget{{Limit: 5 * governance.Dollar, Period: governance.PeriodDay}}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	g.state.registry, g.state.keys = reg, governance.NewKeyring(reg, nil)
	now := time.Now()
	start := governance.PeriodMonth.Start(now, time.UTC)
	span := now.Sub(start)
	for i := range 100_000 {
		key := "alice"
		if i%100 != 0 {
			key = "k" + string(rune('a'+i%26)) + string(rune('a'+i%7))
		}
		sqlite.Record(&governance.Record{Time: start.Add(span * time.Duration(i) / 100_000), Key: key, Model: "claude-sonnet-4-5",
			Cost: 10_000_000, SessionID: "s" + string(rune('a'+i%50)), Surface: "anthropic.messages", Status: 200})
	}
	if err := sqlite.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	// Rolled up to now in the gateway's zone, as a running gateway keeps
	// its ledger (a step a minute).
	sqlite.SetLocation(time.UTC)
	if err := sqlite.Maintain(context.Background(), now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		meCache.touch("alice")
		meGet(g, "?format=text")
	}
}
