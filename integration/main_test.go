package integration

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// runCaddyEnv makes the test binary act as the caddy command, so tests can
// start a second, independent Caddy process with the plugin (a fleet
// member) without building another 130 MB binary.
const runCaddyEnv = "LLMGW_TEST_RUN_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(runCaddyEnv) == "1" {
		caddycmd.Main()
		return
	}
	os.Exit(m.Run())
}
