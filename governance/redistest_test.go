package governance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTestServer is a redis-server this test started for itself on a free
// 127.0.0.1 port, with no persistence, killed when the test ends.
type redisTestServer struct {
	Addr string
	URL  string
}

// startRedisServer starts a private redis-server for t and waits until it
// answers PING. Without redis-server on PATH the test fails: no mock stands
// in for Redis.
func startRedisServer(t testing.TB) *redisTestServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH: install Debian's redis-server (apt-get install -y redis-server); " +
			"the project's test script installs it. The Redis counter tests run against a real server, never a mock.")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		srv, err := tryStartRedisServer(t, bin)
		if err == nil {
			return srv
		}
		lastErr = err // most likely another process took the port meanwhile
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func tryStartRedisServer(t testing.TB, bin string) (*redisTestServer, error) {
	port, err := redisFreePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	var out redisOutputBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Wait for readiness: poll PING with a short, growing backoff, bounded
	// by a deadline.
	deadline := time.Now().Add(10 * time.Second)
	backoff := 2 * time.Millisecond
	for {
		select {
		case err := <-exited:
			exited <- err
			stop()
			return nil, fmt.Errorf("redis-server exited early (%v): %s", err, out.String())
		default:
		}
		err := redisRawPing(addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING in time: %v; output: %s", addr, err, out.String())
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 100*time.Millisecond)
	}
	t.Cleanup(stop)
	return &redisTestServer{Addr: addr, URL: "redis://" + addr + "/0"}, nil
}

// redisRawPing sends one inline PING over a plain connection (go-redis would
// log every refused dial while the server starts).
func redisRawPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// redisFreePort asks the kernel for a free port on 127.0.0.1.
func redisFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newRedisCountersForTest starts a redis-server for t and returns counters on
// it. The conformance suite uses it:
//
//	runCountersConformance(t, func(t *testing.T) Counters { return newRedisCountersForTest(t) })
func newRedisCountersForTest(t testing.TB) *RedisCounters {
	t.Helper()
	return newRedisCountersOn(t, startRedisServer(t), "")
}

// newRedisCountersOn returns counters with their own client (one more "Caddy
// instance") on srv.
func newRedisCountersOn(t testing.TB, srv *redisTestServer, prefix string) *RedisCounters {
	t.Helper()
	c, err := NewRedisCounters(RedisOptions{URL: srv.URL, Prefix: prefix})
	if err != nil {
		t.Fatalf("NewRedisCounters: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// redisOutputBuffer collects a child's output from two pipes safely.
type redisOutputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *redisOutputBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *redisOutputBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
