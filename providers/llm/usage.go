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
	// Speed is the usage object's "speed" ("fast" for Anthropic's fast
	// mode, "standard" or "" otherwise): fast requests are billed at the
	// row's fast rates.
	Speed string `json:"speed,omitempty"`
	// InferenceGeo is the usage object's "inference_geo" ("us" for US-only
	// inference, billed at 1.1× every token kind; "global" or "" otherwise).
	InferenceGeo string `json:"inference_geo,omitempty"`
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

// TokenKind is one kind of counted usage. Every sum, metric and
// rate-limit count iterates TokenKinds through Count and AddCounts, so a
// new kind is added here, in Usage, in the price row and in the ledger's
// columns, and nowhere else.
type TokenKind uint8

// The token kinds (web searches are counted like tokens).
const (
	InputKind TokenKind = iota
	OutputKind
	CacheReadKind
	CacheWrite5mKind
	CacheWrite1hKind
	WebSearchKind
)

// TokenKinds lists every kind, in the order of Usage's fields.
var TokenKinds = [...]TokenKind{InputKind, OutputKind, CacheReadKind, CacheWrite5mKind, CacheWrite1hKind, WebSearchKind}

var kindNames = [...]string{"input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "web_search"}

// String is the kind's name in metrics and reports: "input", "output",
// "cache_read", "cache_write_5m", "cache_write_1h", "web_search".
func (k TokenKind) String() string { return kindNames[k] }

// IsToken is false for web searches, which are requests, not tokens.
func (k TokenKind) IsToken() bool { return k != WebSearchKind }

// counter returns the field of u that counts kind k.
func (u *Usage) counter(k TokenKind) *int64 {
	switch k {
	case InputKind:
		return &u.InputTokens
	case OutputKind:
		return &u.OutputTokens
	case CacheReadKind:
		return &u.CacheReadTokens
	case CacheWrite5mKind:
		return &u.CacheWrite5mTokens
	case CacheWrite1hKind:
		return &u.CacheWrite1hTokens
	default:
		return &u.WebSearchRequests
	}
}

// Count is how many of kind k u counts.
func (u Usage) Count(k TokenKind) int64 { return *u.counter(k) }

// AddCounts adds v's counts of every kind to u's (flags untouched).
func (u *Usage) AddCounts(v Usage) {
	for _, k := range TokenKinds {
		*u.counter(k) += v.Count(k)
	}
}

// Add returns the sum of u and v, complete only when both are.
func (u Usage) Add(v Usage) Usage {
	sum := u
	sum.AddCounts(v)
	sum.Complete = u.Complete && v.Complete
	sum.OutputEstimated = u.OutputEstimated || v.OutputEstimated
	sum.InputEstimated = u.InputEstimated || v.InputEstimated
	return sum
}

// Fast reports whether the usage was billed in fast mode.
func (u Usage) Fast() bool { return u.Speed == SpeedFast }

// USOnly reports whether the usage ran on US-only inference.
func (u Usage) USOnly() bool { return u.InferenceGeo == GeoUS }

// The values of Usage.Speed and Usage.InferenceGeo that change a price.
const (
	SpeedFast = "fast"
	GeoUS     = "us"
)

// IsZero reports whether no tokens and no searches were used.
func (u Usage) IsZero() bool {
	for _, k := range TokenKinds {
		if u.Count(k) != 0 {
			return false
		}
	}
	return true
}
