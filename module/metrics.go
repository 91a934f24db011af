package module

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// baseLabels label every per-request counter.
var baseLabels = []string{"key", "team", "customer", "provider", "model"}

// metrics are created once per process and registered on every config's
// registry, so values survive reloads. The per-request series (usage and
// cache savings) carry the config's metrics_label names: each set of names
// has its own collectors, kept for the life of the process, so a reload that
// changes metrics_label starts series with the new labels at once and a
// reload back finds the old values again.
type metrics struct {
	labelNames []string // baseLabels + metrics_label names
	usage      *usageCollector
	// saved is llm_gateway_cache_saved_usd_total, with usage's labels.
	saved      *savedCollector
	rejections *prometheus.CounterVec
	upstream   *prometheus.HistogramVec
	ttft       *prometheus.HistogramVec
	overhead   *prometheus.HistogramVec
	// storeErrors counts failed store operations (Redis unreachable …).
	storeErrors *prometheus.CounterVec
	// settlementsDropped counts settlements the Redis store's queue lost.
	settlementsDropped prometheus.Counter
	// budgetWarnings counts budget_warn crossings.
	budgetWarnings *prometheus.CounterVec
	// budgets reports each configured budget's limit and remaining amount.
	budgets *budgetCollector
	// attempts counts upstream attempts by outcome; cooldowns counts
	// providers put in cool-down; keyEvents counts rejected and
	// rate-limited provider keys.
	attempts  *prometheus.CounterVec
	cooldowns *prometheus.CounterVec
	keyEvents *prometheus.CounterVec
}

var (
	metricsMu     sync.Mutex
	globalMetrics *metrics
	// labelledMetrics are the per-request collectors by label names.
	labelledMetrics = map[string]*labelledCollectors{}
)

// labelledCollectors are the collectors whose label names follow
// metrics_label.
type labelledCollectors struct {
	usage *usageCollector
	saved *savedCollector
}

// provisionMetrics creates the collectors on first use and registers them
// on this config's registry.
func provisionMetrics(ctx caddy.Context, extra []*MetricsLabelConfig, logger *zap.Logger) (*metrics, error) {
	names := slices.Clone(baseLabels)
	for _, l := range extra {
		names = append(names, l.Name)
	}
	metricsMu.Lock()
	if globalMetrics == nil {
		globalMetrics = newMetrics(slices.Clone(baseLabels))
		// Exported at 0 from the start, so rate() and the shipped alert
		// rules see the series before the first error.
		for _, op := range [...]string{"admit", "settle", "renew", "sweep", "status"} {
			globalMetrics.storeErrors.WithLabelValues(op)
		}
	}
	sig := strings.Join(names, "\x00")
	lc := labelledMetrics[sig]
	if lc == nil {
		lc = &labelledCollectors{usage: newUsageCollector(names), saved: newSavedCollector(names)}
		labelledMetrics[sig] = lc
	}
	m := new(metrics)
	*m = *globalMetrics
	m.labelNames, m.usage, m.saved = names, lc.usage, lc.saved
	metricsMu.Unlock()

	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.usage, m.saved, m.rejections, m.upstream, m.ttft, m.overhead, m.storeErrors, m.settlementsDropped, m.budgetWarnings, m.budgets, m.attempts, m.cooldowns, m.keyEvents} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// latencyBuckets span a fast local model to a long Claude turn.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}

// overheadBuckets are for the gateway's own work: microseconds to milliseconds.
var overheadBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05}

func newMetrics(labelNames []string) *metrics {
	pm := []string{"provider", "model"}
	return &metrics{
		labelNames: labelNames,
		usage:      newUsageCollector(labelNames),
		saved:      newSavedCollector(labelNames),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_rejections_total",
			Help: "Requests the gateway refused itself, by reason.",
		}, []string{"reason"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llm_gateway_upstream_latency_seconds",
			Help:    "Time from sending a request upstream to receiving the response headers.",
			Buckets: latencyBuckets,
		}, pm),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llm_gateway_time_to_first_token_seconds",
			Help:    "Time from the request's arrival to the first generated content passing to the client.",
			Buckets: latencyBuckets,
		}, pm),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llm_gateway_overhead_seconds",
			Help:    "Time the gateway spent on a request itself, not waiting on the provider or the client.",
			Buckets: overheadBuckets,
		}, pm),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_store_errors_total",
			Help: "Failed operations on the budget and rate-limit store, by operation (admit, settle, renew, sweep, status).",
		}, []string{"op"}),
		settlementsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_store_settlements_dropped_total",
			Help: "Settlements the budget store could not take and the gateway could not keep for later (queue full, or left at shutdown): spend served that never reached the budget counters.",
		}),
		budgetWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_warnings_total",
			Help: "Times a budget's spend crossed its budget_warn percentage.",
		}, []string{"scope", "name", "period"}),
		budgets: newBudgetCollector(),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_upstream_attempts_total",
			Help: "Attempts to reach a provider, by outcome: ok (an answer was relayed), error (connection or timeout), or the retryable status that made the gateway fall back.",
		}, []string{"provider", "model", "outcome"}),
		cooldowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_provider_cooldowns_total",
			Help: "Times a provider was put in cool-down after failing repeatedly.",
		}, []string{"provider"}),
		keyEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_provider_key_events_total",
			Help: "Provider API keys rejected (disabled: 401/403, out of rotation) or passed over (rate_limited: 429).",
		}, []string{"provider", "event"}),
	}
}

// tokenKinds are the kinds llm_gateway_tokens_total counts (web searches
// are not tokens); tokenTypes are the matching values of its type label.
var (
	tokenKinds = [...]llm.TokenKind{llm.InputKind, llm.OutputKind, llm.CacheReadKind, llm.CacheWrite5mKind, llm.CacheWrite1hKind}
	tokenTypes = func() (names [len(tokenKinds)]string) {
		for i, k := range tokenKinds {
			names[i] = k.String()
		}
		return names
	}()
)

// series is one label combination's running values. Money is kept as
// integer nano-dollars and converted only when scraped, so the metric
// equals the ledger to the nano-dollar.
type series struct {
	labels   []string
	requests atomic.Int64
	unpriced atomic.Int64
	tokens   [len(tokenTypes)]atomic.Int64
	cost     atomic.Int64
}

// usageCollector is a prometheus.Collector for the per-request counters:
// requests, tokens by type, cost and unpriced requests. One map lookup finds
// every counter of a request.
type usageCollector struct {
	mu                               sync.RWMutex
	series                           map[string]*series
	requests, tokens, cost, unpriced *prometheus.Desc
}

func newUsageCollector(labels []string) *usageCollector {
	withType := append(slices.Clone(labels), "type")
	return &usageCollector{
		series:   map[string]*series{},
		requests: prometheus.NewDesc("llm_gateway_requests_total", "Requests attributed to a key, by provider and model.", labels, nil),
		tokens:   prometheus.NewDesc("llm_gateway_tokens_total", "Tokens used, by type (input, output, cache_read, cache_write_5m, cache_write_1h).", withType, nil),
		cost:     prometheus.NewDesc("llm_gateway_cost_usd_total", "Cost in US dollars, exact to the nano-dollar.", labels, nil),
		unpriced: prometheus.NewDesc("llm_gateway_unpriced_requests_total", "Requests for models without a price (charged 0).", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.tokens
	ch <- c.cost
	ch <- c.unpriced
}

// Collect implements prometheus.Collector.
func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.series {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.requests.Load()), s.labels...)
		ch <- prometheus.MustNewConstMetric(c.cost, prometheus.CounterValue, governance.Money(s.cost.Load()).USD(), s.labels...)
		if n := s.unpriced.Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(c.unpriced, prometheus.CounterValue, float64(n), s.labels...)
		}
		lv := append(slices.Clone(s.labels), "")
		for i, t := range tokenTypes {
			lv[len(lv)-1] = t
			ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.CounterValue, float64(s.tokens[i].Load()), lv...)
		}
	}
}

// get finds or creates the series for a label combination. The lookup
// allocates nothing when the series exists. Values are made valid label
// values in place (labelValue), so no request can make a series /metrics
// cannot expose.
func (c *usageCollector) get(values []string) *series {
	for i, v := range values {
		values[i] = labelValue(v)
	}
	var buf [256]byte
	k := buf[:0]
	for _, v := range values {
		k = append(k, v...)
		k = append(k, 0xff)
	}
	c.mu.RLock()
	s := c.series[string(k)]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s = c.series[string(k)]; s == nil {
		s = &series{labels: slices.Clone(values)}
		c.series[string(k)] = s
	}
	return s
}

// add counts one request.
func (s *series) add(u llm.Usage, cost governance.Money, priced bool) {
	s.requests.Add(1)
	if !priced {
		s.unpriced.Add(1)
	}
	for i, k := range tokenKinds {
		if n := u.Count(k); n != 0 {
			s.tokens[i].Add(n)
		}
	}
	if cost != 0 {
		s.cost.Add(int64(cost))
	}
}

// OtherLabelValue replaces header label values past a label's cap, and
// model names past the model label's cap.
const OtherLabelValue = "_other"

// DefaultMetricsLabelMax is the default cap on a header label's values.
const DefaultMetricsLabelMax = 100

// DefaultModelLabelCap is the default number of model names, beyond those
// the configuration names, the model label keeps (model_label_cap).
const DefaultModelLabelCap = 100

// maxLabelBytes bounds a label value taken from a request.
const maxLabelBytes = 128

// labelValue makes a string taken from a request a valid Prometheus label
// value: valid UTF-8 (invalid bytes become U+FFFD) and at most
// maxLabelBytes, cut on a rune boundary. A value that already is one is
// returned as it is, without allocating.
func labelValue(v string) string { return boundedText(v, maxLabelBytes) }

// maxLedgerTextBytes bounds a metrics_label value or User-Agent the ledger
// keeps: far more than a real one, small enough that no request can bloat
// the ledger.
const maxLedgerTextBytes = 1 << 10

// boundedText is v as valid UTF-8 (invalid bytes become U+FFFD) of at most
// max bytes, cut on a rune boundary; v itself, without allocating, when it
// already is.
func boundedText(v string, max int) string {
	if len(v) <= max && utf8.ValidString(v) {
		return v
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v
}

// boundedSet is a process-wide set of label values with a cap: the values a
// label has taken (the series they created outlive reloads, so the set does
// too).
type boundedSet struct {
	seen  sync.Map // value → struct{}
	count atomic.Int64
}

// admit returns v when it is in the set or the set has room for it under
// max, else OtherLabelValue.
func (b *boundedSet) admit(v string, max int) string {
	if _, ok := b.seen.Load(v); ok {
		return v
	}
	if b.count.Add(1) > int64(max) {
		b.count.Add(-1)
		return OtherLabelValue
	}
	if _, loaded := b.seen.LoadOrStore(v, struct{}{}); loaded {
		b.count.Add(-1)
	}
	return v
}

// modelNames is the process-wide set of model label values that were not
// named by a configuration.
var modelNames boundedSet

// modelLabeler bounds the model label like metrics_label values are
// bounded: models a configuration names exactly (a price row, an alias, a
// provider's model line) keep their names; other names are kept while
// fewer than max of them have been seen in this process and are counted
// as OtherLabelValue after that. The ledger keeps the real name.
type modelLabeler struct {
	prices *governance.PriceTable
	named  map[string]bool
	max    int
	set    *boundedSet // modelNames
}

func newModelLabeler(prices *governance.PriceTable, named map[string]bool, max int) *modelLabeler {
	if max <= 0 {
		max = DefaultModelLabelCap
	}
	return &modelLabeler{prices: prices, named: named, max: max, set: &modelNames}
}

// value is the model label for a canonical model name.
func (m *modelLabeler) value(model string) string {
	if model == "" || m.named[model] || (m.prices != nil && m.prices.HasRow(model)) {
		return labelValue(model)
	}
	return m.set.admit(labelValue(model), m.max)
}

// labelResolver turns request headers into the configured extra label
// values, keeping each label's cardinality under its cap, and bounds the
// model label. The sets of seen values are process-wide, like the series
// they create.
type labelResolver struct {
	labels []*headerLabel
	// models is this config's model labeler; nil keeps every name (tests).
	models *modelLabeler
}

type headerLabel struct {
	name   string
	header string
	max    int
	set    *boundedSet
}

var (
	labelSetsMu sync.Mutex
	labelSets   = map[string]*boundedSet{}
)

// model is the model label for a canonical model name.
func (r *labelResolver) model(name string) string {
	if r.models == nil {
		return labelValue(name)
	}
	return r.models.value(name)
}

// newLabelResolver resolves the process's extra label names (fixed by the
// first config) from this config's metrics_label lines: a name this config
// does not configure gets "", a name it adds is ignored (with the warning
// provisionMetrics logged).
func newLabelResolver(cfg []*MetricsLabelConfig, names []string) *labelResolver {
	byName := map[string]*MetricsLabelConfig{}
	for _, c := range cfg {
		byName[c.Name] = c
	}
	aligned := make([]*MetricsLabelConfig, 0, len(names))
	for _, n := range names {
		if c := byName[n]; c != nil {
			aligned = append(aligned, c)
		} else {
			aligned = append(aligned, &MetricsLabelConfig{Name: n})
		}
	}
	r := &labelResolver{}
	labelSetsMu.Lock()
	defer labelSetsMu.Unlock()
	for _, c := range aligned {
		max := c.Max
		if max <= 0 {
			max = DefaultMetricsLabelMax
		}
		shared := labelSets[c.Name]
		if shared == nil {
			shared = new(boundedSet)
			labelSets[c.Name] = shared
		}
		r.labels = append(r.labels, &headerLabel{name: c.Name, header: http.CanonicalHeaderKey(c.Header), max: max, set: shared})
	}
	return r
}

// appendValues appends one value per configured label.
func (r *labelResolver) appendValues(dst []string, h http.Header) []string {
	for _, l := range r.labels {
		dst = append(dst, l.value(h))
	}
	return dst
}

// ledgerValues is the configured labels' values for the ledger, by label
// name: as sent (trimmed, bounded to maxLedgerTextBytes), not capped to a
// number of values like the metric label; labels whose header is absent or
// empty are left out; nil when none is set.
func (r *labelResolver) ledgerValues(h http.Header) map[string]string {
	var m map[string]string
	for _, l := range r.labels {
		if l.header == "" {
			continue
		}
		vs := h[l.header]
		if len(vs) == 0 {
			continue
		}
		v := boundedText(strings.TrimSpace(vs[0]), maxLedgerTextBytes)
		if v == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(r.labels))
		}
		m[l.name] = v
	}
	return m
}

func (l *headerLabel) value(h http.Header) string {
	if l.header == "" {
		return ""
	}
	v := ""
	if vs := h[l.header]; len(vs) > 0 {
		v = labelValue(strings.TrimSpace(vs[0]))
	}
	return l.set.admit(v, l.max)
}
