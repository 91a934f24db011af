package llm

import "testing"

func TestCanonicalModel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"claude-sonnet-4-5@20250929", "claude-sonnet-4-5"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{"global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"},
		{"us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{"anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"},
		{"anthropic.claude-opus-4-6-v1", "claude-opus-4-6"},
		{"anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"},
		{"claude-haiku-4-5@20251001", "claude-haiku-4-5"},
		{"claude-3-5-haiku-20241022", "claude-3-5-haiku"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4.1-mini", "gpt-4.1-mini"},
		{"gpt-5", "gpt-5"},
		{"llama3.2:3b", "llama3.2:3b"},
		{"my-anthropic.thing", "my-anthropic.thing"},
		{"", ""},
	} {
		if got := CanonicalModel(tc.in); got != tc.want {
			t.Errorf("CanonicalModel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"claude-*", "claude-sonnet-4-5", true},
		{"claude-*", "gpt-4o", false},
		{"*", "", true},
		{"claude-sonnet-*", "claude-sonnet-4-5", true},
		{"claude-sonnet-*", "claude-haiku-4-5", false},
		{"*sonnet*", "claude-sonnet-4-5", true},
		{"claude-?-5", "claude-4-5", true},
		{"claude-?-5", "claude-45-5", false},
		{"anthropic/*", "anthropic/claude-3.5", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	} {
		if got := Glob(tc.pattern).Match(tc.name); got != tc.want {
			t.Errorf("Glob(%q).Match(%q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}
