package governance

// BytesPerToken is how the worst case estimates input tokens from the body
// size without tokenizing: three bytes a token over-counts English and code
// alike (JSON syntax and escapes inflate the bytes), so the estimate errs on
// the side of the budget.
const BytesPerToken = 3

// RequestEstimate is what admission assumes a request may use before its
// response says what it did.
type RequestEstimate struct {
	// InputTokens is the body size over BytesPerToken, rounded up.
	InputTokens int64
	// OutputTokens is the output the request may ask for: max_tokens (or,
	// when it sets none, the key's max_tokens_cap, else the model's largest
	// output, else DefaultMaxOutput) times the choices it asks for.
	OutputTokens int64
	// Speed and InferenceGeo are what the request body asks for ("fast",
	// "us"): the worst case prices them as the usage would.
	Speed, InferenceGeo string
}

// EstimateRequest bounds a request from its body size, its max_tokens (0:
// not set), the number of choices it asks for (OpenAI's n; below 1 counts
// as 1), the key's max_tokens_cap (0: none) and the model's price row (nil
// when unpriced).
func EstimateRequest(bodyBytes int, maxTokens, choices, keyCap int64, price *Price) RequestEstimate {
	out := maxTokens
	if out == 0 {
		out = keyCap
	}
	if out == 0 {
		out = DefaultMaxOutput
		if price != nil && price.MaxOutput > 0 {
			out = price.MaxOutput
		}
	}
	return RequestEstimate{
		InputTokens:  (int64(bodyBytes) + BytesPerToken - 1) / BytesPerToken,
		OutputTokens: out * max(choices, 1),
	}
}

// Tokens is the estimate a token rate limit is charged at admission.
func (e RequestEstimate) Tokens() int64 { return e.InputTokens + e.OutputTokens }

// WorstCase is the estimate's cost at the row's dearest rates for its
// speed and inference geography (zero for an unpriced model).
func (e RequestEstimate) WorstCase(price *Price) Money {
	if price == nil {
		return 0
	}
	return price.WorstCaseFor(e.InputTokens, e.OutputTokens, e.Speed, e.InferenceGeo)
}
