// Package clock is the wall clock of the live key layer (grace periods of
// rotated secrets), replaceable by tests that run a real Caddy in process
// and must move time forward without sleeping.
package clock

import (
	"sync/atomic"
	"time"
)

var override atomic.Pointer[func() time.Time]

// Now is the current time: time.Now unless a test set a clock.
func Now() time.Time {
	if f := override.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Set makes Now call f until the returned restore function is called.
func Set(f func() time.Time) (restore func()) {
	override.Store(&f)
	return func() { override.Store(nil) }
}
