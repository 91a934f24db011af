package module

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

func TestParseRetention(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"retention 90d", 90 * 24 * time.Hour, ""},
		{"retention 36h", 36 * time.Hour, ""},
		{"retention 5m", 0, "shorter than the minimum"},
		{"retention", 0, "wrong argument count"},
		{"retention soon", 0, "retention:"},
		{"retention 2h 3h", 0, "wrong argument count"},
	} {
		var g Gateway
		d := caddyfile.NewTestDispenser(tt.in)
		d.Next()
		err := g.parseRetention(d)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || time.Duration(g.Retention) != tt.want {
			t.Errorf("%q: %v, %v", tt.in, time.Duration(g.Retention), err)
		}
	}
}

type fakeLedger struct {
	retention time.Duration
	loc       *time.Location
}

func (f *fakeLedger) SetRetention(d time.Duration)   { f.retention = d }
func (f *fakeLedger) SetLocation(loc *time.Location) { f.loc = loc }

func TestApplyLedgerSettings(t *testing.T) {
	g := Gateway{Retention: caddy.Duration(48 * time.Hour), logger: zap.NewNop()}
	var l fakeLedger
	paris, _ := time.LoadLocation("Europe/Paris")
	g.applyLedgerSettings(&l, paris)
	if l.retention != 48*time.Hour || l.loc != paris {
		t.Errorf("ledger got %v, %v", l.retention, l.loc)
	}
	g.Retention = 0
	g.applyLedgerSettings(&l, paris)
	if l.retention != 0 {
		t.Errorf("no retention line: %v", l.retention)
	}
	g.applyLedgerSettings(struct{}{}, paris) // a ledger that does neither
}
