package providers

import "github.com/llmgateway/caddy-llm-gateway/providers/llm"

// ModelMapping maps canonical models matching a glob to a provider's own
// model id: a Bedrock model id, inference profile or ARN, a Vertex model
// id, a Foundry or Azure OpenAI deployment name (the "model <glob> <id>"
// lines of a provider block).
type ModelMapping struct {
	Glob llm.Glob
	ID   string
}

// ModelMap is a provider's ordered mappings; the first match wins.
type ModelMap []ModelMapping

// Lookup returns the provider id for a canonical model.
func (m ModelMap) Lookup(canonical string) (string, bool) {
	for _, e := range m {
		if e.Glob.Match(canonical) {
			return e.ID, true
		}
	}
	return "", false
}
