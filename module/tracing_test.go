package module

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTracingAttributes: with a recording span in the request's context
// (what Caddy's tracing handler puts there), the gateway adds the GenAI
// attributes, cost and key to it and a child span per upstream attempt.
func TestTracingAttributes(t *testing.T) {
	reply := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"hi"}],` +
		`"stop_reason":"end_turn","usage":{"input_tokens":30,"cache_read_input_tokens":1000,"output_tokens":200}}`
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader([]byte(reply))), ContentLength: int64(len(reply)), Request: r}, nil
	})
	g, _ := testGateway(t, up)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("caddy").Start(context.Background(), "handler")
	serveTest(t, g, ctx, httptest.NewRecorder(), `{"model":"claude-sonnet-4-5-20250929","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`)
	parent.End()

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want the request's and one attempt", len(spans))
	}
	attempt, req := spans[0], spans[1]
	if attempt.Name != "llm_gateway upstream anthropic" || attempt.Parent.SpanID() != req.SpanContext.SpanID() {
		t.Fatalf("attempt span %q under %v", attempt.Name, attempt.Parent.SpanID())
	}
	attrs := func(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
		m := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes {
			m[a.Key] = a.Value
		}
		return m
	}
	got := attrs(req)
	for k, want := range map[attribute.Key]any{
		"gen_ai.system": "anthropic", "gen_ai.operation.name": "chat",
		"gen_ai.request.model": "claude-sonnet-4-5-20250929", "gen_ai.response.model": "claude-sonnet-4-5",
		"gen_ai.usage.input_tokens": int64(1030), "gen_ai.usage.output_tokens": int64(200),
		"gen_ai.usage.cache_read.input_tokens": int64(1000),
		"llm_gateway.key":                      "alice", "llm_gateway.team": "platform", "llm_gateway.provider": "anthropic",
		// 30×3 + 1000×0.30 + 200×15 = 3390 USD per million.
		"llm_gateway.cost_nano_usd": int64(3_390_000), "llm_gateway.cost_usd": "0.003390000",
	} {
		if v, ok := got[k]; !ok || v.AsInterface() != want {
			t.Errorf("%s = %v, want %v", k, v.AsInterface(), want)
		}
	}
	if a := attrs(attempt); a["http.response.status_code"].AsInt64() != 200 || a["gen_ai.system"].AsString() != "anthropic" {
		t.Errorf("attempt attributes %v", a)
	}
}

// TestNoTracingNoSpans: without a recording span nothing is started.
func TestNoTracingNoSpans(t *testing.T) {
	x := &exchange{}
	if ctx, span := x.startAttempt(context.Background(), nil); span != nil || ctx != context.Background() {
		t.Fatal("an attempt span without tracing")
	}
}
