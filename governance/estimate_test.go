package governance

import "testing"

func TestEstimateRequest(t *testing.T) {
	row := &Price{MaxOutput: 64_000}
	for _, tc := range []struct {
		name                          string
		body                          int
		maxTokens, choices, keyCap    int64
		price                         *Price
		wantInput, wantOutput, tokens int64
	}{
		{name: "max_tokens", body: 300, maxTokens: 1000, choices: 1, price: row, wantInput: 100, wantOutput: 1000},
		{name: "input rounds up", body: 301, maxTokens: 1, choices: 1, wantInput: 101, wantOutput: 1},
		{name: "n multiplies the output", body: 30, maxTokens: 1000, choices: 8, wantInput: 10, wantOutput: 8000},
		{name: "n below one counts once", body: 3, maxTokens: 5, choices: 0, wantInput: 1, wantOutput: 5},
		{name: "no max_tokens: the key's cap", body: 3, keyCap: 2000, choices: 1, price: row, wantInput: 1, wantOutput: 2000},
		{name: "no max_tokens nor cap: the model's largest output", body: 3, choices: 2, price: row, wantInput: 1, wantOutput: 128_000},
		{name: "unknown model: the default", body: 3, choices: 1, wantInput: 1, wantOutput: DefaultMaxOutput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := EstimateRequest(tc.body, tc.maxTokens, tc.choices, tc.keyCap, tc.price)
			if e.InputTokens != tc.wantInput || e.OutputTokens != tc.wantOutput || e.Tokens() != tc.wantInput+tc.wantOutput {
				t.Fatalf("got %+v, want input %d output %d", e, tc.wantInput, tc.wantOutput)
			}
		})
	}
	priced := &Price{Rates: Rates{Input: 3_000_000_000, Output: 15_000_000_000, CacheWrite1h: 6_000_000_000}}
	one := EstimateRequest(3000, 1000, 1, 0, priced).WorstCase(priced)
	four := EstimateRequest(3000, 1000, 4, 0, priced).WorstCase(priced)
	if one <= 0 || four-one != 3*Money(1000*15_000) {
		t.Fatalf("worst case n=1 %d, n=4 %d: the three extra choices must cost 3×1000 output tokens", one, four)
	}
	fast := EstimateRequest(3000, 1000, 1, 0, priced)
	fast.Speed, fast.InferenceGeo = "fast", "us" // no fast rates: standard, ×1.1
	if got := fast.WorstCase(priced); got != scale(one, USOnlyMultiplier) {
		t.Fatalf("US-only worst case %d, want %d", got, scale(one, USOnlyMultiplier))
	}
	if EstimateRequest(3000, 1000, 1, 0, nil).WorstCase(nil) != 0 {
		t.Fatal("an unpriced model's worst case is 0")
	}
}
