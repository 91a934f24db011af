package providers

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxDetail caps the upstream text an error message keeps.
const maxDetail = 512

// Redact replaces every secret in s by "[redacted]", puts s on one line and
// caps it, so an upstream's or a library's error text can go into a log
// line or an error response without carrying a key or a token.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		n := maxDetail
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

// TokenError is a failure to obtain the access token a request needs (the
// token endpoint unreachable, the grant refused): Vertex's OAuth2 tokens,
// Foundry's Entra ID tokens. Its message names the provider and holds no
// credential.
type TokenError struct {
	// Family is the provider family ("vertex", "azure").
	Family string
	// Provider is the provider's configured name.
	Provider string

	msg string
}

// NewTokenError describes a token failure, what naming the token ("an
// access token", "an Entra ID access token"), with secrets redacted.
func NewTokenError(family, provider, what string, err error, secrets ...string) *TokenError {
	return &TokenError{Family: family, Provider: provider,
		msg: fmt.Sprintf("%s provider %q: could not obtain %s: %s", family, provider, what, Redact(err.Error(), secrets...))}
}

// Error implements error.
func (e *TokenError) Error() string { return e.msg }
