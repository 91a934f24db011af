package module

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// cacheCollectors are the response cache's metrics, created once per
// process and registered on every config's registry (the saved counter,
// with the cost counter's label names, is kept with the usage collector:
// metrics.saved).
type cacheCollectors struct {
	requests *prometheus.CounterVec
	bytes    prometheus.GaugeFunc
}

var (
	cacheMetricsOnce sync.Once
	cacheMetrics     *cacheCollectors
)

// ensureCacheMetrics creates the collectors once.
func ensureCacheMetrics() {
	cacheMetricsOnce.Do(func() {
		cacheMetrics = &cacheCollectors{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "llm_gateway_cache_requests_total",
				Help: "Requests the response cache applied to, by result: hit (answered from the cache), miss (forwarded, and recorded), bypass (Cache-Control no-cache/no-store, or the cache is off for the key or surface).",
			}, []string{"result"}),
			bytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "llm_gateway_cache_bytes",
				Help: "Bytes the response cache holds (its entries' cost against max_size).",
			}, func() float64 {
				if c := currentCache.Load(); c != nil {
					return float64(c.Bytes())
				}
				return 0
			}),
		}
	})
}

// provisionCacheMetrics creates the collectors on first use and registers
// them on this config's registry.
func provisionCacheMetrics(ctx caddy.Context, m *metrics) error {
	ensureCacheMetrics()
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{cacheMetrics.requests, cacheMetrics.bytes} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// newSavedCollector is llm_gateway_cache_saved_usd_total with these label
// names (the cost counter's).
func newSavedCollector(labelNames []string) *savedCollector {
	return &savedCollector{desc: prometheus.NewDesc("llm_gateway_cache_saved_usd_total",
		"US dollars cache hits saved: the cost of the original responses they replayed, exact to the nano-dollar.", labelNames, nil)}
}

// savedCollector is llm_gateway_cache_saved_usd_total: integer nano-dollars
// per label set, kept beside the usage series of the same labels and
// converted only when scraped, so it equals the ledger's saved column.
type savedCollector struct {
	desc   *prometheus.Desc
	series sync.Map // *series → *atomic.Int64
}

// add counts what a hit on the label set of s saved.
func (c *savedCollector) add(s *series, v governance.Money) {
	n, ok := c.series.Load(s)
	if !ok {
		n, _ = c.series.LoadOrStore(s, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(int64(v))
}

// Describe implements prometheus.Collector.
func (c *savedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *savedCollector) Collect(ch chan<- prometheus.Metric) {
	c.series.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue,
			governance.Money(v.(*atomic.Int64).Load()).USD(), k.(*series).labels...)
		return true
	})
}
