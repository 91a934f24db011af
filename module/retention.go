package module

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

// MinRetention is the shortest retention accepted: pruning only ever
// reaches rows the rollup already holds, which trails the clock by minutes.
const MinRetention = time.Hour

// retentionLedger is a ledger that prunes old rows (the SQLite and
// PostgreSQL ledgers).
type retentionLedger interface {
	SetRetention(d time.Duration)
}

// zonedLedger is a ledger that keeps day rollups in the gateway's timezone.
type zonedLedger interface {
	SetLocation(loc *time.Location)
}

// parseRetention reads `retention <duration>` (Caddy durations, "90d"
// included) inside llm_gateway.
func (g *Gateway) parseRetention(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return d.Errf("retention: %v", err)
	}
	if dur < MinRetention {
		return d.Errf("retention: %s is shorter than the minimum, %s", d.Val(), MinRetention)
	}
	g.Retention = caddy.Duration(dur)
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// applyLedgerSettings gives the ledger this config's retention and
// timezone (the newest config wins a ledger several share; no retention
// keeps rows for ever).
func (g *Gateway) applyLedgerSettings(ledger any, loc *time.Location) {
	if z, ok := ledger.(zonedLedger); ok {
		z.SetLocation(loc)
	}
	r := time.Duration(g.Retention)
	if r > 0 && r < MinRetention {
		g.logger.Warn("retention shorter than the minimum; using the minimum",
			zap.Duration("retention", r), zap.Duration("minimum", MinRetention))
		r = MinRetention
	}
	l, ok := ledger.(retentionLedger)
	if !ok {
		if r > 0 {
			g.logger.Warn("this ledger does not prune: retention is ignored", zap.Duration("retention", r))
		}
		return
	}
	l.SetRetention(r)
}
