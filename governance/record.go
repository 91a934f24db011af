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
	// SessionID is Claude Code's X-Claude-Code-Session-Id, when sent.
	SessionID string
	// Duration is the time from arrival to the last byte.
	Duration time.Duration
}

// Totals are the running sums for one scope.
type Totals struct {
	Requests int64     `json:"requests"`
	Usage    llm.Usage `json:"usage"`
	Cost     Money     `json:"cost_nano_usd"`
}

func (t *Totals) add(r *Record) {
	t.Requests++
	t.Usage.AddCounts(r.Usage)
	t.Cost += r.Cost
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
)

// ParseGroupBy validates a grouping name.
func ParseGroupBy(s string) (GroupBy, bool) {
	switch g := GroupBy(s); g {
	case GroupByKey, GroupByTeam, GroupByCustomer, GroupByModel, GroupByProvider, GroupByDay:
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
