package module

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile parses arbitrary llm_gateway blocks: the parser
// must return (a config or an error), never panic or hang. Seeds are the
// full test block and every shipped example; they run with every
// `go test`; a longer run: go test -fuzz FuzzUnmarshalCaddyfile ./module/
func FuzzUnmarshalCaddyfile(f *testing.F) {
	f.Add(fullGatewayBlock)
	f.Add("llm_gateway {\n\tkey a {\n\t\tbudget 5 usd per day\n\t\trate_limit 10 requests per minute\n\t}\n}")
	f.Add("llm_gateway {\n\tstore redis redis://127.0.0.1:6379/0 {\n\t\ton_error open\n\t}\n\troute claude-* a b\n}")
	examples, _ := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	for _, path := range examples {
		if b, err := os.ReadFile(path); err == nil {
			for _, block := range gatewayBlocks(string(b)) {
				f.Add(block)
			}
		}
	}
	f.Fuzz(func(t *testing.T, input string) {
		var g Gateway
		d := caddyfile.NewTestDispenser(input)
		_ = g.UnmarshalCaddyfile(d)
	})
}

// gatewayBlocks cuts the llm_gateway blocks out of a Caddyfile.
func gatewayBlocks(file string) []string {
	var out []string
	for rest := file; ; {
		i := strings.Index(rest, "llm_gateway {")
		if i < 0 {
			return out
		}
		rest = rest[i:]
		depth, end := 0, -1
		for j, c := range rest {
			if c == '{' {
				depth++
			} else if c == '}' {
				if depth--; depth == 0 {
					end = j + 1
					break
				}
			}
		}
		if end < 0 {
			return out
		}
		out = append(out, rest[:end])
		rest = rest[end:]
	}
}
