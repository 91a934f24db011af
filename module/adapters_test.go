package module

// The guest modules every test of this package may configure (in a
// binary, plugin.go at the repository root imports them).
import (
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/anthropic"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/azure"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/bedrock"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/openai"
	_ "github.com/llmgateway/caddy-llm-gateway/module/providers/vertex"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/memory"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/redis"
	_ "github.com/llmgateway/caddy-llm-gateway/module/stores/sqlite"
)
