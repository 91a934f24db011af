package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Span is a byte range [Start, End) of a request body.
type Span struct{ Start, End int }

// Valid reports whether the span was found.
func (s Span) Valid() bool { return s.End > s.Start }

// BodyFields are the few top-level members of a JSON request body the gateway
// needs, read in one pass that skips everything else without decoding it
// (a Claude Code body is ~90 KB of messages, system prompt and tools).
type BodyFields struct {
	// Model is the "model" member, unescaped.
	Model string
	// MaxTokens is "max_tokens", "max_completion_tokens" or
	// "max_output_tokens", whichever appears (0 when none does).
	MaxTokens int64
	// Stream is the "stream" member.
	Stream bool
	// IncludeUsage is "stream_options.include_usage" (OpenAI chat).
	IncludeUsage bool
	// ModelMember, StreamMember and StreamOptionsMember locate those members,
	// from the key's opening quote to the end of the value, so a family can
	// drop or replace them without re-encoding the body.
	ModelMember, StreamMember, StreamOptionsMember Span
	// Close is the offset of the top-level object's closing brace.
	Close int
	// Members counts the top-level members.
	Members int
}

// ErrBadJSON is returned for a body that is not one JSON object.
var ErrBadJSON = errors.New("request body is not a valid JSON object")

// ParseBody reads the members the gateway needs from a JSON object body.
// Nested values are skipped structurally, strings by jumping from quote to
// quote, so the cost is one pass over the bytes with no allocation beyond
// the model string.
func ParseBody(b []byte) (BodyFields, error) {
	var f BodyFields
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return f, ErrBadJSON
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		f.Close = i
		return f, checkTrailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return f, ErrBadJSON
		}
		keyStart := i
		keyEnd, err := skipString(b, i)
		if err != nil {
			return f, err
		}
		key := b[keyStart+1 : keyEnd-1]
		i = skipWS(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return f, ErrBadJSON
		}
		i = skipWS(b, i+1)
		valStart := i
		valEnd, err := skipValue(b, i)
		if err != nil {
			return f, err
		}
		val := b[valStart:valEnd]
		f.Members++
		switch string(key) {
		case "model":
			if val[0] != '"' {
				return f, errors.New(`"model" must be a string`)
			}
			f.Model, err = unquote(val)
			if err != nil {
				return f, err
			}
			f.ModelMember = Span{keyStart, valEnd}
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			if string(val) != "null" {
				n, err := parseCount(val)
				if err != nil {
					return f, errors.New(`"` + string(key) + `" must be a non-negative integer`)
				}
				f.MaxTokens = n
			}
		case "stream":
			switch string(val) {
			case "true":
				f.Stream = true
			case "false", "null":
				f.Stream = false
			default:
				return f, errors.New(`"stream" must be a boolean`)
			}
			f.StreamMember = Span{keyStart, valEnd}
		case "stream_options":
			f.StreamOptionsMember = Span{keyStart, valEnd}
			f.IncludeUsage = bytes.Contains(val, []byte(`"include_usage"`)) && includeUsage(val)
		}
		i = skipWS(b, valEnd)
		if i >= len(b) {
			return f, ErrBadJSON
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			f.Close = i
			return f, checkTrailing(b, i+1)
		default:
			return f, ErrBadJSON
		}
	}
}

func checkTrailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return ErrBadJSON
	}
	return nil
}

func includeUsage(val []byte) bool {
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(val, &so) == nil && so.IncludeUsage
}

func parseCount(val []byte) (int64, error) {
	if n, err := strconv.ParseInt(string(val), 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	fl, err := strconv.ParseFloat(string(val), 64)
	if err != nil || fl < 0 || fl != float64(int64(fl)) {
		return 0, ErrBadJSON
	}
	return int64(fl), nil
}

func unquote(val []byte) (string, error) {
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		return "", ErrBadJSON
	}
	return s, nil
}

func skipWS(b []byte, i int) int {
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

// skipString returns the offset just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, ErrBadJSON
		}
		q := j + k
		bs := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the offset just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrBadJSON
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, ErrBadJSON
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				goto done
			}
			j++
		}
	done:
		if j == i || !validScalar(b[i:j]) {
			return 0, ErrBadJSON
		}
		return j, nil
	}
}

func validScalar(v []byte) bool {
	switch string(v) {
	case "true", "false", "null":
		return true
	}
	c := v[0]
	return c == '-' || (c >= '0' && c <= '9')
}
