package vertex

// builtinModels maps canonical model names to the Vertex AI model ids of
// the Claude models published before Vertex dropped the "@date" suffix
// (Claude 4.6 and later are published under their canonical name).
var builtinModels = map[string]string{
	"claude-opus-4-5":      "claude-opus-4-5@20251101",
	"claude-sonnet-4-5":    "claude-sonnet-4-5@20250929",
	"claude-haiku-4-5":     "claude-haiku-4-5@20251001",
	"claude-opus-4-1":      "claude-opus-4-1@20250805",
	"claude-opus-4":        "claude-opus-4@20250514",
	"claude-sonnet-4":      "claude-sonnet-4@20250514",
	"claude-3-7-sonnet":    "claude-3-7-sonnet@20250219",
	"claude-3-5-haiku":     "claude-3-5-haiku@20241022",
	"claude-3-5-sonnet":    "claude-3-5-sonnet-v2@20241022",
	"claude-3-5-sonnet-v2": "claude-3-5-sonnet-v2@20241022",
	"claude-3-opus":        "claude-3-opus@20240229",
	"claude-3-haiku":       "claude-3-haiku@20240307",
}

// DefaultModelID is the Vertex AI model id of a canonical Claude model when
// the provider's model map does not name one: the dated id of the models
// Vertex publishes with an "@" version ("claude-sonnet-4-5" →
// "claude-sonnet-4-5@20250929"), and the canonical name itself for every
// other model ("claude-sonnet-4-6"), which is how Vertex names Claude 4.6
// and later.
func DefaultModelID(canonical string) string {
	if id, ok := builtinModels[canonical]; ok {
		return id
	}
	return canonical
}
