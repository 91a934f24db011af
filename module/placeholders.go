package module

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// The placeholders the gateway sets on every request it handles, for
// Caddy's header (deferred: `header >X-Key {http.llm_gateway.key}`),
// log_append, map and anything else that reads placeholders after the
// handler ran. Identity, model, session and request id are set before the
// request is forwarded; the provider when one answers; tokens, cost and
// rejection when the request is settled.
const (
	phKey            = "http.llm_gateway.key"
	phTeam           = "http.llm_gateway.team"
	phCustomer       = "http.llm_gateway.customer"
	phProvider       = "http.llm_gateway.provider"
	phModel          = "http.llm_gateway.model"
	phRequestedModel = "http.llm_gateway.requested_model"
	phSession        = "http.llm_gateway.session"
	phRequestID      = "http.llm_gateway.request_id"
	phInputTokens    = "http.llm_gateway.input_tokens"
	phOutputTokens   = "http.llm_gateway.output_tokens"
	phCostUSD        = "http.llm_gateway.cost_usd"
	phRejection      = "http.llm_gateway.rejection"
)

// replacer is the request's Caddy replacer, nil outside Caddy.
func replacer(r *http.Request) *caddy.Replacer {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	return repl
}

// publishRequest sets what is known before the request is forwarded.
func (x *exchange) publishRequest() {
	repl := replacer(x.r)
	if repl == nil {
		return
	}
	repl.Set(phKey, x.key.Name)
	repl.Set(phTeam, x.key.TeamName())
	repl.Set(phCustomer, x.key.CustomerName())
	repl.Set(phSession, sessionID(x.r))
	repl.Set(phModel, x.model)
	repl.Set(phRequestedModel, x.requested)
	repl.Set(phProvider, x.provider)
}

// publishOutcome sets everything, the settled usage and cost included.
func (x *exchange) publishOutcome(usage llm.Usage, cost governance.Money) {
	repl := replacer(x.r)
	if repl == nil {
		return
	}
	x.publishRequest()
	repl.Set(phInputTokens, strconv.FormatInt(usage.InputTokens, 10))
	repl.Set(phOutputTokens, strconv.FormatInt(usage.OutputTokens, 10))
	repl.Set(phCostUSD, cost.String())
	repl.Set(phRejection, x.rejection)
}

// sessionID is the Claude Code session the request belongs to
// (X-Claude-Code-Session-Id, a UUID), bounded and valid UTF-8 like a
// label value: a client chooses it, and it reaches the ledger and logs.
func sessionID(r *http.Request) string {
	return labelValue(r.Header.Get("X-Claude-Code-Session-Id"))
}
