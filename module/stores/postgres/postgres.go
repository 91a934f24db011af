// Package postgres is the PostgreSQL ledger module
// (http.handlers.llm_gateway.ledgers.postgres): one usage ledger for a
// fleet. Every Caddy instance that names the same database writes its
// rows and running totals there, so the query API, the admin API's spend
// and the budgets restored at start answer for the whole fleet.
//
// `store postgres <dsn>` keeps the counters in memory over it;
// `store redis <url> { ledger postgres <dsn> }` shares the counters in
// Redis and the ledger in PostgreSQL.
package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
)

func init() {
	caddy.RegisterModule(Ledger{})
}

// openTimeout bounds connecting and migrating when a ledger opens.
const openTimeout = 30 * time.Second

// Ledger is a PostgreSQL ledger.
type Ledger struct {
	// DSN is the database: a URL (postgres://user:password@host:5432/db?sslmode=verify-full)
	// or key=value pairs (host=… user=… dbname=…), as libpq takes them.
	// Placeholders such as {env.LLM_GATEWAY_PG} are replaced when the
	// module is provisioned. Logs and errors never show its password.
	DSN string `json:"dsn"`
	// QueueSize is how many rows may wait in memory while PostgreSQL is
	// unreachable (default 65,536); past it rows are dropped and
	// llm_gateway_ledger_postgres_rows_dropped_total counts them.
	QueueSize int `json:"queue_size,omitempty"`
	// RefreshInterval is how often the fleet's running totals (the admin
	// API's spend) are re-read (default 2s).
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// MaxConns caps this instance's connections (default 4).
	MaxConns int `json:"max_conns,omitempty"`

	dsn string // placeholders replaced
}

// CaddyModule returns the Caddy module information.
func (Ledger) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  stores.LedgersNamespace + ".postgres",
		New: func() caddy.Module { return new(Ledger) },
	}
}

// Provision replaces the DSN's placeholders and registers the ledger's
// metrics on this config's registry.
func (l *Ledger) Provision(ctx caddy.Context) error {
	dsn, err := caddy.NewReplacer().ReplaceOrErr(l.DSN, true, true)
	if err != nil {
		// The error names the placeholder, not the DSN's other parts.
		return fmt.Errorf("ledger postgres dsn: %v", err)
	}
	l.dsn = dsn
	return registerMetrics(ctx.GetMetricsRegistry())
}

// Validate checks the configuration.
func (l *Ledger) Validate() error {
	switch {
	case l.DSN == "" || l.dsn == "":
		return fmt.Errorf("ledger postgres needs a dsn, e.g. postgres://llm_gateway:{env.PGPASSWORD}@db:5432/llm_gateway")
	case l.QueueSize < 0:
		return fmt.Errorf("ledger postgres queue_size must not be negative")
	case l.RefreshInterval < 0:
		return fmt.Errorf("ledger postgres refresh_interval must not be negative")
	case l.MaxConns < 0:
		return fmt.Errorf("ledger postgres max_conns must not be negative")
	}
	return nil
}

// Key implements stores.Ledger: the DSN and the options, so gateways
// naming the same database with the same options share one store.
func (l *Ledger) Key() string {
	return "postgres|" + l.dsn + "|" + strconv.Itoa(l.QueueSize) + "|" +
		time.Duration(l.RefreshInterval).String() + "|" + strconv.Itoa(l.MaxConns)
}

// String implements stores.Ledger, without the password.
func (l *Ledger) String() string { return "postgres " + governance.RedactDSN(l.dsn) }

// OpenLedger implements stores.Ledger: it connects, migrates the schema
// and starts the writer. PostgreSQL must answer now; later outages only
// queue rows.
func (l *Ledger) OpenLedger(env stores.Env) (governance.Store, error) {
	name := governance.RedactDSN(l.dsn)
	logger := env.Logger.With(zap.String("ledger", "postgres"), zap.String("dsn", name))
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	var s *governance.PostgresStore
	s, err := governance.OpenPostgresStore(ctx, l.dsn, governance.PostgresOptions{
		QueueSize:       l.QueueSize,
		RefreshInterval: time.Duration(l.RefreshInterval),
		MaxConns:        int32(min(l.MaxConns, 1<<20)),
		OnError: func(err error) {
			logger.Error("usage ledger (rows are kept and retried unless the error says dropped)", zap.Error(err))
		},
		OnClose: func(st governance.PostgresStats) { retire(s, st) },
	})
	if err != nil {
		return nil, err // already names the DSN without its password
	}
	track(s)
	return s, nil
}

// Interface guards
var (
	_ stores.Ledger      = (*Ledger)(nil)
	_ caddy.Provisioner  = (*Ledger)(nil)
	_ caddy.Validator    = (*Ledger)(nil)
	_ stores.SpendSource = (*governance.PostgresStore)(nil)
)
