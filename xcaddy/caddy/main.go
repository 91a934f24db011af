// Command caddy is Caddy with its standard modules and the llm_gateway
// plugin, the same binary `xcaddy build --with
// github.com/llmgateway/caddy-llm-gateway` produces, buildable with nothing
// but the Go toolchain: `go run ./xcaddy/caddy run --config Caddyfile`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The llm_gateway handler and every guest module of this repository.
	_ "github.com/llmgateway/caddy-llm-gateway"
)

func main() {
	caddycmd.Main()
}
