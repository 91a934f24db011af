package testkit

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStartPostgres: a private cluster answers on its port, survives a
// stop and restart, and makes databases.
func TestStartPostgres(t *testing.T) {
	p := StartPostgres(t)
	query := func(db string) string {
		t.Helper()
		out, err := p.run(filepath.Join(p.bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port),
			"-U", "postgres", "-d", db, "-Atc", "SELECT current_setting('fsync') || ' ' || current_setting('listen_addresses')")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := query("postgres"); got != "off 127.0.0.1" {
		t.Fatalf("settings %q", got)
	}
	p.CreateDatabase("other")
	p.Stop()
	p.Restart()
	if got := query("other"); got != "off 127.0.0.1" {
		t.Fatalf("after restart: %q", got)
	}
}
