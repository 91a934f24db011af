package governance

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind is what an alert reports.
type EventKind string

// The alerts the gateway sends (`notify webhook <url> { events … }`).
const (
	// EventBudgetWarn: a budget's spend crossed its budget_warn percentage.
	EventBudgetWarn EventKind = "budget_warn"
	// EventBudgetExhausted: a budget's spend reached its limit, or a
	// request was refused because it had.
	EventBudgetExhausted EventKind = "budget_exhausted"
	// EventSessionCost: a Claude Code session's cost passed a threshold.
	EventSessionCost EventKind = "session_cost"
	// EventRateLimited: a request was refused by a rate limit (once per
	// scope and limit per clock hour).
	EventRateLimited EventKind = "rate_limited"
)

// DefaultEvents are what a `notify webhook <url>` without a block sends.
var DefaultEvents = []EventKind{EventBudgetWarn, EventBudgetExhausted}

// ParseEventKind validates an event name.
func ParseEventKind(s string) (EventKind, error) {
	switch k := EventKind(s); k {
	case EventBudgetWarn, EventBudgetExhausted, EventSessionCost, EventRateLimited:
		return k, nil
	}
	return "", fmt.Errorf("unknown event %q (want budget_warn, budget_exhausted, session_cost or rate_limited)", s)
}

// Event is one alert. Which fields are set depends on Kind.
type Event struct {
	Kind EventKind
	Time time.Time
	// Scope is the budget's or rate limit's owner; for session_cost, the key.
	Scope Scope
	// Key is the key whose request caused the event.
	Key string

	// Budget events: the budget, its period's bounds (ResetAt zero for a
	// total budget), what was spent, and the threshold crossed in percent
	// of the limit (100 for budget_exhausted).
	Budget      Budget
	PeriodStart time.Time
	ResetAt     time.Time
	Spent       Money
	Threshold   int

	// Session events: the session and the amount its cost passed.
	Session       string
	SessionAmount Money

	// Rate-limit events.
	RateLimit RateLimit
}

// DedupeKey identifies the event so it is sent once: per scope, budget
// period and threshold; per session and amount; per scope, rate limit and
// clock hour.
func (e *Event) DedupeKey() string {
	switch e.Kind {
	case EventSessionCost:
		return string(e.Kind) + "|" + e.Scope.String() + "|" + e.Session + "|" + strconv.FormatInt(int64(e.SessionAmount), 10)
	case EventRateLimited:
		return string(e.Kind) + "|" + e.Scope.String() + "|" + e.RateLimit.String() + "|" + strconv.FormatInt(e.Time.Unix()/3600, 10)
	}
	return string(e.Kind) + "|" + e.Scope.String() + "|" + e.Budget.Period.String() + "|" +
		strconv.FormatInt(e.PeriodStart.Unix(), 10) + "|" + strconv.Itoa(e.Threshold)
}

// DedupeUntil is when the event's dedupe entry may be forgotten: the end of
// its period (never, zero, for a total budget).
func (e *Event) DedupeUntil() time.Time {
	switch e.Kind {
	case EventSessionCost:
		return e.Time.Add(7 * 24 * time.Hour)
	case EventRateLimited:
		return e.Time.Truncate(time.Hour).Add(time.Hour)
	}
	return e.ResetAt
}

// Percent is the spend as a share of the limit, in percent, rounded down.
func (e *Event) Percent() int64 {
	if e.Budget.Limit <= 0 {
		return 0
	}
	return int64(e.Spent) * 100 / int64(e.Budget.Limit)
}

// Text is the event for people, as a Slack message: it names the scope
// ("key alice"), the amounts and what happens next.
func (e *Event) Text() string {
	scope := slackText(e.Scope.String())
	switch e.Kind {
	case EventBudgetWarn:
		return fmt.Sprintf(":warning: %s has spent %s of its %s budget (%d%%, past its %d%% warning)%s.",
			scope, FormatUSD(e.Spent), e.Budget, e.Percent(), e.Threshold, e.resets("it resets at "))
	case EventBudgetExhausted:
		return fmt.Sprintf(":no_entry: %s has used up its %s budget (%s spent): its requests are refused%s.",
			scope, e.Budget, FormatUSD(e.Spent), e.resets("until "))
	case EventSessionCost:
		return fmt.Sprintf(":rotating_light: Claude Code session %s of %s has cost %s, past %s: a runaway loop?",
			slackText(shortSession(e.Session)), scope, FormatUSD(e.Spent), FormatUSD(e.SessionAmount))
	case EventRateLimited:
		return fmt.Sprintf(":hourglass: %s hit its rate limit of %s: requests are being refused with 429.", scope, e.RateLimit)
	}
	return string(e.Kind) + " " + scope
}

func (e *Event) resets(prefix string) string {
	if e.ResetAt.IsZero() {
		if e.Kind == EventBudgetExhausted {
			return " (a total budget does not reset)"
		}
		return ""
	}
	return "; " + prefix + e.ResetAt.UTC().Format(time.RFC3339)
}

// shortSession keeps a session id readable in a message: its first 8
// characters (a UUID's first group).
func shortSession(s string) string {
	n := 0
	for i := range s {
		if n == 8 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// EventPayload is the JSON body a webhook receives: Slack's `text` plus the
// event's fields. Amounts are given as dollars and exact nano-dollars.
type EventPayload struct {
	Text        string  `json:"text"`
	Event       string  `json:"event"`
	Time        string  `json:"time"`
	Scope       string  `json:"scope"`
	Name        string  `json:"name"`
	Key         string  `json:"key,omitempty"`
	Period      string  `json:"period,omitempty"`
	PeriodStart string  `json:"period_start,omitempty"`
	ResetsAt    string  `json:"resets_at,omitempty"`
	SpentUSD    float64 `json:"spent_usd"`
	SpentNano   int64   `json:"spent_nano_usd"`
	LimitUSD    float64 `json:"limit_usd,omitempty"`
	LimitNano   int64   `json:"limit_nano_usd,omitempty"`
	Percent     int64   `json:"percent,omitempty"`
	Threshold   int     `json:"threshold_percent,omitempty"`
	Session     string  `json:"session,omitempty"`
	ThresholdUS float64 `json:"threshold_usd,omitempty"`
	ThresholdNs int64   `json:"threshold_nano_usd,omitempty"`
	RateLimit   string  `json:"rate_limit,omitempty"`
}

// Payload is the event as a webhook body.
func (e *Event) Payload() EventPayload {
	p := EventPayload{
		Text: e.Text(), Event: string(e.Kind), Time: e.Time.UTC().Format(time.RFC3339),
		Scope: e.Scope.Kind.String(), Name: e.Scope.Name, Key: e.Key,
		SpentUSD: e.Spent.USD(), SpentNano: int64(e.Spent),
	}
	switch e.Kind {
	case EventBudgetWarn, EventBudgetExhausted:
		p.Period = e.Budget.Period.String()
		if e.Budget.Period != PeriodTotal {
			p.PeriodStart = e.PeriodStart.UTC().Format(time.RFC3339)
			p.ResetsAt = e.ResetAt.UTC().Format(time.RFC3339)
		}
		p.LimitUSD, p.LimitNano = e.Budget.Limit.USD(), int64(e.Budget.Limit)
		p.Percent, p.Threshold = e.Percent(), e.Threshold
	case EventSessionCost:
		p.Session = e.Session
		p.ThresholdUS, p.ThresholdNs = e.SessionAmount.USD(), int64(e.SessionAmount)
	case EventRateLimited:
		p.RateLimit = e.RateLimit.String()
	}
	return p
}

// BudgetEvents turns one settlement's budget changes into the events they
// cause: a budget_warn crossing (the scope's BudgetWarnFor threshold) and a
// budget_exhausted crossing (spend reaching the limit). starts gives each
// change's period start (the ticket's reservation; now's period when
// unknown). Spend exactly at the limit counts as exhausted, as admission
// does.
func (r *Registry) BudgetEvents(changes []BudgetChange, key string, now time.Time, loc *time.Location, starts func(BudgetChange) (time.Time, bool)) []Event {
	var out []Event
	for _, c := range changes {
		start, ok := starts(c)
		if !ok {
			start = c.Budget.Period.Start(now, loc)
		}
		ev := Event{Time: now, Scope: c.Scope, Key: key, Budget: c.Budget, PeriodStart: start,
			ResetAt: c.Budget.Period.End(start), Spent: c.After}
		if pct := r.BudgetWarnFor(c.Scope); pct > 0 && pct < 100 {
			threshold := c.Budget.Limit * Money(pct) / 100
			if c.Before < threshold && c.After >= threshold {
				w := ev
				w.Kind, w.Threshold = EventBudgetWarn, pct
				out = append(out, w)
			}
		}
		if c.Before < c.Budget.Limit && c.After >= c.Budget.Limit {
			ev.Kind, ev.Threshold = EventBudgetExhausted, 100
			out = append(out, ev)
		}
	}
	return out
}

// ExhaustedEvent is the budget_exhausted event of a refusal for a spent
// budget (nil for any other refusal): the first sign when a budget was
// lowered below what was already spent.
func ExhaustedEvent(rej *Rejection, key string, now time.Time, loc *time.Location) *Event {
	if rej == nil || rej.Reason != RejectBudget || rej.Held() {
		return nil
	}
	start := rej.Budget.Period.Start(now, loc)
	return &Event{Kind: EventBudgetExhausted, Time: now, Scope: rej.Scope, Key: key, Budget: rej.Budget,
		PeriodStart: start, ResetAt: rej.Budget.Period.End(start), Spent: rej.Spent, Threshold: 100}
}

// RateLimitedEvent is the rate_limited event of a rate-limit refusal (nil
// for any other).
func RateLimitedEvent(rej *Rejection, key string, now time.Time) *Event {
	if rej == nil || rej.Reason != RejectRateLimit {
		return nil
	}
	return &Event{Kind: EventRateLimited, Time: now, Scope: rej.Scope, Key: key, RateLimit: rej.RateLimit}
}

// SessionEvents are the session_cost events of a session whose cost went
// from before to after: one per amount crossed.
func SessionEvents(key, session string, before, after Money, amounts []Money, now time.Time) []Event {
	var out []Event
	for _, a := range amounts {
		if before < a && after >= a {
			out = append(out, Event{Kind: EventSessionCost, Time: now, Scope: Scope{ScopeKey, key}, Key: key,
				Session: session, SessionAmount: a, Spent: after})
		}
	}
	return out
}

// slackText makes a name safe inside a Slack message: no control
// characters, and &, < and > escaped as Slack asks, so a name (or a
// client's session id) cannot mention @channel or smuggle a link.
func slackText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
