package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestReloadAndRestartKeepTotals: `caddy reload` keeps every counter (metrics
// and spend), a stream in flight across a reload completes and is charged
// once, and a full restart restores every total from SQLite.
func TestReloadAndRestartKeepTotals(t *testing.T) {
	m := newMockAnthropic(t)
	db := t.TempDir() + "/usage.db"
	opts := gatewayOptions{Block: gatewayBlock(m, db, "")}
	g := startGateway(t, opts)
	ctx := context.Background()
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Project", "reload"))
	labels := map[string]string{"key": "alice", "model": "claude-sonnet-4-5"}
	before := g.metrics()

	for range 2 {
		_, err := c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
		must(t, err)
		g.waitLog()
	}

	// A stream that is still flowing when the config is reloaded.
	stream := c.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "gated"))
	if !stream.Next() { // message_start has arrived: the request is in flight
		t.Fatalf("stream: %v", stream.Err())
	}

	// Reload with a new key and a different store-compatible config.
	reloaded := gatewayOptions{Block: gatewayBlock(m, db, `key carol {
			secret sk-llmgw-carol-virtual-key
		}`)}
	g.load(reloaded)

	m.release <- struct{}{} // let the old config's stream finish
	var text strings.Builder
	for stream.Next() {
		if d, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			text.WriteString(d.Delta.Text)
		}
	}
	must(t, stream.Err())
	if !strings.HasSuffix(mockText, text.String()) || text.Len() == 0 {
		t.Fatalf("stream text after reload %q", text.String())
	}
	e := g.waitLog()
	checkLogUsage(t, e, "alice", "claude-sonnet-4-5", mockCostSonnetNano)

	fams := g.metrics()
	if got := metricDelta(before, fams, "llm_gateway_requests_total", labels); got != 3 {
		t.Errorf("requests after reload = %v, want 3 (reload must not reset counters)", got)
	}
	if got := metricDelta(before, fams, "llm_gateway_cost_usd_total", labels); nanoUSD(got) != 3*mockCostSonnetNano {
		t.Errorf("cost after reload = %v", got)
	}
	if k := adminKeys(g)["alice"]; k.Spend.CostNanoUSD != 3*mockCostSonnetNano || k.Spend.Requests != 3 {
		t.Errorf("spend after reload = %+v", k.Spend)
	}
	if _, ok := adminKeys(g)["carol"]; !ok {
		t.Error("reloaded key missing from admin API")
	}

	// The new key works at once.
	carol := newClient(g, "", option.WithAPIKey("sk-llmgw-carol-virtual-key"))
	_, err := carol.Messages.New(ctx, messageParams("claude-haiku-4-5"))
	must(t, err)
	g.waitLog()

	// Restart: every total comes back from SQLite.
	wantAlice := adminKeys(g)["alice"].Spend
	wantCarol := adminKeys(g)["carol"].Spend
	g.restart(reloaded)
	after := adminKeys(g)
	if after["alice"].Spend != wantAlice || after["carol"].Spend != wantCarol {
		t.Errorf("after restart alice=%+v carol=%+v, want %+v %+v", after["alice"].Spend, after["carol"].Spend, wantAlice, wantCarol)
	}
	if row := adminUsage(g, "team")["platform"]; row.CostNanoUSD != 3*mockCostSonnetNano {
		t.Errorf("team usage after restart = %+v", row)
	}
	// And keeps counting from there.
	_, err = c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()
	if k := adminKeys(g)["alice"]; k.Spend.CostNanoUSD != 4*mockCostSonnetNano {
		t.Errorf("spend after restart and one more request = %+v", k.Spend)
	}
}
