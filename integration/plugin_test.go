package integration

// The plugin as `xcaddy build --with github.com/llmgateway/caddy-llm-gateway`
// builds it: the handler and every guest module (provider families, stores).
import _ "github.com/llmgateway/caddy-llm-gateway"
