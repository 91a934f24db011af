package module

import (
	"time"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// This file turns what the pipeline sees into alerts for the notifier
// (notify.go): budget crossings at settlement, refusals at admission, and
// session costs as requests are recorded. Detection is in governance;
// nothing here blocks.

// alerts is the notifier a request's alerts go to: its config's, or —
// when that config was unloaded while the request was in flight (a
// reload) — the newest config's on the same store, so an alert whose cause
// is remembered as sent is not lost with the old config.
func (st *state) alerts() *notifier {
	n := st.notify
	if n == nil || !n.closed.Load() {
		return n
	}
	for _, g := range activeGateways.list() {
		if gs := g.state; gs != nil && gs.store == st.store && gs.notify != nil && !gs.notify.closed.Load() {
			return gs.notify
		}
	}
	return n
}

// notifyBudgets sends the budget_warn and budget_exhausted alerts of one
// settlement's changes; t is the settled ticket (its reservations name the
// periods charged).
func (st *state) notifyBudgets(t *governance.Ticket, changes []governance.BudgetChange, key string, now time.Time) {
	n := st.alerts()
	if len(changes) == 0 || !n.wants(governance.EventBudgetWarn) && !n.wants(governance.EventBudgetExhausted) {
		return
	}
	starts := func(c governance.BudgetChange) (time.Time, bool) {
		for _, r := range t.Reservations {
			if r.Scope == c.Scope && r.Budget == c.Budget {
				return r.PeriodStart, true
			}
		}
		return time.Time{}, false
	}
	for _, e := range st.registry.BudgetEvents(changes, key, now, st.location, starts) {
		n.send(&e, st.store.alerts.sent)
	}
}

// notifyRefusal sends the alert of an admission refusal: budget_exhausted
// for a spent budget, rate_limited for a rate limit.
func (st *state) notifyRefusal(rej *governance.Rejection, key string, now time.Time) {
	n := st.alerts()
	if n == nil {
		return
	}
	if e := governance.ExhaustedEvent(rej, key, now, st.location); e != nil {
		n.send(e, st.store.alerts.sent)
	}
	if e := governance.RateLimitedEvent(rej, key, now); e != nil {
		n.send(e, st.store.alerts.sent)
	}
}

// recorded runs after a request's ledger row is queued: the developer's
// view of the key is stale, and the session's cost may pass a
// session_cost amount.
func (st *state) recorded(rec *governance.Record) {
	meCache.touch(rec.Key)
	n := st.alerts()
	if n == nil || rec.SessionID == "" || rec.Cost <= 0 || len(n.amounts) == 0 {
		return
	}
	now := time.Now()
	before, after := st.store.alerts.sessions.Add(rec.Key, rec.SessionID, rec.Cost, now)
	for _, e := range governance.SessionEvents(rec.Key, rec.SessionID, before, after, n.amounts, now) {
		n.send(&e, st.store.alerts.sent)
	}
}
