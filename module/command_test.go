package module

import (
	"bytes"
	"regexp"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// TestNewKeyCommand runs `caddy llm-gateway new-key` and `hash-key`: the
// printed secret_sha256 is the hash of the printed key, and the Caddyfile
// snippet names the key.
func TestNewKeyCommand(t *testing.T) {
	c, ok := caddycmd.Commands()["llm-gateway"]
	if !ok || c.CobraFunc == nil {
		t.Fatal("llm-gateway command not registered")
	}
	run := func(args ...string) string {
		root := &cobra.Command{Use: "llm-gateway"}
		c.CobraFunc(root)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	out := run("new-key", "--name", "bob")
	m := regexp.MustCompile(`key:\s+(sk-llmgw-\S+)\nsecret_sha256: ([0-9a-f]{64})\n\nCaddyfile:\n\tkey bob \{\n\t\tsecret_sha256 ([0-9a-f]{64})\n\t\}\n`).FindStringSubmatch(out)
	if m == nil || m[2] != m[3] || governance.HashSecret(m[1]).String() != m[2] {
		t.Fatalf("new-key printed:\n%s", out)
	}
	if got := run("hash-key", "test"); got != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n" {
		t.Fatalf("hash-key printed %q", got)
	}
}
