package module

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// mePathSuffix ends the developer's own view, under any prefix (none
// included): GET …/llm_gateway/me.
const mePathSuffix = "/llm_gateway/me"

// isMeRequest reports whether r asks for the developer's own view.
func isMeRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, mePathSuffix)
}

// meSessionLookback bounds how far back the ledger is read for a session's
// cost: Claude Code sessions are hours long, resumed ones days.
const meSessionLookback = 7 * 24 * time.Hour

// meCacheTTL is how long the ledger part of an answer is reused when this
// process records nothing new for the key (other instances of a fleet may).
const meCacheTTL = 5 * time.Second

// meJSON is the answer to GET …/llm_gateway/me. Never a secret.
type meJSON struct {
	Key      string `json:"key"`
	Team     string `json:"team,omitempty"`
	Customer string `json:"customer,omitempty"`
	Timezone string `json:"timezone"`
	Time     string `json:"time"`
	// Budgets are every budget on the key's path, narrowest level first.
	Budgets []meBudgetJSON `json:"budgets"`
	// Spend is the key's own spend by period: "day" (today) always, and the
	// period of every budget on its path.
	Spend map[string]mePeriodJSON `json:"spend"`
	// Session is the Claude Code session's cost so far (with
	// X-Claude-Code-Session-Id).
	Session *meSessionJSON `json:"session,omitempty"`
	// Line is the one-line form (?format=text).
	Line string `json:"line"`
}

type meBudgetJSON struct {
	Scope string `json:"scope"`
	Name  string `json:"name"`
	budgetJSON
	RemainingNanoUSD int64 `json:"remaining_nano_usd"`
}

type meAmountJSON struct {
	Model       string  `json:"model,omitempty"`
	Requests    int64   `json:"requests"`
	CostUSD     float64 `json:"cost_usd"`
	CostNanoUSD int64   `json:"cost_nano_usd"`
}

type mePeriodJSON struct {
	From string `json:"from,omitempty"`
	meAmountJSON
	ByModel []meAmountJSON `json:"by_model"`
}

type meSessionJSON struct {
	ID string `json:"id"`
	meAmountJSON
}

func meAmount(model string, t governance.Totals) meAmountJSON {
	return meAmountJSON{Model: model, Requests: t.Requests, CostUSD: t.Cost.USD(), CostNanoUSD: int64(t.Cost)}
}

// serveMe answers GET …/llm_gateway/me for an authenticated key: its path,
// every budget on it, its spend today and in each budget's period by model,
// and the session's cost. It is neither forwarded nor ledgered.
func (st *state) serveMe(w http.ResponseWriter, r *http.Request, key *governance.Key, now time.Time) {
	d := dialectOfPath(r.URL.Path)
	if ref := key.Usable(now); ref != nil {
		if ref.Reason == "expired" {
			st.reject(w, d, "expired", llm.ErrAuthentication, fmt.Sprintf("%s expired at %s", ref.Scope, ref.At.UTC().Format(time.RFC3339)))
		} else {
			st.reject(w, d, "disabled", llm.ErrPermission, fmt.Sprintf("%s is disabled", ref.Scope))
		}
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "format" {
			st.reject(w, d, "invalid_request", llm.ErrInvalidRequest, fmt.Sprintf("unknown parameter %q (llm_gateway/me takes format=json|text)", labelValue(name)))
			return
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "text" {
		st.reject(w, d, "invalid_request", llm.ErrInvalidRequest, "format must be json or text")
		return
	}
	session := sessionID(r)
	if strings.ContainsAny(session, "*?") {
		st.reject(w, d, "invalid_request", llm.ErrInvalidRequest, "X-Claude-Code-Session-Id may not hold * or ?")
		return
	}
	if !st.store.tryAcquire() {
		st.reject(w, d, "unavailable", llm.ErrOverloaded, "the gateway is reloading; retry")
		return
	}
	defer st.store.release()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := st.me(ctx, key, session, now)
	if err != nil {
		st.logger.Error("llm_gateway/me: reading spend", zap.String("key", key.Name), zap.Error(err))
		st.reject(w, d, "store", llm.ErrOverloaded, "the gateway cannot read budgets and spend right now; retry shortly")
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if format == "text" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(out.Line + "\n"))
		return
	}
	h.Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// me builds the answer: budgets from the counters (fleet-wide with Redis),
// spend and the session from the ledger (cached per key and session).
func (st *state) me(ctx context.Context, key *governance.Key, session string, now time.Time) (*meJSON, error) {
	out := &meJSON{Key: key.Name, Team: key.TeamName(), Customer: key.CustomerName(),
		Timezone: st.location.String(), Time: now.In(st.location).Format(time.RFC3339), Budgets: []meBudgetJSON{}}
	var levels []governance.Level
	periods := []governance.Period{governance.PeriodDay}
	for _, l := range key.Levels() {
		if len(l.Budgets) == 0 {
			continue
		}
		levels = append(levels, governance.Level{Scope: l.Scope, Budgets: l.Budgets})
		for _, b := range l.Budgets {
			if !slices.Contains(periods, b.Period) {
				periods = append(periods, b.Period)
			}
		}
	}
	var statuses []governance.BudgetStatus
	if len(levels) > 0 {
		var err error
		if statuses, err = st.store.counters.Status(ctx, levels, now, st.location); err != nil {
			st.metrics.storeErrors.WithLabelValues("status").Inc()
			return nil, err
		}
	}
	for _, s := range statuses {
		out.Budgets = append(out.Budgets, meBudgetJSON{Scope: s.Scope.Kind.String(), Name: s.Scope.Name,
			budgetJSON: toBudgetJSON(s), RemainingNanoUSD: int64(governance.Remaining(s))})
	}
	lv, err := st.meLedger(ctx, key.Name, periods, session, now)
	if err != nil {
		return nil, err
	}
	out.Spend = lv.spend
	line := governance.MeLine{Key: key.Name, Budgets: statuses, Today: governance.Money(lv.spend["day"].CostNanoUSD)}
	if session != "" {
		out.Session = &meSessionJSON{ID: session, meAmountJSON: meAmount("", lv.session)}
		line.Session, line.HasSession = lv.session.Cost, true
	}
	out.Line = line.String()
	return out, nil
}

// meLedgerView is the ledger part of an answer.
type meLedgerView struct {
	gen     uint64
	at      time.Time
	periods []governance.Period
	spend   map[string]mePeriodJSON
	session governance.Totals
}

// meCache keeps ledger views by key and session, process-wide (across
// reloads), so a status line refreshing every few seconds reads the ledger
// only when the key has spent since.
var meCache = &meViewCache{views: map[string]*meLedgerView{}}

// meCacheMax bounds the cached views; past it the cache starts afresh.
const meCacheMax = 4096

type meViewCache struct {
	mu    sync.Mutex
	views map[string]*meLedgerView
	gens  sync.Map // key name → *atomic.Uint64, bumped when the key is recorded
}

// touch marks the key's cached views stale: a request of it was recorded.
func (c *meViewCache) touch(key string) {
	if g, ok := c.gens.Load(key); ok {
		g.(*atomic.Uint64).Add(1)
	}
}

func (c *meViewCache) gen(key string) uint64 {
	g, _ := c.gens.LoadOrStore(key, new(atomic.Uint64))
	return g.(*atomic.Uint64).Load()
}

func (c *meViewCache) get(id string, gen uint64, now time.Time, periods []governance.Period, day time.Time) *meLedgerView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.views[id]
	if v == nil || v.gen != gen || now.Sub(v.at) >= meCacheTTL || now.Before(v.at) || !slices.Equal(v.periods, periods) {
		return nil
	}
	// A view from before midnight does not answer for today.
	if v.at.Before(day) {
		return nil
	}
	return v
}

func (c *meViewCache) put(id string, v *meLedgerView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.views) >= meCacheMax {
		clear(c.views)
	}
	c.views[id] = v
}

// meLedger reads the key's spend by model since the start of each period,
// and the session's cost, from the ledger (flushed first, so the request
// that just finished is in).
func (st *state) meLedger(ctx context.Context, key string, periods []governance.Period, session string, now time.Time) (*meLedgerView, error) {
	id := key + "\x00" + session
	gen := meCache.gen(key)
	day := governance.PeriodDay.Start(now, st.location)
	if v := meCache.get(id, gen, now, periods, day); v != nil {
		return v, nil
	}
	if err := st.store.ledger.Flush(ctx); err != nil {
		return nil, err
	}
	v := &meLedgerView{gen: gen, at: now, periods: periods, spend: make(map[string]mePeriodJSON, len(periods))}
	byKey := governance.Filter{Dim: governance.DimKey, Pattern: key}
	for _, p := range periods {
		q := governance.ReportQuery{Dims: []governance.Dim{governance.DimModel}, Filters: []governance.Filter{byKey}, Location: st.location}
		pj := mePeriodJSON{ByModel: []meAmountJSON{}}
		if p != governance.PeriodTotal {
			q.From = p.Start(now, st.location)
			pj.From = q.From.Format(time.RFC3339)
		}
		rep, err := st.store.ledger.Report(ctx, q)
		if err != nil {
			return nil, err
		}
		pj.meAmountJSON = meAmount("", rep.Total)
		for _, row := range rep.Rows {
			pj.ByModel = append(pj.ByModel, meAmount(row.Values[0], row.Totals))
		}
		v.spend[p.String()] = pj
	}
	if session != "" {
		rep, err := st.store.ledger.Report(ctx, governance.ReportQuery{
			Dims:     []governance.Dim{governance.DimSession},
			Filters:  []governance.Filter{byKey, {Dim: governance.DimSession, Pattern: session}},
			From:     now.Add(-meSessionLookback),
			Location: st.location,
		})
		if err != nil {
			return nil, err
		}
		v.session = rep.Total
	}
	meCache.put(id, v)
	return v, nil
}
