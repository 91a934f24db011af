package module

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func TestNotifyCaddyfile(t *testing.T) {
	three := 3
	for _, c := range []struct {
		in   string
		want *NotifyConfig
		err  string
	}{
		{in: `notify webhook {env.SLACK_WEBHOOK}`, want: &NotifyConfig{Webhook: "{env.SLACK_WEBHOOK}"}},
		{in: `notify webhook https://hooks.example.com/x {
			events budget_exhausted session_cost
			session_cost 10
			timeout 3s
			retries 3
			backoff 2s
		}`, want: &NotifyConfig{Webhook: "https://hooks.example.com/x", Events: []string{"budget_exhausted", "session_cost"},
			SessionCost: "10", Timeout: caddy.Duration(3 * time.Second), Retries: &three, Backoff: caddy.Duration(2 * time.Second)}},
		{in: `notify webhook https://h/x {
			session_cost 2.50 usd
		}`, want: &NotifyConfig{Webhook: "https://h/x", SessionCost: "2.50"}},
		{in: `notify webhook`, err: "a URL is required"},
		{in: `notify email ops@example.com`, err: `unknown channel "email"`},
		{in: `notify webhook https://h/x extra`, err: "wrong argument count"},
		{in: `notify webhook https://h/x {
			events budget_spent
		}`, err: `unknown event "budget_spent"`},
		{in: `notify webhook https://h/x {
			events session_cost
		}`, err: "session_cost needs an amount"},
		{in: `notify webhook https://h/x {
			session_cost -1
		}`, err: "positive USD amount"},
		{in: `notify webhook https://h/x {
			retries 99
		}`, err: "retries: want 0 to 20"},
		{in: `notify webhook https://h/x {
			bogus 1
		}`, err: `unknown subdirective "bogus"`},
	} {
		d := caddyfile.NewTestDispenser(c.in)
		d.Next() // notify
		got, err := parseNotify(d)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}

	// Inside llm_gateway, repeatable, and the same config as JSON.
	var g Gateway
	in := `llm_gateway {
		notify webhook https://a.example.com/hook
		notify webhook {env.HOOK} {
			session_cost 5
		}
	}`
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(g.Notify)
	if want := `[{"webhook":"https://a.example.com/hook"},{"webhook":"{env.HOOK}","session_cost":"5"}]`; string(b) != want {
		t.Errorf("JSON: %s, want %s", b, want)
	}
}

// TestNotifyJSON: the JSON form documented in operations.md loads.
func TestNotifyJSON(t *testing.T) {
	var g Gateway
	doc := `{"notify": [
  {"webhook": "{env.SLACK_WEBHOOK}"},
  {"webhook": "https://ops.example.com/hooks/llm", "events": ["budget_exhausted", "session_cost", "rate_limited"],
   "session_cost": "25", "timeout": "5s", "retries": 5, "backoff": "1s"}
]}`
	if err := json.Unmarshal([]byte(doc), &g); err != nil {
		t.Fatal(err)
	}
	c := g.Notify[1]
	if len(g.Notify) != 2 || c.SessionCost != "25" || time.Duration(c.Timeout) != 5*time.Second || *c.Retries != 5 ||
		time.Duration(c.Backoff) != time.Second || len(c.Events) != 3 {
		t.Errorf("%+v", c)
	}
	if _, _, err := c.parseEvents(); err != nil {
		t.Error(err)
	}
}

func TestNotifyEventsDefaults(t *testing.T) {
	for _, c := range []struct {
		cfg  NotifyConfig
		want []governance.EventKind
	}{
		{NotifyConfig{}, []governance.EventKind{"budget_warn", "budget_exhausted"}},
		{NotifyConfig{SessionCost: "5"}, []governance.EventKind{"budget_warn", "budget_exhausted", "session_cost"}},
		{NotifyConfig{Events: []string{"rate_limited"}}, []governance.EventKind{"rate_limited"}},
		{NotifyConfig{Events: []string{"budget_warn"}, SessionCost: "1"}, []governance.EventKind{"budget_warn", "session_cost"}},
	} {
		got, _, err := c.cfg.parseEvents()
		if err != nil {
			t.Fatal(err)
		}
		want := map[governance.EventKind]bool{}
		for _, k := range c.want {
			want[k] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: events %v, want %v", c.cfg, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com/…",
		"https://user:pass@example.com/":                "https://example.com",
		"http://127.0.0.1:9000?token=abc":               "http://127.0.0.1:9000/…",
		"https://example.com":                           "https://example.com",
	} {
		h, err := newWebhook(&NotifyConfig{Webhook: in}, caddy.NewReplacer(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if h.redacted != want {
			t.Errorf("%s: redacted %q, want %q", in, h.redacted, want)
		}
	}
	for _, bad := range []string{"ftp://example.com/x", "/relative", "https://", "{env.LLMGW_SURELY_UNSET_HOOK}"} {
		_, err := newWebhook(&NotifyConfig{Webhook: bad}, caddy.NewReplacer(), zap.NewNop())
		if err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// testWebhook is a webhook to url with fast retries, not started.
func testWebhook(t *testing.T, url string, retries int, logger *zap.Logger) *webhook {
	t.Helper()
	h, err := newWebhook(&NotifyConfig{Webhook: url, Retries: &retries, Backoff: caddy.Duration(time.Millisecond)}, caddy.NewReplacer(), logger)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestWebhookDownForAWhile: the receiver refuses connections for the first
// attempts, then comes up on the same port: the alert arrives, once, after
// retries that are counted and logged with the URL redacted.
func TestWebhookDownForAWhile(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // down: connections are refused

	core, logs := observer.New(zapcore.WarnLevel)
	const token = "s3cr3t-T0KEN"
	h := testWebhook(t, "http://"+addr+"/hook/"+token, 10, zap.New(core))
	attempts := make(chan error, 32)
	h.attempted = func(err error) { attempts <- err }
	retried := delivered(notifyDeliveries.WithLabelValues("budget_warn", "retried"))
	sent := delivered(notifyDeliveries.WithLabelValues("budget_warn", "sent"))
	go h.run()
	defer close(h.closing)
	h.enqueue(governance.EventBudgetWarn, []byte(`{"text":"hi"}`))

	for range 2 {
		if err := <-attempts; err == nil {
			t.Fatal("an attempt to a closed port succeeded")
		}
	}
	// Up again.
	got := make(chan string, 4)
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.URL.Path + " " + string(b)
	})}
	go srv.Serve(l)
	defer srv.Close()
	for err := range attempts {
		if err == nil {
			break
		}
	}
	if g := <-got; g != "/hook/"+token+` {"text":"hi"}` {
		t.Errorf("received %q", g)
	}
	if n := delivered(notifyDeliveries.WithLabelValues("budget_warn", "sent")) - sent; n != 1 {
		t.Errorf("sent %v, want 1", n)
	}
	if n := delivered(notifyDeliveries.WithLabelValues("budget_warn", "retried")) - retried; n < 2 {
		t.Errorf("retried %v, want ≥ 2", n)
	}
	if logs.Len() < 2 {
		t.Errorf("%d log lines, want one per failed attempt", logs.Len())
	}
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
		}
		if strings.Contains(line, token) {
			t.Errorf("the webhook's token reached the log: %s", line)
		}
		if !strings.Contains(line, "http://"+addr+"/…") {
			t.Errorf("log line without the redacted webhook: %s", line)
		}
	}
}

// TestWebhookGivesUp: a receiver that keeps failing gets the configured
// retries, then the alert is counted failed.
func TestWebhookGivesUp(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	h := testWebhook(t, srv.URL, 2, zap.NewNop())
	failed := delivered(notifyDeliveries.WithLabelValues("budget_exhausted", "failed"))
	h.deliver(governance.EventBudgetExhausted, []byte(`{}`))
	if n != 3 {
		t.Errorf("%d attempts, want 3 (1 + 2 retries)", n)
	}
	if d := delivered(notifyDeliveries.WithLabelValues("budget_exhausted", "failed")) - failed; d != 1 {
		t.Errorf("failed %v, want 1", d)
	}
	// A redirect is a failure, not followed.
	redir := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redir.Close()
	if err := testWebhook(t, redir.URL, 0, zap.NewNop()).post([]byte(`{}`)); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect: %v", err)
	}
}

// TestWebhookQueueBounded: alerts past the queue's capacity are dropped and
// counted, never blocking the caller.
func TestWebhookQueueBounded(t *testing.T) {
	h := testWebhook(t, "http://127.0.0.1:1/", 0, zap.NewNop()) // never started
	dropped := delivered(notifyDeliveries.WithLabelValues("rate_limited", "dropped"))
	for range notifyQueue + 10 {
		h.enqueue(governance.EventRateLimited, []byte(`{}`))
	}
	if d := delivered(notifyDeliveries.WithLabelValues("rate_limited", "dropped")) - dropped; d != 10 {
		t.Errorf("dropped %v, want 10", d)
	}
	// After the config is unloaded, new alerts are dropped too.
	close(h.closing)
	h.enqueue(governance.EventRateLimited, []byte(`{}`))
	if d := delivered(notifyDeliveries.WithLabelValues("rate_limited", "dropped")) - dropped; d != 11 {
		t.Errorf("dropped %v after closing, want 11", d)
	}
}

// TestNotifierRoutes: each webhook gets the events it asked for, a
// session_cost alert only the webhook of its amount, and each event once.
func TestNotifierRoutes(t *testing.T) {
	mk := func(cfg NotifyConfig) *webhook {
		h, err := newWebhook(&cfg, caddy.NewReplacer(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a := mk(NotifyConfig{Webhook: "http://a/"})
	b := mk(NotifyConfig{Webhook: "http://b/", Events: []string{"budget_exhausted"}, SessionCost: "5"})
	c := mk(NotifyConfig{Webhook: "http://c/", SessionCost: "10"})
	n := &notifier{hooks: []*webhook{a, b, c}, events: map[governance.EventKind]bool{}}
	for _, h := range n.hooks {
		for k := range h.events {
			n.events[k] = true
		}
	}
	sent := governance.NewDeduper(0)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	warn := governance.Event{Kind: governance.EventBudgetWarn, Time: now, Scope: governance.Scope{Kind: governance.ScopeKey, Name: "alice"}}
	ex := warn
	ex.Kind = governance.EventBudgetExhausted
	s5 := governance.SessionEvents("alice", "s", 0, 6*governance.Dollar, []governance.Money{5 * governance.Dollar}, now)[0]
	for _, e := range []governance.Event{warn, ex, s5, warn, ex, s5} {
		n.send(&e, sent)
	}
	for name, c := range map[string]struct {
		h    *webhook
		want int
	}{"a": {a, 2}, "b": {b, 2}, "c": {c, 2}} { // c: not the $5 session alert
		if got := len(c.h.queue); got != c.want {
			t.Errorf("webhook %s queued %d, want %d", name, got, c.want)
		}
	}
}

// delivered is the notification counter's value for an event and outcome.
func delivered(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestAlertsAfterReload: a request of an unloaded config sends its alerts
// through the newest config on the same store, not into a closed queue.
func TestAlertsAfterReload(t *testing.T) {
	mk := func() *notifier {
		h, err := newWebhook(&NotifyConfig{Webhook: "http://hook/"}, caddy.NewReplacer(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return &notifier{hooks: []*webhook{h}, events: h.events}
	}
	store := &sharedStore{alerts: newAlertState()}
	old := &Gateway{state: &state{store: store, notify: mk()}}
	cur := &Gateway{state: &state{store: store, notify: mk()}}
	other := &Gateway{state: &state{store: &sharedStore{alerts: newAlertState()}, notify: mk()}}
	for _, g := range []*Gateway{old, cur, other} {
		activeGateways.add(g)
		defer activeGateways.remove(g)
	}
	if old.state.alerts() != old.state.notify {
		t.Error("an open config's alerts went elsewhere")
	}
	old.state.notify.close()
	activeGateways.remove(old)
	if got := old.state.alerts(); got != cur.state.notify {
		t.Errorf("after the reload: %p, want the current config's %p (other store: %p)", got, cur.state.notify, other.state.notify)
	}
	e := governance.Event{Kind: governance.EventBudgetWarn, Time: time.Now(), Scope: governance.Scope{Kind: governance.ScopeKey, Name: "alice"}}
	old.state.alerts().send(&e, store.alerts.sent)
	if n := len(cur.state.notify.hooks[0].queue); n != 1 {
		t.Errorf("the current config queued %d alerts, want 1", n)
	}
}
