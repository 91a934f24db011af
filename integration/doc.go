// Package integration holds the end-to-end tests: a real Caddy with the
// llm_gateway plugin loaded from a Caddyfile, mock upstreams on 127.0.0.1
// that speak each provider's real wire format, and the official client SDKs.
package integration
