package governance

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// builtinPricesJSON is the built-in price table, one row per model and
// effective date, each citing the page it was read from.
//
//go:embed prices.json
var builtinPricesJSON []byte

// builtinPrices are the rows of prices.json.
var builtinPrices = func() []PriceRow {
	rows, err := ParsePrices("prices.json", builtinPricesJSON)
	if err != nil {
		panic(err)
	}
	return rows
}()

// BuiltinPricesJSON returns the built-in price table in the prices-file
// format, the starting point of an operator's prices_file.
func BuiltinPricesJSON() []byte { return bytes.Clone(builtinPricesJSON) }

// EffectiveDateLayout is the layout of a row's effective_from: a calendar
// date, in force from 00:00 UTC.
const EffectiveDateLayout = "2006-01-02"

// PricesFile is the prices-file format (JSON): {"rows": [ … ]}. A
// top-level "comment" is ignored.
type PricesFile struct {
	Comment string         `json:"comment,omitempty"`
	Rows    []PriceFileRow `json:"rows"`
}

// PriceFileRow is one row of a prices file. Amounts are USD per million
// tokens (web_search: USD per request), as decimal strings ("0.30") or
// JSON numbers, exact to the nano-dollar.
type PriceFileRow struct {
	// Model is a canonical model id, a provider's own id, or a glob.
	Model string `json:"model"`
	// EffectiveFrom is the date (YYYY-MM-DD, UTC) the row takes effect.
	EffectiveFrom string `json:"effective_from"`
	// Source is the price page the row was read from.
	Source string `json:"source,omitempty"`
	FileRates
	WebSearch *FileAmount `json:"web_search,omitempty"`
	// MaxOutput is the model's largest output in tokens.
	MaxOutput int64 `json:"max_output,omitempty"`
	// Fast are the fast-mode rates (usage "speed":"fast").
	Fast *FileRates `json:"fast,omitempty"`
	// Tiers are prompt-size tiers, "above" ascending.
	Tiers []FileTier `json:"tiers,omitempty"`
	// Unlisted leaves the model out of GET /v1/models (a legacy name the
	// provider's API does not accept as an id).
	Unlisted bool `json:"unlisted,omitempty"`
}

// FileRates are the five rates of a prices-file row or tier; all five are
// required.
type FileRates struct {
	Input        *FileAmount `json:"input,omitempty"`
	Output       *FileAmount `json:"output,omitempty"`
	CacheWrite5m *FileAmount `json:"cache_write_5m,omitempty"`
	CacheWrite1h *FileAmount `json:"cache_write_1h,omitempty"`
	CacheRead    *FileAmount `json:"cache_read,omitempty"`
}

// FileTier is a prices-file tier: rates for prompts above Above tokens.
type FileTier struct {
	Above int64 `json:"above"`
	FileRates
	Fast *FileRates `json:"fast,omitempty"`
}

// FileAmount is a dollar amount in a prices file: written as a string,
// read from a string or a number.
type FileAmount string

// UnmarshalJSON accepts "0.30" and 0.30 alike, keeping the decimal text.
func (a *FileAmount) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = FileAmount(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("amount %s is not a number", b)
	}
	*a = FileAmount(b)
	return nil
}

func amountOf(m Money) *FileAmount {
	s := m.String()
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	a := FileAmount(s)
	return &a
}

func fileRatesOf(r Rates) FileRates {
	return FileRates{Input: amountOf(r.Input), Output: amountOf(r.Output), CacheWrite5m: amountOf(r.CacheWrite5m),
		CacheWrite1h: amountOf(r.CacheWrite1h), CacheRead: amountOf(r.CacheRead)}
}

func (f *FileRates) rates() (Rates, error) {
	var r Rates
	for _, x := range []struct {
		name string
		in   *FileAmount
		out  *Money
	}{{"input", f.Input, &r.Input}, {"output", f.Output, &r.Output}, {"cache_write_5m", f.CacheWrite5m, &r.CacheWrite5m},
		{"cache_write_1h", f.CacheWrite1h, &r.CacheWrite1h}, {"cache_read", f.CacheRead, &r.CacheRead}} {
		if x.in == nil {
			return r, fmt.Errorf("%s is missing (every row gives all five rates: input, output, cache_write_5m, cache_write_1h, cache_read)", x.name)
		}
		m, err := ParseMoney(string(*x.in))
		if err != nil {
			return r, fmt.Errorf("%s: %v", x.name, err)
		}
		*x.out = m
	}
	return r, nil
}

// FileRow converts a table row to the prices-file format.
func FileRow(r TableRow) PriceFileRow {
	p := r.Price
	out := PriceFileRow{Model: p.Model, Source: p.Source, FileRates: fileRatesOf(p.Rates), MaxOutput: p.MaxOutput, Unlisted: r.Unlisted && !isProviderID(p.Model)}
	if !p.EffectiveFrom.IsZero() {
		out.EffectiveFrom = p.EffectiveFrom.UTC().Format(EffectiveDateLayout)
	}
	if p.WebSearch != 0 {
		out.WebSearch = amountOf(p.WebSearch)
	}
	if p.Fast != nil {
		f := fileRatesOf(*p.Fast)
		out.Fast = &f
	}
	for _, t := range p.Tiers {
		ft := FileTier{Above: t.Above, FileRates: fileRatesOf(t.Rates)}
		if t.Fast != nil {
			f := fileRatesOf(*t.Fast)
			ft.Fast = &f
		}
		out.Tiers = append(out.Tiers, ft)
	}
	return out
}

// PricesFileError is an invalid prices file: the file, the line, and what
// is wrong there.
type PricesFileError struct {
	File string
	Line int
	Msg  string
}

// Error reads "file:line: message".
func (e *PricesFileError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParsePrices reads a prices file (see PricesFile). Every row needs a
// model, an effective_from date and all five rates; tiers need an "above"
// larger than the previous tier's; one model may not have two rows with the
// same effective_from. Errors are *PricesFileError naming file and line.
func ParsePrices(file string, data []byte) ([]PriceRow, error) {
	fail := func(off int64, format string, a ...any) error {
		return &PricesFileError{File: file, Line: lineAt(data, off), Msg: fmt.Sprintf(format, a...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fail(0, "a prices file is a JSON object {\"rows\": [...]}")
	}
	var rows []PriceRow
	seen := map[string]int{} // model and date → line
	sawRows := false
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(fail, off, err)
		}
		switch tok {
		case "comment":
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, jsonErr(fail, off, err)
			}
			continue
		case "rows":
		default:
			return nil, fail(off, "unknown member %v (want \"rows\" or \"comment\")", tok)
		}
		sawRows = true
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, fail(dec.InputOffset(), "\"rows\" must be an array of rows")
		}
		for dec.More() {
			start := skipSpace(data, dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, jsonErr(fail, start, err)
			}
			row, err := parseRow(raw)
			if err != nil {
				var off int64
				var se *json.SyntaxError
				var te *json.UnmarshalTypeError
				switch {
				case errors.As(err, &se):
					off = se.Offset
				case errors.As(err, &te):
					off = te.Offset
				}
				return nil, fail(start+max(off-1, 0), "%v", err)
			}
			row.Line = lineAt(data, start)
			k := string(row.Model) + " " + row.Price.EffectiveFrom.Format(EffectiveDateLayout)
			if prev, dup := seen[k]; dup {
				return nil, fail(start, "%s has a second row effective from %s (the first is on line %d)", row.Model, row.Price.EffectiveFrom.Format(EffectiveDateLayout), prev)
			}
			seen[k] = row.Line
			rows = append(rows, row)
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(fail, dec.InputOffset(), err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(fail, dec.InputOffset(), err)
	}
	if !sawRows {
		return nil, fail(0, "no \"rows\" array")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fail(dec.InputOffset(), "data after the prices object")
	}
	return rows, nil
}

// jsonErr reports a decoding error at its own offset when it has one.
func jsonErr(fail func(int64, string, ...any) error, off int64, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	return fail(off, "%v", err)
}

func parseRow(raw []byte) (PriceRow, error) {
	var f PriceFileRow
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return PriceRow{}, err
	}
	if f.Model == "" {
		return PriceRow{}, errors.New("row without a model")
	}
	if err := llm.CheckModelName(f.Model); err != nil {
		return PriceRow{}, fmt.Errorf("model %q: %v", f.Model, err)
	}
	fail := func(format string, a ...any) (PriceRow, error) {
		return PriceRow{}, fmt.Errorf("%s: %s", f.Model, fmt.Sprintf(format, a...))
	}
	if f.EffectiveFrom == "" {
		return fail("effective_from is missing (the date the row takes effect, YYYY-MM-DD)")
	}
	from, err := time.Parse(EffectiveDateLayout, f.EffectiveFrom)
	if err != nil {
		return fail("effective_from %q is not a date YYYY-MM-DD", f.EffectiveFrom)
	}
	p := Price{Model: f.Model, EffectiveFrom: from, Source: f.Source, MaxOutput: f.MaxOutput}
	if p.Rates, err = f.FileRates.rates(); err != nil {
		return fail("%v", err)
	}
	if f.MaxOutput < 0 {
		return fail("max_output must not be negative")
	}
	if f.WebSearch != nil {
		if p.WebSearch, err = ParseMoney(string(*f.WebSearch)); err != nil {
			return fail("web_search: %v", err)
		}
	}
	if f.Fast != nil {
		r, err := f.Fast.rates()
		if err != nil {
			return fail("fast: %v", err)
		}
		p.Fast = &r
	}
	for i, t := range f.Tiers {
		if t.Above <= 0 || i > 0 && t.Above <= f.Tiers[i-1].Above {
			return fail("tier %d: above must be a positive prompt size larger than the previous tier's", i+1)
		}
		tr := Tier{Above: t.Above}
		if tr.Rates, err = t.FileRates.rates(); err != nil {
			return fail("tier above %d: %v", t.Above, err)
		}
		if t.Fast != nil {
			r, err := t.Fast.rates()
			if err != nil {
				return fail("tier above %d: fast: %v", t.Above, err)
			}
			tr.Fast = &r
		}
		p.Tiers = append(p.Tiers, tr)
	}
	return PriceRow{Model: llm.Glob(f.Model), Price: p, Unlisted: f.Unlisted}, nil
}

// skipSpace moves off past whitespace and a separating comma.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}
