package governance

import (
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Record is one finished request as the ledger keeps it: who, what, how much,
// and how it ended.
type Record struct {
	// Time is when the request arrived.
	Time time.Time
	// Key, Team and Customer attribute the request ("" when absent).
	Key, Team, Customer string
	// Provider is the provider that served the request ("" when none did).
	Provider string
	// Model is the canonical model; RequestedModel is the id the client sent.
	Model, RequestedModel string
	// Surface is the API shape, as llm.Surface.String.
	Surface string
	// Status is the HTTP status the client received.
	Status int
	// Stream is true for a streamed response.
	Stream bool
	// Usage is what the request consumed.
	Usage llm.Usage
	// Cost is Usage priced.
	Cost Money
	// PriceModel and PriceEffectiveFrom name the price row that priced the
	// request (its model or glob and its effective_from date, YYYY-MM-DD);
	// both empty when the model was unpriced. The speed and inference
	// geography it was billed with are Usage.Speed and Usage.InferenceGeo.
	PriceModel, PriceEffectiveFrom string
	// SessionID is Claude Code's X-Claude-Code-Session-Id, when sent.
	SessionID string
	// Duration is the time from arrival to the last byte.
	Duration time.Duration
	// RequestID is the gateway's own request id: the x-llm-gateway-request-id
	// the client received, served or refused, and the access log's
	// llm.request_id.
	RequestID string
	// ProviderRequestID is the provider's own id for the response (Anthropic,
	// Vertex and Foundry request-id, Bedrock x-amzn-requestid, OpenAI
	// x-request-id), as the client received it; "" when no provider answered.
	ProviderRequestID string
	// Labels are the request's metrics_label values by label name, as the
	// headers carried them (bounded in size, but not capped to a number of
	// distinct values like the Prometheus label); nil when there are none.
	Labels map[string]string
	// UserAgent is the client's User-Agent header (e.g. claude-cli/2.1.328).
	UserAgent string
	// TTFT is the time from arrival to the first token; 0 when no token came.
	TTFT time.Duration
	// Attempts is how many providers the request was sent to (0 when it was
	// refused before any).
	Attempts int
	// Rejection is why the gateway refused the request (the reason the
	// rejections metric counts, e.g. "budget"); "" when it did not.
	Rejection string
	// ErrorType is the error type of a provider's error answer (e.g.
	// overloaded_error); "" when there was none.
	ErrorType string
	// CacheHit is true when the gateway's response cache answered the
	// request: no provider was called. Usage and Cost are then what the
	// client was billed for the replay (normally zero).
	CacheHit bool
	// Saved is what a cache hit saved: the cost of the original response
	// the cache replayed (0 for a request that was not a cache hit).
	Saved Money
}

// PriceRow is the price row as "model@effective_from" ("" when unpriced),
// the price_row group of a usage report.
func (r *Record) PriceRow() string {
	if r.PriceModel == "" {
		return ""
	}
	return r.PriceModel + "@" + r.PriceEffectiveFrom
}

// SetPrice records the row that priced the request (nil: unpriced).
func (r *Record) SetPrice(p *Price) {
	r.PriceModel, r.PriceEffectiveFrom = "", ""
	if p == nil {
		return
	}
	r.PriceModel = p.Model
	if !p.EffectiveFrom.IsZero() {
		r.PriceEffectiveFrom = p.EffectiveFrom.UTC().Format(EffectiveDateLayout)
	}
}

// Totals are the running sums for one scope or one group of a report.
type Totals struct {
	Requests int64     `json:"requests"`
	Usage    llm.Usage `json:"usage"`
	Cost     Money     `json:"cost_nano_usd"`
	// CacheHits counts the requests the response cache answered.
	CacheHits int64 `json:"cache_hits"`
	// Saved sums what those cache hits saved (Record.Saved).
	Saved Money `json:"saved_nano_usd"`
}

func (t *Totals) add(r *Record) {
	t.Requests++
	t.Usage.AddCounts(r.Usage)
	t.Cost += r.Cost
	if r.CacheHit {
		t.CacheHits++
	}
	t.Saved += r.Saved
}

// Add adds o's sums to t.
func (t *Totals) Add(o Totals) {
	t.Requests += o.Requests
	t.Usage.AddCounts(o.Usage)
	t.Cost += o.Cost
	t.CacheHits += o.CacheHits
	t.Saved += o.Saved
}

// Tokens is every token kind summed: input, output, cache reads and both
// cache writes (what order_by=tokens sorts by).
func (t *Totals) Tokens() int64 {
	u := &t.Usage
	return u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens
}

// CacheReadShare is the share of prompt tokens read from the prompt cache:
// cache reads over input + cache reads + cache writes (0 when there were
// no prompt tokens).
func (t *Totals) CacheReadShare() float64 {
	u := &t.Usage
	prompt := u.InputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens
	if prompt == 0 {
		return 0
	}
	return float64(u.CacheReadTokens) / float64(prompt)
}

// GroupBy is a usage report's grouping.
type GroupBy string

// The groupings the usage report supports.
const (
	GroupByKey      GroupBy = "key"
	GroupByTeam     GroupBy = "team"
	GroupByCustomer GroupBy = "customer"
	GroupByModel    GroupBy = "model"
	GroupByProvider GroupBy = "provider"
	GroupByDay      GroupBy = "day"
	// GroupBySpeed groups by the usage's speed ("fast", "standard", "").
	GroupBySpeed GroupBy = "speed"
	// GroupByInferenceGeo groups by the usage's inference_geo ("us", …).
	GroupByInferenceGeo GroupBy = "inference_geo"
	// GroupByPriceRow groups by the price row, "model@effective_from".
	GroupByPriceRow GroupBy = "price_row"
)

// ParseGroupBy validates a grouping name.
func ParseGroupBy(s string) (GroupBy, bool) {
	switch g := GroupBy(s); g {
	case GroupByKey, GroupByTeam, GroupByCustomer, GroupByModel, GroupByProvider, GroupByDay,
		GroupBySpeed, GroupByInferenceGeo, GroupByPriceRow:
		return g, true
	}
	return "", false
}

// UsageQuery asks the ledger for totals grouped one way over [From, To).
// Zero times are open ends. Days are calendar days in Location.
type UsageQuery struct {
	GroupBy  GroupBy
	From, To time.Time
	Location *time.Location
}

// UsageRow is one group of a usage report.
type UsageRow struct {
	Group  string `json:"group"`
	Totals Totals `json:"totals"`
}
