// Package sqlite is the SQLite ledger module
// (http.handlers.llm_gateway.ledgers.sqlite, the default): usage records
// and period totals in one file (WAL, batched group commit), from which a
// restart restores every in-process counter.
package sqlite

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/module/stores"
)

func init() {
	caddy.RegisterModule(Ledger{})
}

// Ledger is a SQLite ledger file.
type Ledger struct {
	// Path is the ledger file. Default: <caddy data dir>/llm_gateway/usage.db.
	Path string `json:"path,omitempty"`

	abs string
}

// CaddyModule returns the Caddy module information.
func (Ledger) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  stores.LedgersNamespace + ".sqlite",
		New: func() caddy.Module { return new(Ledger) },
	}
}

// DefaultPath is the ledger file when none is configured.
func DefaultPath() string { return filepath.Join(caddy.AppDataDir(), "llm_gateway", "usage.db") }

// UnmarshalCaddyfile reads `store sqlite [<path>]`, or `ledger [sqlite]
// <path>` in a store block.
func (l *Ledger) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store or ledger
	directive := d.Val()
	d.Next() // sqlite
	if d.NextArg() {
		l.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s sqlite takes no block", directive)
	}
	return nil
}

// Provision makes the path absolute.
func (l *Ledger) Provision(caddy.Context) error {
	path := l.Path
	if path == "" {
		path = DefaultPath()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("ledger path: %v", err)
	}
	l.abs = abs
	return nil
}

// File is the ledger file, absolute once provisioned.
func (l *Ledger) File() string {
	if l.abs != "" {
		return l.abs
	}
	return l.Path
}

// Key implements stores.Ledger: the file.
func (l *Ledger) Key() string { return l.File() }

// String implements stores.Ledger.
func (l *Ledger) String() string { return "sqlite " + l.File() }

// OpenLedger implements stores.Ledger.
func (l *Ledger) OpenLedger(env stores.Env) (governance.Store, error) {
	path := l.File()
	s, err := governance.OpenSQLiteStore(path, governance.SQLiteOptions{
		OnError: func(err error) {
			env.Logger.Error("writing usage ledger (will retry)", zap.String("path", path), zap.Error(err))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("opening sqlite ledger %s: %v", path, err)
	}
	return s, nil
}

// Interface guards
var (
	_ stores.Ledger         = (*Ledger)(nil)
	_ caddy.Provisioner     = (*Ledger)(nil)
	_ caddyfile.Unmarshaler = (*Ledger)(nil)
	_ stores.SpendSource    = (*governance.SQLiteStore)(nil)
)
