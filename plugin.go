// Package llmgateway is the module root that `xcaddy build --with
// github.com/llmgateway/caddy-llm-gateway` imports: it registers the
// llm_gateway Caddy modules (the handler, the admin API, the Caddyfile
// directive and the `caddy llm-gateway` command) and the guest modules of
// this repository: the provider families and the stores.
package llmgateway

import (
	// Registers http.handlers.llm_gateway, admin.api.llm_gateway, the
	// llm_gateway Caddyfile directive and the llm-gateway subcommand.
	_ "github.com/llmgateway/caddy-llm-gateway/module"

	// Provider families: http.handlers.llm_gateway.providers.*.
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/anthropic"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/azure"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/bedrock"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/openai"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/vertex"

	// Stores: http.handlers.llm_gateway.counters.* and
	// http.handlers.llm_gateway.ledgers.*.
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/memory"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/postgres"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/redis"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/sqlite"

	// The spend dashboard: http.handlers.llm_gateway_dashboard and its
	// llm_gateway_dashboard Caddyfile directive.
	_ "github.com/llmgateway/caddy-llm-gateway/module/dashboard"
)
