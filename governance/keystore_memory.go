package governance

import (
	"context"
	"sort"
	"sync"
)

// MemoryKeyStore keeps live keys in this process only: they survive config
// reloads but not a restart. The gateway uses it with a memory ledger.
type MemoryKeyStore struct {
	mu      sync.Mutex
	version int64
	keys    map[string]*LiveKey
	audit   []AuditEntry
}

// NewMemoryKeyStore returns an empty store.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string]*LiveKey{}}
}

// Changes implements KeyStore.
func (m *MemoryKeyStore) Changes(_ context.Context, since int64) ([]*LiveKey, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*LiveKey
	for _, k := range m.keys {
		if k.Version > since {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, m.version, nil
}

// Update implements KeyStore.
func (m *MemoryKeyStore) Update(_ context.Context, name string, fn func(cur *LiveKey) (*LiveKey, *AuditEntry, error)) (*LiveKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.keys[name]
	next, a, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, nil
	}
	m.version++
	next.Version = m.version
	m.keys[name] = next
	if a != nil {
		e := *a
		e.ID = int64(len(m.audit) + 1)
		m.audit = append(m.audit, e)
	}
	return next, nil
}

// Audit implements KeyStore.
func (m *MemoryKeyStore) Audit(_ context.Context, q AuditQuery) ([]AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := auditLimit(q.Limit)
	var out []AuditEntry
	for i := len(m.audit) - 1; i >= 0 && len(out) < limit; i-- {
		e := m.audit[i]
		if q.Before > 0 && e.ID >= q.Before || q.Key != "" && e.Key != q.Key {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Close implements KeyStore.
func (m *MemoryKeyStore) Close() error { return nil }

// auditLimit is the page size of an audit query: default 100, at most 1000.
func auditLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

var _ KeyStore = (*MemoryKeyStore)(nil)
