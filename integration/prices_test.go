package integration

import (
	"context"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestFastUSPricedAlikeEverywhere: a reply billed in fast mode with
// US-only inference costs what the price page says, by hand, and the same
// nano-dollars appear in the metric, the ledger (admin API) and the access
// log.
func TestFastUSPricedAlikeEverywhere(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, t.TempDir()+"/usage.db", "")})
	before := g.metrics()
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Mock-Scenario", "fast-us"))
	_, err := c.Messages.New(context.Background(), messageParams("claude-opus-4-6"))
	must(t, err)

	// Opus 4.6 fast: input 30, 5m write 37.50, 1h write 60, read 3, output
	// 150 USD per million; US-only ×1.1:
	// (12×30 + 200×37.5 + 100×60 + 9000×3 + 42×150) × 1.1 = 47,160 × 1.1
	// = 51,876 USD per million → $0.051876.
	const want = 51_876_000
	e := g.waitLog()
	if int64(num(e, "llm.cost_nano_usd")) != want || e["llm.speed"] != "fast" || e["llm.inference_geo"] != "us" {
		t.Fatalf("access log: cost %v speed %v geo %v", e["llm.cost_nano_usd"], e["llm.speed"], e["llm.inference_geo"])
	}
	if got := metricDelta(before, g.metrics(), "llm_gateway_cost_usd_total", map[string]string{"key": "alice", "model": "claude-opus-4-6"}); nanoUSD(got) != want {
		t.Fatalf("metric %v", got)
	}
	if k := adminKeys(g)["alice"]; k.Spend.CostNanoUSD != want {
		t.Fatalf("admin API spend %d", k.Spend.CostNanoUSD)
	}
}
