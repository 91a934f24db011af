// Package sso identifies developers by their organisation's single sign-on:
// it verifies the bearer tokens (JWTs) an OpenID Connect provider signs and
// maps their claims to a gateway identity, the key name and the team a
// developer's requests are attributed to.
//
// An Issuer is one identity provider: its discovery document and its JSON
// Web Key Set, fetched on first use, cached, and refreshed when a token
// names a key the cache does not hold (a key rotation) — at most a few
// times a minute, so forged tokens cannot make the gateway hammer the
// provider. A Verifier checks a token's signature (github.com/coreos/go-oidc/v3,
// never alg "none", never a symmetric key), issuer, audience and expiry,
// maps its claims (Mapping), and remembers the verified token in a small
// bounded cache keyed by the token's SHA-256 until the token expires, so a
// developer's repeated requests cost a hash and a map lookup, no network
// call and no signature check.
//
// The package knows nothing of Caddy or HTTP servers; the module glue
// builds Verifiers from its configuration and provisions the developers
// they identify.
package sso
