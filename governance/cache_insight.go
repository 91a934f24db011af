package governance

import (
	"sort"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// CacheInsight is what a group of ledger rows (a key, a team, a model, a
// session) says about Anthropic prompt caching: how much of the input was
// read from the cache, what writing to it cost, and how much of the
// 1-hour cache was written and, as far as the ledger can tell, never read
// again within the hour: spend on caching that bought nothing.
type CacheInsight struct {
	// InputTokens is every input token: uncached, cache reads and writes.
	InputTokens int64 `json:"input_tokens_total"`
	// CacheReadTokens are the input tokens read from the cache.
	CacheReadTokens int64 `json:"cache_read_tokens"`
	// CacheReadShare is CacheReadTokens / InputTokens (0 without input).
	CacheReadShare float64 `json:"cache_read_share"`
	// CacheWriteCost is what the cache writes (5-minute and 1-hour) cost,
	// at the rows' prices.
	CacheWriteCost Money `json:"cache_write_cost_nano_usd"`
	// Write1hTokens are the tokens written to the 1-hour cache.
	Write1hTokens int64 `json:"cache_write_1h_tokens"`
	// Write1hUnreadTokens and Write1hUnreadCost are the 1-hour writes no
	// later request of the same chain (key, model and session) read
	// within the hour: an estimate, see InsightBuilder.
	Write1hUnreadTokens int64 `json:"cache_write_1h_unread_tokens"`
	Write1hUnreadCost   Money `json:"cache_write_1h_unread_cost_nano_usd"`
}

// InsightBuilder accumulates ledger rows into a CacheInsight. Rows may come
// in any order.
//
// "Written and never read" is estimated from the ledger alone, which knows
// token counts but not which prefix a request cached: a request's 1-hour
// write counts as read when a later request of the same chain (the same
// key, canonical model and Claude Code session; key and model when there
// is no session) within the hour read more from the cache than the writing
// request itself did, i.e. its read reached into what was written. The
// estimate can only err towards "read" when two conversations of one chain
// interleave.
type InsightBuilder struct {
	rows []insightRow
	sum  CacheInsight
}

type insightRow struct {
	ns    int64
	chain string
	read  int64
	w1h   int64
	cost  Money // the 1-hour write's cost
}

// Add counts one ledger row, priced by price (nil: unpriced, its writes
// cost nothing).
func (b *InsightBuilder) Add(r *Record, price *Price) {
	u := r.Usage
	b.sum.InputTokens += u.TotalInput()
	b.sum.CacheReadTokens += u.CacheReadTokens
	w5, w1 := writeCosts(price, u)
	b.sum.CacheWriteCost += w5 + w1
	if u.CacheWrite1hTokens > 0 || u.CacheReadTokens > 0 {
		b.rows = append(b.rows, insightRow{ns: unixNanos(r.Time), chain: r.Key + "\x00" + r.Model + "\x00" + r.SessionID,
			read: u.CacheReadTokens, w1h: u.CacheWrite1hTokens, cost: w1})
	}
	b.sum.Write1hTokens += u.CacheWrite1hTokens
}

// writeCosts is what the 5-minute and 1-hour writes of u cost at price,
// at the rates of u's prompt size and mode, each rounded half-up.
func writeCosts(p *Price, u llm.Usage) (w5, w1 Money) {
	if p == nil {
		return 0, 0
	}
	r := p.RatesFor(u.TotalInput(), u.Fast())
	if u.USOnly() {
		r = r.scaled(USOnlyMultiplier)
	}
	var a, b accumulator
	a.add(u.CacheWrite5mTokens, r.CacheWrite5m)
	b.add(u.CacheWrite1hTokens, r.CacheWrite1h)
	return a.perMillionRoundHalfUp(), b.perMillionRoundHalfUp()
}

// Result is the insight of every row added.
func (b *InsightBuilder) Result() CacheInsight {
	out := b.sum
	if out.InputTokens > 0 {
		out.CacheReadShare = float64(out.CacheReadTokens) / float64(out.InputTokens)
	}
	rows := b.rows
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].chain != rows[j].chain {
			return rows[i].chain < rows[j].chain
		}
		return rows[i].ns < rows[j].ns
	})
	hour := int64(time.Hour)
	for i, w := range rows {
		if w.w1h == 0 {
			continue
		}
		read := false
		for _, later := range rows[i+1:] {
			if later.chain != w.chain || later.ns-w.ns > hour {
				break
			}
			if later.read > w.read {
				read = true
				break
			}
		}
		if !read {
			out.Write1hUnreadTokens += w.w1h
			out.Write1hUnreadCost += w.cost
		}
	}
	return out
}

// InsightRow is one group of an insight report: its dimension values in
// the report's Dims order.
type InsightRow struct {
	Values  []string
	Insight CacheInsight
}

// InsightReport is a prompt-cache insight per group. Rows are sorted by
// what 1-hour writes never read cost, then by what cache writes cost (both
// descending), then by their values; Total covers every row added.
type InsightReport struct {
	Rows  []InsightRow
	Total CacheInsight
}

// InsightReportBuilder groups ledger rows by dimensions (those of a
// ReportQuery: key, team, model, session, calendar buckets in Location …)
// into a CacheInsight each.
type InsightReportBuilder struct {
	dims   []Dim
	loc    *time.Location
	groups map[string]*insightGroup
	total  InsightBuilder
}

type insightGroup struct {
	values []string
	b      InsightBuilder
}

// NewInsightReport starts an insight report grouped by dims (none: the
// total only), calendar buckets taken in loc (nil: UTC).
func NewInsightReport(dims []Dim, loc *time.Location) *InsightReportBuilder {
	if loc == nil {
		loc = timeUTC
	}
	return &InsightReportBuilder{dims: dims, loc: loc, groups: map[string]*insightGroup{}}
}

// Add counts one ledger row priced by price (the row that priced it; nil
// when unpriced).
func (b *InsightReportBuilder) Add(r *Record, price *Price) {
	b.total.Add(r, price)
	if len(b.dims) == 0 {
		return
	}
	lr := fromRecord(r)
	vals := make([]string, len(b.dims))
	for i, d := range b.dims {
		vals[i] = lr.value(d, b.loc)
	}
	k := strings.Join(vals, "\x00")
	g := b.groups[k]
	if g == nil {
		g = &insightGroup{values: vals}
		b.groups[k] = g
	}
	g.b.Add(r, price)
}

// Report is the insight of every row added.
func (b *InsightReportBuilder) Report() InsightReport {
	rep := InsightReport{Total: b.total.Result(), Rows: make([]InsightRow, 0, len(b.groups))}
	for _, g := range b.groups {
		rep.Rows = append(rep.Rows, InsightRow{Values: g.values, Insight: g.b.Result()})
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, c := &rep.Rows[i].Insight, &rep.Rows[j].Insight
		if a.Write1hUnreadCost != c.Write1hUnreadCost {
			return a.Write1hUnreadCost > c.Write1hUnreadCost
		}
		if a.CacheWriteCost != c.CacheWriteCost {
			return a.CacheWriteCost > c.CacheWriteCost
		}
		return strings.Join(rep.Rows[i].Values, "\x00") < strings.Join(rep.Rows[j].Values, "\x00")
	})
	return rep
}
