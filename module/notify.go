package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// NotifyConfig is one `notify webhook <url>` line: where alerts go and
// which ones.
type NotifyConfig struct {
	// Webhook is the URL alerts are POSTed to as JSON (a Slack incoming
	// webhook reads its `text`). Placeholders ({env.SLACK_WEBHOOK},
	// {file./run/secrets/hook}) are resolved at provision; the URL is never
	// logged past its host.
	Webhook string `json:"webhook"`
	// Events are the alerts sent: budget_warn, budget_exhausted,
	// session_cost, rate_limited. Default: budget_warn and
	// budget_exhausted (plus session_cost when SessionCost is set).
	Events []string `json:"events,omitempty"`
	// SessionCost is the decimal USD amount a Claude Code session's cost
	// passing sends a session_cost alert ("10").
	SessionCost string `json:"session_cost,omitempty"`
	// Timeout bounds one delivery attempt. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Retries is how many times a failed delivery is retried, with
	// exponential backoff from 1s. Default: 5.
	Retries *int `json:"retries,omitempty"`
	// Backoff is the delay before the first retry, doubled for each next
	// one (at most 5m). Default: 1s.
	Backoff caddy.Duration `json:"backoff,omitempty"`
}

// Delivery defaults.
const (
	defaultNotifyTimeout = 10 * time.Second
	defaultNotifyRetries = 5
	// notifyQueue bounds the alerts waiting for one webhook; past it new
	// ones are dropped (counted and logged).
	notifyQueue = 256
	// maxNotifyRetries bounds the retries a config may ask for.
	maxNotifyRetries = 20
)

// Retry delays: the first retry's default delay, doubled each retry up to
// notifyMaxBackoff.
const (
	notifyBackoff    = time.Second
	notifyMaxBackoff = 5 * time.Minute
)

// alertState is what a store keeps for alerts across reloads: the alerts
// already sent (so each is sent once however many reloads see its cause)
// and the running cost of sessions.
type alertState struct {
	sent     *governance.Deduper
	sessions *governance.SessionCosts
}

func newAlertState() *alertState {
	return &alertState{sent: governance.NewDeduper(0), sessions: governance.NewSessionCosts(0)}
}

// notifyDeliveries counts alerts by event and outcome: sent, retried,
// failed (retries exhausted), dropped (queue full or shutting down).
var notifyDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "llm_gateway_notifications_total",
	Help: "Webhook alerts by event and outcome: sent, retried (an attempt failed and will be retried), failed (gave up after the retries), dropped (queue full or shutting down).",
}, []string{"event", "outcome"})

var notifyInitOnce sync.Once

// notifier sends one config's alerts: one queue and one sender goroutine
// per webhook, off the request path.
type notifier struct {
	hooks   []*webhook
	amounts []governance.Money // distinct session_cost amounts, ascending
	events  map[governance.EventKind]bool
	logger  *zap.Logger
	once    sync.Once
	closed  atomic.Bool
}

// webhook is one destination with its own queue and sender.
type webhook struct {
	url      string // may hold a token: never logged
	redacted string // scheme://host/…, for logs
	events   map[governance.EventKind]bool
	amount   governance.Money // session_cost amount (0: none)
	timeout  time.Duration
	retries  int
	backoff  time.Duration
	client   *http.Client
	queue    chan alert
	closing  chan struct{} // closed when the config is unloaded: deliver what is queued, then end
	stop     chan struct{} // closed when the process stops: no more retries
	done     chan struct{}
	logger   *zap.Logger
	stopOnce sync.Once
	// attempted, when set (tests), hears every attempt's outcome.
	attempted func(error)
}

// alert is one queued delivery.
type alert struct {
	kind governance.EventKind
	body []byte
}

// redactURL is the URL without what may be secret: user info, path and
// query ("https://hooks.slack.com/…").
func redactURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// provisionNotify builds the notifier of a config (nil without notify
// lines), registers the metric and starts the senders.
func provisionNotify(ctx caddy.Context, cfgs []*NotifyConfig, logger *zap.Logger) (*notifier, error) {
	// Registered and exported at 0 whether or not alerts are configured, so
	// the shipped alert rules and dashboards always find the series.
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := reg.Register(notifyDeliveries); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	notifyInitOnce.Do(func() {
		for _, k := range []governance.EventKind{governance.EventBudgetWarn, governance.EventBudgetExhausted, governance.EventSessionCost, governance.EventRateLimited} {
			for _, o := range []string{"sent", "retried", "failed", "dropped"} {
				notifyDeliveries.WithLabelValues(string(k), o)
			}
		}
	})
	if len(cfgs) == 0 {
		return nil, nil
	}
	repl := caddy.NewReplacer()
	n := &notifier{events: map[governance.EventKind]bool{}, logger: logger}
	for i, c := range cfgs {
		h, err := newWebhook(c, repl, logger)
		if err != nil {
			n.close()
			return nil, fmt.Errorf("notify webhook #%d: %v", i+1, err)
		}
		n.hooks = append(n.hooks, h)
		for k := range h.events {
			n.events[k] = true
		}
		if h.amount > 0 && !slices.Contains(n.amounts, h.amount) {
			n.amounts = append(n.amounts, h.amount)
		}
	}
	slices.Sort(n.amounts)
	for _, h := range n.hooks {
		go h.run()
	}
	return n, nil
}

func newWebhook(c *NotifyConfig, repl *caddy.Replacer, logger *zap.Logger) (*webhook, error) {
	raw, err := repl.ReplaceOrErr(c.Webhook, true, true)
	if err != nil {
		return nil, fmt.Errorf("url: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error may quote the URL: say nothing of it.
		return nil, fmt.Errorf("url must be an absolute http:// or https:// URL")
	}
	events, amount, err := c.parseEvents()
	if err != nil {
		return nil, err
	}
	h := &webhook{
		url: raw, redacted: redactURL(u), events: events, amount: amount,
		timeout: defaultNotifyTimeout, retries: defaultNotifyRetries, backoff: notifyBackoff,
		queue: make(chan alert, notifyQueue), closing: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}), logger: logger,
	}
	if c.Timeout > 0 {
		h.timeout = time.Duration(c.Timeout)
	}
	if c.Backoff > 0 {
		h.backoff = min(time.Duration(c.Backoff), notifyMaxBackoff)
	}
	if c.Retries != nil {
		if *c.Retries < 0 || *c.Retries > maxNotifyRetries {
			return nil, fmt.Errorf("retries must be between 0 and %d", maxNotifyRetries)
		}
		h.retries = *c.Retries
	}
	h.client = &http.Client{
		Timeout: h.timeout,
		// A webhook that redirects is answered as failed: following it
		// could carry the alert somewhere unintended.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h, nil
}

// parseEvents validates the events and the session_cost amount.
func (c *NotifyConfig) parseEvents() (map[governance.EventKind]bool, governance.Money, error) {
	var amount governance.Money
	if c.SessionCost != "" {
		m, err := governance.ParseMoney(c.SessionCost)
		if err != nil || m <= 0 {
			return nil, 0, fmt.Errorf("session_cost: want a positive USD amount, got %q", c.SessionCost)
		}
		amount = m
	}
	events := map[governance.EventKind]bool{}
	if len(c.Events) == 0 {
		for _, k := range governance.DefaultEvents {
			events[k] = true
		}
		if amount > 0 {
			events[governance.EventSessionCost] = true
		}
		return events, amount, nil
	}
	for _, s := range c.Events {
		k, err := governance.ParseEventKind(s)
		if err != nil {
			return nil, 0, err
		}
		events[k] = true
	}
	if events[governance.EventSessionCost] && amount == 0 {
		return nil, 0, fmt.Errorf("event session_cost needs an amount: session_cost <usd>")
	}
	if amount > 0 && !events[governance.EventSessionCost] {
		events[governance.EventSessionCost] = true
	}
	return events, amount, nil
}

// wants reports whether some webhook sends events of kind k.
func (n *notifier) wants(k governance.EventKind) bool { return n != nil && n.events[k] }

// send queues e for every webhook that wants it, once per event (as
// remembered in sent). It never blocks.
func (n *notifier) send(e *governance.Event, sent *governance.Deduper) {
	if n == nil || !n.events[e.Kind] || !sent.First(e) {
		return
	}
	body, err := json.Marshal(e.Payload())
	if err != nil {
		return
	}
	for _, h := range n.hooks {
		if !h.events[e.Kind] || e.Kind == governance.EventSessionCost && h.amount != e.SessionAmount {
			continue
		}
		h.enqueue(e.Kind, body)
	}
}

func (h *webhook) enqueue(k governance.EventKind, body []byte) {
	select {
	case <-h.closing:
		// An old config's request: the new config's notifier (if it still
		// has this webhook) sends what happens from now on.
		notifyDeliveries.WithLabelValues(string(k), "dropped").Inc()
		return
	default:
	}
	select {
	case h.queue <- alert{k, body}:
	default:
		notifyDeliveries.WithLabelValues(string(k), "dropped").Inc()
		h.logger.Error("notify: queue full, alert dropped", zap.String("webhook", h.redacted), zap.String("event", string(k)))
	}
}

// run delivers the queue, one alert at a time, until the config is
// unloaded and what was queued by then is delivered.
func (h *webhook) run() {
	defer close(h.done)
	for {
		select {
		case a := <-h.queue:
			h.deliver(a.kind, a.body)
		case <-h.closing:
			for {
				select {
				case a := <-h.queue:
					h.deliver(a.kind, a.body)
				default:
					return
				}
			}
		}
	}
}

// deliver posts one alert, retrying failures with exponential backoff.
func (h *webhook) deliver(k governance.EventKind, body []byte) {
	backoff := h.backoff
	for attempt := 0; ; attempt++ {
		err := h.post(body)
		if h.attempted != nil {
			h.attempted(err)
		}
		if err == nil {
			notifyDeliveries.WithLabelValues(string(k), "sent").Inc()
			return
		}
		if attempt >= h.retries {
			notifyDeliveries.WithLabelValues(string(k), "failed").Inc()
			h.logger.Error("notify: alert not delivered, giving up", zap.String("webhook", h.redacted),
				zap.String("event", string(k)), zap.Int("attempts", attempt+1), zap.String("error", err.Error()))
			return
		}
		notifyDeliveries.WithLabelValues(string(k), "retried").Inc()
		h.logger.Warn("notify: delivery failed, retrying", zap.String("webhook", h.redacted),
			zap.String("event", string(k)), zap.Int("attempt", attempt+1), zap.Duration("backoff", backoff), zap.String("error", err.Error()))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-h.stop:
			t.Stop()
			notifyDeliveries.WithLabelValues(string(k), "dropped").Inc()
			return
		}
		backoff = min(backoff*2, notifyMaxBackoff)
	}
}

// post makes one attempt. Its error never holds the URL.
func (h *webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return errors.New("building the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llm_gateway-notify")
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL the client error quotes
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New("answered " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// close ends the senders once their queues are delivered; when the
// process is stopping, retries are abandoned at once.
func (n *notifier) close() {
	if n == nil {
		return
	}
	n.once.Do(func() {
		n.closed.Store(true)
		stopping := processStopping()
		for _, h := range n.hooks {
			if stopping {
				h.stopOnce.Do(func() { close(h.stop) })
			}
			close(h.closing)
		}
	})
}
