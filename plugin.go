// Package llmgateway is the module root that `xcaddy build --with
// github.com/llmgateway/caddy-llm-gateway` imports: it registers the
// llm_gateway Caddy modules (the handler, the admin API, the Caddyfile
// directive and the `caddy llm-gateway` command).
package llmgateway

import (
	// Registers http.handlers.llm_gateway, admin.api.llm_gateway, the
	// llm_gateway Caddyfile directive and the llm-gateway subcommand.
	_ "github.com/llmgateway/caddy-llm-gateway/module"
)
