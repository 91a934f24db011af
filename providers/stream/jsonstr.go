package stream

import "bytes"

// DecodedLen returns the length in bytes of the UTF-8 text a JSON string
// literal q (quotes included) decodes to, without decoding it: simple
// escapes count one byte, \uXXXX its code point's UTF-8 length, a valid
// surrogate pair four bytes and a lone surrogate three (the U+FFFD that
// encoding/json substitutes). Unescaped bytes count as themselves. ok is
// false when q is not a well-formed string literal.
func DecodedLen(q []byte) (n int, ok bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return 0, false
	}
	s := q[1 : len(q)-1]
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return n + len(s), true
		}
		n += i
		s = s[i:]
		if len(s) < 2 {
			return 0, false
		}
		switch s[1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			n++
			s = s[2:]
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return 0, false
			}
			s = s[6:]
			switch {
			case r < 0x80:
				n++
			case r < 0x800:
				n += 2
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate: four bytes with its low half, else U+FFFD.
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if lo, ok := hex4(s[2:]); ok && lo >= 0xDC00 && lo < 0xE000 {
						n += 4
						s = s[6:]
						continue
					}
				}
				n += 3
			default:
				n += 3 // BMP above U+07FF, or a lone low surrogate (U+FFFD)
			}
		default:
			return 0, false
		}
	}
}

// hex4 parses the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
