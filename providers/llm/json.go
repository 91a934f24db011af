package llm

import (
	"bytes"
	"encoding/json"
)

// The one JSON reader of the code base. Request bodies go through ParseBody
// (body.go), which validates the whole body strictly with the scanner in
// jsonvalid.go; RewriteBody edits a body ParseBody accepted; the meters walk
// provider responses with MemberAt, Member, StringMember and ValueEnd. All
// of them compare member names after unescaping them, so `"mod\u0065l"` is
// "model" everywhere, as it is for the provider that decodes the body.
//
// The walkers below are structural: they skip nested values by matching
// brackets and strings by jumping from quote to quote, without decoding or
// validating what they skip. That is what the per-event hot path of a
// stream needs, and it is safe on request bodies only after ParseBody has
// validated them.

// SkipSpace returns the offset of the first non-whitespace byte at or after i.
func SkipSpace(b []byte, i int) int {
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

// StringEnd returns the offset just past the string literal starting at
// b[i] == '"', or -1 when it is unterminated. Most strings in an event are
// short (keys, ids, enum values, a token or two of text): a byte loop finds
// their end faster than IndexByte's call; longer ones and escapes go to
// longStringEnd.
func StringEnd(b []byte, i int) int {
	for j, lim := i+1, min(len(b), i+32); j < lim; j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			return longStringEnd(b, i)
		}
	}
	return longStringEnd(b, i)
}

// longStringEnd is StringEnd by IndexByte, counting the backslashes before
// each quote it finds.
func longStringEnd(b []byte, i int) int {
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

// ValueEnd returns the offset just past the JSON value starting at b[i],
// or -1. Nested values are matched structurally and scalars delimited, not
// validated.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return StringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = StringEnd(b, i); i < 0 {
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

// keyIs reports whether the inner bytes of a member name (quotes excluded)
// name name once unescaped.
func keyIs(inner []byte, name string) bool {
	if string(inner) == name {
		return true
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return false
	}
	return unescapedKey(inner) == name
}

// unescapedKey decodes the inner bytes of a member name that holds an
// escape, as encoding/json does (a lone surrogate becomes U+FFFD); "" when
// they do not decode.
func unescapedKey(inner []byte) string {
	q := make([]byte, 0, len(inner)+2)
	q = append(q, '"')
	q = append(q, inner...)
	q = append(q, '"')
	var s string
	if json.Unmarshal(q, &s) != nil {
		return ""
	}
	return s
}

// MemberAt returns the offset in obj of the value of obj's top-level member
// called name, or -1 when obj is not an object or has no such member before
// something malformed. It stops at the first member of that name, and the
// bytes after its value are not looked at: the text of a content delta is
// scanned once to find its end and once to count it, with no allocation.
func MemberAt(obj []byte, name string) int {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return -1
	}
	i = SkipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end := StringEnd(obj, i)
		if end < 0 {
			return -1
		}
		key := obj[i+1 : end-1]
		i = SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return -1
		}
		i = SkipSpace(obj, i+1)
		if keyIs(key, name) {
			if i >= len(obj) {
				return -1
			}
			return i
		}
		if i = ValueEnd(obj, i); i < 0 {
			return -1
		}
		i = SkipSpace(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return -1
		}
		i = SkipSpace(obj, i+1)
	}
	return -1
}

// MemberValue returns the raw JSON value (exactly as it appears in obj,
// whitespace around it excluded) of the first top-level member called name
// of the JSON object obj, and whether it was found. A "usage" member inside
// "content" is never mistaken for the top-level one. It does not allocate
// unless a member name holds an escape sequence.
func MemberValue(obj []byte, name string) (value []byte, ok bool) {
	i := MemberAt(obj, name)
	if i < 0 {
		return nil, false
	}
	end := ValueEnd(obj, i)
	if end < 0 {
		return nil, false
	}
	return obj[i:end], true
}

// StringMember returns the string literal (quotes included) of the
// top-level member called name of obj, or nil when it is absent or not a
// string.
func StringMember(obj []byte, name string) []byte {
	i := MemberAt(obj, name)
	if i < 0 || obj[i] != '"' {
		return nil
	}
	end := StringEnd(obj, i)
	if end < 0 {
		return nil
	}
	return obj[i:end]
}

// walkObject calls visit for each top-level member of the JSON object b, in
// order, skipping values with skip, and returns the offset of the closing
// brace. visit returning false stops the walk (close is then -1). Trailing
// bytes other than whitespace are an error.
func walkObject(b []byte, skip func(b []byte, i int) (int, error), visit func(key []byte, keyStart, valStart, valEnd int) (bool, error)) (closeAt int, err error) {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return -1, errNotObject
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i, trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1, syntaxError(b, i, "expected a member name")
		}
		keyStart := i
		keyEnd, err := skip(b, i)
		if err != nil {
			return -1, err
		}
		i = SkipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return -1, syntaxError(b, i, "expected ':' after a member name")
		}
		i = SkipSpace(b, i+1)
		valStart := i
		valEnd, err := skip(b, i)
		if err != nil {
			return -1, err
		}
		more, err := visit(b[keyStart:keyEnd], keyStart, valStart, valEnd)
		if err != nil || !more {
			return -1, err
		}
		i = SkipSpace(b, valEnd)
		if i >= len(b) {
			return -1, syntaxError(b, i, "unexpected end of the object")
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return i, trailing(b, i+1)
		default:
			return -1, syntaxError(b, i, "expected ',' or '}' after a member")
		}
	}
}

// laxSkip skips a value structurally (ValueEnd), for bodies already
// validated.
func laxSkip(b []byte, i int) (int, error) {
	if end := ValueEnd(b, i); end > i {
		return end, nil
	}
	return 0, syntaxError(b, i, "malformed value")
}

// trailing refuses anything but whitespace after the top-level value.
func trailing(b []byte, i int) error {
	if j := SkipSpace(b, i); j != len(b) {
		return syntaxError(b, j, "data after the top-level object")
	}
	return nil
}
