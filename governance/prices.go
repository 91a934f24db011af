package governance

import (
	"math/bits"
	"sort"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Rates are the five token prices of one tier, Money per million tokens.
// Every rate is given, never derived from another: a model's cache-read
// ratio is its own.
type Rates struct {
	Input        Money `json:"input"`
	Output       Money `json:"output"`
	CacheWrite5m Money `json:"cache_write_5m"`
	CacheWrite1h Money `json:"cache_write_1h"`
	CacheRead    Money `json:"cache_read"`
}

// Tier replaces a row's rates for a request whose prompt (input + cache
// writes + cache reads, llm.Usage.TotalInput) is above Above tokens. Fast,
// when set, is the tier's fast-mode rates.
type Tier struct {
	Above int64 `json:"above"`
	Rates
	Fast *Rates `json:"fast,omitempty"`
}

// Price is one model's list price as of EffectiveFrom: its standard rates,
// optional fast-mode rates (usage "speed":"fast"), optional prompt-size
// tiers, web search per request, and the largest output.
type Price struct {
	Rates
	// Fast are the rates of a request the usage reports as fast mode; nil
	// when the model has none (such a request is billed at standard rates).
	Fast *Rates `json:"fast,omitempty"`
	// Tiers, sorted by Above ascending, replace the rates above for larger
	// prompts: the last tier a prompt is above applies.
	Tiers []Tier `json:"tiers,omitempty"`
	// WebSearch is Money per server-side web search request.
	WebSearch Money `json:"web_search,omitempty"`
	// MaxOutput is the model's largest output in tokens, the worst case of a
	// request that does not set max_tokens; 0 means DefaultMaxOutput.
	MaxOutput int64 `json:"max_output,omitempty"`
	// Model is the row's model id or glob, as the table keys it.
	Model string `json:"model"`
	// EffectiveFrom is when the row came into force (UTC midnight of its
	// date); zero for a row configured without one.
	EffectiveFrom time.Time `json:"effective_from"`
	// Source is the price page the row was read from.
	Source string `json:"source,omitempty"`
}

// DefaultMaxOutput bounds the output of a model whose row does not say.
const DefaultMaxOutput = 128_000

// USOnlyMultiplier is what US-only inference (usage "inference_geo":"us")
// costs on every token kind: 1.1×.
const USOnlyMultiplier Money = 1_100_000_000

// RatesFor returns the rates that price a request with this prompt size
// (input + cache writes + cache reads) and speed: the tier the prompt is
// above (the row itself when none), its fast rates when fast and it has
// them.
func (p *Price) RatesFor(prompt int64, fast bool) Rates {
	r, f := p.Rates, p.Fast
	for i := range p.Tiers {
		if prompt > p.Tiers[i].Above {
			r, f = p.Tiers[i].Rates, p.Tiers[i].Fast
		}
	}
	if fast && f != nil {
		return *f
	}
	return r
}

// scaled is every rate × mult / One, each rounded half up to a nano-dollar.
func (r Rates) scaled(mult Money) Rates {
	for _, m := range []*Money{&r.Input, &r.Output, &r.CacheWrite5m, &r.CacheWrite1h, &r.CacheRead} {
		*m = scale(*m, mult)
	}
	return r
}

// dearestInput is the most one input token can cost: a whole prompt
// written to the 1-hour cache costs twice plain input.
func (r Rates) dearestInput() Money { return max(r.Input, r.CacheWrite5m, r.CacheWrite1h) }

// WorstCase is the most a standard-speed, global-inference request can
// cost; see WorstCaseFor.
func (p *Price) WorstCase(inputTokens, outputTokens int64) Money {
	return p.WorstCaseFor(inputTokens, outputTokens, "", "")
}

// WorstCaseFor is the most a request can cost: its input at the dearest
// input rate and its output at the output rate, in the tier its input
// estimate falls in, at the fast rates when speed is "fast" and 1.1× when
// geo is "us" (what the request body asked for).
func (p *Price) WorstCaseFor(inputTokens, outputTokens int64, speed, geo string) Money {
	r := p.RatesFor(inputTokens, speed == llm.SpeedFast)
	if geo == llm.GeoUS {
		r = r.scaled(USOnlyMultiplier)
	}
	var a accumulator
	a.add(inputTokens, r.dearestInput())
	a.add(outputTokens, r.Output)
	return a.perMillionRoundHalfUp()
}

// Cost prices usage exactly: the rates of its prompt's tier (fast rates
// when the usage says "speed":"fast" and the row has them; every rate 1.1×
// when it says "inference_geo":"us"), Σ tokens × price per million, divided
// once and rounded half up to a nano-dollar. Web searches are priced per
// request and not scaled by US-only inference.
func (p *Price) Cost(u llm.Usage) Money {
	r := p.RatesFor(u.TotalInput(), u.Fast())
	if u.USOnly() {
		r = r.scaled(USOnlyMultiplier)
	}
	var a accumulator
	a.add(u.InputTokens, r.Input)
	a.add(u.OutputTokens, r.Output)
	a.add(u.CacheWrite5mTokens, r.CacheWrite5m)
	a.add(u.CacheWrite1hTokens, r.CacheWrite1h)
	a.add(u.CacheReadTokens, r.CacheRead)
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
	// Line is the row's line in its prices file (0 when not from a file).
	Line int
}

// versions are one model's rows, EffectiveFrom ascending.
type versions []*Price

// at is the row in force at t: the latest that took effect at or before t,
// or the earliest when t precedes them all.
func (v versions) at(t time.Time) *Price {
	i := sort.Search(len(v), func(i int) bool { return v[i].EffectiveFrom.After(t) })
	if i == 0 {
		return v[0]
	}
	return v[i-1]
}

// put adds p, replacing a row with the same EffectiveFrom.
func (v versions) put(p *Price) versions {
	i := sort.Search(len(v), func(i int) bool { return !v[i].EffectiveFrom.Before(p.EffectiveFrom) })
	if i < len(v) && v[i].EffectiveFrom.Equal(p.EffectiveFrom) {
		v[i] = p
		return v
	}
	v = append(v, nil)
	copy(v[i+1:], v[i:])
	v[i] = p
	return v
}

type globRow struct {
	glob llm.Glob
	rows versions
}

// PriceTable maps canonical model ids to prices: exact ids first, then globs
// in the order they were given. Each model has one or more rows by
// EffectiveFrom; a request is priced by the row in force when it was
// admitted. A PriceTable is immutable once built and safe for concurrent
// use.
type PriceTable struct {
	exact    map[string]versions
	globs    []globRow
	unlisted map[string]bool
}

// PriceOverride is a configured price (a Caddyfile price line): a model id
// or glob and the amounts given for it, applied to every row of that model.
// A nil amount inherits the row's amount, or zero when the model has no
// row. An override that changes the input or output price drops the row's
// tiers and fast rates unless it gives its own (they would no longer be
// consistent).
type PriceOverride struct {
	Model                                                           llm.Glob
	Input, Output, CacheWrite5m, CacheWrite1h, CacheRead, WebSearch *Money
	// Fast replaces the fast-mode rates when set.
	Fast *Rates
	// Tiers replace the row's tiers when set.
	Tiers []Tier
}

// NewPriceTable builds a table from the built-in list prices overlaid with
// overrides (later rows win).
func NewPriceTable(overrides []PriceOverride) *PriceTable {
	return BuildPriceTable(nil, overrides)
}

// BuildPriceTable builds a table from the built-in list prices, then an
// operator's rows (a prices file: a row replaces the built-in row of the
// same model and effective_from, and adds a version otherwise), then
// overrides (price lines, applied to every version of their model).
func BuildPriceTable(operator []PriceRow, overrides []PriceOverride) *PriceTable {
	t := &PriceTable{exact: make(map[string]versions, len(builtinPrices)+len(operator)+len(overrides)), unlisted: map[string]bool{}}
	for _, r := range builtinPrices {
		t.add(r)
	}
	for _, r := range operator {
		t.add(r)
	}
	for _, o := range overrides {
		t.override(o)
	}
	return t
}

// rowName is the table key of a configured model: a dated Anthropic id
// names its family row; a provider's own id (a Bedrock id or ARN, a Vertex
// id) and a glob keep their own.
func rowName(model string) string {
	if isGlob(model) || isProviderID(model) {
		return model
	}
	return llm.CanonicalModel(model)
}

func (t *PriceTable) add(r PriceRow) {
	p := r.Price
	name := rowName(string(r.Model))
	p.Model = name
	if isGlob(name) {
		for i := range t.globs {
			if string(t.globs[i].glob) == name {
				t.globs[i].rows = t.globs[i].rows.put(&p)
				return
			}
		}
		t.globs = append(t.globs, globRow{glob: llm.Glob(name), rows: versions{&p}})
		return
	}
	t.exact[name] = t.exact[name].put(&p)
	if r.Unlisted || isProviderID(name) {
		t.unlisted[name] = true
	} else {
		delete(t.unlisted, name)
	}
}

func (t *PriceTable) override(o PriceOverride) {
	name := rowName(string(o.Model))
	apply := func(b *Price) *Price {
		p := *b
		p.Model = name
		if o.Input != nil || o.Output != nil {
			p.Tiers, p.Fast = nil, nil
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
		if o.Fast != nil {
			f := *o.Fast
			p.Fast = &f
		}
		if o.Tiers != nil {
			p.Tiers = append([]Tier(nil), o.Tiers...)
		}
		return &p
	}
	applyAll := func(v versions) versions {
		if len(v) == 0 {
			return versions{apply(&Price{})}
		}
		out := make(versions, len(v))
		for i, p := range v {
			out[i] = apply(p)
		}
		return out
	}
	if isGlob(name) {
		for i := range t.globs {
			if string(t.globs[i].glob) == name {
				t.globs[i].rows = applyAll(t.globs[i].rows)
				return
			}
		}
		t.globs = append(t.globs, globRow{glob: llm.Glob(name), rows: applyAll(nil)})
		return
	}
	base := t.exact[name]
	if base == nil && name != llm.CanonicalModel(name) {
		base = t.exact[llm.CanonicalModel(name)] // a provider id inherits its Anthropic twin
	}
	t.exact[name] = applyAll(base)
	if isProviderID(name) {
		t.unlisted[name] = true // not an id GET /v1/models should offer
	} else {
		delete(t.unlisted, name) // a configured price is a model the operator names
	}
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

// LookupModel prices a request arriving now; see LookupModelAt.
func (t *PriceTable) LookupModel(requested, canonical string) *Price {
	return t.LookupModelAt(requested, canonical, time.Now())
}

// LookupModelAt is the row that prices a request admitted at: a row for
// the exact id the client sent (a provider id priced on its own) first,
// then its canonical model's; nil when the model is not priced.
func (t *PriceTable) LookupModelAt(requested, canonical string, at time.Time) *Price {
	if requested != canonical {
		if v, ok := t.exact[requested]; ok {
			return v.at(at)
		}
	}
	return t.LookupAt(canonical, at)
}

// Lookup returns the price in force now of a canonical model id, or nil
// when the model is not priced.
func (t *PriceTable) Lookup(canonical string) *Price { return t.LookupAt(canonical, time.Now()) }

// LookupAt returns the price of a canonical model id in force at a time.
func (t *PriceTable) LookupAt(canonical string, at time.Time) *Price {
	if v, ok := t.exact[canonical]; ok {
		return v.at(at)
	}
	for i := range t.globs {
		if t.globs[i].glob.Match(canonical) {
			return t.globs[i].rows.at(at)
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

// Rows lists the table's rows: exact ids sorted, then globs in order, each
// model's rows by EffectiveFrom. With all false only the row in force at
// at is listed for each model; with all true superseded and future rows
// too. InForce tells them apart.
func (t *PriceTable) Rows(at time.Time, all bool) []TableRow {
	names := make([]string, 0, len(t.exact))
	for m := range t.exact {
		names = append(names, m)
	}
	sort.Strings(names)
	var out []TableRow
	emit := func(v versions, unlisted bool) {
		cur := v.at(at)
		for _, p := range v {
			if all || p == cur {
				out = append(out, TableRow{Price: p, Unlisted: unlisted, InForce: p == cur})
			}
		}
	}
	for _, m := range names {
		emit(t.exact[m], t.unlisted[m])
	}
	for _, g := range t.globs {
		emit(g.rows, false)
	}
	return out
}

// TableRow is one row of a PriceTable listing.
type TableRow struct {
	Price    *Price
	Unlisted bool
	// InForce is true for the row that prices a request admitted at the
	// listing's time.
	InForce bool
}

// One is a price multiplier of 1 (multipliers are nano-units, like Money:
// 1.1 is 1_100_000_000).
const One = Dollar

// Scaled returns the price multiplied by mult (One = unchanged), each
// amount (tiers and fast rates too) rounded half up to a nano-dollar:
// regional endpoints and negotiated discounts ("price_multiplier 1.1" on
// a provider).
func (p *Price) Scaled(mult Money) *Price {
	if mult == One || mult <= 0 {
		return p
	}
	s := *p
	s.Rates = p.Rates.scaled(mult)
	s.WebSearch = scale(p.WebSearch, mult)
	if p.Fast != nil {
		f := p.Fast.scaled(mult)
		s.Fast = &f
	}
	if p.Tiers != nil {
		s.Tiers = make([]Tier, len(p.Tiers))
		for i, tr := range p.Tiers {
			s.Tiers[i] = Tier{Above: tr.Above, Rates: tr.Rates.scaled(mult)}
			if tr.Fast != nil {
				f := tr.Fast.scaled(mult)
				s.Tiers[i].Fast = &f
			}
		}
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
