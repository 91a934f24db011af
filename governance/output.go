package governance

import "strings"

// extendedOutput is the largest output of the "output-128k-*" beta, which
// lets Claude 3.7 Sonnet write past its row's 64K.
const extendedOutput = 128_000

// CheckMaxOutput reports whether a request may ask for maxTokens output
// tokens from the row's model: at most the row's MaxOutput (no bound when
// the row does not say), or 128K when the client enabled an
// "output-128k-…" beta (betas: the anthropic-beta header values). It
// returns the bound that applies and false when maxTokens is over it: the
// provider would refuse the request, and its worst case must not be
// reserved against a budget.
func (p *Price) CheckMaxOutput(maxTokens int64, betas []string) (limit int64, ok bool) {
	if p == nil || p.MaxOutput <= 1 || maxTokens <= p.MaxOutput {
		return 0, true
	}
	limit = p.MaxOutput
	for _, v := range betas {
		for b := range strings.SplitSeq(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(b), "output-128k-") {
				limit = max(limit, extendedOutput)
			}
		}
	}
	return limit, maxTokens <= limit
}
