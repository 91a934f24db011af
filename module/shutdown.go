package module

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/providers"
)

// errShutdown is the cause of the context of a request cut because Caddy
// is stopping and its grace period let the request outlive it.
var errShutdown = errors.New("the gateway is shutting down")

// How long a stopping Caddy waits for the requests it cut to settle: first
// for them to notice (their upstream reads fail at once), then, with their
// client connection's deadlines expired too (a write blocked on a client
// that does not read), for the rest.
const (
	shutdownNotice = 5 * time.Second
	shutdownSettle = 15 * time.Second
)

// inflight is every request that holds a store reference, whichever config
// admitted it: when Caddy stops, whatever its grace period left running is
// cut, settled and ledgered before the stores close and the process exits.
var inflight = &requestSet{m: map[*liveRequest]struct{}{}}

// liveRequest is one request in flight.
type liveRequest struct {
	cancel context.CancelCauseFunc
	w      http.ResponseWriter
}

type requestSet struct {
	mu       sync.Mutex
	m        map[*liveRequest]struct{}
	stopping bool
	idle     chan struct{} // closed when m empties while a stop waits
}

// enter registers a request that took a store reference and returns it with
// a context the shutdown can cut (already cut if Caddy is stopping).
func (s *requestSet) enter(r *http.Request, w http.ResponseWriter) (*http.Request, *liveRequest) {
	ctx, cancel := context.WithCancelCause(r.Context())
	l := &liveRequest{cancel: cancel, w: w}
	s.mu.Lock()
	s.m[l] = struct{}{}
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		cancel(errShutdown)
	}
	return r.WithContext(ctx), l
}

// leave releases the request's store reference (closing the store if it was
// the last) and then forgets the request, so a stop that waits for the set
// to empty knows every store the requests held is released.
func (s *requestSet) leave(l *liveRequest, store *sharedStore) {
	store.release()
	l.cancel(context.Canceled)
	s.mu.Lock()
	delete(s.m, l)
	if len(s.m) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// wait returns true once no request is in flight, false after d.
func (s *requestSet) wait(d time.Duration) bool {
	s.mu.Lock()
	if len(s.m) == 0 {
		s.mu.Unlock()
		return true
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

func (s *requestSet) snapshot() []*liveRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*liveRequest, 0, len(s.m))
	for l := range s.m {
		out = append(out, l)
	}
	return out
}

func (s *requestSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// stop is the gateway's part of a Caddy stop, run from Cleanup. When the
// process exits, Caddy's HTTP servers have already waited for their grace
// period; a stop that leaves the process running (Caddy embedded, tests)
// returns at once, so the grace period is waited here. Either way, every
// request still in flight after it is cut (its upstream request cancelled:
// the relay ends with what passed), and stop returns once each has been
// settled and ledgered and has released its store, or after
// shutdownNotice + shutdownSettle. An eternal grace period (0) cuts nothing
// in a process that goes on: those requests finish and settle by
// themselves, as Caddy's servers keep serving them.
func (s *requestSet) stop(logger *zap.Logger, grace time.Duration) {
	if !caddy.Exiting() {
		if grace <= 0 || s.wait(grace) {
			return
		}
	}
	s.cutAndWait(logger)
}

// cutAndWait cuts every request in flight and waits for them to settle.
func (s *requestSet) cutAndWait(logger *zap.Logger) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stopping = false
		s.mu.Unlock()
	}()
	live := s.snapshot()
	if len(live) == 0 {
		return
	}
	logger.Warn("stopping: cutting the requests still in flight after the grace period; they are charged for what passed",
		zap.Int("requests", len(live)))
	for _, l := range live {
		l.cancel(errShutdown)
	}
	if s.wait(shutdownNotice) {
		return
	}
	// Some are blocked on their client (a write to a client that does not
	// read): expire their connections' deadlines so they return too.
	now := time.Now()
	for _, l := range s.snapshot() {
		rc := http.NewResponseController(l.w)
		_ = rc.SetReadDeadline(now)
		_ = rc.SetWriteDeadline(now)
	}
	if !s.wait(shutdownSettle) {
		logger.Error("stopping: requests still in flight did not finish; their usage may not be ledgered",
			zap.Int("requests", s.len()))
	}
}

// httpGracePeriod is the HTTP app's grace_period (0: eternal). The app is
// known to its submodules while it is being provisioned.
func httpGracePeriod(ctx caddy.Context) time.Duration {
	app, err := ctx.AppIfConfigured("http")
	if err != nil {
		return 0
	}
	if h, ok := app.(*caddyhttp.App); ok {
		return time.Duration(h.GracePeriod)
	}
	return 0
}

// processStopping reports, from a module's Cleanup, whether Caddy is
// stopping (caddy stop, a signal, the admin API's /stop) rather than
// replacing the config: a stop clears the active config before cleaning up
// the old one, a reload has already swapped the new one in.
func processStopping() bool {
	return caddy.Exiting() || caddy.ActiveContext().Context == nil
}

// endOfRelay sorts out why a relay ended when the request's context is
// done. A cut by shutdown is the gateway's doing, not the client's: the
// client must see a truncated response (an abort), and the log says
// llm.shutdown. Otherwise the client is gone only if the response did not
// reach its end: a client that read a whole response (a relayed 429) and
// hung up before the handler returned is not.
func (x *exchange) endOfRelay(ctx context.Context, res *providers.Result) {
	if ctx.Err() == nil {
		return
	}
	if errors.Is(context.Cause(ctx), errShutdown) {
		if res.UpstreamErr == nil && res.ClientErr == nil {
			return // the whole response passed before the cut
		}
		x.cutByShutdown()
		// Not the client's doing (a write can only have failed because
		// the cut expired the connection's deadlines): abort the response.
		res.ClientErr = nil
		if res.UpstreamErr == nil {
			res.UpstreamErr = errShutdown
		}
		return
	}
	if res.ClientErr == nil && res.UpstreamErr != nil {
		res.ClientErr = context.Cause(ctx)
	}
}

// cutByShutdown notes in the access log that shutdown cut the request.
func (x *exchange) cutByShutdown() {
	if elf, ok := x.r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		elf.Add(zap.Bool("llm.shutdown", true))
	}
}

// shutdownCut reports whether ctx was cut by a stopping Caddy.
func shutdownCut(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errShutdown)
}
