package module

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestRequestSetStop: a stop that leaves the process running waits out the
// grace period for requests to end by themselves, then cuts the rest and
// returns once they have left; an eternal grace period cuts nothing; a
// request entering during a stop is cut at once.
func TestRequestSetStop(t *testing.T) {
	s := &requestSet{m: map[*liveRequest]struct{}{}}
	store := &sharedStore{}
	store.refs.Store(100) // never the last reference here
	serve := func() (context.Context, chan error) {
		r, l := s.enter(httptest.NewRequest("POST", "/v1/messages", nil), httptest.NewRecorder())
		left := make(chan error, 1)
		go func() {
			<-r.Context().Done() // a stream that never ends by itself
			cause := context.Cause(r.Context())
			s.leave(l, store)
			left <- cause
		}()
		return r.Context(), left
	}

	ctx, left := serve()
	s.stop(zap.NewNop(), 0)
	if ctx.Err() != nil || s.len() != 1 {
		t.Fatal("an eternal grace period cut a request")
	}

	start := time.Now()
	s.stop(zap.NewNop(), 50*time.Millisecond)
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("stop returned after %v, before the grace period", took)
	}
	if s.len() != 0 {
		t.Fatal("stop returned before the cut request left")
	}
	if cause := <-left; !errors.Is(cause, errShutdown) {
		t.Fatalf("cut with %v", cause)
	}
	if store.refs.Load() != 99 {
		t.Fatalf("store refs %d: the request's reference was not released", store.refs.Load())
	}

	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	r, l := s.enter(httptest.NewRequest("POST", "/v1/messages", nil), httptest.NewRecorder())
	if !shutdownCut(r.Context()) {
		t.Fatal("a request entering during a stop was not cut")
	}
	s.leave(l, store)
}
