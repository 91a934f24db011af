package providers

import (
	"fmt"
	"net/url"
	"strings"
)

// BaseURL is a provider's validated endpoint.
type BaseURL struct {
	// Base is scheme://host/path with no trailing slash, ready to have a
	// request path appended.
	Base string
	// Host is the host (and port), for error messages.
	Host string
	// Path is the escaped path prefix, no trailing slash ("" or "/v1").
	Path string
	// URL is the parsed form.
	URL *url.URL
}

// ParseBaseURL validates a provider's base_url: an absolute http or https
// URL with a host, and no query, fragment or credentials (those belong in
// the provider's own settings, never in a URL that may be logged).
func ParseBaseURL(raw string) (BaseURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return BaseURL{}, fmt.Errorf("base_url: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return BaseURL{}, fmt.Errorf("base_url %q: scheme must be http or https", raw)
	case u.Host == "":
		return BaseURL{}, fmt.Errorf("base_url %q has no host", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return BaseURL{}, fmt.Errorf("base_url %q must not have a query", raw)
	case u.Fragment != "":
		return BaseURL{}, fmt.Errorf("base_url %q must not have a fragment", raw)
	case u.User != nil:
		return BaseURL{}, fmt.Errorf("base_url must not hold credentials")
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	return BaseURL{Base: u.Scheme + "://" + u.Host + path, Host: u.Host, Path: path, URL: u}, nil
}
