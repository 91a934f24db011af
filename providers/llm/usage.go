package llm

// Usage is what one call consumed, in the provider-neutral shape every
// family reports and governance prices. Token kinds never overlap:
// InputTokens excludes cache reads and writes, OutputTokens includes thinking
// (and OpenAI reasoning) tokens.
type Usage struct {
	// InputTokens are uncached input tokens.
	InputTokens int64 `json:"input_tokens"`
	// OutputTokens are generated tokens, thinking included.
	OutputTokens int64 `json:"output_tokens"`
	// CacheReadTokens are input tokens served from the prompt cache.
	CacheReadTokens int64 `json:"cache_read_tokens"`
	// CacheWrite5mTokens are input tokens written to the 5-minute cache.
	CacheWrite5mTokens int64 `json:"cache_write_5m_tokens"`
	// CacheWrite1hTokens are input tokens written to the 1-hour cache.
	CacheWrite1hTokens int64 `json:"cache_write_1h_tokens"`
	// WebSearchRequests counts server-side web searches.
	WebSearchRequests int64 `json:"web_search_requests"`
	// Complete is true when the provider's final usage report was seen
	// (a non-streaming body, or a stream that reached its end).
	Complete bool `json:"complete"`
	// OutputEstimated is true when OutputTokens were counted from the text
	// (or, for a non-streamed body, the bytes) that passed because the
	// response was cut before any usage count arrived.
	OutputEstimated bool `json:"output_estimated,omitempty"`
	// InputEstimated is true when InputTokens were estimated from the
	// request because the provider's usage report never arrived (a
	// response cut before it).
	InputEstimated bool `json:"input_estimated,omitempty"`
}

// TotalInput is every input token, cached or not: the figure long-context
// price tiers are decided on.
func (u Usage) TotalInput() int64 {
	return u.InputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens
}

// CacheWriteTokens is the sum of both cache-write durations.
func (u Usage) CacheWriteTokens() int64 { return u.CacheWrite5mTokens + u.CacheWrite1hTokens }

// Add returns the sum of u and v, complete only when both are.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:        u.InputTokens + v.InputTokens,
		OutputTokens:       u.OutputTokens + v.OutputTokens,
		CacheReadTokens:    u.CacheReadTokens + v.CacheReadTokens,
		CacheWrite5mTokens: u.CacheWrite5mTokens + v.CacheWrite5mTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens + v.CacheWrite1hTokens,
		WebSearchRequests:  u.WebSearchRequests + v.WebSearchRequests,
		Complete:           u.Complete && v.Complete,
		OutputEstimated:    u.OutputEstimated || v.OutputEstimated,
		InputEstimated:     u.InputEstimated || v.InputEstimated,
	}
}

// IsZero reports whether no tokens and no searches were used.
func (u Usage) IsZero() bool {
	return u.InputTokens == 0 && u.OutputTokens == 0 && u.CacheReadTokens == 0 &&
		u.CacheWrite5mTokens == 0 && u.CacheWrite1hTokens == 0 && u.WebSearchRequests == 0
}
