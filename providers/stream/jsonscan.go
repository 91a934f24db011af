package stream

import "bytes"

// A minimal JSON walker for the per-event hot path. Unlike
// llm.TopLevelMember it stops at the start of the member it looks for
// instead of skipping the member's value, so the text of a content delta is
// scanned once to find its end and once to count it, with no allocation.

// memberAt returns the offset in obj of the value of obj's top-level member
// called name (compared with the raw key: the keys of Anthropic events are
// never escaped), or -1 when obj is not an object or has no such member
// before something malformed. Bytes after the value are not looked at.
func memberAt(obj []byte, name string) int {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return -1
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end := stringEnd(obj, i)
		if end < 0 {
			return -1
		}
		key := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return -1
		}
		i = skipSpace(obj, i+1)
		if string(key) == name {
			if i >= len(obj) {
				return -1
			}
			return i
		}
		if i = valueEnd(obj, i); i < 0 {
			return -1
		}
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return -1
		}
		i = skipSpace(obj, i+1)
	}
	return -1
}

// stringAt returns the string literal (quotes included) of the member
// called name of obj, or nil when it is absent or not a string.
func stringAt(obj []byte, name string) []byte {
	i := memberAt(obj, name)
	if i < 0 || obj[i] != '"' {
		return nil
	}
	end := stringEnd(obj, i)
	if end < 0 {
		return nil
	}
	return obj[i:end]
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the offset just past the string literal starting at
// b[i] == '"', or -1 when it is unterminated.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		bs := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// valueEnd returns the offset just past the JSON value starting at b[i],
// or -1. Scalars are delimited, not validated.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return strEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = strEnd(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if j == i {
					return -1
				}
				return j
			}
			j++
		}
		return -1
	}
}

// strEnd returns the offset just past the string literal starting at
// b[i] == '"', or -1. Most strings in a chunk are short (keys, ids, enum
// values, a token or two of text): a byte loop finds their end faster than
// IndexByte's call; longer ones and escapes go to stringEnd.
func strEnd(b []byte, i int) int {
	for j, lim := i+1, min(len(b), i+32); j < lim; j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			return stringEnd(b, i)
		}
	}
	return stringEnd(b, i)
}
