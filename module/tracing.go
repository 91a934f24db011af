package module

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// When Caddy's tracing handler is in the route, the request's context
// holds a recording span: the gateway adds OpenTelemetry GenAI
// semantic-convention attributes to it and starts a child span per upstream
// attempt. Without tracing the span is a no-op and none of this runs.

const tracerName = "github.com/llmgateway/caddy-llm-gateway"

// operationName is gen_ai.operation.name for a surface.
func operationName(s llm.Surface) string {
	switch s {
	case llm.SurfaceOpenAIEmbeddings:
		return "embeddings"
	case llm.SurfaceAnthropicCountTokens:
		return "count_tokens"
	case llm.SurfaceOpenAIResponses:
		return "generate_content"
	}
	return "chat"
}

// startAttempt starts the span of one upstream attempt under the request's
// span; ctx is returned unchanged (and span is nil) when nothing records.
func (x *exchange) startAttempt(ctx context.Context, p providers.Provider) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, "llm_gateway upstream "+p.Name(),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("gen_ai.system", p.Family()),
			attribute.String("gen_ai.operation.name", operationName(x.surface)),
			attribute.String("gen_ai.request.model", x.requested),
			attribute.String("llm_gateway.provider", p.Name()),
			attribute.Int("llm_gateway.attempt", x.attempts),
		))
}

// endAttempt ends an attempt's span with its outcome: the status the
// provider answered (0 when it could not be reached) or the error.
func endAttempt(span trace.Span, status int, err error) {
	if span == nil {
		return
	}
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if err != nil {
		span.SetStatus(codes.Error, "upstream unreachable")
	} else if status >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
	span.End()
}

// traceOutcome adds the request's GenAI attributes, its cost and its key
// to the request's span.
func (x *exchange) traceOutcome(usage llm.Usage, cost governance.Money) {
	span := trace.SpanFromContext(x.r.Context())
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", operationName(x.surface)),
		attribute.String("gen_ai.request.model", x.requested),
		attribute.String("gen_ai.response.model", x.model),
		attribute.Int64("gen_ai.usage.input_tokens", usage.TotalInput()),
		attribute.Int64("gen_ai.usage.output_tokens", usage.OutputTokens),
		attribute.Int64("gen_ai.usage.cache_read.input_tokens", usage.CacheReadTokens),
		attribute.Int64("gen_ai.usage.cache_creation.input_tokens", usage.CacheWriteTokens()),
		attribute.String("llm_gateway.key", x.key.Name),
		attribute.String("llm_gateway.cost_usd", cost.String()),
		attribute.Int64("llm_gateway.cost_nano_usd", int64(cost)),
		attribute.String("llm_gateway.request_id", x.id),
	}
	if x.provider != "" {
		attrs = append(attrs, attribute.String("llm_gateway.provider", x.provider))
		attrs = append(attrs, attribute.String("gen_ai.system", x.family))
	}
	if t := x.key.TeamName(); t != "" {
		attrs = append(attrs, attribute.String("llm_gateway.team", t))
	}
	if x.rejection != "" {
		attrs = append(attrs, attribute.String("llm_gateway.rejection", x.rejection))
	}
	span.SetAttributes(attrs...)
}
