package sso

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a Verifier remembers.
const DefaultCacheSize = 10000

// tokenCache remembers verified tokens by their SHA-256 until they expire:
// the raw token is never kept. It is bounded: when full, expired entries
// go first, then arbitrary ones (a developer whose entry went just
// verifies again).
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[sha256.Size]byte]cached
	// swept is when expired entries were last swept out: at most once a
	// second, so a full cache of live tokens costs O(1) per insertion.
	swept time.Time
}

type cached struct {
	id      Identity
	expires time.Time
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &tokenCache{max: max, m: make(map[[sha256.Size]byte]cached)}
}

// get returns the identity of a token verified before and not expired at now.
func (c *tokenCache) get(h *[sha256.Size]byte, now time.Time) (Identity, bool) {
	c.mu.RLock()
	e, ok := c.m[*h]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return Identity{}, false
	}
	return e.id, true
}

// put remembers a verified token until expires.
func (c *tokenCache) put(h *[sha256.Size]byte, id Identity, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[*h]; !ok && len(c.m) >= c.max {
		if now.Sub(c.swept) >= time.Second {
			c.swept = now
			for k, e := range c.m {
				if !now.Before(e.expires) {
					delete(c.m, k)
				}
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[*h] = cached{id: id, expires: expires}
}

// len is the number of entries, expired ones included.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
