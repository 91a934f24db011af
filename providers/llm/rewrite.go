package llm

import (
	"bytes"
	"strconv"
)

// Member is a top-level JSON member to set: Name and its raw JSON Value
// (already encoded: `"vertex-2023-10-16"`, `["a","b"]`, `{"include_usage":true}`).
type Member struct {
	Name  string
	Value []byte
}

// RewriteBody returns a copy of the JSON object b with the top-level
// members named in drop removed and the members in set replaced in place
// (or appended at the end when absent). Everything else — nested values,
// unknown fields, whitespace inside values — is copied byte for byte: the
// body is never decoded and re-encoded. It is how families adapt a
// Messages body to a cloud's dialect (Bedrock: drop model and stream, set
// anthropic_version and anthropic_beta; Vertex: drop model, set
// anthropic_version; OpenAI: set stream_options).
//
// b must be a body ParseBody accepted, or an event from a provider: values
// are skipped structurally, not validated again.
func RewriteBody(b []byte, drop []string, set []Member) ([]byte, error) {
	out := make([]byte, 0, len(b)+64)
	out = append(out, '{')
	done := make([]bool, len(set))
	first := true
	emit := func(key []byte, val []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, val...)
	}
	_, err := walkObject(b, laxSkip, func(key []byte, _, vs, ve int) (bool, error) {
		inner := key[1 : len(key)-1]
		for _, d := range drop {
			if keyIs(inner, d) {
				return true, nil
			}
		}
		for j, m := range set {
			if keyIs(inner, m.Name) {
				if !done[j] {
					emit(key, m.Value)
					done[j] = true
				}
				return true, nil
			}
		}
		emit(key, b[vs:ve])
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for j, m := range set {
		if !done[j] {
			emit(strconv.AppendQuote(nil, m.Name), m.Value)
		}
	}
	return append(out, '}'), nil
}

// QuoteJSON encodes s as a JSON string value (for Member values).
func QuoteJSON(s string) []byte {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.Bytes()
}
