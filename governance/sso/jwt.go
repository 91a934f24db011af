package sso

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// MaxTokenLen bounds a bearer token the gateway will parse, in bytes
// (tokens carrying a few hundred groups stay well below it).
const MaxTokenLen = 16 << 10

// LooksLikeJWT reports whether a credential is shaped like a signed JWT
// (three dot-separated base64url parts, a JSON header first), as opposed
// to a virtual key. It decodes nothing.
func LooksLikeJWT(s string) bool {
	if len(s) < 10 || !strings.HasPrefix(s, "eyJ") {
		return false
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
			if dots > 2 || i == 0 || s[i-1] == '.' {
				return false
			}
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// peekIssuer reads a token's iss claim without verifying anything, to
// choose the verifier that will.
func peekIssuer(token string) (string, bool) {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "", false
	}
	return c.Iss, c.Iss != ""
}
