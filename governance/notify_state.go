package governance

import (
	"sync"
	"time"
)

// Deduper remembers the events already sent, so each is sent once (per
// scope, period and threshold; see Event.DedupeKey) however many requests,
// reloads or gateways see it. Entries are forgotten once their period is
// over; it holds at most max entries. Safe for concurrent use.
type Deduper struct {
	mu   sync.Mutex
	seen map[string]time.Time // key → until (zero: forever)
	max  int
}

// NewDeduper remembers up to max events (100 000 when max ≤ 0).
func NewDeduper(max int) *Deduper {
	if max <= 0 {
		max = 100_000
	}
	return &Deduper{seen: map[string]time.Time{}, max: max}
}

// First reports whether e is new, and remembers it.
func (d *Deduper) First(e *Event) bool {
	k := e.DedupeKey()
	d.mu.Lock()
	defer d.mu.Unlock()
	if until, ok := d.seen[k]; ok && (until.IsZero() || e.Time.Before(until)) {
		return false
	}
	if len(d.seen) >= d.max {
		d.prune(e.Time)
	}
	d.seen[k] = e.DedupeUntil()
	return true
}

// prune forgets the entries whose period is over, and half of the rest
// when that is not enough (an old period's duplicate is the lesser harm).
func (d *Deduper) prune(now time.Time) {
	for k, until := range d.seen {
		if !until.IsZero() && !now.Before(until) {
			delete(d.seen, k)
		}
	}
	if len(d.seen) < d.max {
		return
	}
	n := len(d.seen) / 2
	for k := range d.seen {
		if n == 0 {
			break
		}
		delete(d.seen, k)
		n--
	}
}

// Len is how many events are remembered.
func (d *Deduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// SessionCosts keeps the running cost of Claude Code sessions seen by this
// process, for session_cost alerts: bounded (idle sessions are forgotten
// first) and safe for concurrent use.
type SessionCosts struct {
	mu   sync.Mutex
	m    map[sessionKey]*sessionCost
	max  int
	idle time.Duration
}

type sessionKey struct{ key, session string }

type sessionCost struct {
	cost Money
	last time.Time
}

// NewSessionCosts tracks up to max sessions (100 000 when max ≤ 0); a
// session idle for a day may be forgotten when room is needed.
func NewSessionCosts(max int) *SessionCosts {
	if max <= 0 {
		max = 100_000
	}
	return &SessionCosts{m: map[sessionKey]*sessionCost{}, max: max, idle: 24 * time.Hour}
}

// Add charges cost to the key's session and returns its cost before and
// after.
func (s *SessionCosts) Add(key, session string, cost Money, now time.Time) (before, after Money) {
	k := sessionKey{key, session}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[k]
	if c == nil {
		if len(s.m) >= s.max {
			s.evict(now)
		}
		c = &sessionCost{}
		s.m[k] = c
	}
	before = c.cost
	c.cost += cost
	c.last = now
	return before, c.cost
}

// evict forgets idle sessions, and the least recently charged half when
// none is idle.
func (s *SessionCosts) evict(now time.Time) {
	for k, c := range s.m {
		if now.Sub(c.last) >= s.idle {
			delete(s.m, k)
		}
	}
	if len(s.m) < s.max {
		return
	}
	// Rare: find the median last-charge time and drop what is older.
	times := make([]time.Time, 0, len(s.m))
	for _, c := range s.m {
		times = append(times, c.last)
	}
	cut := nthTime(times, len(times)/2)
	for k, c := range s.m {
		if !c.last.After(cut) {
			delete(s.m, k)
		}
	}
}

// nthTime is the n-th smallest time (quickselect).
func nthTime(ts []time.Time, n int) time.Time {
	lo, hi := 0, len(ts)-1
	for lo < hi {
		p := ts[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for ts[i].Before(p) {
				i++
			}
			for p.Before(ts[j]) {
				j--
			}
			if i <= j {
				ts[i], ts[j] = ts[j], ts[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return ts[n]
		}
	}
	return ts[n]
}

// Len is how many sessions are tracked.
func (s *SessionCosts) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
