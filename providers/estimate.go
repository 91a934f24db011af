package providers

import "github.com/llmgateway/caddy-llm-gateway/providers/llm"

// BytesPerToken is the rule of thumb estimates use when a provider's own
// count never arrived: ceil(bytes / 4), as the stream meters count the text
// of a cut stream.
const BytesPerToken = 4

// EstimateTokens is ceil(n / BytesPerToken).
func EstimateTokens(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + BytesPerToken - 1) / BytesPerToken
}

// EstimateUnreported completes the usage of a successful (2xx) billable
// response whose provider never reported usage — cut before the report,
// the client gone, or a server that sends none — so that nothing served is
// charged zero:
//
//   - input the meter never saw (no message_start, no usage object) is
//     estimated from the request body, ceil(bytes / 4), InputEstimated;
//   - a non-streamed body the meter could not read (its usage comes last)
//     is charged ceil(bytes that passed / 4) output, OutputEstimated
//     (embeddings excepted: their body is vectors, not generated text).
//
// A streamed response's output is the meter's own (it counts the text that
// passed). A response whose usage arrived is left alone. The estimates err
// on the budget's side: JSON syntax counts as text.
func EstimateUnreported(res *Result, call *llm.Call) {
	if call == nil || !call.Surface.Billable() || res.Status < 200 || res.Status > 299 {
		return
	}
	u := &res.Usage
	if u.Complete && !u.OutputEstimated {
		return // the provider's usage arrived
	}
	if u.TotalInput() == 0 && len(call.Body) > 0 {
		u.InputTokens = EstimateTokens(int64(len(call.Body)))
		u.InputEstimated = true
	}
	if !call.Stream && u.OutputTokens == 0 && res.BytesWritten > 0 && call.Surface != llm.SurfaceOpenAIEmbeddings {
		u.OutputTokens = EstimateTokens(res.BytesWritten)
		u.OutputEstimated = true
	}
}
