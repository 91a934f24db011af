package module

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// budgetCollector reports every configured budget of every active gateway
// at scrape time: its limit and what remains of it this period (limit −
// spent, never below zero). It reads the counters, so with store redis the
// gauges show fleet-wide spend.
type budgetCollector struct {
	limit, remaining *prometheus.Desc
}

func newBudgetCollector() *budgetCollector {
	labels := []string{"scope", "name", "period"}
	return &budgetCollector{
		limit:     prometheus.NewDesc("llm_gateway_budget_limit_usd", "Configured budget, US dollars.", labels, nil),
		remaining: prometheus.NewDesc("llm_gateway_budget_remaining_usd", "Budget left this period (limit − spent), US dollars.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.remaining
}

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[3]string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, g := range activeGateways.list() { // newest first: its config wins
		st := g.state
		levels := st.keys.AllLevels()
		if len(levels) == 0 {
			continue
		}
		statuses, err := st.store.counters.Status(ctx, levels, time.Now(), st.location)
		if err != nil {
			st.metrics.storeErrors.WithLabelValues("status").Inc()
			st.logger.Error("reading budgets for metrics", zap.String("store", st.store.desc), zap.Error(err))
			continue
		}
		for _, s := range statuses {
			k := [3]string{s.Scope.Kind.String(), s.Scope.Name, s.Budget.Period.String()}
			if seen[k] {
				continue
			}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, s.Budget.Limit.USD(), k[:]...)
			ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, remainingOf(s).USD(), k[:]...)
		}
	}
}

// remainingOf is limit − spent, floored at zero.
func remainingOf(s governance.BudgetStatus) governance.Money {
	if r := s.Budget.Limit - s.Spent; r > 0 {
		return r
	}
	return 0
}
