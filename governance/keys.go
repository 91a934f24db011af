package governance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"unsafe"
)

// SecretHash is the SHA-256 of a virtual key, the only form in which the
// gateway keeps it.
type SecretHash [sha256.Size]byte

// HashSecret hashes a virtual key as presented by a client.
func HashSecret(secret string) SecretHash {
	// Hashed in place: sha256 only reads its input, and a copy of a long
	// SSO token would cost an allocation on every request.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(secret), len(secret)))
}

// ParseSecretHash reads a hex SHA-256 (as printed by `caddy llm-gateway new-key`).
func ParseSecretHash(s string) (SecretHash, error) {
	var h SecretHash
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(h) {
		return h, errors.New("secret_sha256 must be 64 hexadecimal characters")
	}
	copy(h[:], b)
	return h, nil
}

// String is the hash in lower-case hex.
func (h SecretHash) String() string { return hex.EncodeToString(h[:]) }

// SecretPrefix starts every key the gateway generates, so leaked keys are
// recognisable by secret scanners.
const SecretPrefix = "sk-llmgw-"

// NewSecret returns a fresh random virtual key: the prefix and 32 random
// bytes in base62, 256 bits of entropy that survive copy and paste.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return SecretPrefix + base62(b[:]), nil
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62 encodes b with a fixed width of 43 characters (62^43 > 2^256).
func base62(b []byte) string {
	n := make([]byte, len(b))
	copy(n, b)
	out := make([]byte, 43)
	for i := len(out) - 1; i >= 0; i-- {
		var rem uint
		for j := range n {
			acc := rem<<8 | uint(n[j])
			n[j] = byte(acc / 62)
			rem = acc % 62
		}
		out[i] = base62Alphabet[rem]
	}
	return string(out)
}
