package cache

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// clock is a fake clock for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)} }

func keyFor(i int) Key {
	return Derive(req(llm.SurfaceAnthropicMessages, fmt.Sprintf(`{"model":"m","n":%d}`, i)))
}

func entry(n int) *Entry {
	return &Entry{Status: 200, ContentType: "application/json", Body: make([]byte, n)}
}

func TestCacheTTL(t *testing.T) {
	clk := newClock()
	c, err := New(1<<20, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := keyFor(1)
	if !c.Put(k, entry(10)) {
		t.Fatal("Put refused")
	}
	tests := []struct {
		advance time.Duration
		ttl     time.Duration
		hit     bool
	}{
		{0, time.Hour, true},
		{59 * time.Minute, time.Hour, true},
		{0, 2 * time.Hour, true},     // a longer ttl (a reload) applies to the entry
		{0, 30 * time.Minute, false}, // so does a shorter one: and the entry is dropped
		{0, 2 * time.Hour, false},    // gone for good
	}
	for i, tc := range tests {
		clk.advance(tc.advance)
		if _, hit := c.Get(k, tc.ttl); hit != tc.hit {
			t.Fatalf("step %d: hit = %v, want %v", i, hit, tc.hit)
		}
	}
	k2 := keyFor(2)
	c.Put(k2, entry(10))
	clk.advance(time.Hour)
	if _, hit := c.Get(k2, time.Hour); hit {
		t.Error("an entry exactly ttl old was served")
	}
}

func TestCacheEvictionBySize(t *testing.T) {
	const max = 256 << 10
	c, err := New(max, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stored := 0
	for i := range 1000 {
		if c.Put(keyFor(i), entry(4<<10)) {
			stored++
		}
		if b := c.Bytes(); b > max {
			t.Fatalf("after %d puts the cache holds %d bytes, over its max_size %d", i+1, b, max)
		}
	}
	held := 0
	for i := range 1000 {
		if _, ok := c.Get(keyFor(i), time.Hour); ok {
			held++
		}
	}
	per := int(entry(4 << 10).Size())
	if held == 0 || held > max/per {
		t.Errorf("%d entries of %d bytes held in a %d-byte cache", held, per, max)
	}
	if c.Put(keyFor(5000), entry(max+1)) {
		if _, ok := c.Get(keyFor(5000), time.Hour); ok {
			t.Error("an entry larger than the cache was kept")
		}
	}
}

func TestCacheResize(t *testing.T) {
	c, err := New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 10 {
		c.Put(keyFor(i), entry(1<<10))
	}
	if err := c.Resize(2 << 20); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(keyFor(3), time.Hour); !ok || c.MaxSize() != 2<<20 {
		t.Fatal("growing the cache lost an entry")
	}
	if err := c.Resize(MinSize); err != nil {
		t.Fatal(err)
	}
	if c.Bytes() != 0 || c.MaxSize() != MinSize {
		t.Errorf("after shrinking: %d bytes held, max %d", c.Bytes(), c.MaxSize())
	}
	if c.Resize(10) == nil {
		t.Error("Resize accepted a tiny max_size")
	}
	if _, err := New(10, nil); err == nil {
		t.Error("New accepted a tiny max_size")
	}
}

func TestCacheFullKeyCompared(t *testing.T) {
	c, err := New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := keyFor(1)
	b := a
	b.sum[15] ^= 1 // same map slot, different key
	c.Put(a, entry(1))
	if _, ok := c.Get(b, time.Hour); ok {
		t.Error("a key differing past the first 64 bits was served another's entry")
	}
	other := a
	other.scope = "key\x00bob\x00"
	if _, ok := c.Get(other, time.Hour); ok {
		t.Error("an entry was served to another scope with the same hash")
	}
	if _, ok := c.Get(a, time.Hour); !ok {
		t.Error("the entry itself missed")
	}
}

func TestCacheClosed(t *testing.T) {
	c, err := New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(keyFor(1), entry(1))
	c.Close()
	c.Close()
	if c.Put(keyFor(2), entry(1)) {
		t.Error("a closed cache took an entry")
	}
	if _, ok := c.Get(keyFor(1), time.Hour); ok {
		t.Error("a closed cache served an entry")
	}
	if c.Bytes() != 0 {
		t.Error("a closed cache holds bytes")
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	c, err := New(MinSize*4, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := keyFor(g*1000 + i%50)
				if e, ok := c.Get(k, time.Hour); ok && e.key != k {
					t.Error("wrong entry")
				}
				c.Put(k, entry(512))
			}
		})
	}
	wg.Go(func() {
		_ = c.Resize(MinSize * 2)
		c.Clear()
	})
	wg.Wait()
	c.Close()
}

// TestCacheBoundedUnderLoad stores 10,000 distinct responses in a cache
// far smaller than them: what it holds stays within max_size throughout.
func TestCacheBoundedUnderLoad(t *testing.T) {
	const max = 1 << 20
	c, err := New(max, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 10000 {
		c.Put(keyFor(i), entry(2<<10))
		if b := c.Bytes(); b > max {
			t.Fatalf("request %d: %d bytes held, max_size %d", i, b, max)
		}
	}
}

// BenchmarkCacheMemory10000 reports the live heap of a 1 MiB cache after
// 10,000 distinct 2 KiB entries were put in it: the entries it kept, its
// own bookkeeping (ristretto's policy and store), nothing evicted.
func BenchmarkCacheMemory10000(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := New(1<<20, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 10000 {
			c.Put(keyFor(i), entry(2<<10))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(c.Bytes()), "cache-bytes")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "live-heap-bytes")
		c.Close()
	}
}
