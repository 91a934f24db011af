package cache

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Entry is one cached response, immutable once stored.
type Entry struct {
	key Key
	// Stored is when the response was recorded (the cache's clock).
	Stored time.Time
	// Status is the HTTP status the client received (always 200 today).
	Status int
	// ContentType is the response's Content-Type.
	ContentType string
	// Stream is true for an event stream (replayed without Content-Length).
	Stream bool
	// Body is every byte of the response body the client received.
	Body []byte
	// Usage is what the provider reported for the original response.
	Usage llm.Usage
	// CostNanoUSD is what the original response cost, in nano-USD: what
	// every hit on the entry saves.
	CostNanoUSD int64
	// Provider is the configured provider that served the original.
	Provider string
}

// entryOverhead approximates the memory an entry takes besides its body
// and content type: the struct, ristretto's item and map slot.
const entryOverhead = 256

// Size is the entry's cost in the cache: its bytes plus a fixed overhead.
func (e *Entry) Size() int64 {
	return int64(len(e.Body)+len(e.ContentType)+len(e.Provider)) + entryOverhead
}

// Cache is a bounded map from Key to Entry. It is safe for concurrent use.
type Cache struct {
	// mu keeps Clear and Close apart from every other call: ristretto
	// panics on a Set or Get racing its Close, and documents Clear as not
	// safe against concurrent use.
	mu     sync.RWMutex
	closed bool
	rc     *ristretto.Cache[uint64, *Entry]
	now    func() time.Time
}

// MinSize is the smallest max_size accepted.
const MinSize = 1 << 16

// New makes a cache holding at most maxSize bytes of entries (their Size),
// reading time from now (time.Now when nil).
func New(maxSize int64, now func() time.Time) (*Cache, error) {
	if maxSize < MinSize {
		return nil, errors.New("cache: max_size must be at least 64KiB")
	}
	if now == nil {
		now = time.Now
	}
	// About ten counters per entry the cache can hold, for entries of a
	// few KiB, within what a small cache or a huge one needs.
	counters := min(max(maxSize/256, 1<<12), 1<<24)
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry]{
		NumCounters:        counters,
		MaxCost:            maxSize,
		BufferItems:        64,
		IgnoreInternalCost: true,
		// The map key is the first 64 bits of the key's hash; the full key
		// (all 128 bits and the scope) is in the entry and compared on
		// every Get.
		KeyToHash: func(k uint64) (uint64, uint64) { return k, 0 },
	})
	if err != nil {
		return nil, err
	}
	return &Cache{rc: rc, now: now}, nil
}

func shortKey(k Key) uint64 { return binary.LittleEndian.Uint64(k.sum[:8]) }

// Get returns the entry stored under k if it is younger than ttl. An
// expired entry is removed.
func (c *Cache) Get(k Key, ttl time.Duration) (*Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, false
	}
	e, ok := c.rc.Get(shortKey(k))
	if !ok || e == nil || e.key != k {
		return nil, false
	}
	if c.now().Sub(e.Stored) >= ttl {
		c.rc.Del(shortKey(k))
		return nil, false
	}
	return e, true
}

// Put stores e under k, stamped with the cache's clock, and waits until the
// store has applied it (so the next Get sees it). It reports false when
// the cache refused the entry: the cache is closed, the entry is larger than
// the whole cache, or the admission policy preferred what it holds.
func (c *Cache) Put(k Key, e *Entry) bool {
	e.key = k
	e.Stored = c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed || !c.rc.Set(shortKey(k), e, e.Size()) {
		return false
	}
	c.rc.Wait()
	return true
}

// Del removes the entry stored under k.
func (c *Cache) Del(k Key) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		c.rc.Del(shortKey(k))
	}
}

// Bytes is the total Size of the entries held.
func (c *Cache) Bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0
	}
	return c.rc.MaxCost() - c.rc.RemainingCost()
}

// MaxSize is the cache's current bound.
func (c *Cache) MaxSize() int64 { return c.rc.MaxCost() }

// Resize changes the bound. Growing keeps every entry; shrinking empties
// the cache first (ristretto evicts only on insertion), so the bound holds
// at once.
func (c *Cache) Resize(maxSize int64) error {
	if maxSize < MinSize {
		return errors.New("cache: max_size must be at least 64KiB")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if maxSize < c.rc.MaxCost() {
		c.rc.Clear()
	}
	c.rc.UpdateMaxCost(maxSize)
	return nil
}

// Clear drops every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.rc.Clear()
	}
}

// Close releases the cache; later Puts are refused and Gets miss.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.rc.Close()
	}
}
