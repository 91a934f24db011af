package governance

import "sync"

// counters are the in-memory running totals per scope that every store keeps
// for fast reads; persistent stores load them at open and write through.
type counters struct {
	mu     sync.RWMutex
	totals map[Scope]*Totals
}

func newCounters() *counters { return &counters{totals: make(map[Scope]*Totals)} }

func (c *counters) record(r *Record) {
	var scopes [3]Scope
	n := 0
	if r.Key != "" {
		scopes[n] = Scope{ScopeKey, r.Key}
		n++
	}
	if r.Team != "" {
		scopes[n] = Scope{ScopeTeam, r.Team}
		n++
	}
	if r.Customer != "" {
		scopes[n] = Scope{ScopeCustomer, r.Customer}
		n++
	}
	c.mu.Lock()
	for _, s := range scopes[:n] {
		t := c.totals[s]
		if t == nil {
			t = new(Totals)
			c.totals[s] = t
		}
		t.add(r)
	}
	c.mu.Unlock()
}

func (c *counters) get(s Scope) Totals {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if t := c.totals[s]; t != nil {
		return *t
	}
	return Totals{}
}

func (c *counters) set(s Scope, t Totals) {
	c.mu.Lock()
	c.totals[s] = &t
	c.mu.Unlock()
}
