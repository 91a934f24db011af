package postgres

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// The ledger's metrics sum every PostgreSQL ledger this process has
// opened, closed ones included, so the counters never go back.
var (
	metricsMu sync.Mutex
	open      = map[*governance.PostgresStore]bool{}
	retired   governance.PostgresStats

	descCommitted = prometheus.NewDesc("llm_gateway_ledger_postgres_rows_committed_total",
		"Usage rows this instance wrote to the PostgreSQL ledger.", nil, nil)
	descDropped = prometheus.NewDesc("llm_gateway_ledger_postgres_rows_dropped_total",
		"Usage rows lost before reaching the PostgreSQL ledger: the in-memory queue was full while PostgreSQL was unreachable, or rows were still unwritable at shutdown.", nil, nil)
	descErrors = prometheus.NewDesc("llm_gateway_ledger_postgres_write_errors_total",
		"Failed attempts to write a batch of usage rows to PostgreSQL (each batch is retried).", nil, nil)
	descPruned = prometheus.NewDesc("llm_gateway_ledger_postgres_rows_pruned_total",
		"Ledger rows this instance deleted for being older than the retention (the rollup keeps their totals).", nil, nil)
	descQueued = prometheus.NewDesc("llm_gateway_ledger_postgres_queued_rows",
		"Usage rows waiting in memory for the PostgreSQL ledger.", nil, nil)
)

func track(s *governance.PostgresStore) {
	metricsMu.Lock()
	open[s] = true
	metricsMu.Unlock()
}

// retire keeps a closed store's final counters.
func retire(s *governance.PostgresStore, st governance.PostgresStats) {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	delete(open, s)
	retired.Committed += st.Committed
	retired.Dropped += st.Dropped
	retired.WriteErrors += st.WriteErrors
	retired.Pruned += st.Pruned
}

type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCommitted
	ch <- descDropped
	ch <- descErrors
	ch <- descQueued
	ch <- descPruned
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	metricsMu.Lock()
	sum := retired
	for s := range open {
		st := s.Stats()
		sum.Committed += st.Committed
		sum.Dropped += st.Dropped
		sum.WriteErrors += st.WriteErrors
		sum.Queued += st.Queued
		sum.Pruned += st.Pruned
	}
	metricsMu.Unlock()
	ch <- prometheus.MustNewConstMetric(descCommitted, prometheus.CounterValue, float64(sum.Committed))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(sum.Dropped))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(sum.WriteErrors))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(sum.Queued))
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(sum.Pruned))
}

// registerMetrics registers the ledger's collector on a config's registry
// (once per registry; the collector is the process's).
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(collector{}); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}
