// Package cache is the gateway's exact-match response cache: a bounded
// in-memory store on ristretto (cost = bytes, so max_size is enforced by
// its admission and eviction policy) of complete provider responses, keyed
// by a hash of everything that decides the answer: the API surface, the
// canonical model, the provider family, the request body with only the
// documented volatile fields normalised, the headers and query that change
// the response, and the identity of the scope sharing the entry (a key, a
// team, a customer or everyone).
//
// A response is recorded as it passes to the client (Recorder writes
// through, it never holds the live stream back) and kept only when it
// ended normally: status 200, complete with its final usage, and a stop
// reason that is neither a refusal nor a truncation (Cacheable). A hit is
// replayed byte for byte (Replay), so a streamed answer is the same event
// sequence the first client received.
//
// Entries carry the time they were stored and the cache an injected clock:
// expiry is decided against the ttl in force when the entry is read, so a
// reload that changes the ttl applies to every entry at once, and tests
// need no sleeps. The package imports only the standard library,
// ristretto and the leaf providers/llm and providers/stream; never Caddy.
package cache
