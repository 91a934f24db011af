package governance

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisLogRoutesOnlyItsClient: a client built with RedisOptions.Log
// gets its own failed-dial lines; another Redis client in the process does
// not reach that log (it keeps go-redis's standard-error logging).
func TestRedisLogRoutesOnlyItsClient(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	rc, err := NewRedisCounters(RedisOptions{URL: "redis://127.0.0.1:1/0", DialTimeout: time.Second, Log: func(msg string) {
		mu.Lock()
		lines = append(lines, msg)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Ping(ctx); err == nil {
		t.Fatal("ping of a closed port succeeded")
	} else if strings.Contains(err.Error(), "dialError") {
		t.Fatalf("the error names the wrapper: %v", err)
	}
	mu.Lock()
	n := len(lines)
	got := strings.Join(lines, "\n")
	mu.Unlock()
	if n == 0 || !strings.Contains(got, "failed to dial") {
		t.Fatalf("the client's log got %q", got)
	}

	other := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, DialerRetries: 1, MaxRetries: -1})
	defer other.Close()
	if err := other.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != n {
		t.Fatalf("another client's line reached this client's log: %q", lines[n:])
	}
}
