package module

import (
	"net/http"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/bedrock"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// serveInferenceProfiles answers Claude Code's Bedrock-mode start-up call,
// GET …/inference-profiles, from the configured Bedrock providers' model
// ids (every provider that implements providers.InferenceProfileLister).
// It carries no credential, reveals only model ids, and is not
// attributed to any key.
func (st *state) serveInferenceProfiles(w http.ResponseWriter) {
	var ids []string
	region := ""
	seen := map[string]bool{}
	for _, p := range st.router.Providers() {
		b, ok := p.(providers.InferenceProfileLister)
		if !ok {
			continue
		}
		if region == "" {
			region = b.Region()
		}
		for _, id := range b.InferenceProfiles() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if region == "" {
		st.reject(w, llm.DialectBedrock, "no_route", llm.ErrNotFound, "no bedrock provider is configured")
		return
	}
	bedrock.WriteInferenceProfiles(w, region, ids)
}
