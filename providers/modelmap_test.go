package providers

import "testing"

func TestModelMapLookup(t *testing.T) {
	m := ModelMap{
		{"claude-sonnet-4-5*", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"claude-*", "fallback"},
	}
	for in, want := range map[string]string{"claude-sonnet-4-5": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-haiku-4-5": "fallback", "gpt-4o": ""} {
		got, ok := m.Lookup(in)
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%s) = %q %v", in, got, ok)
		}
	}
}
