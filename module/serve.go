package module

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// ServeHTTP runs the pipeline: recognise the surface, authenticate the
// virtual key, read the body once, authorise the model, route, forward with
// fallback before the first byte, relay while metering, and settle.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	start := time.Now()
	st := g.state
	// Every answer, served or refused, carries the gateway's own request id
	// (the provider's request-id headers pass through untouched).
	id := newRequestID()
	w.Header().Set("X-Llm-Gateway-Request-Id", id)
	if elf := logFields(r); elf != nil {
		elf.Add(zap.String("llm.request_id", id))
	}
	if repl := replacer(r); repl != nil {
		repl.Set(phRequestID, id)
	}
	secret := credential(r.Header)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rec := llm.Recognize(r.Method, r.URL.EscapedPath(), r.Header.Get("Anthropic-Version") != "")
	dialect := rec.Surface.Dialect()
	me := rec.Surface == llm.SurfaceUnknown && isMeRequest(r) // GET …/llm_gateway/me (me.go)
	if me {
		dialect = dialectOfPath(r.URL.Path)
	}
	if rec.Surface == llm.SurfaceUnknown && !me {
		dialect = dialectOfPath(r.URL.Path)
		st.reject(w, dialect, "not_found", llm.ErrNotFound, fmt.Sprintf("%s %s is not an API this gateway serves", r.Method, r.URL.Path))
		return nil
	}

	if rec.Surface == llm.SurfaceBedrockInferenceProfiles {
		// Claude Code's Bedrock mode asks this without any credential.
		st.serveInferenceProfiles(w)
		return nil
	}
	key := st.keys.Authenticate(secret) // config keys, then live keys (live_keys.go)
	if key == nil {
		// Caddy's authentication or an SSO token, else a 401 (sso.go).
		if key = st.identify(w, r, dialect, secret); key == nil {
			return nil
		}
	}
	if me {
		st.serveMe(w, r, key, start)
		return nil
	}
	if !st.store.tryAcquire() {
		st.reject(w, dialect, "unavailable", llm.ErrOverloaded, "the gateway is reloading; retry")
		return nil
	}
	// The request holds the store until it is settled and ledgered; a stop
	// that outlives its grace period cuts it through its context.
	r, live := inflight.enter(r, w)
	defer inflight.leave(live, st.store)

	x := &exchange{st: st, w: w, r: r, id: id, key: key, start: start, surface: rec.Surface, dialect: dialect}
	if ref := key.Usable(start); ref != nil {
		if ref.Reason == "expired" {
			x.refuse("expired", llm.ErrAuthentication, fmt.Sprintf("%s expired at %s", ref.Scope, ref.At.UTC().Format(time.RFC3339)))
		} else {
			x.refuse("disabled", llm.ErrPermission, fmt.Sprintf("%s is disabled", ref.Scope))
		}
		return nil
	}
	switch rec.Surface {
	case llm.SurfaceAnthropicModels, llm.SurfaceOpenAIModels:
		x.serveModels(rec.PathModel)
		return nil
	}

	body, err := readBody(r, st.maxBody)
	defer putBuffer(body)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			x.refuse("too_large", llm.ErrTooLarge, fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", st.maxBody))
		} else {
			x.refuse("invalid_request", llm.ErrInvalidRequest, "could not read the request body: "+err.Error())
		}
		return nil
	}
	fields, err := llm.ParseBody(body.Bytes())
	if err != nil {
		x.refuse("invalid_request", llm.ErrInvalidRequest, bodyErrorMessage(err))
		return nil
	}
	model := fields.Model
	if rec.PathModel != "" {
		if err := llm.CheckModelName(rec.PathModel); err != nil {
			x.refuse("invalid_request", llm.ErrInvalidRequest, err.Error())
			return nil
		}
		model = rec.PathModel
	}
	if model == "" {
		x.refuse("invalid_request", llm.ErrInvalidRequest, "model: field required")
		return nil
	}
	x.requested = model
	callBody := body.Bytes()
	if target, ok := st.router.Alias(model); ok {
		// The provider needs a real id: rewrite the body's model (the only
		// case the gateway re-writes an Anthropic body's model), and read
		// the rewritten body so the call's fields point into it.
		if fields.Model != "" {
			if callBody, err = llm.RewriteBody(callBody, nil, []llm.Member{{Name: "model", Value: llm.QuoteJSON(target)}}); err == nil {
				fields, err = llm.ParseBody(callBody)
			}
			if err != nil {
				x.refuse("invalid_request", llm.ErrInvalidRequest, bodyErrorMessage(err))
				return nil
			}
		}
		model = target
	}
	x.model = llm.CanonicalModel(model)
	if !key.Allows(x.model) {
		x.refuse("model", llm.ErrPermission, fmt.Sprintf("key %s may not use model %s", key.Name, x.model))
		return nil
	}
	if key.MaxTokensCap > 0 && fields.MaxTokens > key.MaxTokensCap {
		x.refuse("max_tokens", llm.ErrInvalidRequest, fmt.Sprintf(
			"max_tokens %d exceeds the cap of %d for key %s (Claude Code: set CLAUDE_CODE_MAX_OUTPUT_TOKENS=%d)",
			fields.MaxTokens, key.MaxTokensCap, key.Name, key.MaxTokensCap))
		return nil
	}
	// The row in force at admission prices the request, whenever it ends.
	x.row = st.registry.Prices.LookupModelAt(x.requested, x.model, x.start)
	if limit, ok := x.row.CheckMaxOutput(fields.MaxTokens, r.Header.Values("Anthropic-Beta")); !ok {
		x.refuse("max_tokens", llm.ErrInvalidRequest, fmt.Sprintf(
			"max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s", fields.MaxTokens, limit, x.model))
		return nil
	}
	if rec.Surface.Billable() && x.row == nil {
		warnUnpriced(st.logger, x.model)
		if st.registry.RefusesUnpriced(key) {
			why := "this gateway refuses models without a price"
			if key.HasBudgets() {
				why = fmt.Sprintf("key %s has a budget, which cannot hold requests charged $0", key.Name)
			}
			x.refuse("unpriced", llm.ErrPermission, fmt.Sprintf(
				"model %s has no price and %s; add a line `price %s input <usd> output <usd>` (USD per million tokens) to the llm_gateway configuration",
				x.model, why, x.model))
			return nil
		}
	}
	x.stream = fields.Stream || rec.Surface == llm.SurfaceBedrockInvokeStream || rec.Surface == llm.SurfaceVertexStreamRawPredict
	call := &llm.Call{
		Surface:        rec.Surface,
		Model:          model,
		CanonicalModel: x.model,
		Stream:         x.stream,
		MaxTokens:      fields.MaxTokens,
		Body:           callBody,
		Fields:         fields,
		Header:         r.Header,
		RawQuery:       providers.ForwardQuery(r.URL.RawQuery, secret),
		PathSuffix:     rec.Suffix,
	}
	x.publishRequest()
	if x.cacheLookup(call) { // answered from the response cache (cache.go)
		return nil
	}
	x.forward(call)
	return nil
}

// exchange is one request's progress through the pipeline.
type exchange struct {
	st        *state
	w         http.ResponseWriter
	r         *http.Request
	id        string // the gateway's request id
	key       *governance.Key
	start     time.Time
	price     *governance.Price // the row that priced the response (admission time's)
	row       *governance.Price // the row in force at admission (nil: unpriced)
	surface   llm.Surface
	dialect   llm.Dialect
	requested string
	model     string
	stream    bool
	provider  string
	family    string // the provider's API family
	attempts  int
	// providerRequestID, ttft and errorType describe the relayed response
	// for the ledger (providerResponse, settle).
	providerRequestID string
	ttft              time.Duration
	errorType         string
	// ticket is the admission's claim on the counters (nil when the path
	// has no limits); flight tracks its lease while the response flows.
	ticket    *governance.Ticket
	flight    *flight
	rejection string // why the gateway refused the request, for the log
	// cost is what the request was charged (costKnown: it was priced).
	cost      governance.Money
	costKnown bool
	// label is the metric label of model labelFor (modelLabel).
	label, labelFor string
	labelSet        bool
	cacheExchange   // the response cache's part (cache.go)
}

// modelLabel is the model's metric label: bounded, valid UTF-8. It is
// worked out once per model name.
func (x *exchange) modelLabel() string {
	if !x.labelSet || x.labelFor != x.model {
		x.label, x.labelFor, x.labelSet = x.st.labels.model(x.model), x.model, true
	}
	return x.label
}

// forward tries the route's providers in order, falling back on connection
// errors and retryable statuses until a response is relayed.
func (x *exchange) forward(call *llm.Call) {
	var buf [4]providers.Provider
	cands := x.st.router.Candidates(buf[:0], call.Surface, call.CanonicalModel)
	if len(cands) == 0 {
		x.refuse("no_route", llm.ErrNotFound, fmt.Sprintf("no provider serves model %s on %s", call.Model, call.Surface))
		return
	}
	// The worst case assumes the dearest provider that may end up serving.
	mult := governance.One
	for _, p := range cands {
		if m, ok := x.st.multipliers[p.Name()]; ok && m > mult {
			mult = m
		}
	}
	if !x.admit(call, mult) {
		return
	}
	ctx := x.r.Context()
	router, attempts := x.st.router, x.st.metrics.attempts
	var lastErr error
	var tried []string
	for i, p := range cands {
		x.attempts++
		tried = append(tried, p.Name())
		sent := time.Now()
		actx, span := x.startAttempt(ctx, p)
		resp, err := p.Send(actx, call)
		if err != nil {
			endAttempt(span, 0, err)
			lastErr = fmt.Errorf("provider %s: %w", p.Name(), err)
			if ctx.Err() != nil {
				break // the client left: not the provider's fault
			}
			attempts.WithLabelValues(p.Name(), x.modelLabel(), "error").Inc()
			x.reportFailure(router, p)
			continue
		}
		headers := time.Now()
		if providers.Retryable(resp.StatusCode) {
			x.reportFailure(router, p)
			if i < len(cands)-1 {
				// Nothing has reached the client yet: try the next provider.
				attempts.WithLabelValues(p.Name(), x.modelLabel(), strconv.Itoa(resp.StatusCode)).Inc()
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				_ = resp.Body.Close()
				endAttempt(span, resp.StatusCode, nil)
				lastErr = fmt.Errorf("provider %s answered %d", p.Name(), resp.StatusCode)
				continue
			}
		} else {
			router.Report(p, true)
		}
		attempts.WithLabelValues(p.Name(), x.modelLabel(), "ok").Inc()
		x.provider, x.family = p.Name(), p.Family()
		if repl := replacer(x.r); repl != nil {
			repl.Set(phProvider, x.provider)
		}
		w := x.w
		var held *costWriter // non-streamed: held until its cost header is known (costheader.go)
		if !x.stream {
			held = holdForCost(x.w)
			w = held
		}
		if x.flight != nil {
			w = &progressWriter{ResponseWriter: w, f: x.flight}
		}
		w = x.cacheWriter(w) // records a cache miss as it passes (cache.go)
		res := p.Relay(w, resp, call)
		x.providerRequestID = providerRequestID(x.w.Header())
		endAttempt(span, resp.StatusCode, nil)
		x.endOfRelay(ctx, &res)
		// What the provider never reported is estimated, never zero.
		providers.EstimateUnreported(&res, call)
		x.settle(res, sent, headers)
		if held != nil {
			held.release(x.cost, x.costKnown)
		}
		x.cacheStore(&res)
		if res.UpstreamErr != nil && res.ClientErr == nil && !res.Usage.Complete {
			// The upstream died mid-response: make the client see a
			// truncated response (connection aborted, no final chunk)
			// rather than a clean end it might take for a complete one.
			// Caddy still writes the access log (a deferred call).
			panic(http.ErrAbortHandler)
		}
		return
	}
	if shutdownCut(ctx) {
		x.cutByShutdown()
		x.refuse("shutdown", llm.ErrOverloaded, "the gateway is shutting down; retry")
		return
	}
	if ctx.Err() != nil {
		// The client went away before any provider answered.
		x.record(499, llm.Usage{}, 0, true)
		return
	}
	// The client learns which provider failed and the request id; how it
	// failed (resolver and peer addresses, TLS details) stays in the logs.
	detail := "no answer"
	if lastErr != nil {
		detail = lastErr.Error()
	}
	x.st.logger.Warn("upstream unreachable", zap.String("request_id", x.id), zap.String("key", x.key.Name),
		zap.String("model", x.model), zap.Strings("providers", tried), zap.String("error", detail))
	if elf := logFields(x.r); elf != nil {
		elf.Add(zap.String("llm.upstream_error", detail))
	}
	what := "provider " + tried[0]
	if len(tried) > 1 {
		what = "providers " + strings.Join(tried, ", ")
	}
	x.refuse("upstream", llm.ErrBadGateway, fmt.Sprintf("%s unreachable (request id %s)", what, x.id))
}

// providerRequestIDHeaders are the headers providers name their response
// with: Anthropic, Vertex and Foundry request-id, OpenAI x-request-id,
// Bedrock x-amzn-requestid.
var providerRequestIDHeaders = [...]string{"Request-Id", "X-Request-Id", "X-Amzn-Requestid"}

// providerRequestID is the provider's id for the response the relay passed
// to the client (h is the client-facing header map), bounded like a label.
func providerRequestID(h http.Header) string {
	for _, k := range providerRequestIDHeaders {
		if vs := h[k]; len(vs) > 0 && vs[0] != "" {
			return labelValue(vs[0])
		}
	}
	return ""
}

// reportFailure feeds passive health and counts cool-downs.
func (x *exchange) reportFailure(router *providers.Router, p providers.Provider) {
	if router.Report(p, false) {
		x.st.metrics.cooldowns.WithLabelValues(p.Name()).Inc()
		x.st.logger.Warn("provider failing: skipped for a cool-down", zap.String("provider", p.Name()))
	}
}

// settle prices what the relay metered and records it everywhere: store,
// metrics and the access log.
func (x *exchange) settle(res providers.Result, sent, headers time.Time) {
	relayEnd := time.Now()
	usage := res.Usage
	if !x.surface.Billable() {
		usage = llm.Usage{}
	}
	var cost governance.Money
	// Priced by the row in force when the request was admitted, even if a
	// new row took effect while it streamed.
	price := x.row
	x.price = price
	if !res.FirstToken.IsZero() {
		x.ttft = max(res.FirstToken.Sub(x.start), 0)
	}
	x.errorType = res.ErrorType
	if price != nil {
		if mult, ok := x.st.multipliers[x.provider]; ok {
			price = price.Scaled(mult)
		}
		cost = price.Cost(usage)
	}
	x.record(res.Status, usage, cost, price != nil || !x.surface.Billable())

	m := x.st.metrics
	pm := [2]string{x.provider, x.modelLabel()}
	m.upstream.WithLabelValues(pm[:]...).Observe(headers.Sub(sent).Seconds())
	if !res.FirstToken.IsZero() {
		m.ttft.WithLabelValues(pm[:]...).Observe(res.FirstToken.Sub(x.start).Seconds())
	}
	if elf, ok := x.r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		elf.Add(zap.Bool("llm.complete", res.Usage.Complete))
		if res.ErrorType != "" {
			elf.Add(zap.String("llm.error_type", res.ErrorType))
		}
		if res.UpstreamErr != nil {
			elf.Add(zap.String("llm.upstream_error", res.UpstreamErr.Error()))
		}
		if res.ClientErr != nil {
			elf.Add(zap.Bool("llm.client_gone", true))
		}
	}
	m.overhead.WithLabelValues(pm[:]...).Observe((sent.Sub(x.start) + time.Since(relayEnd)).Seconds())
}

// record charges a finished request: one ledger row, the running totals,
// the counters, and the access-log fields.
func (x *exchange) record(status int, usage llm.Usage, cost governance.Money, priced bool) {
	now := time.Now()
	x.cost, x.costKnown = cost, priced
	x.settleCounters(now, usage, cost)
	rec := governance.Record{
		Time:           x.start,
		Key:            x.key.Name,
		Team:           x.key.TeamName(),
		Customer:       x.key.CustomerName(),
		Provider:       x.provider,
		Model:          x.model,
		RequestedModel: x.requested,
		Surface:        x.surface.String(),
		Status:         status,
		Stream:         x.stream,
		Usage:          usage,
		Cost:           cost,
		SessionID:      sessionID(x.r),
		Duration:       now.Sub(x.start),

		RequestID:         x.id,
		ProviderRequestID: x.providerRequestID,
		Labels:            x.st.labels.ledgerValues(x.r.Header),
		UserAgent:         boundedText(x.r.UserAgent(), maxLedgerTextBytes),
		TTFT:              x.ttft,
		Attempts:          x.attempts,
		Rejection:         x.rejection,
		ErrorType:         x.errorType,
		CacheHit:          x.cacheHit,
		Saved:             x.saved,
	}
	rec.SetPrice(x.price)
	x.st.store.ledger.Record(&rec)
	x.st.recorded(&rec) // the developer's view and session alerts (notify_events.go)
	x.publishOutcome(usage, cost)
	x.traceOutcome(usage, cost)

	var lv [16]string
	values := append(lv[:0], rec.Key, rec.Team, rec.Customer, rec.Provider, x.modelLabel())
	values = x.st.labels.appendValues(values, x.r.Header)
	x.st.metrics.usage.get(values).add(usage, cost, priced)

	if elf, ok := x.r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		elf.Add(zap.String("llm.key", rec.Key))
		if rec.Team != "" {
			elf.Add(zap.String("llm.team", rec.Team))
		}
		if rec.Customer != "" {
			elf.Add(zap.String("llm.customer", rec.Customer))
		}
		elf.Add(zap.String("llm.surface", rec.Surface))
		if rec.Model != "" {
			elf.Add(zap.String("llm.model", rec.Model))
		}
		if rec.Provider != "" {
			elf.Add(zap.String("llm.provider", rec.Provider))
			elf.Add(zap.Int("llm.attempts", x.attempts))
		}
		for _, f := range [...]zap.Field{
			zap.Int64("llm.input_tokens", usage.InputTokens),
			zap.Int64("llm.output_tokens", usage.OutputTokens),
			zap.Int64("llm.cache_read_tokens", usage.CacheReadTokens),
			zap.Int64("llm.cache_write_5m_tokens", usage.CacheWrite5mTokens),
			zap.Int64("llm.cache_write_1h_tokens", usage.CacheWrite1hTokens),
			zap.Float64("llm.cost_usd", cost.USD()),
			zap.Int64("llm.cost_nano_usd", int64(cost)),
		} {
			elf.Add(f)
		}
		if usage.WebSearchRequests > 0 {
			elf.Add(zap.Int64("llm.web_search_requests", usage.WebSearchRequests))
		}
		if rec.PriceModel != "" {
			elf.Add(zap.String("llm.price_row", rec.PriceRow()))
		}
		if usage.Speed != "" {
			elf.Add(zap.String("llm.speed", usage.Speed))
		}
		if usage.InferenceGeo != "" {
			elf.Add(zap.String("llm.inference_geo", usage.InferenceGeo))
		}
		if usage.OutputEstimated {
			elf.Add(zap.Bool("llm.output_estimated", true))
		}
		if usage.InputEstimated {
			elf.Add(zap.Bool("llm.input_estimated", true))
		}
		if x.rejection != "" {
			elf.Add(zap.String("llm.rejection", x.rejection))
		}
	}
}

// refuse answers a request the gateway itself turns down after the key is
// known: it is attributed (ledger, request counter) and counted by reason.
func (x *exchange) refuse(reason string, kind llm.ErrorKind, msg string) {
	x.rejection = reason
	// Deferred header directives read the placeholders as the refusal is
	// written: publish them first.
	x.publishOutcome(llm.Usage{}, 0)
	x.st.reject(x.w, x.dialect, reason, kind, msg)
	x.record(llm.ErrorStatus(x.dialect, kind), llm.Usage{}, 0, true)
}

// reject writes the error and counts the rejection.
func (st *state) reject(w http.ResponseWriter, d llm.Dialect, reason string, kind llm.ErrorKind, msg string) {
	st.metrics.rejections.WithLabelValues(reason).Inc()
	llm.WriteErrorCode(w, d, kind, openAIRefusalCode(reason, kind), msg)
}

// openAIRefusalCodes are the OpenAI error "code" of the gateway's own
// permission refusals, by rejection reason: every one is a 403, and the
// code says which rule refused.
var openAIRefusalCodes = map[string]string{
	"model":    "model_not_allowed",
	"unpriced": "model_not_priced",
	"disabled": "key_disabled",
	"revoked":  "key_revoked",
	"identity": "identity_not_allowed",
}

// openAIRefusalCode is the OpenAI error code of a refusal ("": the kind's).
func openAIRefusalCode(reason string, kind llm.ErrorKind) string {
	if kind != llm.ErrPermission {
		return ""
	}
	return openAIRefusalCodes[reason]
}

// serveModels answers GET …/v1/models[/{id}] from the price table: the priced
// models some provider routes and the key may use.
func (x *exchange) serveModels(id string) {
	// An Anthropic-shaped list names models the Messages API can reach; an
	// OpenAI-shaped one those the OpenAI surfaces can.
	serving := []llm.Surface{llm.SurfaceAnthropicMessages}
	if x.surface == llm.SurfaceOpenAIModels {
		serving = []llm.Surface{llm.SurfaceOpenAIChat, llm.SurfaceOpenAIResponses, llm.SurfaceOpenAIEmbeddings}
	}
	usable := func(m string) bool { return x.key.Allows(m) && x.st.router.Routable(m, serving...) }
	if id != "" {
		c := llm.CanonicalModel(id)
		if !usable(c) || x.st.registry.Prices.Lookup(c) == nil {
			x.refuse("not_found", llm.ErrNotFound, "model "+id+" not found")
			return
		}
		x.model = c
		llm.WriteModel(x.w, x.surface, c)
		x.record(http.StatusOK, llm.Usage{}, 0, true)
		return
	}
	var ids []string
	for _, m := range x.st.registry.Prices.Models() {
		if usable(m) {
			ids = append(ids, m)
		}
	}
	llm.WriteModelList(x.w, x.surface, ids)
	x.record(http.StatusOK, llm.Usage{}, 0, true)
}

// credential finds the virtual key where clients put it: Authorization:
// Bearer (Claude Code's ANTHROPIC_AUTH_TOKEN), x-api-key (ANTHROPIC_API_KEY),
// api-key (Azure style) or x-goog-api-key. Families never forward these.
func credential(h http.Header) string {
	if v := h.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	for _, name := range [...]string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
		if v := h.Get(name); v != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// bodyErrorMessage words a body ParseBody refused for the client.
func bodyErrorMessage(err error) string {
	var be *llm.BodyError
	if errors.As(err, &be) {
		return be.Msg
	}
	return "malformed JSON body: " + err.Error()
}

// dialectOfPath guesses the error shape for a path no surface matched.
func dialectOfPath(p string) llm.Dialect {
	switch {
	case strings.Contains(p, "/chat/") || strings.Contains(p, "/embeddings") || strings.Contains(p, "/responses") || strings.Contains(p, "/openai/"):
		return llm.DialectOpenAI
	case strings.Contains(p, "/model/"):
		return llm.DialectBedrock
	case strings.Contains(p, "/publishers/"):
		return llm.DialectVertex
	}
	return llm.DialectAnthropic
}

var errTooLarge = errors.New("request body too large")

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps huge bodies out of the pool.
const maxPooledBody = 4 << 20

// readBody reads the whole request body, at most limit bytes, into a pooled
// buffer the caller returns with putBuffer.
func readBody(r *http.Request, limit int64) (*bytes.Buffer, error) {
	b := bodyPool.Get().(*bytes.Buffer)
	b.Reset()
	if r.ContentLength > limit {
		return b, errTooLarge
	}
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength))
	}
	n, err := b.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return b, err
	}
	if n > limit {
		return b, errTooLarge
	}
	return b, nil
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		bodyPool.Put(b)
	}
}

// maxUnpricedWarnings caps the models the "no price" warning names, so a
// client inventing model names cannot flood the log (or grow the set).
const maxUnpricedWarnings = 100

// unpricedWarned remembers the models already warned about, process-wide.
var (
	unpricedWarned sync.Map
	unpricedCount  atomic.Int64
)

// warnUnpriced logs once per model, for the first maxUnpricedWarnings
// models, that a model has no price; then once that further ones go
// unnamed.
func warnUnpriced(logger *zap.Logger, model string) {
	if _, seen := unpricedWarned.Load(model); seen {
		return
	}
	n := unpricedCount.Add(1)
	switch {
	case n <= maxUnpricedWarnings:
		if _, seen := unpricedWarned.LoadOrStore(model, struct{}{}); seen {
			unpricedCount.Add(-1)
			return
		}
		logger.Warn("model has no price: requests on a path with a budget are refused (unless `unpriced allow`); others are forwarded and counted in tokens but charged 0; add a price line",
			zap.String("model", model))
	case n == maxUnpricedWarnings+1:
		logger.Warn(fmt.Sprintf("more than %d models without a price: further ones are not logged (llm_gateway_unpriced_requests_total counts their requests)", maxUnpricedWarnings))
	default:
		unpricedCount.Add(-1) // stay at the cap+1 mark
	}
}

// newRequestID is a random 128-bit id in hex: unique, and revealing
// nothing about the gateway or its traffic.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	var h [32]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// logFields is the request's access-log extra fields, nil outside Caddy's
// server (tests).
func logFields(r *http.Request) *caddyhttp.ExtraLogFields {
	elf, _ := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields)
	return elf
}
