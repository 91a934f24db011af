package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// hookReceiver is a webhook on 127.0.0.1 that is down (503) for its first
// `down` deliveries, then records every alert.
type hookReceiver struct {
	srv  *httptest.Server
	got  chan map[string]any
	mu   sync.Mutex
	down int
	seen int // POSTs seen, answered or not
	path string
}

func newHookReceiver(t *testing.T, down int) *hookReceiver {
	h := &hookReceiver{got: make(chan map[string]any, 64), down: down}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.seen++
		h.path = r.URL.RequestURI()
		refuse := h.seen <= h.down
		h.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if refuse {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.got <- m
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next waits for the next alert delivered.
func (h *hookReceiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-h.got:
		return m
	case <-time.After(30 * time.Second): // a failure guard, not a synchronisation
		t.Fatal("no alert reached the webhook")
		return nil
	}
}

// TestNotifyWebhook: budget_warn, session_cost and budget_exhausted alerts
// reach a webhook that is down for its first deliveries (retried with
// backoff), each exactly once — not again for the refusals that follow, nor
// after a reload — with a Slack-compatible text naming the scope, exact
// structured fields, the metric counting them, and the webhook's token in
// no log line.
func TestNotifyWebhook(t *testing.T) {
	m := newMockAnthropic(t)
	hook := newHookReceiver(t, 2)
	const token = "T0KEN-in-the-webhook-path-XYZ"
	t.Setenv("LLMGW_TEST_WEBHOOK", hook.srv.URL+"/services/"+token)
	logPort := freePort(t) + 1_000_000 // an id no gateway port takes
	logs := newLogLines(logPort)       // the gateway's own log lines
	block := fmt.Sprintf(`store memory
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
		}
		price claude-sonnet-4-5 input 10000 output 10000
		key alice {
			secret %s
			budget 1 usd per day
			budget_warn 50
		}
		key bob {
			secret %s
			rate_limit 1 requests per minute
		}
		key carol {
			secret sk-llmgw-carol-virtual-key-UVWXYZ
			rate_limit 1 requests per minute
		}
		notify webhook {env.LLMGW_TEST_WEBHOOK} {
			events budget_warn budget_exhausted rate_limited
			session_cost 0.5
			backoff 10ms
			retries 5
		}`, m.APIKey, m.URL(), aliceKey, bobKey)
	opts := gatewayOptions{Block: block, Global: fmt.Sprintf(`log gateway {
		output llm_test_sink %s
		include http.handlers.llm_gateway
	}`, fmt.Sprint(logPort))}
	g := startGateway(t, opts)
	before := g.metrics()
	ctx := context.Background()
	alice := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"),
		option.WithHeader("X-Claude-Code-Session-Id", "sess-1"))
	small := smallParams(1)

	// $0.30 a request: the second crosses 50% and the session's $0.50, the
	// fourth (a partial reservation of the last headroom) the limit.
	for i := range 4 {
		if _, err := alice.Messages.New(ctx, small); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	// Refused: the budget is spent. No second budget_exhausted.
	_, err := alice.Messages.New(ctx, small)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 402 {
		t.Fatalf("fifth request: %v, want 402", err)
	}
	// bob's second request is rate limited: its alert queues after all the
	// above, so once it arrives everything before it has been delivered.
	bob := newClient(g, "", option.WithAuthToken(bobKey), option.WithHeader("X-Mock-Scenario", "small"))
	_, _ = bob.Messages.New(ctx, smallParams(1))
	_, _ = bob.Messages.New(ctx, smallParams(1))

	got := map[string]map[string]any{}
	var order []string
	for len(got) < 4 {
		a := hook.next(t)
		ev, _ := a["event"].(string)
		if _, dup := got[ev]; dup {
			t.Errorf("%s delivered twice: %v", ev, a)
		}
		got[ev] = a
		order = append(order, ev)
	}
	if order[len(order)-1] != "rate_limited" {
		t.Errorf("delivery order %v: the rate_limited alert was queued last", order)
	}
	warn := got["budget_warn"]
	for k, v := range map[string]any{"scope": "key", "name": "alice", "key": "alice", "period": "day",
		"spent_nano_usd": 6e8, "limit_nano_usd": 1e9, "percent": 60.0, "threshold_percent": 50.0} {
		if warn[k] != v {
			t.Errorf("budget_warn %s = %v, want %v", k, warn[k], v)
		}
	}
	if text, _ := warn["text"].(string); !strings.Contains(text, "key alice") || !strings.Contains(text, "$0.60") || !strings.Contains(text, "$1.00 daily") {
		t.Errorf("budget_warn text: %q", text)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if rs, _ := warn["resets_at"].(string); !strings.HasPrefix(warn["period_start"].(string), today) || rs == "" {
		t.Errorf("budget_warn period: %v – %v", warn["period_start"], rs)
	}
	ex := got["budget_exhausted"]
	if ex["name"] != "alice" || ex["spent_nano_usd"] != 12e8 || ex["threshold_percent"] != 100.0 || !strings.Contains(ex["text"].(string), "key alice") {
		t.Errorf("budget_exhausted: %v", ex)
	}
	sc := got["session_cost"]
	if sc["session"] != "sess-1" || sc["key"] != "alice" || sc["threshold_nano_usd"] != 5e8 || sc["spent_nano_usd"] != 6e8 {
		t.Errorf("session_cost: %v", sc)
	}
	rl := got["rate_limited"]
	if rl["name"] != "bob" || rl["rate_limit"] != "1 requests per minute" {
		t.Errorf("rate_limited: %v", rl)
	}
	if hook.path != "/services/"+token {
		t.Errorf("the webhook's placeholder URL resolved to %q", hook.path)
	}

	// After a reload (same config), alice's refusals and bob's limits are
	// still the same events: nothing new is sent. carol's limit is.
	g.load(opts)
	_, _ = alice.Messages.New(ctx, small)
	_, _ = bob.Messages.New(ctx, smallParams(1))
	carol := newClient(g, "", option.WithAuthToken("sk-llmgw-carol-virtual-key-UVWXYZ"), option.WithHeader("X-Mock-Scenario", "small"))
	_, _ = carol.Messages.New(ctx, smallParams(1))
	_, _ = carol.Messages.New(ctx, smallParams(1))
	if a := hook.next(t); a["event"] != "rate_limited" || a["name"] != "carol" {
		t.Errorf("after the reload the first alert was %v, want carol's rate_limited", a)
	}

	after := g.metrics()
	// The sender counts a delivery once the webhook has answered it: the
	// four before carol's are counted by now, carol's may be on its way.
	if n := metricDelta(before, after, "llm_gateway_notifications_total", map[string]string{"outcome": "sent"}); n != 4 && n != 5 {
		t.Errorf("notifications sent = %v, want 4 (or 5)", n)
	}
	if n := metricDelta(before, after, "llm_gateway_notifications_total", map[string]string{"outcome": "retried"}); n != 2 {
		t.Errorf("notifications retried = %v, want 2", n)
	}
	text := logs.all()
	if !strings.Contains(text, "notify: delivery failed, retrying") || !strings.Contains(text, hook.srv.URL+"/…") {
		t.Errorf("the failed deliveries are not logged with the redacted URL:\n%.3000s", text)
	}
	if strings.Contains(text, token) || strings.Contains(g.metricsText(), token) {
		t.Error("the webhook's token reached a log line or a metric")
	}
}
