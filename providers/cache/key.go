package cache

import (
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"net/http"
	"sync"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// Key identifies one cached response: a 128-bit keyed hash (two
// hash/maphash sums with random per-process seeds, so no client can aim a
// collision at an entry) of a Request's parts, and the scope identity
// itself, which Get compares exactly: an entry is never served across
// scopes, whatever the hash.
type Key struct {
	sum   [16]byte
	scope string
}

// String is the key's hash in hex, for logs and tests.
func (k Key) String() string { return hex.EncodeToString(k.sum[:]) }

// Seeds of the key hash: random, fixed for the life of the process (the
// cache lives in memory only, so keys never need to agree across
// processes).
var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

// hasher writes every byte to two maphash states.
type hasher struct{ a, b maphash.Hash }

func (h *hasher) Write(p []byte) {
	_, _ = h.a.Write(p)
	_, _ = h.b.Write(p)
}

func (h *hasher) WriteString(s string) {
	_, _ = h.a.WriteString(s)
	_, _ = h.b.WriteString(s)
}

func (h *hasher) byte1(c byte) {
	_ = h.a.WriteByte(c)
	_ = h.b.WriteByte(c)
}

var hashPool = sync.Pool{New: func() any {
	h := new(hasher)
	h.a.SetSeed(seedA)
	h.b.SetSeed(seedB)
	return h
}}

// Request is what a cache key is derived from.
type Request struct {
	// Surface is the API shape; a surface never shares entries with another.
	Surface llm.Surface
	// Model is the canonical model: ids that name the same model (a dated
	// id, an alias's target, a Bedrock or Vertex id) share entries, so the
	// body's own "model" member is left out of the hash.
	Model string
	// Family is the provider family expected to answer ("anthropic",
	// "openai", …): two families may answer the same body differently.
	Family string
	// Scope is the identity of who may share the entry (ScopeIdentity);
	// identical bodies from different scopes never share.
	Scope string
	// Query is the query string forwarded upstream (Claude Code sends
	// ?beta=true), without the client's credential.
	Query string
	// Header is the inbound header: anthropic-version, anthropic-beta and
	// openai-beta change what a provider answers and are part of the key.
	Header http.Header
	// Body is the raw request body, which ParseBody accepted.
	Body []byte
}

// keyHeaders are the request headers that change a response.
var keyHeaders = [...]string{"Anthropic-Version", "Anthropic-Beta", "Openai-Beta"}

// volatile lists, per surface, the top-level members whose value changes
// from request to request without changing the answer, and which the
// response does not echo: OpenAI's end-user identifiers on chat
// completions and embeddings (`user`, and its successors
// `safety_identifier` and `prompt_cache_key`). The Responses API echoes
// them in its response object, so there they stay part of the key.
// Anthropic's metadata.user_id is handled by anthropicMetadata.
func volatile(s llm.Surface) []string {
	switch s {
	case llm.SurfaceOpenAIChat:
		return []string{"user", "safety_identifier", "prompt_cache_key"}
	case llm.SurfaceOpenAIEmbeddings:
		return []string{"user"}
	}
	return nil
}

// anthropicMetadata reports whether the surface's body is an Anthropic
// Messages body, whose metadata.user_id (Claude Code puts its session id
// there) is volatile.
func anthropicMetadata(s llm.Surface) bool {
	return s.Dialect() != llm.DialectOpenAI
}

// Derive returns the cache key of r. Every part is length-prefixed, so no
// two different requests hash the same bytes.
func Derive(r *Request) Key {
	h := hashPool.Get().(*hasher)
	h.a.Reset()
	h.b.Reset()
	var scratch [binary.MaxVarintLen64]byte
	count := func(n int) { h.Write(scratch[:binary.PutUvarint(scratch[:], uint64(n))]) }
	field := func(s string) {
		count(len(s))
		h.WriteString(s)
	}
	field("llm-gateway-cache/1")
	field(r.Surface.String())
	field(r.Model)
	field(r.Family)
	field(r.Scope)
	field(r.Query)
	for _, name := range keyHeaders {
		vs := r.Header[name]
		count(len(vs))
		for _, v := range vs {
			field(v)
		}
	}
	writeBody(h, r.Surface, r.Body)
	k := Key{scope: r.Scope}
	binary.LittleEndian.PutUint64(k.sum[:8], h.a.Sum64())
	binary.LittleEndian.PutUint64(k.sum[8:], h.b.Sum64())
	hashPool.Put(h)
	return k
}

// writeBody hashes the body's top-level members in order, leaving out
// "model" (the canonical model is hashed instead) and the surface's
// volatile members, and Anthropic's metadata without its user_id. Members
// are hashed as they appear (name, value), separated, so whitespace between
// members does not matter but every byte of every kept value does. A body
// the walk cannot follow is hashed whole.
func writeBody(h *hasher, s llm.Surface, b []byte) {
	drop := volatile(s)
	meta := anthropicMetadata(s)
	ok := walkMembers(b, func(name, value []byte) {
		switch {
		case string(name) == `"model"`:
			return
		case meta && string(name) == `"metadata"` && len(value) > 0 && value[0] == '{':
			h.Write(name)
			h.WriteString(":{")
			if !walkMembers(value, func(n, v []byte) {
				if string(n) == `"user_id"` {
					return
				}
				member(h, n, v)
			}) {
				h.WriteString("\x01raw\x01")
				h.Write(value)
			}
			h.byte1('}')
			h.byte1(0)
			return
		}
		for _, d := range drop {
			if len(name) == len(d)+2 && string(name[1:len(name)-1]) == d {
				return
			}
		}
		member(h, name, value)
	})
	if !ok {
		h.WriteString("\x01raw\x01")
		h.Write(b)
	}
}

// member hashes one member: its name, its value's length and its value, so
// that no value can pass for several members.
func member(h *hasher, name, value []byte) {
	h.Write(name)
	var scratch [binary.MaxVarintLen64]byte
	h.Write(scratch[:binary.PutUvarint(scratch[:], uint64(len(value)))])
	h.Write(value)
}

// walkMembers calls fn with each top-level member of the JSON object b:
// its name as written (quotes included) and its raw value. It reports
// false when b is not an object it could walk to the end; fn may then have
// been called for some members.
func walkMembers(b []byte, fn func(name, value []byte)) bool {
	i := llm.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = llm.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		end := llm.StringEnd(b, i)
		if end < 0 {
			return false
		}
		name := b[i:end]
		i = llm.SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = llm.SkipSpace(b, i+1)
		ve := llm.ValueEnd(b, i)
		if ve < 0 {
			return false
		}
		fn(name, b[i:ve])
		i = llm.SkipSpace(b, ve)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = llm.SkipSpace(b, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// Scope is who shares cache entries: one key (the default), a team, a
// customer, or every caller of the gateway.
type Scope uint8

// The scopes.
const (
	ScopeKey Scope = iota
	ScopeTeam
	ScopeCustomer
	ScopeGlobal
)

var scopeNames = [...]string{"key", "team", "customer", "global"}

// String is the scope's Caddyfile name.
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "unknown"
}

// ParseScope reads a scope name: key, team, customer or global.
func ParseScope(s string) (Scope, bool) {
	for i, n := range scopeNames {
		if n == s {
			return Scope(i), true
		}
	}
	return 0, false
}

// ScopeIdentity is the Request.Scope of a caller under scope s: the key
// (its name and secret hash, so that two keys of the same name in two
// configurations never share), its team, its customer, or one value for
// everyone. A key without a team (or customer) under scope team (customer)
// falls back to the narrower level it has, never to sharing with others.
func ScopeIdentity(s Scope, key string, keyHash []byte, team, customer string) string {
	switch {
	case s == ScopeGlobal:
		return "global"
	case s == ScopeCustomer && customer != "":
		return "customer\x00" + customer
	case (s == ScopeTeam || s == ScopeCustomer) && team != "":
		return "team\x00" + team
	}
	return "key\x00" + key + "\x00" + string(keyHash)
}
