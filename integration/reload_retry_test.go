package integration

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
)

// Caddy listens with SO_REUSEPORT: during a reload the old and the new
// server each have a socket on the port, and the kernel spreads new
// connections over both. Connections still in the old socket's accept queue
// when it closes are reset unanswered, and real clients (Claude Code, the
// SDKs) retry them. The tests' clients run with SDK retries off, so that
// statuses are seen as sent; the shared transport below retries exactly
// that case instead: a request that failed with a reset or EOF before any
// response, whose body can be replayed.

// reloadSafe is the transport every test client uses (http.DefaultTransport).
var reloadSafe = func() *retryUnanswered {
	rt := &retryUnanswered{}
	rt.base.Store(http.DefaultTransport.(*http.Transport).Clone())
	http.DefaultTransport = rt
	return rt
}()

// retryUnanswered retries requests the server closed without answering.
type retryUnanswered struct {
	base atomic.Pointer[http.Transport]
}

// RoundTrip implements http.RoundTripper.
func (rt *retryUnanswered) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := rt.base.Load().RoundTrip(r)
	for attempt := 0; attempt < 2 && err != nil && unanswered(err); attempt++ {
		retry := r.Clone(r.Context())
		if r.Body != nil && r.Body != http.NoBody {
			if r.GetBody == nil {
				return nil, err
			}
			body, gerr := r.GetBody()
			if gerr != nil {
				return nil, err
			}
			retry.Body = body
		}
		resp, err = rt.base.Load().RoundTrip(retry)
	}
	return resp, err
}

// freshPool moves new requests to a new connection pool and closes the old
// pool's idle connections (requests in flight keep theirs): after a reload
// the old server closes its keep-alive connections, and one returned to
// the pool a moment after a response was read would otherwise be reused.
func (rt *retryUnanswered) freshPool() {
	old := rt.base.Swap(rt.base.Load().Clone())
	old.CloseIdleConnections()
}

// unanswered reports whether err is a connection the server reset or
// closed before answering.
func unanswered(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
