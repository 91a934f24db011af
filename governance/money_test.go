package governance

import (
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestParseMoney(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Money
		wantErr bool
	}{
		{"3", 3 * Dollar, false},
		{"0.30", 300_000_000, false},
		{"22.50", 22_500_000_000, false},
		{"$5", 5 * Dollar, false},
		{".5", 500_000_000, false},
		{"0.000000001", 1, false},
		{"0.0000000001", 0, true},
		{"", 0, true},
		{"-1", 0, true},
		{"1.2.3", 0, true},
		{"abc", 0, true},
		{"10000000000", 0, true},
		{".", 0, true},
	} {
		got, err := ParseMoney(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMoneyString(t *testing.T) {
	for _, tc := range []struct {
		m    Money
		want string
	}{
		{0, "0.000000000"},
		{1, "0.000000001"},
		{Dollar, "1.000000000"},
		{123_456_789_012, "123.456789012"},
		{-5, "-0.000000005"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestCostExact(t *testing.T) {
	table := NewPriceTable(nil)
	for _, tc := range []struct {
		name  string
		model string
		u     llm.Usage
		want  Money
	}{
		// 1000×3 + 500×15 = 10,500 USD-per-million → 0.0105 USD.
		{"sonnet basic", "claude-sonnet-4-5", llm.Usage{InputTokens: 1000, OutputTokens: 500}, 10_500_000},
		// Claude Code turn: 3 input, 90,000 cache read, 2,000 5m write, 400 output.
		// 3×3 + 90000×0.3 + 2000×3.75 + 400×15 = 9 + 27000 + 7500 + 6000 = 40509 → $0.040509.
		{"sonnet cached", "claude-sonnet-4-5", llm.Usage{InputTokens: 3, CacheReadTokens: 90_000, CacheWrite5mTokens: 2_000, OutputTokens: 400}, 40_509_000},
		// 1h writes at 2×: 1000×6 = 6000 → $0.006.
		{"sonnet 1h write", "claude-sonnet-4-5", llm.Usage{CacheWrite1hTokens: 1000}, 6_000_000},
		// One token of Haiku 4.5 input: $1/M → 1000 nano.
		{"haiku one token", "claude-haiku-4-5", llm.Usage{InputTokens: 1}, 1000},
		// One cache-read token of gpt-5-nano: $0.005/M → 5 nano.
		{"rounding exact", "gpt-5-nano", llm.Usage{CacheReadTokens: 1}, 5},
		// Haiku 3.5 cache read 0.08/M: 80 nano a token.
		{"haiku 3.5 cache read", "claude-3-5-haiku", llm.Usage{CacheReadTokens: 3}, 240},
		// Long context: 210,000 input + 1,000 output at 6 / 22.5.
		{"sonnet long context", "claude-sonnet-4-5", llm.Usage{InputTokens: 210_000, OutputTokens: 1000}, 1_282_500_000},
		// 4.6 has no long tier: 210,000×3 + 1000×15 = 645,000 → $0.645.
		{"sonnet 4.6 no tier", "claude-sonnet-4-6", llm.Usage{InputTokens: 210_000, OutputTokens: 1000}, 645_000_000},
		// Opus 4.1: 100×15 + 100×75 = 9000 → $0.009.
		{"opus 4.1", "claude-opus-4-1", llm.Usage{InputTokens: 100, OutputTokens: 100}, 9_000_000},
		// Web search: 3 × $0.01.
		{"web search", "claude-opus-4-5", llm.Usage{WebSearchRequests: 3}, 30_000_000},
		// OpenAI: 1000 uncached ×2.5 + 1000 cached ×1.25 + 100 ×10 = 4750 → $0.00475.
		{"gpt-4o", "gpt-4o", llm.Usage{InputTokens: 1000, CacheReadTokens: 1000, OutputTokens: 100}, 4_750_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := table.Lookup(tc.model)
			if p == nil {
				t.Fatalf("no price for %s", tc.model)
			}
			if got := p.Cost(tc.u); got != tc.want {
				t.Fatalf("cost = %d (%s), want %d (%s)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestCostRounding(t *testing.T) {
	// $0.0005 per million tokens: half a nano-dollar per token.
	p := Price{Rates: Rates{Input: 500, Output: 1500}}
	for _, tc := range []struct {
		u    llm.Usage
		want Money
	}{
		{llm.Usage{InputTokens: 1}, 0},                     // 0.0005 nano
		{llm.Usage{InputTokens: 999}, 0},                   // 0.4995 nano
		{llm.Usage{InputTokens: 1000}, 1},                  // 0.5 nano: half rounds up
		{llm.Usage{InputTokens: 1000, OutputTokens: 1}, 1}, // 0.5015
		// Summed before the single division: 999 + 333 output tokens =
		// 0.4995 + 0.4995 = 0.999 → 1, where rounding each kind would give 0.
		{llm.Usage{InputTokens: 999, OutputTokens: 333}, 1},
		{llm.Usage{InputTokens: 3000}, 2}, // 1.5 → 2
	} {
		if got := p.Cost(tc.u); got != tc.want {
			t.Errorf("Cost(%+v) = %d, want %d", tc.u, got, tc.want)
		}
	}
}

func TestCostNoOverflow(t *testing.T) {
	p := Price{Rates: Rates{Input: 75 * Dollar, Output: 75 * Dollar}}
	u := llm.Usage{InputTokens: 1 << 40, OutputTokens: 1 << 40}
	// (2^40 + 2^40) × 75e9 / 1e6 = 2^41 × 75,000 — well inside int64.
	want := Money((int64(1) << 41) * 75_000)
	if got := p.Cost(u); got != want {
		t.Fatalf("got %d want %d", got, want)
	}
	huge := llm.Usage{InputTokens: 1<<63 - 1, OutputTokens: 1<<63 - 1}
	if got := p.Cost(huge); got != Money(1<<63-1) {
		t.Fatalf("expected saturation, got %d", got)
	}
}

func TestPriceTableLookup(t *testing.T) {
	m := func(v Money) *Money { return &v }
	table := NewPriceTable([]PriceOverride{
		{Model: "claude-sonnet-4-5-20250929", Input: m(1), Output: m(2)},
		{Model: "claude-opus-5*", Input: m(7 * Dollar)},
		{Model: "my-local-model", Input: m(Dollar)},
		{Model: "claude-haiku-4-5", CacheRead: m(5)},
	})
	if p := NewPriceTable([]PriceOverride{{Model: "claude-sonnet-4-5", CacheRead: m(1)}}).Lookup("claude-sonnet-4-5"); p == nil || len(p.Tiers) != 1 {
		t.Errorf("cache-only override dropped the long-context tier")
	}
	if p := table.Lookup("claude-sonnet-4-5"); p == nil || p.Input != 1 || p.Output != 2 || p.CacheRead != 300_000_000 || p.Tiers != nil {
		t.Errorf("override by dated id not applied, or did not inherit: %+v", p)
	}
	if p := table.Lookup("my-local-model"); p == nil || p.Input != Dollar || p.Output != 0 {
		t.Errorf("new model row: %+v", p)
	}
	if p := table.Lookup("claude-opus-5-1"); p == nil || p.Input != 7*Dollar {
		t.Errorf("glob row not applied: %+v", p)
	}
	if p := table.Lookup("claude-haiku-4-5"); p == nil || p.Input != Dollar || p.CacheWrite5m != 1_250_000_000 || p.CacheRead != 5 {
		t.Errorf("haiku row wrong: %+v", p)
	}
	if table.Lookup("unknown-model") != nil {
		t.Error("unknown model priced")
	}
	for _, dated := range []string{"claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001", "claude-3-5-haiku-20241022", "us.anthropic.claude-opus-4-6-v1", "claude-opus-4-6", "claude-opus-4-20250514"} {
		if NewPriceTable(nil).Lookup(llm.CanonicalModel(dated)) == nil {
			t.Errorf("%s has no family row", dated)
		}
	}
}

func TestProviderIDPriceRows(t *testing.T) {
	m := func(v Money) *Money { return &v }
	table := NewPriceTable([]PriceOverride{
		{Model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Input: m(4 * Dollar)},
		{Model: "claude-haiku-4-5@20251001", Output: m(6 * Dollar)},
	})
	if p := table.LookupModel("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"); p.Input != 4*Dollar || p.Output != 15*Dollar {
		t.Errorf("bedrock id row %+v", p)
	}
	if p := table.LookupModel("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"); p.Input != 3*Dollar {
		t.Errorf("the Anthropic twin must keep its own price: %+v", p)
	}
	if p := table.LookupModel("claude-haiku-4-5@20251001", "claude-haiku-4-5"); p.Output != 6*Dollar || p.Input != Dollar {
		t.Errorf("vertex id row %+v", p)
	}
	if p := table.LookupModel("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"); p.Input != 3*Dollar {
		t.Errorf("other bedrock ids price as the twin: %+v", p)
	}
}

func TestPriceTableModelsListsAPIIDs(t *testing.T) {
	m := func(v Money) *Money { return &v }
	models := NewPriceTable([]PriceOverride{{Model: "claude-3-5-haiku", Input: m(1)}, {Model: "local-*", Input: m(1)}}).Models()
	listed := map[string]bool{}
	for _, id := range models {
		listed[id] = true
	}
	for id, want := range map[string]bool{
		"claude-sonnet-4-5": true, "claude-opus-4-0": true, "gpt-4o": true,
		"claude-sonnet-4": false, "claude-3-7-sonnet": false, // not API ids
		"claude-3-5-haiku": true,  // configured by the operator: listed
		"local-*":          false, // globs are not model ids
	} {
		if listed[id] != want {
			t.Errorf("%s listed = %v, want %v", id, listed[id], want)
		}
	}
}

func TestWorstCase(t *testing.T) {
	table := NewPriceTable(nil)
	sonnet := table.Lookup("claude-sonnet-4-5")
	// 30,000 input at the 1h cache-write rate (6) + 32,000 output at 15:
	// 180,000 + 480,000 = 660,000 per million → $0.66.
	if got := sonnet.WorstCase(30_000, 32_000); got != 660_000_000 {
		t.Errorf("sonnet worst = %s", got)
	}
	// Past 200K input: the long-context tier (1h write 12, output 22.50).
	if got := sonnet.WorstCase(300_000, 1000); got != Money(300_000*12_000+1000*22_500)*Dollar/1_000_000_000 {
		t.Errorf("sonnet long worst = %s", got)
	}
	if got := table.Lookup("gpt-4o").WorstCase(1000, 1000); got != 12_500_000 { // 1000×2.5 + 1000×10
		t.Errorf("gpt-4o worst = %s", got)
	}
	if table.Lookup("claude-opus-4-1").MaxOutput != 32_000 || table.Lookup("claude-fable-5").MaxOutput != 0 {
		t.Error("max output rows")
	}
}

func BenchmarkCost(b *testing.B) {
	p := NewPriceTable(nil).Lookup("claude-sonnet-4-5")
	u := llm.Usage{InputTokens: 3, CacheReadTokens: 90_000, CacheWrite5mTokens: 2_000, OutputTokens: 400}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Cost(u)
	}
}

func TestPriceScaled(t *testing.T) {
	p := NewPriceTable(nil).Lookup("claude-sonnet-4-5")
	s := p.Scaled(1_100_000_000) // ×1.1
	if s.Input != 3_300_000_000 || s.Output != 16_500_000_000 || s.CacheRead != 330_000_000 || s.CacheWrite5m != 4_125_000_000 ||
		len(s.Tiers) != 1 || s.Tiers[0].Input != 6_600_000_000 || s.Tiers[0].Above != 200_000 || p.Tiers[0].Input != 6*Dollar {
		t.Fatalf("scaled %+v", s)
	}
	if p.Scaled(One) != p || p.Input != 3*Dollar {
		t.Fatal("scaling by one must not copy or change the row")
	}
	// 0.30 × 0.333333333 = 0.0999999999 → 0.100000000 (half up at the nano).
	if got := scale(300_000_000, 333_333_333); got != 100_000_000 {
		t.Fatalf("rounding: %d", got)
	}
}
