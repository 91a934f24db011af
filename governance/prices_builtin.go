package governance

import "github.com/llmgateway/caddy-llm-gateway/providers/llm"

// mustMoney parses a literal dollar amount for the built-in table.
func mustMoney(s string) Money {
	m, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

// anthropicRow builds a Claude price from its input and output prices with
// Anthropic's cache rules: 5-minute write 1.25×, 1-hour write 2×, read 0.1×
// input; web search $10 per 1,000 requests.
func anthropicRow(input, output string) Price {
	in := mustMoney(input)
	return Price{
		Input:        in,
		Output:       mustMoney(output),
		CacheWrite5m: in * 5 / 4,
		CacheWrite1h: in * 2,
		CacheRead:    in / 10,
		WebSearch:    mustMoney("0.01"),
	}
}

// sonnetLongContext is Sonnet 4/4.5 with the 1M-context beta: 6 input and
// 22.50 output (caches scaled the same) once total input passes 200K tokens.
func sonnetLongContext() Price {
	p := anthropicRow("3", "15")
	long := anthropicRow("6", "22.50")
	long.WebSearch = 0
	p.LongContext = &long
	p.LongContextThreshold = 200_000
	return p
}

// openAIRow builds an OpenAI price: input, cached input (a cache read), output.
func openAIRow(input, cached, output string) Price {
	return Price{Input: mustMoney(input), CacheRead: mustMoney(cached), Output: mustMoney(output)}
}

// maxOut sets a row's largest output in tokens.
func maxOut(p Price, n int64) Price {
	p.MaxOutput = n
	return p
}

// row is a built-in price listed by GET …/v1/models.
func row(model string, p Price) PriceRow { return PriceRow{Model: llm.Glob(model), Price: p} }

// legacy is a built-in price for a canonical name the provider's API does
// not accept as an id (it prices dated ids), so it is not listed.
func legacy(model string, p Price) PriceRow {
	return PriceRow{Model: llm.Glob(model), Price: p, Unlisted: true}
}

// builtinPrices are list prices, USD per million tokens (Anthropic and
// OpenAI price pages, 2026). Keys are canonical ids: dated ids and
// Bedrock/Vertex ids resolve to these through llm.CanonicalModel.
var builtinPrices = []PriceRow{
	// Claude 5 generation (platform.claude.com model pages, 2026). Haiku 5.5
	// ("from" pricing) and Mythos are left unpriced: add a price line.
	row("claude-fable-5-2", anthropicRow("8", "40")),
	row("claude-fable-5-1", anthropicRow("10", "50")),
	row("claude-fable-5", anthropicRow("10", "50")),
	row("claude-opus-5-5", anthropicRow("4", "20")),
	row("claude-opus-5", anthropicRow("5", "25")),
	row("claude-sonnet-5-5", anthropicRow("2", "10")),
	row("claude-sonnet-5", anthropicRow("2", "10")),
	// Claude Opus 4.5 and later 4.x: 5 / 25.
	row("claude-opus-4-8", anthropicRow("5", "25")),
	row("claude-opus-4-7", anthropicRow("5", "25")),
	row("claude-opus-4-6", anthropicRow("5", "25")),
	row("claude-opus-4-5", maxOut(anthropicRow("5", "25"), 64_000)),
	// Claude Opus 4 and 4.1: 15 / 75.
	row("claude-opus-4-1", maxOut(anthropicRow("15", "75"), 32_000)),
	legacy("claude-opus-4", maxOut(anthropicRow("15", "75"), 32_000)), // claude-opus-4-20250514; the API alias is claude-opus-4-0
	row("claude-opus-4-0", maxOut(anthropicRow("15", "75"), 32_000)),
	// Claude Sonnet 4.6: 3 / 15, no long-context tier.
	row("claude-sonnet-4-6", maxOut(anthropicRow("3", "15"), 64_000)),
	// Claude Sonnet 4 and 4.5: 3 / 15, 6 / 22.50 past 200K input tokens.
	row("claude-sonnet-4-5", maxOut(sonnetLongContext(), 64_000)),
	legacy("claude-sonnet-4", maxOut(sonnetLongContext(), 64_000)), // claude-sonnet-4-20250514
	row("claude-sonnet-4-0", maxOut(sonnetLongContext(), 64_000)),
	legacy("claude-3-7-sonnet", maxOut(anthropicRow("3", "15"), 64_000)),
	// Claude Haiku.
	row("claude-haiku-4-5", maxOut(anthropicRow("1", "5"), 64_000)),
	legacy("claude-3-5-haiku", maxOut(anthropicRow("0.80", "4"), 8_192)),
	legacy("claude-3-haiku", maxOut(anthropicRow("0.25", "1.25"), 4_096)),

	// OpenAI: input / cached input / output.
	row("gpt-5", openAIRow("1.25", "0.125", "10")),
	row("gpt-5-mini", openAIRow("0.25", "0.025", "2")),
	row("gpt-5-nano", openAIRow("0.05", "0.005", "0.40")),
	row("gpt-4.1", maxOut(openAIRow("2", "0.50", "8"), 32_768)),
	row("gpt-4.1-mini", maxOut(openAIRow("0.40", "0.10", "1.60"), 32_768)),
	row("gpt-4.1-nano", maxOut(openAIRow("0.10", "0.025", "0.40"), 32_768)),
	row("gpt-4o", maxOut(openAIRow("2.50", "1.25", "10"), 16_384)),
	row("gpt-4o-mini", maxOut(openAIRow("0.15", "0.075", "0.60"), 16_384)),
	row("o3", openAIRow("2", "0.50", "8")),
	row("o4-mini", openAIRow("1.10", "0.275", "4.40")),
	row("text-embedding-3-small", maxOut(openAIRow("0.02", "0", "0"), 1)),
	row("text-embedding-3-large", maxOut(openAIRow("0.13", "0", "0"), 1)),
	row("text-embedding-ada-002", maxOut(openAIRow("0.10", "0", "0"), 1)),
}
