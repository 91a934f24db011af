package governance

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// KeyFields are a live key's settable fields in their JSON form: what the
// admin API shows, what audit entries record and what the key stores keep.
type KeyFields struct {
	Team         string          `json:"team,omitempty"`
	Customer     string          `json:"customer,omitempty"`
	Models       []string        `json:"models,omitempty"`
	Budgets      []BudgetJSON    `json:"budgets,omitempty"`
	RateLimits   []RateLimitJSON `json:"rate_limits,omitempty"`
	Expires      string          `json:"expires,omitempty"`
	Disabled     bool            `json:"disabled,omitempty"`
	MaxTokensCap int64           `json:"max_tokens_cap,omitempty"`
}

// BudgetJSON is a budget as the live key API writes it: {"usd": "5",
// "period": "day"}.
type BudgetJSON struct {
	USD    string `json:"usd"`
	Period string `json:"period"`
}

// RateLimitJSON is a rate limit: {"limit": 60, "unit": "requests", "per":
// "minute"}.
type RateLimitJSON struct {
	Limit int64  `json:"limit"`
	Unit  string `json:"unit"`
	Per   string `json:"per"`
}

// liveKeyFields renders a key's fields.
func liveKeyFields(k *LiveKey) KeyFields {
	f := KeyFields{Team: k.Team, Customer: k.Customer, Disabled: k.Disabled, MaxTokensCap: k.MaxTokensCap}
	for _, m := range k.Models {
		f.Models = append(f.Models, string(m))
	}
	f.Budgets = BudgetsJSON(k.Budgets)
	f.RateLimits = RateLimitsJSON(k.RateLimits)
	if !k.Expires.IsZero() {
		f.Expires = k.Expires.UTC().Format(time.RFC3339)
	}
	return f
}

// Fields is the key's settable fields in their JSON form.
func (k *LiveKey) Fields() KeyFields { return liveKeyFields(k) }

// BudgetsJSON renders budgets, amounts as exact trimmed decimals.
func BudgetsJSON(bs []Budget) []BudgetJSON {
	var out []BudgetJSON
	for _, b := range bs {
		s := b.Limit.String()
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		out = append(out, BudgetJSON{USD: s, Period: b.Period.String()})
	}
	return out
}

// RateLimitsJSON renders rate limits.
func RateLimitsJSON(rs []RateLimit) []RateLimitJSON {
	var out []RateLimitJSON
	for _, r := range rs {
		out = append(out, RateLimitJSON{Limit: r.Limit, Unit: r.Unit.String(), Per: windowName(r.Window)})
	}
	return out
}

// ParseBudgets reads budgets in their JSON form.
func ParseBudgets(in []BudgetJSON) ([]Budget, error) {
	out := make([]Budget, 0, len(in))
	for _, b := range in {
		m, err := ParseMoney(b.USD)
		if err != nil {
			return nil, fmt.Errorf("budget usd: %v", err)
		}
		p, err := ParsePeriod(b.Period)
		if err != nil {
			return nil, fmt.Errorf("budget: %v", err)
		}
		out = append(out, Budget{Limit: m, Period: p})
	}
	return out, nil
}

// ParseRateLimits reads rate limits in their JSON form.
func ParseRateLimits(in []RateLimitJSON) ([]RateLimit, error) {
	out := make([]RateLimit, 0, len(in))
	for _, r := range in {
		var u RateUnit
		switch r.Unit {
		case "requests":
			u = RateRequests
		case "tokens":
			u = RateTokens
		default:
			return nil, fmt.Errorf("rate_limit: unit must be requests or tokens, not %q", r.Unit)
		}
		w, err := ParseWindow(r.Per)
		if err != nil {
			return nil, fmt.Errorf("rate_limit: %v", err)
		}
		out = append(out, RateLimit{Limit: r.Limit, Unit: u, Window: w})
	}
	return out, nil
}

// ParseExpires reads an RFC 3339 expiry ("" is none).
func ParseExpires(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("expires: want an RFC 3339 time such as 2026-12-31T23:59:59Z")
	}
	return t, nil
}

// apply sets a key's fields from their JSON form.
func (f KeyFields) apply(k *LiveKey) error {
	var err error
	k.Team, k.Customer, k.Disabled, k.MaxTokensCap = f.Team, f.Customer, f.Disabled, f.MaxTokensCap
	k.Models = globs(f.Models)
	if k.Budgets, err = ParseBudgets(f.Budgets); err != nil {
		return err
	}
	if len(k.Budgets) == 0 {
		k.Budgets = nil
	}
	if k.RateLimits, err = ParseRateLimits(f.RateLimits); err != nil {
		return err
	}
	if len(k.RateLimits) == 0 {
		k.RateLimits = nil
	}
	k.Expires, err = ParseExpires(f.Expires)
	return err
}

func globs(in []string) []llm.Glob {
	if len(in) == 0 {
		return nil
	}
	out := make([]llm.Glob, len(in))
	for i, s := range in {
		out[i] = llm.Glob(s)
	}
	return out
}

// storedSecret is a secret as the key stores keep it: its hash only.
type storedSecret struct {
	SHA256   string `json:"sha256"`
	Created  int64  `json:"created"`
	NotAfter int64  `json:"not_after,omitempty"`
}

// encodeSecrets is the secrets column.
func encodeSecrets(ss []LiveSecret) string {
	out := make([]storedSecret, len(ss))
	for i, s := range ss {
		out[i] = storedSecret{SHA256: s.Hash.String(), Created: s.Created.UnixNano()}
		if !s.NotAfter.IsZero() {
			out[i].NotAfter = s.NotAfter.UnixNano()
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// decodeSecrets reads the secrets column.
func decodeSecrets(s string) ([]LiveSecret, error) {
	var in []storedSecret
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]LiveSecret, len(in))
	for i, ss := range in {
		h, err := ParseSecretHash(ss.SHA256)
		if err != nil {
			return nil, err
		}
		out[i] = LiveSecret{Hash: h, Created: time.Unix(0, ss.Created).UTC()}
		if ss.NotAfter != 0 {
			out[i].NotAfter = time.Unix(0, ss.NotAfter).UTC()
		}
	}
	return out, nil
}

// encodeFields is the fields column.
func encodeFields(k *LiveKey) string { return mustJSON(liveKeyFields(k)) }

// decodeFields reads the fields column into k.
func decodeFields(s string, k *LiveKey) error {
	var f KeyFields
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		return err
	}
	return f.apply(k)
}

// timeOrZero is the time of Unix nanoseconds, zero for 0.
func timeOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// nanosOrZero is t in Unix nanoseconds, 0 for the zero time.
func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
