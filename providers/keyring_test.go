package providers

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func respond(status int) *http.Response {
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("x"))}
}

func TestKeyRing(t *testing.T) {
	var mu sync.Mutex
	var events []KeyEvent
	r := NewKeyRing([]string{"k1", "k2", "k3"}, func(e KeyEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	status := map[string]int{"k1": 200, "k2": 401, "k3": 200}
	var seen []string
	send := func(k string) (*http.Response, error) { seen = append(seen, k); return respond(status[k]), nil }

	// Round-robin: k1, then k2 (401: disabled, retried with k3), then k1 …
	for range 4 {
		resp, err := r.Do(send)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("resp %v err %v", resp, err)
		}
	}
	if got := strings.Join(seen, ","); got != "k1,k2,k3,k3,k1" && got != "k1,k2,k3,k1,k3" {
		t.Fatalf("keys used %s", got)
	}
	if len(events) != 1 || !events[0].Disabled || events[0].Key != 2 || events[0].Status != 401 {
		t.Fatalf("events %+v", events)
	}
	// 429 on k1 passes over to k3 without disabling k1.
	seen, events = nil, nil
	status["k1"] = 429
	status["k3"] = 429
	resp, _ := r.Do(send)
	if resp.StatusCode != 429 || len(seen) != 2 {
		t.Fatalf("all rate limited: %d after %v", resp.StatusCode, seen)
	}
	status["k1"] = 200
	resp, _ = r.Do(send)
	if resp.StatusCode != 200 {
		t.Fatalf("k1 back: %d", resp.StatusCode)
	}
	// Every key rejected: the rejection is returned, not an error.
	r2 := NewKeyRing([]string{"a", "b"}, nil)
	resp, err := r2.Do(func(string) (*http.Response, error) { return respond(403), nil })
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("all rejected: %v %v", resp, err)
	}
	// Still answered once all are out of rotation.
	resp, _ = r2.Do(func(string) (*http.Response, error) { return respond(403), nil })
	if resp == nil || resp.StatusCode != 403 {
		t.Fatal("no answer with all keys disabled")
	}
	// Transport errors return at once.
	calls := 0
	_, err = NewKeyRing([]string{"a", "b"}, nil).Do(func(string) (*http.Response, error) { calls++; return nil, errors.New("dial") })
	if err == nil || calls != 1 {
		t.Fatalf("transport error: %v after %d calls", err, calls)
	}
	// No keys at all.
	resp, _ = NewKeyRing(nil, nil).Do(func(k string) (*http.Response, error) {
		if k != "" {
			t.Fatal("key given")
		}
		return respond(200), nil
	})
	if resp.StatusCode != 200 {
		t.Fatal("keyless")
	}
}
