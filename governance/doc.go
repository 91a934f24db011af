// Package governance holds everything about who may spend what: identities
// (customer → team → key), key hashing, the price table and integer money,
// and the stores that keep usage (memory for tests, SQLite embedded). It
// knows nothing of Caddy or of any provider's wire format; it speaks only
// the leaf vocabulary in providers/llm.
package governance
