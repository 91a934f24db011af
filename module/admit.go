package module

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// admit checks the key's path against its budgets and rate limits and
// reserves the request's worst case. It answers the client itself and
// returns false when the request may not go on.
func (x *exchange) admit(call *llm.Call, mult governance.Money) bool {
	if !x.key.HasLimits() {
		return true
	}
	levels := x.key.Levels()
	billable := x.surface.Billable()
	if !billable {
		levels = governance.RequestLimitsOnly(levels)
		if levels == nil {
			return true
		}
	}
	price := x.row
	est := governance.EstimateRequest(len(call.Body), call.MaxTokens, call.Fields.N, x.key.MaxTokensCap, price)
	est.Speed, est.InferenceGeo = call.Fields.Speed, call.Fields.InferenceGeo
	var worst governance.Money
	if billable && price != nil {
		worst = est.WorstCase(price.Scaled(mult))
	}
	a := &governance.Admission{
		Now:       x.start,
		Location:  x.st.location,
		Levels:    levels,
		WorstCase: worst,
		Lease:     x.st.lease,
	}
	if billable {
		a.Tokens = est.Tokens()
	}
	ticket, rej, err := x.st.store.counters.Admit(x.r.Context(), a)
	if err != nil {
		x.st.metrics.storeErrors.WithLabelValues("admit").Inc()
		if x.st.failOpen {
			x.st.logger.Error("budget store unreachable: serving the request unchecked (on_error open); its spend is applied when the store answers again",
				zap.String("store", x.st.store.desc), zap.String("key", x.key.Name), zap.Error(err))
			x.ticket = governance.UncheckedTicket(a)
			return true
		}
		x.st.logger.Error("budget store unreachable: refusing the request (on_error closed)",
			zap.String("store", x.st.store.desc), zap.String("key", x.key.Name), zap.Error(err))
		x.refuse("store", llm.ErrOverloaded, "the gateway cannot check budgets and rate limits right now; retry shortly")
		return false
	}
	if rej != nil {
		x.refuseAdmission(rej)
		return false
	}
	x.ticket = ticket
	if remaining, ok := ticket.TightestRemaining(); ok {
		x.w.Header().Set("X-Llm-Gateway-Budget-Remaining-Usd", remaining.String())
	}
	if len(ticket.Reservations) > 0 {
		x.flight = x.st.store.leases.track(ticket)
	}
	return true
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	return max(int64(math.Ceil(d.Seconds())), 1)
}

// refuseAdmission answers a budget (402; OpenAI: 429 insufficient_quota) or
// rate-limit (429 with retry-after) refusal with a message that names the
// scope, the limit and when it resets. A budget that is not spent but whose
// headroom requests in flight hold is a 429 rate_limit_error (OpenAI:
// rate_limit_exceeded) with retry-after and x-should-retry: true, so
// clients (Claude Code's parallel sub-agents) wait and retry instead of
// ending the session.
func (x *exchange) refuseAdmission(rej *governance.Rejection) {
	x.st.notifyRefusal(rej, x.key.Name, x.start)
	if rej.Held() {
		secs := retryAfterSeconds(rej.RetryAfter)
		h := x.w.Header()
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		h.Set("X-Should-Retry", "true")
		x.refuse("budget_held", llm.ErrRateLimit, fmt.Sprintf(
			"budget busy: %s has %s left of its %s budget, held by requests in flight; retry in %d s",
			rej.Scope, governance.FormatUSD(rej.Budget.Limit-rej.Spent), rej.Budget, secs))
		return
	}
	if rej.Reason == governance.RejectRateLimit {
		secs := retryAfterSeconds(rej.RetryAfter)
		h := x.w.Header()
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		unit := rej.RateLimit.Unit.String()
		limit := strconv.FormatInt(rej.RateLimit.Limit, 10)
		remaining := strconv.FormatInt(rej.Remaining, 10)
		reset := rej.ResetAt.UTC().Format(time.RFC3339)
		switch x.dialect {
		case llm.DialectOpenAI:
			h.Set("X-Ratelimit-Limit-"+unit, limit)
			h.Set("X-Ratelimit-Remaining-"+unit, remaining)
			h.Set("X-Ratelimit-Reset-"+unit, strconv.FormatInt(secs, 10)+"s")
		default:
			h.Set("Anthropic-Ratelimit-"+unit+"-Limit", limit)
			h.Set("Anthropic-Ratelimit-"+unit+"-Remaining", remaining)
			h.Set("Anthropic-Ratelimit-"+unit+"-Reset", reset)
		}
		x.refuse("rate_limit", llm.ErrRateLimit, fmt.Sprintf(
			"rate limit exceeded: %s is limited to %s; retry in %d s (at %s)",
			rej.Scope, rej.RateLimit, secs, reset))
		return
	}
	b := rej.Budget
	msg := fmt.Sprintf("budget exceeded: %s has spent %s of its %s budget", rej.Scope, governance.FormatUSD(rej.Spent), b)
	if rej.Reserved > 0 {
		msg += fmt.Sprintf(" (%s more is reserved by requests in flight)", governance.FormatUSD(rej.Reserved))
	}
	if rej.ResetAt.IsZero() {
		msg += "; a total budget does not reset"
	} else {
		msg += "; it resets at " + rej.ResetAt.UTC().Format(time.RFC3339)
	}
	x.refuse("budget", llm.ErrBilling, msg)
}

// settleCounters replaces the ticket's reservations by what the request
// cost and corrects its token charges, then reports budget_warn crossings.
// Every path that ends an admitted request goes through here once.
func (x *exchange) settleCounters(now time.Time, usage llm.Usage, cost governance.Money) {
	t := x.ticket
	if t == nil {
		return
	}
	x.ticket = nil
	if x.flight != nil {
		x.st.store.leases.untrack(x.flight)
	}
	tokens := governance.RateLimitTokens(usage, x.st.countCacheReads)
	// The client may be gone; the accounting must not be.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), 10*time.Second)
	defer cancel()
	// A request served unchecked (on_error open) is charged too: the Redis
	// store queues what it cannot take and applies it when it answers.
	changes, err := x.st.store.counters.Settle(ctx, t, governance.Settlement{Now: now, Cost: cost, Tokens: tokens})
	if err == governance.ErrSettlementQueued {
		return // queued without trying: the store is known to be unreachable
	}
	if err != nil {
		x.st.metrics.storeErrors.WithLabelValues("settle").Inc()
		msg := "settling budget counters (the ledger still records the request)"
		if errors.Is(err, governance.ErrSettlementQueued) {
			msg = "settling budget counters: queued until the store answers (the ledger records the request now)"
		}
		x.st.logger.Error(msg, zap.String("store", x.st.store.desc), zap.String("key", x.key.Name), zap.Error(err))
		return
	}
	x.st.notifyBudgets(t, changes, x.key.Name, now)
	for _, c := range x.st.registry.BudgetWarnings(changes) {
		x.st.metrics.budgetWarnings.WithLabelValues(c.Scope.Kind.String(), c.Scope.Name, c.Budget.Period.String()).Inc()
		x.st.logger.Warn(fmt.Sprintf("budget warning: %s has spent %s of its %s budget (%d%% threshold)",
			c.Scope, governance.FormatUSD(c.After), c.Budget, c.Percent),
			zap.String("scope", c.Scope.Kind.String()), zap.String("name", c.Scope.Name),
			zap.String("period", c.Budget.Period.String()), zap.Int64("spent_nano_usd", int64(c.After)),
			zap.Int64("limit_nano_usd", int64(c.Budget.Limit)))
	}
}
