package bedrock

import (
	"fmt"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// builtinModels are the Bedrock base model ids of current Claude models, by
// canonical model. All of them are served on demand only through an
// inference profile, so the provider prefixes them with its region's
// geography (see ModelID).
var builtinModels = []struct{ canonical, id string }{
	{"claude-opus-4-6", "anthropic.claude-opus-4-6-v1"},
	{"claude-sonnet-4-6", "anthropic.claude-sonnet-4-6"},
	{"claude-opus-4-5", "anthropic.claude-opus-4-5-20251101-v1:0"},
	{"claude-haiku-4-5", "anthropic.claude-haiku-4-5-20251001-v1:0"},
	{"claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0"},
	{"claude-opus-4-1", "anthropic.claude-opus-4-1-20250805-v1:0"},
	{"claude-opus-4", "anthropic.claude-opus-4-20250514-v1:0"},
	{"claude-sonnet-4", "anthropic.claude-sonnet-4-20250514-v1:0"},
	{"claude-3-7-sonnet", "anthropic.claude-3-7-sonnet-20250219-v1:0"},
	{"claude-3-5-haiku", "anthropic.claude-3-5-haiku-20241022-v1:0"},
}

// BuiltinModelID returns the Bedrock base model id (no geography prefix) of
// a canonical Claude model from the built-in table, and whether there is
// one.
func BuiltinModelID(canonical string) (string, bool) {
	for _, m := range builtinModels {
		if m.canonical == canonical {
			return m.id, true
		}
	}
	return "", false
}

// geoPrefix is the system inference-profile prefix for a region:
// us-gov-* → "us-gov.", us-* → "us.", eu-* → "eu.", ap-* → "apac.", any
// other region → "global.".
func geoPrefix(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov."
	case strings.HasPrefix(region, "us-"):
		return "us."
	case strings.HasPrefix(region, "eu-"):
		return "eu."
	case strings.HasPrefix(region, "ap-"):
		return "apac."
	}
	return "global."
}

// isBedrockID reports whether a model id is already Bedrock's: an ARN, a
// base model id ("anthropic.…") or an inference profile ("us.anthropic.…").
func isBedrockID(m string) bool {
	return strings.HasPrefix(m, "arn:") || strings.HasPrefix(m, "anthropic.") || strings.Contains(m, ".anthropic.")
}

// ModelID is the Bedrock model id a call is sent to:
//
//  1. the first Config.Models mapping whose glob matches the call's
//     canonical model;
//  2. otherwise the client's own id (call.Model) when it is already a
//     Bedrock id: always on the Bedrock-shaped surfaces (the id in the
//     path), and on the Anthropic surface when the body's model is an
//     ARN, "anthropic.…" or "{geo}.anthropic.…";
//  3. otherwise the built-in table of current Claude models
//     (BuiltinModelID) with the region's inference-profile prefix:
//     us-gov-* → "us-gov.", us-* → "us.", eu-* → "eu.", ap-* → "apac.",
//     other regions → "global." (claude-sonnet-4-5 in eu-west-1 →
//     "eu.anthropic.claude-sonnet-4-5-20250929-v1:0");
//  4. otherwise an error: the provider does not guess ids for models it
//     does not know (add a model line).
func (p *Provider) ModelID(call *llm.Call) (string, error) {
	if id, ok := p.models.Lookup(call.CanonicalModel); ok {
		return id, nil
	}
	if call.Surface.Dialect() == llm.DialectBedrock {
		if call.Model == "" {
			return "", fmt.Errorf("bedrock provider %q: the request names no model", p.name)
		}
		return call.Model, nil
	}
	if isBedrockID(call.Model) {
		return call.Model, nil
	}
	if id, ok := BuiltinModelID(call.CanonicalModel); ok {
		return p.geo + id, nil
	}
	return "", fmt.Errorf("bedrock provider %q has no Bedrock model id for %q: add a model line mapping it", p.name, call.CanonicalModel)
}

// InferenceProfiles returns the Bedrock ids the provider serves, for
// answering Claude Code's GET /inference-profiles: the ids of its model
// mappings in order, without repeats, or — when it has none — the built-in
// models with its region's inference-profile prefix.
func (p *Provider) InferenceProfiles() []string {
	var out []string
	if len(p.models) == 0 {
		for _, m := range builtinModels {
			out = append(out, p.geo+m.id)
		}
		return out
	}
	seen := make(map[string]bool, len(p.models))
	for _, m := range p.models {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m.ID)
		}
	}
	return out
}
