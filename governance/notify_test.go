package governance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func notifyRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := NewRegistry(nil, []TeamSpec{{Name: "platform", Limits: Limits{BudgetWarn: 50}}},
		[]KeySpec{{Name: "alice", Hash: HashSecret("a"), Team: "platform", Limits: Limits{BudgetWarn: 80}}, {Name: "bob", Hash: HashSecret("b")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBudgetEvents(t *testing.T) {
	r := notifyRegistry(t)
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	day := Budget{5 * Dollar, PeriodDay}
	alice := Scope{ScopeKey, "alice"}
	team := Scope{ScopeTeam, "platform"}
	bob := Scope{ScopeKey, "bob"}
	noStart := func(BudgetChange) (time.Time, bool) { return time.Time{}, false }
	type want struct {
		kind      EventKind
		scope     Scope
		threshold int
	}
	for _, c := range []struct {
		name    string
		changes []BudgetChange
		want    []want
	}{
		{"below the threshold", []BudgetChange{{alice, day, Dollar, 2 * Dollar}}, nil},
		{"crosses 80%", []BudgetChange{{alice, day, 3 * Dollar, 4 * Dollar}}, []want{{EventBudgetWarn, alice, 80}}},
		{"already past 80%", []BudgetChange{{alice, day, 4 * Dollar, 4*Dollar + 1}}, nil},
		{"reaches the limit exactly", []BudgetChange{{alice, day, 4 * Dollar, 5 * Dollar}}, []want{{EventBudgetExhausted, alice, 100}}},
		{"both in one step", []BudgetChange{{alice, day, Dollar, 6 * Dollar}}, []want{{EventBudgetWarn, alice, 80}, {EventBudgetExhausted, alice, 100}}},
		{"already exhausted", []BudgetChange{{alice, day, 5 * Dollar, 6 * Dollar}}, nil},
		{"the team's own threshold", []BudgetChange{{team, day, 2 * Dollar, 3 * Dollar}}, []want{{EventBudgetWarn, team, 50}}},
		{"no threshold: only exhaustion", []BudgetChange{{bob, day, 0, 4 * Dollar}, {bob, day, 4 * Dollar, 5 * Dollar}}, []want{{EventBudgetExhausted, bob, 100}}},
	} {
		got := r.BudgetEvents(c.changes, "alice", now, time.UTC, noStart)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d events %+v, want %d", c.name, len(got), got, len(c.want))
			continue
		}
		for i, w := range c.want {
			e := got[i]
			if e.Kind != w.kind || e.Scope != w.scope || e.Threshold != w.threshold {
				t.Errorf("%s: event %d = %s %s %d, want %+v", c.name, i, e.Kind, e.Scope, e.Threshold, w)
			}
			if !e.PeriodStart.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) || !e.ResetAt.Equal(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("%s: period %v – %v", c.name, e.PeriodStart, e.ResetAt)
			}
		}
	}
	// The period of the ticket's reservation wins over now's: a request
	// admitted before midnight and settled after it charges yesterday.
	yesterday := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	got := r.BudgetEvents([]BudgetChange{{alice, day, 3 * Dollar, 4 * Dollar}}, "alice", now, time.UTC,
		func(BudgetChange) (time.Time, bool) { return yesterday, true })
	if len(got) != 1 || !got[0].PeriodStart.Equal(yesterday) || !got[0].ResetAt.Equal(yesterday.AddDate(0, 0, 1)) {
		t.Errorf("reservation's period: %+v", got)
	}
}

func TestDeduperOncePerPeriod(t *testing.T) {
	r := notifyRegistry(t)
	d := NewDeduper(0)
	day := Budget{5 * Dollar, PeriodDay}
	alice := Scope{ScopeKey, "alice"}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	events := func(now time.Time) []Event {
		return r.BudgetEvents([]BudgetChange{{alice, day, 3 * Dollar, 4 * Dollar}}, "alice", now, time.UTC,
			func(BudgetChange) (time.Time, bool) { return time.Time{}, false })
	}
	first := events(at("2026-12-02T10:00:00Z"))
	if !d.First(&first[0]) {
		t.Fatal("the first warning was not new")
	}
	// The same crossing seen again the same day (counters rebuilt, another
	// replica): not sent twice.
	again := events(at("2026-12-02T18:00:00Z"))
	if d.First(&again[0]) {
		t.Error("a second warning the same day was new")
	}
	// The next day is a new period.
	next := events(at("2026-12-03T09:00:00Z"))
	if !d.First(&next[0]) {
		t.Error("the next day's warning was not new")
	}
	// Another threshold, scope or kind is another event.
	other := first[0]
	other.Kind, other.Threshold = EventBudgetExhausted, 100
	if !d.First(&other) {
		t.Error("exhaustion after a warning was not new")
	}
	// Total budgets never reset: never sent twice.
	total := Event{Kind: EventBudgetExhausted, Scope: alice, Budget: Budget{Dollar, PeriodTotal}, PeriodStart: epoch, Time: at("2026-12-02T10:00:00Z"), Threshold: 100}
	if !d.First(&total) {
		t.Error("total: first not new")
	}
	total.Time = total.Time.AddDate(1, 0, 0)
	if d.First(&total) {
		t.Error("total: a year later it was new again")
	}
}

func TestDeduperBounded(t *testing.T) {
	d := NewDeduper(10)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := range 100 {
		e := Event{Kind: EventRateLimited, Scope: Scope{ScopeKey, string(rune('a'+i%26)) + strings.Repeat("x", i)}, Time: now}
		d.First(&e)
		if d.Len() > 10 {
			t.Fatalf("deduper holds %d > 10", d.Len())
		}
	}
	// Entries of periods that are over go first.
	d = NewDeduper(2)
	old := Event{Kind: EventRateLimited, Scope: Scope{ScopeKey, "a"}, Time: now}
	cur := Event{Kind: EventRateLimited, Scope: Scope{ScopeKey, "b"}, Time: now.Add(2 * time.Hour)}
	d.First(&old)
	d.First(&cur)
	third := Event{Kind: EventRateLimited, Scope: Scope{ScopeKey, "c"}, Time: now.Add(2 * time.Hour)}
	d.First(&third)
	if d.First(&cur) {
		t.Error("the current period's entry was pruned before the expired one")
	}
}

func TestEventTextAndPayload(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	warn := Event{Kind: EventBudgetWarn, Time: now, Scope: Scope{ScopeKey, "alice"}, Key: "alice",
		Budget: Budget{5 * Dollar, PeriodDay}, PeriodStart: start, ResetAt: start.AddDate(0, 0, 1), Spent: 4_020_000_000, Threshold: 80}
	if got, want := warn.Text(), ":warning: key alice has spent $4.02 of its $5.00 daily budget (80%, past its 80% warning); it resets at 2026-12-03T00:00:00Z."; got != want {
		t.Errorf("warn text:\n got %q\nwant %q", got, want)
	}
	b, _ := json.Marshal(warn.Payload())
	var p map[string]any
	_ = json.Unmarshal(b, &p)
	for k, v := range map[string]any{"event": "budget_warn", "scope": "key", "name": "alice", "period": "day", "spent_nano_usd": 4.02e9,
		"limit_nano_usd": 5e9, "percent": 80.0, "threshold_percent": 80.0, "time": "2026-12-02T15:04:05Z", "resets_at": "2026-12-03T00:00:00Z"} {
		if p[k] != v {
			t.Errorf("payload %s = %v, want %v (%s)", k, p[k], v, b)
		}
	}
	if !strings.Contains(p["text"].(string), "key alice") {
		t.Errorf("payload text %q does not name the scope", p["text"])
	}

	ex := warn
	ex.Kind, ex.Threshold, ex.Scope, ex.Spent = EventBudgetExhausted, 100, Scope{ScopeTeam, "platform"}, 5_030_000_000
	if got, want := ex.Text(), ":no_entry: team platform has used up its $5.00 daily budget ($5.03 spent): its requests are refused; until 2026-12-03T00:00:00Z."; got != want {
		t.Errorf("exhausted text:\n got %q\nwant %q", got, want)
	}
	ex.Budget.Period, ex.ResetAt = PeriodTotal, time.Time{}
	if got := ex.Text(); !strings.HasSuffix(got, "(a total budget does not reset).") {
		t.Errorf("total exhausted text: %q", got)
	}

	// A client's session id cannot mention @channel or add a link.
	s := SessionEvents("alice", "<!channel>&\n", 9*Dollar, 11*Dollar, []Money{10 * Dollar, 20 * Dollar}, now)
	if len(s) != 1 {
		t.Fatalf("session events: %+v", s)
	}
	if got, want := s[0].Text(), ":rotating_light: Claude Code session &lt;!channe… of key alice has cost $11.00, past $10.00: a runaway loop?"; got != want {
		t.Errorf("session text:\n got %q\nwant %q", got, want)
	}
	if strings.ContainsAny(s[0].Text(), "<>\n") {
		t.Errorf("session text not escaped: %q", s[0].Text())
	}
	sp := s[0].Payload()
	if sp.Session != "<!channel>&\n" || sp.ThresholdNs != int64(10*Dollar) || sp.SpentNano != int64(11*Dollar) || sp.Event != "session_cost" {
		t.Errorf("session payload: %+v", sp)
	}
}

func TestSessionEventsCrossings(t *testing.T) {
	now := time.Now()
	amounts := []Money{5 * Dollar, 10 * Dollar}
	for _, c := range []struct {
		before, after Money
		want          int
	}{{0, Dollar, 0}, {4 * Dollar, 5 * Dollar, 1}, {4 * Dollar, 11 * Dollar, 2}, {5 * Dollar, 6 * Dollar, 0}, {9 * Dollar, 10 * Dollar, 1}} {
		if got := SessionEvents("k", "s", c.before, c.after, amounts, now); len(got) != c.want {
			t.Errorf("%v → %v: %d events, want %d", c.before, c.after, len(got), c.want)
		}
	}
}

func TestSessionCosts(t *testing.T) {
	s := NewSessionCosts(4)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if b, a := s.Add("alice", "s1", Dollar, now); b != 0 || a != Dollar {
		t.Errorf("first add: %v %v", b, a)
	}
	if b, a := s.Add("alice", "s1", 2*Dollar, now); b != Dollar || a != 3*Dollar {
		t.Errorf("second add: %v %v", b, a)
	}
	// Another key's session of the same id is its own.
	if b, _ := s.Add("bob", "s1", Dollar, now); b != 0 {
		t.Errorf("bob's s1 started at %v", b)
	}
	s.Add("alice", "s2", Dollar, now.Add(time.Minute))
	s.Add("alice", "s3", Dollar, now.Add(2*time.Minute))
	// Full: the least recently charged go first.
	s.Add("alice", "s4", Dollar, now.Add(3*time.Minute))
	if s.Len() > 4 {
		t.Fatalf("holds %d sessions", s.Len())
	}
	if b, _ := s.Add("alice", "s3", 0, now.Add(4*time.Minute)); b != Dollar {
		t.Errorf("a recent session was evicted (s3 before = %v)", b)
	}
	// Idle sessions go before active ones.
	s = NewSessionCosts(2)
	s.Add("alice", "old", Dollar, now)
	s.Add("alice", "new", Dollar, now.Add(25*time.Hour))
	s.Add("alice", "newer", Dollar, now.Add(25*time.Hour))
	if b, _ := s.Add("alice", "new", 0, now.Add(25*time.Hour)); b != Dollar {
		t.Error("an active session was evicted before the idle one")
	}
}

func BenchmarkSessionCostsAdd(b *testing.B) {
	s := NewSessionCosts(0)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Add("alice", "5f1c2a44-9a7e-4b7e-8f4e-3c2d1b0a9f8e", 123456, now)
	}
}
