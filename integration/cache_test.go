package integration

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	oai "github.com/openai/openai-go/v3"
	oaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestResponseCacheAnthropicSDK: the official Anthropic SDK gets the same
// message from a miss and a hit, streamed and not, and the hit never
// reaches the provider; two keys with the same body under scope key both
// do; the ledger (query API), the saved metric and the access log agree
// on the dollars saved to the nano-dollar.
func TestResponseCacheAnthropicSDK(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/ledger.db", "cache {\n\t\t\tttl 1h\n\t\t\tmax_size 16MiB\n\t\t}")})
	ctx := context.Background()
	before := g.metrics()
	c := newClient(g, "", option.WithAPIKey(aliceKey))

	// Non-streamed: the same message, byte for byte, from the miss and
	// the hit.
	var raws, results [2]string
	for i := range raws {
		msg, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
		must(t, err)
		raws[i] = msg.RawJSON()
		results[i], _ = g.waitLog()["llm.cache"].(string)
	}
	if results != [2]string{"miss", "hit"} {
		t.Fatalf("cache results %v, want miss then hit", results)
	}
	if raws[0] == "" || raws[0] != raws[1] {
		t.Errorf("messages differ:\n%s\n%s", raws[0], raws[1])
	}
	_, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()
	if n := len(m.requests()); n != 1 {
		t.Fatalf("the provider saw %d requests, want 1", n)
	}

	// Streamed: the same events, the same accumulated message.
	streamed := func() (anthropic.Message, []string, string) {
		s := c.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
		var acc anthropic.Message
		var types []string
		for s.Next() {
			ev := s.Current()
			must(t, acc.Accumulate(ev))
			types = append(types, ev.RawJSON())
		}
		must(t, s.Err())
		e := g.waitLog()
		return acc, types, e["llm.cache"].(string)
	}
	m1, ev1, r1 := streamed()
	m2, ev2, r2 := streamed()
	if r1 != "miss" || r2 != "hit" {
		t.Fatalf("stream cache results %s, %s", r1, r2)
	}
	if len(m1.Content) == 0 || m1.Content[0].Text != m2.Content[0].Text || m1.Usage.OutputTokens != m2.Usage.OutputTokens || m1.StopReason != m2.StopReason {
		t.Errorf("accumulated messages differ: %+v / %+v", m1, m2)
	}
	if strings.Join(ev1, "\n") != strings.Join(ev2, "\n") || len(ev1) == 0 {
		t.Errorf("replayed events differ:\n%v\nwant\n%v", ev2, ev1)
	}
	if n := len(m.requests()); n != 2 {
		t.Fatalf("the provider saw %d requests, want 2", n)
	}

	// Scope key: bob sends alice's body and reaches the provider.
	bob := newClient(g, "", option.WithAPIKey(bobKey))
	alice := newClient(g, "", option.WithAPIKey(aliceKey))
	_, err = alice.Messages.New(ctx, messageParams("claude-haiku-4-5"))
	must(t, err)
	g.waitLog()
	_, err = bob.Messages.New(ctx, messageParams("claude-haiku-4-5"))
	must(t, err)
	if e := g.waitLog(); e["llm.cache"] != "miss" {
		t.Errorf("bob's identical request was %v, want a miss", e["llm.cache"])
	}
	if n := len(m.requests()); n != 4 {
		t.Fatalf("the provider saw %d requests, want 4 (each key once)", n)
	}

	// Savings: three sonnet hits (two plain, one streamed), each the
	// cost of the response it replayed.
	const saved = 3 * mockCostSonnetNano
	after := g.metrics()
	if got := nanoUSD(metricDelta(before, after, "llm_gateway_cache_saved_usd_total", map[string]string{"key": "alice"})); got != saved {
		t.Errorf("saved metric: %d nano-USD, want %d", got, saved)
	}
	if got := metricDelta(before, after, "llm_gateway_cache_requests_total", map[string]string{"result": "hit"}); got != 3 {
		t.Errorf("hits metric %v, want 3", got)
	}
	if metricValue(after, "llm_gateway_cache_bytes", nil) <= 0 {
		t.Error("llm_gateway_cache_bytes is 0 with entries held")
	}
	// Prometheus's linter accepts the cache's series.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(g.metricsText())
		out, _ := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "llm_gateway_cache") {
				t.Errorf("promtool: %s", line)
			}
		}
	}
	var doc struct {
		Rows []struct {
			Key          string `json:"key"`
			Requests     int64  `json:"requests"`
			CacheHits    int64  `json:"cache_hits"`
			SavedNanoUSD int64  `json:"saved_nano_usd"`
			CostNanoUSD  int64  `json:"cost_nano_usd"`
		} `json:"rows"`
	}
	g.adminGet("/llm_gateway/usage?group_by=key", &doc)
	found := false
	for _, r := range doc.Rows {
		if r.Key != "alice" {
			continue
		}
		found = true
		if r.CacheHits != 3 || r.SavedNanoUSD != saved || r.Requests != 6 {
			t.Errorf("usage row for alice: %+v, want 6 requests, 3 hits, %d saved", r, saved)
		}
	}
	if !found {
		t.Fatalf("no usage row for alice: %+v", doc.Rows)
	}
}

// TestResponseCacheOpenAISDK: the official OpenAI SDK gets the same chat
// completion, chat stream, response and embeddings from a miss and a hit.
func TestResponseCacheOpenAISDK(t *testing.T) {
	m := newMockOpenAI(t)
	g := startGateway(t, gatewayOptions{Block: openAIBlock(m, "") + "\n\t\tcache"})
	ctx := context.Background()
	c := openAIClient(g)
	result := func() string {
		t.Helper()
		e := g.waitLog()
		s, _ := e["llm.cache"].(string)
		return s
	}
	chat := oai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}}
	var raws [2]string
	for i := range raws {
		cc, err := c.Chat.Completions.New(ctx, chat)
		must(t, err)
		raws[i] = cc.RawJSON() + "|" + result()
	}
	if raws[0] != strings.TrimSuffix(raws[1], "|hit")+"|miss" {
		t.Errorf("chat completions differ:\n%s\n%s", raws[0], raws[1])
	}

	// A stream whose client did not ask for usage: the gateway asks for it
	// upstream and removes it; the hit replays what the client saw.
	var plain [2]string
	for i := range plain {
		req, _ := http.NewRequest("POST", g.URL+"/openai/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+aliceKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		plain[i] = string(b) + "|" + resp.Header.Get("X-Llm-Gateway-Cache")
		result()
	}
	if want := mockOpenAIChatStream("gpt-4o", false); plain[0] != want+"|miss" || plain[1] != want+"|hit" {
		t.Errorf("chat stream without include_usage:\n%s\n%s", plain[0], plain[1])
	}

	chat.StreamOptions.IncludeUsage = oai.Bool(true)
	var streams [2]string
	for i := range streams {
		s := c.Chat.Completions.NewStreaming(ctx, chat)
		var b strings.Builder
		for s.Next() {
			b.WriteString(s.Current().RawJSON())
		}
		must(t, s.Err())
		streams[i] = b.String() + "|" + result()
	}
	if streams[0] != strings.TrimSuffix(streams[1], "|hit")+"|miss" || !strings.Contains(streams[0], `"usage"`) {
		t.Errorf("chat streams differ:\n%s\n%s", streams[0], streams[1])
	}

	params := responses.ResponseNewParams{Model: "gpt-5-mini", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")}}
	var rs [2]string
	for i := range rs {
		r, err := c.Responses.New(ctx, params)
		must(t, err)
		rs[i] = r.RawJSON() + "|" + result()
	}
	if rs[0] != strings.TrimSuffix(rs[1], "|hit")+"|miss" {
		t.Errorf("responses differ:\n%s\n%s", rs[0], rs[1])
	}
	var rstreams [2]string
	for i := range rstreams {
		s := c.Responses.NewStreaming(ctx, params)
		var b strings.Builder
		for s.Next() {
			b.WriteString(s.Current().RawJSON())
		}
		must(t, s.Err())
		rstreams[i] = b.String() + "|" + result()
	}
	if rstreams[0] != strings.TrimSuffix(rstreams[1], "|hit")+"|miss" || !strings.Contains(rstreams[0], "response.completed") {
		t.Errorf("responses streams differ:\n%s\n%s", rstreams[0], rstreams[1])
	}

	emb := oai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: oai.EmbeddingNewParamsInputUnion{OfString: oai.String("hi")}}
	var es [2]string
	for i := range es {
		e, err := c.Embeddings.New(ctx, emb, oaiopt.WithHeader("X-Unrelated", "x"))
		must(t, err)
		es[i] = e.RawJSON() + "|" + result()
	}
	if es[0] != strings.TrimSuffix(es[1], "|hit")+"|miss" {
		t.Errorf("embeddings differ:\n%s\n%s", es[0], es[1])
	}
	if n := len(m.requests()); n != 6 {
		t.Errorf("the provider saw %d requests, want 6 (each once)", n)
	}
}

// TestResponseCacheSurvivesReload: a reload that keeps the cache's
// settings keeps its entries, one that changes the ttl keeps them too (the
// new ttl applies), and one that shrinks max_size starts empty.
func TestResponseCacheSurvivesReload(t *testing.T) {
	m := newMockAnthropic(t)
	block := func(cache string) gatewayOptions {
		return gatewayOptions{Block: gatewayBlock(m, "", cache)}
	}
	g := startGateway(t, block("cache {\n\t\t\tmax_size 16MiB\n\t\t}"))
	ctx := context.Background()
	c := newClient(g, "", option.WithAPIKey(aliceKey))
	ask := func() string {
		t.Helper()
		_, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
		must(t, err)
		s, _ := g.waitLog()["llm.cache"].(string)
		return s
	}
	if r := ask(); r != "miss" {
		t.Fatalf("first request: %s", r)
	}
	steps := []struct {
		cache string
		want  string
	}{
		{"cache {\n\t\t\tmax_size 16MiB\n\t\t}", "hit"},               // same settings
		{"cache {\n\t\t\tmax_size 16MiB\n\t\t\tttl 2h\n\t\t}", "hit"}, // a new ttl
		{"cache {\n\t\t\tmax_size 32MiB\n\t\t\tttl 2h\n\t\t}", "hit"}, // grown
		{"cache {\n\t\t\tmax_size 1MiB\n\t\t\tttl 2h\n\t\t}", "miss"}, // shrunk: emptied
	}
	for i, s := range steps {
		g.load(block(s.cache))
		if r := ask(); r != s.want {
			t.Fatalf("after reload %d: %s, want %s", i+1, r, s.want)
		}
	}
	if n := len(m.requests()); n != 2 {
		t.Errorf("the provider saw %d requests, want 2", n)
	}
}

// TestCacheInsightAPI: GET /llm_gateway/cache_insight prices the prompt
// cache's writes per key and finds the 1-hour writes no later request of
// the session read (the mock reads the same 9,000 tokens every turn, so
// no turn reads what the one before it wrote).
func TestCacheInsightAPI(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/ledger.db", "")})
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Claude-Code-Session-Id", "s1"))
	for range 2 {
		_, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"))
		must(t, err)
	}
	var doc struct {
		Rows []struct {
			Key             string  `json:"key"`
			Input           int64   `json:"input_tokens_total"`
			CacheRead       int64   `json:"cache_read_tokens"`
			Share           float64 `json:"cache_read_share"`
			WriteCost       int64   `json:"cache_write_cost_nano_usd"`
			Write1h         int64   `json:"cache_write_1h_tokens"`
			Unread1h        int64   `json:"cache_write_1h_unread_tokens"`
			Unread1hCostNan int64   `json:"cache_write_1h_unread_cost_nano_usd"`
		} `json:"rows"`
	}
	g.adminGet("/llm_gateway/cache_insight?group_by=key&model=claude-sonnet-*", &doc)
	if len(doc.Rows) != 1 || doc.Rows[0].Key != "alice" {
		t.Fatalf("rows %+v", doc.Rows)
	}
	r := doc.Rows[0]
	// sonnet: cache_write_5m $3.75, cache_write_1h $6 per million.
	perTurn := int64(mockCacheWrite5m*3_750 + mockCacheWrite1h*6_000)
	if r.CacheRead != 2*mockCacheRead || r.Input != 2*(mockInput+mockCacheRead+mockCacheWrite5m+mockCacheWrite1h) ||
		r.WriteCost != 2*perTurn || r.Write1h != 2*mockCacheWrite1h || r.Unread1h != 2*mockCacheWrite1h ||
		r.Unread1hCostNan != 2*mockCacheWrite1h*6_000 || r.Share != float64(r.CacheRead)/float64(r.Input) {
		t.Errorf("insight %+v", r)
	}
	for _, q := range []string{"order_by=cost", "cursor=x", "format=csv", "group_by=colour", "bogus=1"} {
		resp, err := http.Get(g.AdminURL + "/llm_gateway/cache_insight?" + q)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("cache_insight?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
