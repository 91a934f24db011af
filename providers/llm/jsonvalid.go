package llm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a request body may
// have (the top-level object counts as one). encoding/json allows 10,000
// and Python's json about 1,000; a Claude Code body nests fewer than 20.
const MaxDepth = 512

// ErrBadJSON is what every error of the strict reader wraps: the body is
// not one valid JSON object.
var ErrBadJSON = errors.New("request body is not a valid JSON object")

// SyntaxError says where and why a body is not valid JSON.
type SyntaxError struct {
	// Offset is the byte offset of the problem.
	Offset int
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset) }

// Is makes errors.Is(err, ErrBadJSON) hold for every syntax error.
func (e *SyntaxError) Is(target error) bool { return target == ErrBadJSON }

func syntaxError(_ []byte, i int, msg string) error { return &SyntaxError{Offset: i, Msg: msg} }

var errNotObject = &SyntaxError{Msg: "the body is not a JSON object"}

// strictMember validates a top-level member's name or value: one level of
// nesting (the body's own object) is already open.
func strictMember(b []byte, i int) (int, error) { return validValue(b, i, 1) }

// validValue returns the offset just past the JSON value starting at b[i]
// (whitespace before it already skipped), checking it against the JSON
// grammar (RFC 8259): strings are valid UTF-8 with valid escapes and no
// control characters, numbers and literals are well formed, brackets match,
// and nesting stays within MaxDepth counting the open containers around it.
// It is iterative, so a hostile depth costs no stack.
func validValue(b []byte, i, open int) (int, error) {
	var stack [MaxDepth]bool // true: an object, false: an array
	n := 0
	var err error
	for {
		if i >= len(b) {
			return 0, syntaxError(b, i, "unexpected end of the body")
		}
		switch c := b[i]; c {
		case '"':
			if i, err = validString(b, i); err != nil {
				return 0, err
			}
		case '{', '[':
			if open+n >= MaxDepth {
				return 0, syntaxError(b, i, fmt.Sprintf("nesting deeper than %d levels", MaxDepth))
			}
			obj := c == '{'
			stack[n] = obj
			n++
			i = SkipSpace(b, i+1)
			if i < len(b) && b[i] == closer(obj) {
				n--
				i++
				break
			}
			if obj {
				if i, err = validName(b, i); err != nil {
					return 0, err
				}
			}
			continue
		case 't':
			if i, err = literal(b, i, "true"); err != nil {
				return 0, err
			}
		case 'f':
			if i, err = literal(b, i, "false"); err != nil {
				return 0, err
			}
		case 'n':
			if i, err = literal(b, i, "null"); err != nil {
				return 0, err
			}
		default:
			if i, err = validNumber(b, i); err != nil {
				return 0, err
			}
		}
		// A value ended at i: close containers until the next value starts.
		for {
			if n == 0 {
				return i, nil
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, syntaxError(b, i, "unexpected end of the body")
			}
			obj := stack[n-1]
			if b[i] == closer(obj) {
				n--
				i++
				continue
			}
			if b[i] != ',' {
				if obj {
					return 0, syntaxError(b, i, "expected ',' or '}' in an object")
				}
				return 0, syntaxError(b, i, "expected ',' or ']' in an array")
			}
			i = SkipSpace(b, i+1)
			if obj {
				if i, err = validName(b, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

func closer(obj bool) byte {
	if obj {
		return '}'
	}
	return ']'
}

// validName checks a member name and its colon at b[i] and returns the
// offset of the value after them.
func validName(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, syntaxError(b, i, "expected a member name")
	}
	i, err := validString(b, i)
	if err != nil {
		return 0, err
	}
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, syntaxError(b, i, "expected ':' after a member name")
	}
	return SkipSpace(b, i+1), nil
}

func literal(b []byte, i int, word string) (int, error) {
	if !bytes.HasPrefix(b[i:], []byte(word)) {
		return 0, syntaxError(b, i, "invalid literal")
	}
	return i + len(word), nil
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func validNumber(b []byte, i int) (int, error) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digits(b, j)
	default:
		return 0, syntaxError(b, i, "invalid value")
	}
	if j < len(b) && b[j] == '.' {
		k := digits(b, j+1)
		if k == j+1 {
			return 0, syntaxError(b, j, "invalid number")
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(b, j)
		if k == j {
			return 0, syntaxError(b, j, "invalid number")
		}
		j = k
	}
	return j, nil
}

func digits(b []byte, j int) int {
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return j
}

// SWAR constants: one bit or byte value in every byte of a word.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// validString returns the offset just past the string literal at
// b[i] == '"', checking its escapes, that it holds no control character and
// that it is valid UTF-8. Eight bytes at a time are tested for a quote, a
// backslash or a control byte at once (SWAR), so a long string costs about
// a nanosecond per word; non-ASCII bytes are noted on the way and checked
// by utf8.Valid once at the end.
func validString(b []byte, i int) (int, error) {
	j := i + 1
	var high uint64
	for {
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			q := x ^ (lsbs * '"')
			s := x ^ (lsbs * '\\')
			high |= x
			if m := ((q-lsbs)&^q | (s-lsbs)&^s | (x-lsbs*0x20)&^x) & msbs; m != 0 {
				// The lowest flagged byte is the first special one (a
				// borrow can only flag bytes above a real hit).
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(b) {
			return 0, syntaxError(b, i, "unterminated string")
		}
		switch c := b[j]; {
		case c == '"':
			if high&msbs != 0 && !utf8.Valid(b[i+1:j]) {
				return 0, syntaxError(b, i, "string is not valid UTF-8")
			}
			return j + 1, nil
		case c == '\\':
			if j+1 >= len(b) {
				return 0, syntaxError(b, i, "unterminated string")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !hex4(b[j+2:j+6]) {
					return 0, syntaxError(b, j, `invalid \u escape in a string`)
				}
				j += 6
			default:
				return 0, syntaxError(b, j, "invalid escape in a string")
			}
		case c < 0x20:
			return 0, syntaxError(b, j, "control character in a string")
		default:
			high |= uint64(c)
			j++
		}
	}
}

func hex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
