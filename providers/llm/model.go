package llm

import "strings"

// CanonicalModel turns any provider's id for a model into the one name the
// gateway prices, routes, allow-lists and labels by:
//
//	arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0 → claude-sonnet-4-5
//	us.anthropic.claude-sonnet-4-5-20250929-v1:0 → claude-sonnet-4-5
//	anthropic.claude-opus-4-6-v1                → claude-opus-4-6
//	claude-sonnet-4-5@20250929                  → claude-sonnet-4-5
//	claude-sonnet-4-5-20250929                  → claude-sonnet-4-5
//	gpt-4o-2024-08-06                           → gpt-4o
//
// Names it does not recognise as decorated come back unchanged. It allocates
// only when it has to build a new string (never for an already canonical id).
func CanonicalModel(id string) string {
	m := id
	if strings.HasPrefix(m, "arn:") {
		if i := strings.LastIndexByte(m, '/'); i >= 0 {
			m = m[i+1:]
		}
	}
	// Bedrock: optional geography prefix ("us.", "eu.", "apac.", "global.",
	// "us-gov." …) then the "anthropic." vendor prefix.
	if i := strings.Index(m, "anthropic."); i >= 0 && (i == 0 || (m[i-1] == '.' && isGeo(m[:i-1]))) {
		m = m[i+len("anthropic."):]
		m = trimBedrockVersion(m)
	}
	// Vertex: "@20250929" (or any "@" version tag).
	if i := strings.IndexByte(m, '@'); i > 0 {
		m = m[:i]
	}
	m = trimDate(m)
	return m
}

// isGeo reports whether s looks like a Bedrock inference-profile geography:
// lower-case letters and hyphens.
func isGeo(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// trimBedrockVersion drops a "-v1:0" or "-v1" suffix.
func trimBedrockVersion(m string) string {
	end := len(m)
	if i := strings.LastIndexByte(m, ':'); i > 0 && allDigits(m[i+1:]) {
		end = i
	}
	base := m[:end]
	if i := strings.LastIndex(base, "-v"); i > 0 && allDigits(base[i+2:]) {
		return base[:i]
	}
	return m
}

// trimDate drops a trailing "-YYYYMMDD" (Anthropic) or "-YYYY-MM-DD" (OpenAI).
func trimDate(m string) string {
	if n := len(m); n > 9 && m[n-9] == '-' && allDigits(m[n-8:]) && m[n-8] == '2' {
		return m[:n-9]
	}
	if n := len(m); n > 11 && m[n-11] == '-' && m[n-3] == '-' && m[n-6] == '-' &&
		allDigits(m[n-10:n-6]) && allDigits(m[n-5:n-3]) && allDigits(m[n-2:]) {
		return m[:n-11]
	}
	return m
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
