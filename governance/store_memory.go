package governance

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryLedgerRows is how many recent records a memory store keeps for
// usage reports.
const MemoryLedgerRows = 100_000

// MemoryStore keeps totals and the most recent MemoryLedgerRows records in
// memory only. It is meant for tests and throwaway set-ups: a restart loses
// everything.
type MemoryStore struct {
	c    *counters
	mu   sync.Mutex
	ring []memRecord
	next int
	seq  int64
}

// memRecord is a held record and its place in the write order.
type memRecord struct {
	rec Record
	seq int64
}

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{c: newCounters(), ring: make([]memRecord, 0, 1024)}
}

// Record implements Store.
func (m *MemoryStore) Record(r *Record) {
	m.c.record(r)
	m.mu.Lock()
	m.seq++
	if len(m.ring) < MemoryLedgerRows {
		m.ring = append(m.ring, memRecord{*r, m.seq})
	} else {
		m.ring[m.next] = memRecord{*r, m.seq}
		m.next = (m.next + 1) % MemoryLedgerRows
	}
	m.mu.Unlock()
}

// Totals implements Store.
func (m *MemoryStore) Totals(s Scope) Totals { return m.c.get(s) }

// Usage implements Store.
func (m *MemoryStore) Usage(_ context.Context, q UsageQuery) ([]UsageRow, error) {
	groups := map[string]*Totals{}
	m.mu.Lock()
	for i := range m.ring {
		r := &m.ring[i].rec
		if (!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && !r.Time.Before(q.To)) {
			continue
		}
		g := groupOf(r, q)
		t := groups[g]
		if t == nil {
			t = new(Totals)
			groups[g] = t
		}
		t.add(r)
	}
	m.mu.Unlock()
	rows := make([]UsageRow, 0, len(groups))
	for g, t := range groups {
		rows = append(rows, UsageRow{Group: g, Totals: *t})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
	return rows, nil
}

// Report implements Store over the records the store still holds.
func (m *MemoryStore) Report(_ context.Context, q ReportQuery) (Report, error) {
	b := newReportBuilder(q)
	lo, hi, ok := ledgerRange(q.From, q.To)
	m.mu.Lock()
	for i := range m.ring {
		r := &m.ring[i].rec
		if ns := unixNanos(r.Time); !ok || ns < lo || ns > hi {
			continue
		}
		lr := fromRecord(r)
		b.add(&lr)
	}
	m.mu.Unlock()
	return b.report()
}

// SpendSince sums one scope's records from the 15-minute bucket containing
// since onwards, exactly as SQLiteStore.SpendSince does, so a memory store
// can serve as the restore source of MemoryCounters. Only the records the
// store still holds count: the most recent MemoryLedgerRows.
func (m *MemoryStore) SpendSince(s Scope, since time.Time) (Totals, error) {
	var t Totals
	if s.Name == "" {
		return t, nil
	}
	from := floorDiv(unixNanos(since), bucketNanos)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.ring {
		r := &m.ring[i].rec
		var name string
		switch s.Kind {
		case ScopeKey:
			name = r.Key
		case ScopeTeam:
			name = r.Team
		case ScopeCustomer:
			name = r.Customer
		}
		if name == s.Name && floorDiv(unixNanos(r.Time), bucketNanos) >= from {
			t.add(r)
		}
	}
	return t, nil
}

// Flush implements Store; a memory store has nothing pending.
func (m *MemoryStore) Flush(context.Context) error { return nil }

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }

// groupOf is the group a record falls in.
func groupOf(r *Record, q UsageQuery) string {
	switch q.GroupBy {
	case GroupByKey:
		return r.Key
	case GroupByTeam:
		return r.Team
	case GroupByCustomer:
		return r.Customer
	case GroupByModel:
		return r.Model
	case GroupByProvider:
		return r.Provider
	case GroupBySpeed:
		return r.Usage.Speed
	case GroupByInferenceGeo:
		return r.Usage.InferenceGeo
	case GroupByPriceRow:
		return r.PriceRow()
	case GroupByDay:
		loc := q.Location
		if loc == nil {
			loc = timeUTC
		}
		return r.Time.In(loc).Format("2006-01-02")
	}
	return ""
}

// Requests implements Store over the records the store still holds.
func (m *MemoryStore) Requests(_ context.Context, q RequestsQuery) (RequestPage, error) {
	b, err := newRequestBuilder(q)
	if err != nil {
		return RequestPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	m.mu.Lock()
	for i := range m.ring {
		r := &m.ring[i]
		if ns := unixNanos(r.rec.Time); !ok || ns < lo || ns > hi {
			continue
		}
		b.add(&r.rec, r.seq)
	}
	m.mu.Unlock()
	return b.page(), nil
}

// Sessions implements Store over the records the store still holds.
func (m *MemoryStore) Sessions(_ context.Context, q SessionsQuery) (SessionPage, error) {
	b, err := newSessionBuilder(q)
	if err != nil {
		return SessionPage{}, err
	}
	lo, hi, ok := ledgerRange(q.From, q.To)
	m.mu.Lock()
	for i := range m.ring {
		r := &m.ring[i].rec
		if ns := unixNanos(r.Time); !ok || ns < lo || ns > hi {
			continue
		}
		lr := fromRecord(r)
		b.add(&lr)
	}
	m.mu.Unlock()
	return b.page()
}
