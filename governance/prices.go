package governance

import (
	"math/bits"
	"sort"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Price is one model's list price. Token prices are Money per million
// tokens; WebSearch is Money per search request.
type Price struct {
	Input        Money `json:"input"`
	Output       Money `json:"output"`
	CacheWrite5m Money `json:"cache_write_5m"`
	CacheWrite1h Money `json:"cache_write_1h"`
	CacheRead    Money `json:"cache_read"`
	WebSearch    Money `json:"web_search,omitempty"`
	// LongContext, when set, replaces the token prices above for a request
	// whose total input (input + cache writes + cache reads) exceeds
	// LongContextThreshold tokens.
	LongContext          *Price `json:"long_context,omitempty"`
	LongContextThreshold int64  `json:"long_context_threshold,omitempty"`
	// MaxOutput is the model's largest output in tokens, the worst case of a
	// request that does not set max_tokens; 0 means DefaultMaxOutput.
	MaxOutput int64 `json:"max_output,omitempty"`
}

// DefaultMaxOutput bounds the output of a model whose row does not say.
const DefaultMaxOutput = 128_000

// WorstCase is the most a request can cost: its input at the dearest input
// rate (a whole prompt written to the 1-hour cache costs twice plain input)
// and its output at the output rate, in the long-context tier when the
// input estimate is past it.
func (p *Price) WorstCase(inputTokens, outputTokens int64) Money {
	row := p
	if p.LongContext != nil && inputTokens > p.LongContextThreshold {
		row = p.LongContext
	}
	in := max(row.Input, row.CacheWrite5m, row.CacheWrite1h)
	var a accumulator
	a.add(inputTokens, in)
	a.add(outputTokens, row.Output)
	return a.perMillionRoundHalfUp()
}

// Cost prices usage exactly: Σ tokens × price per million, divided once and
// rounded half up to a nano-dollar.
func (p *Price) Cost(u llm.Usage) Money {
	row := p
	if p.LongContext != nil && u.TotalInput() > p.LongContextThreshold {
		row = p.LongContext
	}
	var a accumulator
	a.add(u.InputTokens, row.Input)
	a.add(u.OutputTokens, row.Output)
	a.add(u.CacheWrite5mTokens, row.CacheWrite5m)
	a.add(u.CacheWrite1hTokens, row.CacheWrite1h)
	a.add(u.CacheReadTokens, row.CacheRead)
	a.add(u.WebSearchRequests*1_000_000, p.WebSearch)
	return a.perMillionRoundHalfUp()
}

// PriceRow names the models a Price applies to: an exact canonical model id
// or a glob such as "claude-opus-5*".
type PriceRow struct {
	Model llm.Glob
	Price Price
	// Unlisted rows price a model but are left out of Models: legacy
	// canonical names that are not ids the provider's API accepts.
	Unlisted bool
}

// PriceTable maps canonical model ids to prices: exact ids first, then globs
// in the order they were given. Overrides replace built-in rows of the same
// name. A PriceTable is immutable once built and safe for concurrent use.
type PriceTable struct {
	exact    map[string]*Price
	globs    []PriceRow
	unlisted map[string]bool
}

// PriceOverride is a configured price: a model id or glob and the amounts
// given for it. A nil amount inherits the built-in row's amount for that
// model, or zero when the model has no built-in row. An override that
// changes the input or output price drops the built-in long-context tier
// (its amounts would no longer be consistent).
type PriceOverride struct {
	Model                                                           llm.Glob
	Input, Output, CacheWrite5m, CacheWrite1h, CacheRead, WebSearch *Money
}

// NewPriceTable builds a table from the built-in list prices overlaid with
// overrides (later rows win).
func NewPriceTable(overrides []PriceOverride) *PriceTable {
	t := &PriceTable{exact: make(map[string]*Price, len(builtinPrices)+len(overrides)), unlisted: map[string]bool{}}
	for _, r := range builtinPrices {
		p := r.Price
		t.exact[string(r.Model)] = &p
		if r.Unlisted {
			t.unlisted[string(r.Model)] = true
		}
	}
	for _, o := range overrides {
		glob := isGlob(string(o.Model))
		name := string(o.Model)
		base := name
		if !glob {
			base = llm.CanonicalModel(name)
			// A dated Anthropic id names its family row; a provider's own id
			// (a Bedrock id or ARN, a Vertex id) keeps a row of its own, so
			// it can differ from its Anthropic twin.
			if !isProviderID(name) {
				name = base
			}
		}
		var p Price
		if b, ok := t.exact[base]; ok && !glob {
			p = *b
		}
		if o.Input != nil || o.Output != nil {
			p.LongContext, p.LongContextThreshold = nil, 0
		}
		for _, f := range []struct {
			in  *Money
			out *Money
		}{{o.Input, &p.Input}, {o.Output, &p.Output}, {o.CacheWrite5m, &p.CacheWrite5m},
			{o.CacheWrite1h, &p.CacheWrite1h}, {o.CacheRead, &p.CacheRead}, {o.WebSearch, &p.WebSearch}} {
			if f.in != nil {
				*f.out = *f.in
			}
		}
		if glob {
			t.globs = append(t.globs, PriceRow{Model: o.Model, Price: p})
			continue
		}
		t.exact[name] = &p
		if isProviderID(name) {
			t.unlisted[name] = true // not an id GET /v1/models should offer
		} else {
			delete(t.unlisted, name) // a configured price is a model the operator names
		}
	}
	return t
}

// isProviderID reports whether a model id is a cloud provider's spelling
// (Bedrock "…anthropic.…", ARNs, Vertex "…@…") rather than Anthropic's.
func isProviderID(s string) bool {
	return strings.HasPrefix(s, "arn:") || strings.Contains(s, "anthropic.") || strings.Contains(s, "@")
}

func isGlob(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}

// LookupModel prices a request: a row for the exact id the client sent (a
// provider id priced on its own) first, then its canonical model's.
func (t *PriceTable) LookupModel(requested, canonical string) *Price {
	if requested != canonical {
		if p, ok := t.exact[requested]; ok {
			return p
		}
	}
	return t.Lookup(canonical)
}

// Lookup returns the price of a canonical model id, or nil when the model is
// not priced.
func (t *PriceTable) Lookup(canonical string) *Price {
	if p, ok := t.exact[canonical]; ok {
		return p
	}
	for i := range t.globs {
		if t.globs[i].Model.Match(canonical) {
			return &t.globs[i].Price
		}
	}
	return nil
}

// HasRow reports whether the table has a row for exactly this model id
// (built in or configured, listed or not); a glob row does not count.
func (t *PriceTable) HasRow(model string) bool {
	_, ok := t.exact[model]
	return ok
}

// Models lists the exact model ids the table prices, sorted, leaving out
// unlisted legacy rows.
func (t *PriceTable) Models() []string {
	out := make([]string, 0, len(t.exact))
	for m := range t.exact {
		if !t.unlisted[m] {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// One is a price multiplier of 1 (multipliers are nano-units, like Money:
// 1.1 is 1_100_000_000).
const One = Dollar

// Scaled returns the price multiplied by mult (One = unchanged), each
// amount rounded half up to a nano-dollar: regional endpoints and
// negotiated discounts ("price_multiplier 1.1" on a provider).
func (p *Price) Scaled(mult Money) *Price {
	if mult == One || mult <= 0 {
		return p
	}
	s := *p
	for _, m := range []*Money{&s.Input, &s.Output, &s.CacheWrite5m, &s.CacheWrite1h, &s.CacheRead, &s.WebSearch} {
		*m = scale(*m, mult)
	}
	if p.LongContext != nil {
		s.LongContext = p.LongContext.Scaled(mult)
	}
	return &s
}

// scale is m × mult / One, divided once and rounded half up, in 128 bits.
func scale(m, mult Money) Money {
	if m <= 0 {
		return m
	}
	hi, lo := bits.Mul64(uint64(m), uint64(mult))
	lo, c := bits.Add64(lo, uint64(One)/2, 0)
	hi += c
	if hi >= uint64(One) {
		return Money(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, uint64(One))
	if q > 1<<63-1 {
		return Money(1<<63 - 1)
	}
	return Money(q)
}
