package providers

import (
	"net/url"
	"strings"
)

// credentialParams are the query parameters APIs and SDKs carry keys in
// (Google's key=, api_key=, Azure's api-key=). Names compare without case.
var credentialParams = [...]string{"key", "api_key", "api-key"}

// ForwardQuery is the inbound raw query string as a family forwards it:
// without any parameter that carries a credential — those named key,
// api_key or api-key, and any whose name or value is secret, the virtual
// key the client presented. Other parameters pass unchanged, in their
// order, byte for byte (raw itself when nothing is dropped).
func ForwardQuery(raw, secret string) string {
	if raw == "" {
		return ""
	}
	drop := false
	for part := range strings.SplitSeq(raw, "&") {
		if isCredentialParam(part, secret) {
			drop = true
			break
		}
	}
	if !drop {
		return raw
	}
	kept := make([]string, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part != "" && !isCredentialParam(part, secret) {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "&")
}

// isCredentialParam reports whether one name[=value] query component
// carries a credential.
func isCredentialParam(part, secret string) bool {
	if part == "" {
		return false
	}
	name, value, _ := strings.Cut(part, "=")
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	for _, c := range credentialParams {
		if strings.EqualFold(name, c) {
			return true
		}
	}
	if secret == "" {
		return false
	}
	if v, err := url.QueryUnescape(value); err == nil {
		value = v
	}
	return name == secret || value == secret
}
