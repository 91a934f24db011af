package module

import (
	"net/http"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func init() { RegisterDashboardEndpoint("cache_insight", serveCacheInsight) }

// cacheInsightMaxRows bounds the ledger rows one insight reads.
const cacheInsightMaxRows = 5_000_000

// serveCacheInsight answers GET /llm_gateway/cache_insight: Anthropic
// prompt-cache insight from the ledger, grouped by group_by (any of the
// usage report's dimensions; none: the total only), with the usage
// report's filters and from/to, and limit on the rows: the share of input
// read from the prompt cache, what cache writes cost, and the 1-hour
// writes no later request of the same key, model and session read within
// the hour (governance.InsightBuilder). Rows come most wasteful first.
func serveCacheInsight(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseLedgerQuery(r, map[string]bool{"group_by": true})
	if err != nil {
		return err
	}
	switch {
	case lq.orderBy != "":
		return badRequest("cache_insight does not take order_by: rows come by unread 1-hour write cost, then cache write cost")
	case lq.cursor != "":
		return badRequest("cache_insight does not take cursor: use limit, filters and from/to")
	case lq.format == "csv":
		return badRequest("cache_insight answers JSON only")
	}
	st := lq.st
	groupBy := lq.q.Get("group_by")
	var dims []governance.Dim
	seen := map[governance.Dim]bool{}
	if groupBy != "" {
		for _, name := range strings.Split(groupBy, ",") {
			d, ok := governance.ParseDim(strings.TrimSpace(name))
			if !ok || seen[d] {
				return badRequest("group_by: unknown or repeated dimension %q (want %s)", name, filterNames)
			}
			seen[d] = true
			dims = append(dims, d)
		}
	}
	b := governance.NewInsightReport(dims, st.location)
	q := governance.RequestsQuery{Filters: lq.filters, From: lq.from, To: lq.to, Location: st.location, Limit: governance.MaxPageLimit}
	read := 0
	for {
		page, err := st.store.ledger.Requests(r.Context(), q)
		if err != nil {
			return queryError(err)
		}
		for i := range page.Rows {
			rec := &page.Rows[i]
			b.Add(rec, st.insightPrice(rec))
		}
		read += len(page.Rows)
		if page.NextCursor == "" || read >= cacheInsightMaxRows {
			break
		}
		q.Cursor = page.NextCursor
	}
	rep := b.Report()
	rows := rep.Rows
	if lq.limit > 0 && len(rows) > lq.limit {
		rows = rows[:lq.limit]
	}
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		m := insightFields(row.Insight)
		for j, d := range dims {
			m[string(d)] = row.Values[j]
		}
		out[i] = m
	}
	resp := map[string]any{"group_by": groupBy, "timezone": st.location.String(), "rows": out,
		"total": insightFields(rep.Total), "ledger_rows": read}
	if !lq.from.IsZero() {
		resp["from"] = lq.from.Format(time.RFC3339)
	}
	if !lq.to.IsZero() {
		resp["to"] = lq.to.Format(time.RFC3339)
	}
	return writeAdminJSON(w, resp)
}

// insightPrice is the row that priced a ledger row, scaled by its
// provider's price_multiplier (nil: unpriced, or a cache hit).
func (st *state) insightPrice(rec *governance.Record) *governance.Price {
	if rec.Usage.CacheWriteTokens() == 0 || st.registry == nil || st.registry.Prices == nil {
		return nil
	}
	p := st.registry.Prices.LookupModelAt(rec.RequestedModel, rec.Model, rec.Time)
	if p == nil {
		return nil
	}
	if m, ok := st.multipliers[rec.Provider]; ok {
		p = p.Scaled(m)
	}
	return p
}

// insightFields is a CacheInsight as the fields of a row.
func insightFields(c governance.CacheInsight) map[string]any {
	return map[string]any{
		"input_tokens_total":                  c.InputTokens,
		"cache_read_tokens":                   c.CacheReadTokens,
		"cache_read_share":                    c.CacheReadShare,
		"cache_write_cost_usd":                c.CacheWriteCost.USD(),
		"cache_write_cost_nano_usd":           int64(c.CacheWriteCost),
		"cache_write_1h_tokens":               c.Write1hTokens,
		"cache_write_1h_unread_tokens":        c.Write1hUnreadTokens,
		"cache_write_1h_unread_cost_usd":      c.Write1hUnreadCost.USD(),
		"cache_write_1h_unread_cost_nano_usd": int64(c.Write1hUnreadCost),
	}
}
