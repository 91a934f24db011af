package llm

import "bytes"

// TopLevelMember returns the raw JSON value (exactly as it appears in b,
// whitespace around it excluded) of the first member called name of the
// top-level JSON object b, and whether it was found. Nested objects are
// skipped structurally without being decoded, so a "usage" member inside
// "content" is never mistaken for the top-level one, and the scan stops at
// the member it finds: the rest of b is not validated. It does not allocate
// unless a key in b contains an escape sequence. ok is false when b is not a
// JSON object, is malformed before the member, or has no such member.
func TopLevelMember(b []byte, name string) (value []byte, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, false
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		keyEnd, err := skipString(b, i)
		if err != nil {
			return nil, false
		}
		key := b[i:keyEnd]
		i = skipWS(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipWS(b, i+1)
		valEnd, err := skipValue(b, i)
		if err != nil {
			return nil, false
		}
		if keyIs(key, name) {
			return b[i:valEnd], true
		}
		i = skipWS(b, valEnd)
		if i >= len(b) || b[i] != ',' {
			return nil, false
		}
		i = skipWS(b, i+1)
	}
}

// keyIs compares a quoted JSON key with name, unescaping only when the key
// holds an escape.
func keyIs(quoted []byte, name string) bool {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	s, err := unquote(quoted)
	return err == nil && s == name
}
