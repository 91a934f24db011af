package module

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// DefaultReservationLease is how long a budget reservation survives without
// progress: long enough for a slow non-streamed answer, short enough that a
// crashed instance's reservations come back the same hour.
const DefaultReservationLease = 10 * time.Minute

// leaseTracker keeps the reservations of in-flight requests alive while
// their responses make progress, and sweeps expired ones (requests that died
// without settling, here or on another instance). One goroutine per store,
// waking every third of a lease; nothing per request but a map entry and an
// atomic byte count.
type leaseTracker struct {
	store   *sharedStore
	logger  *zap.Logger
	metrics *metrics
	lease   atomic.Int64 // nanoseconds; the newest config's reservation_lease

	mu     sync.Mutex
	active map[*flight]struct{}

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// flight is one admitted request holding reservations.
type flight struct {
	ticket *governance.Ticket
	// progress counts bytes written to the client; waiting is set while the
	// request waits for the provider's response headers (also progress).
	progress atomic.Int64
	waiting  atomic.Bool
	seen     int64 // renewer-owned: progress at the last renewal
}

func newLeaseTracker(s *sharedStore, logger *zap.Logger, m *metrics) *leaseTracker {
	t := &leaseTracker{store: s, logger: logger, metrics: m, active: map[*flight]struct{}{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	t.lease.Store(int64(DefaultReservationLease))
	go t.loop()
	return t
}

// setLease applies a config's reservation_lease (the loop picks up the new
// interval at its next wake-up).
func (t *leaseTracker) setLease(d time.Duration) {
	if d <= 0 {
		d = DefaultReservationLease
	}
	if time.Duration(t.lease.Swap(int64(d))) != d {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

func (t *leaseTracker) currentLease() time.Duration { return time.Duration(t.lease.Load()) }

// track registers an admitted request until untrack.
func (t *leaseTracker) track(tk *governance.Ticket) *flight {
	f := &flight{ticket: tk}
	f.waiting.Store(true)
	t.mu.Lock()
	t.active[f] = struct{}{}
	t.mu.Unlock()
	return f
}

func (t *leaseTracker) untrack(f *flight) {
	t.mu.Lock()
	delete(t.active, f)
	t.mu.Unlock()
}

func (t *leaseTracker) loop() {
	defer close(t.done)
	for {
		interval := t.currentLease() / 3
		if interval < time.Millisecond {
			interval = time.Millisecond
		}
		timer := time.NewTimer(interval)
		select {
		case <-t.quit:
			timer.Stop()
			return
		case <-t.wake:
			timer.Stop()
			continue
		case <-timer.C:
		}
		t.tick(time.Now())
	}
}

// tick renews the leases of requests that made progress since the last
// tick and sweeps expired leases.
func (t *leaseTracker) tick(now time.Time) {
	var renew []*governance.Ticket
	t.mu.Lock()
	for f := range t.active {
		p := f.progress.Load()
		if f.waiting.Load() || p != f.seen {
			f.seen = p
			renew = append(renew, f.ticket)
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(renew) > 0 {
		if err := t.store.counters.Renew(ctx, renew, now, t.currentLease()); err != nil {
			t.metrics.storeErrors.WithLabelValues("renew").Inc()
			t.logger.Error("renewing budget reservations", zap.String("store", t.store.desc), zap.Error(err))
		}
	}
	if err := t.store.counters.Sweep(ctx, now); err != nil {
		t.metrics.storeErrors.WithLabelValues("sweep").Inc()
		t.logger.Error("sweeping expired budget reservations", zap.String("store", t.store.desc), zap.Error(err))
	}
}

func (t *leaseTracker) stop() {
	t.once.Do(func() {
		close(t.quit)
		<-t.done
	})
}

// progressWriter counts the bytes of a response as they reach the client,
// so the lease tracker knows the request is alive.
type progressWriter struct {
	http.ResponseWriter
	f *flight
}

func (w *progressWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.f.progress.Add(int64(n))
	return n, err
}

func (w *progressWriter) WriteHeader(status int) {
	w.f.waiting.Store(false)
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.NewResponseController reach the real writer's Flush.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
