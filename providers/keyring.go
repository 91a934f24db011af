package providers

import (
	"io"
	"net/http"
	"sync/atomic"
)

// MaxKeys is the most API keys one provider may rotate through.
const MaxKeys = 64

// KeyEvent reports what happened to one of a provider's keys.
type KeyEvent struct {
	// Key is the key's 1-based position in the configuration (never the key).
	Key int
	// Status is the upstream status that caused the event.
	Status int
	// Disabled is true when the key was taken out of rotation (401/403);
	// false when it was only passed over for this request (429).
	Disabled bool
}

// KeyRing rotates a provider's API keys round-robin, one per request,
// taking a key out of rotation when the upstream rejects it (401/403) until
// the next configuration load, and moving on to the next key when one is
// rate limited (429). Safe for concurrent use.
type KeyRing struct {
	keys     []string
	disabled []atomic.Bool
	next     atomic.Uint64
	onEvent  func(KeyEvent)
}

// NewKeyRing returns a ring over keys (at most MaxKeys); onEvent, when not
// nil, is told about every rejected or rate-limited key.
func NewKeyRing(keys []string, onEvent func(KeyEvent)) *KeyRing {
	return &KeyRing{keys: keys, disabled: make([]atomic.Bool, len(keys)), onEvent: onEvent}
}

// Len is the number of keys.
func (r *KeyRing) Len() int { return len(r.keys) }

// Keys returns the keys (for redacting them from error messages).
func (r *KeyRing) Keys() []string { return r.keys }

// pick returns the next untried key in rotation. Only when every key is
// out of rotation does it fall back to a rejected one (a rejected answer
// beats no answer). ok is false when nothing is left to try.
func (r *KeyRing) pick(tried uint64) (int, bool) {
	n := uint64(len(r.keys))
	start := r.next.Add(1) - 1
	fallback := -1
	for j := uint64(0); j < n; j++ {
		i := int((start + j) % n)
		if tried&(1<<i) != 0 {
			continue
		}
		if !r.disabled[i].Load() {
			return i, true
		}
		if fallback < 0 {
			fallback = i
		}
	}
	if fallback >= 0 && tried == 0 && r.allDisabled() {
		return fallback, true
	}
	return 0, false
}

func (r *KeyRing) allDisabled() bool {
	for i := range r.disabled {
		if !r.disabled[i].Load() {
			return false
		}
	}
	return true
}

// Do sends a request with one key after another: send(key) builds and
// sends the request with that key. A 401 or 403 takes the key out of
// rotation and a 429 passes it over; either way the next untried key is
// tried while one remains, otherwise that answer is returned. Transport
// errors return at once (they are not the key's fault). With no keys
// (servers that need none) send gets "".
func (r *KeyRing) Do(send func(key string) (*http.Response, error)) (*http.Response, error) {
	if len(r.keys) == 0 {
		return send("")
	}
	var tried uint64
	var last *http.Response
	for {
		i, ok := r.pick(tried)
		if !ok {
			return last, nil
		}
		tried |= 1 << i
		resp, err := send(r.keys[i])
		if err != nil {
			if last != nil {
				discard(last)
			}
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			if !r.disabled[i].Swap(true) && r.onEvent != nil {
				r.onEvent(KeyEvent{Key: i + 1, Status: resp.StatusCode, Disabled: true})
			}
		case http.StatusTooManyRequests:
			if r.onEvent != nil {
				r.onEvent(KeyEvent{Key: i + 1, Status: resp.StatusCode})
			}
		default:
			if last != nil {
				discard(last)
			}
			return resp, nil
		}
		if last != nil {
			discard(last)
		}
		last = resp
	}
}

// discard drains a little of a response we will not relay and closes it,
// so its connection can be reused.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
