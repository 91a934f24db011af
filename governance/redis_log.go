package governance

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"

	"github.com/redis/go-redis/v9"
)

// go-redis has one logger for the whole process (redis.SetLogger), no
// logger per client, and it logs a client's failed dials itself. So that a
// gateway's Redis store can keep those lines in its own log without
// touching the logging of any other Redis client in the binary:
//
//   - nothing is installed unless a client asks for RedisOptions.Log;
//   - that client's dial errors carry its log function (dialError);
//   - the logger installed then, once, sends a line to the client whose
//     dial error it quotes, and writes every other line exactly as
//     go-redis's default logger does (standard error, "redis: " prefix,
//     the go-redis file and line).

// dialError is a dial failure of a client that routes its log lines.
type dialError struct {
	err error
	log func(msg string)
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// logDialErrors wraps a client's dialer so its failures name the client's
// log, and installs the routing logger.
func logDialErrors(dial func(ctx context.Context, network, addr string) (net.Conn, error), logf func(msg string)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	routeRedisLogs()
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err: err, log: logf}
		}
		return c, nil
	}
}

var routeOnce sync.Once

// routeRedisLogs installs routedLogger as go-redis's logger, once.
func routeRedisLogs() {
	routeOnce.Do(func() {
		redis.SetLogger(&routedLogger{fallback: log.New(os.Stderr, "redis: ", log.LstdFlags|log.Lshortfile)})
	})
}

// routedLogger sends a line quoting a dialError to that client's log, and
// any other line where go-redis's default logger would.
type routedLogger struct{ fallback *log.Logger }

func (l *routedLogger) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	for _, a := range v {
		var de *dialError
		if err, ok := a.(error); ok && errors.As(err, &de) {
			de.log(msg)
			return
		}
	}
	// 3: the go-redis line that logged, as go-redis's default logger
	// reports it (Output ← this Printf ← go-redis's forwarding Printf ←
	// the caller).
	_ = l.fallback.Output(3, msg)
}
