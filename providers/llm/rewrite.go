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
func RewriteBody(b []byte, drop []string, set []Member) ([]byte, error) {
	out := make([]byte, 0, len(b)+64)
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, ErrBadJSON
	}
	out = append(out, '{')
	i = skipWS(b, i+1)
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
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, ErrBadJSON
			}
			keyEnd, err := skipString(b, i)
			if err != nil {
				return nil, err
			}
			key := b[i:keyEnd]
			i = skipWS(b, keyEnd)
			if i >= len(b) || b[i] != ':' {
				return nil, ErrBadJSON
			}
			i = skipWS(b, i+1)
			valEnd, err := skipValue(b, i)
			if err != nil {
				return nil, err
			}
			val := b[i:valEnd]
			keep := true
			for _, d := range drop {
				if keyIs(key, d) {
					keep = false
					break
				}
			}
			if keep {
				for j, m := range set {
					if keyIs(key, m.Name) {
						if !done[j] {
							emit(key, m.Value)
							done[j] = true
						}
						keep = false
						break
					}
				}
			}
			if keep {
				emit(key, val)
			}
			i = skipWS(b, valEnd)
			if i >= len(b) {
				return nil, ErrBadJSON
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return nil, ErrBadJSON
			}
			i = skipWS(b, i+1)
		}
	}
	if skipWS(b, i) != len(b) {
		return nil, ErrBadJSON
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
