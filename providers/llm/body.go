package llm

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BodyFields are the top-level members of a JSON request body that the
// gateway governs: what admission, routing and metering read. ParseBody
// reads them in the same pass that validates the body.
type BodyFields struct {
	// Model is the "model" member, unescaped.
	Model string
	// MaxTokens is the largest of "max_tokens", "max_completion_tokens" and
	// "max_output_tokens" (0 when none is set).
	MaxTokens int64
	// HasMaxTokens is true when one of them is present and not null.
	HasMaxTokens bool
	// N is the number of choices asked for ("n", OpenAI chat); 1 when
	// absent, null or 0.
	N int64
	// Stream is the "stream" member.
	Stream bool
	// IncludeUsage is "stream_options.include_usage" (OpenAI chat).
	IncludeUsage bool
	// StreamOptions is the raw "stream_options" value, nil when absent.
	StreamOptions []byte
	// Speed is the "speed" member ("fast" asks Anthropic's fast mode), ""
	// when absent or null.
	Speed string
	// InferenceGeo is the "inference_geo" member ("us" asks US-only
	// inference), "" when absent or null.
	InferenceGeo string
}

// GovernedMembers are the top-level members the gateway reads from a
// request body. Each may appear once: a body naming one twice (after
// unescaping), or in another letter case, is refused, because the provider
// may read a different one than the gateway checked.
var GovernedMembers = [...]string{"model", "max_tokens", "max_completion_tokens", "max_output_tokens", "stream", "stream_options", "n", "speed", "inference_geo"}

// MaxModelName is the longest model name a request may carry, in bytes.
const MaxModelName = 256

// maxCount bounds max_tokens and n: far above any model's output, far below
// an overflow of the worst-case arithmetic.
const maxCount = 1 << 40

// BodyError is a request body the gateway refuses; its message is meant
// for the client.
type BodyError struct{ Msg string }

// Error implements error.
func (e *BodyError) Error() string { return e.Msg }

func bodyErr(msg string) error { return &BodyError{Msg: msg} }

// ParseBody validates b as one JSON object (RFC 8259, valid UTF-8, nesting
// within MaxDepth, nothing after it) and reads its governed members, in one
// pass with no allocation beyond the model, speed and inference_geo strings
// and an escaped member
// name. Member names are compared after unescaping, as the provider
// compares them. Errors are *SyntaxError (wrapping ErrBadJSON) for
// malformed JSON and *BodyError for a governed member that is duplicated or
// of the wrong type; both read well in a 400.
func ParseBody(b []byte) (BodyFields, error) {
	f := BodyFields{N: 1}
	var seen uint16
	_, err := walkObject(b, strictMember, func(key []byte, _, vs, ve int) (bool, error) {
		inner := key[1 : len(key)-1]
		name := string(inner) // no allocation: only compared
		if bytes.IndexByte(inner, '\\') >= 0 {
			name = unescapedKey(inner)
		}
		g := governedIndex(name)
		if g < 0 {
			if len(name) <= 3*len("max_completion_tokens") {
				for _, m := range GovernedMembers {
					if strings.EqualFold(name, m) {
						return false, bodyErr(`member ` + strconv.Quote(name) + ` is "` + m + `" in another letter case: send "` + m + `" once, spelled exactly so`)
					}
				}
			}
			return true, nil
		}
		if seen&(1<<g) != 0 {
			return false, bodyErr(`member "` + GovernedMembers[g] + `" appears more than once`)
		}
		seen |= 1 << g
		return true, f.set(g, b[vs:ve])
	})
	if err != nil {
		return BodyFields{}, err
	}
	return f, nil
}

// governedIndex is the index of name in GovernedMembers, or -1.
func governedIndex(name string) int {
	for i, m := range GovernedMembers {
		if name == m {
			return i
		}
	}
	return -1
}

// set records the value of governed member g.
func (f *BodyFields) set(g int, val []byte) error {
	name := GovernedMembers[g]
	switch name {
	case "model":
		if val[0] != '"' {
			return bodyErr(`"model" must be a string`)
		}
		s, err := unquote(val)
		if err != nil {
			return err
		}
		if err := CheckModelName(s); err != nil {
			return err
		}
		f.Model = s
	case "max_tokens", "max_completion_tokens", "max_output_tokens":
		if string(val) == "null" {
			return nil
		}
		n, ok := parseCount(val)
		if !ok {
			return bodyErr(`"` + name + `" must be a non-negative integer`)
		}
		f.HasMaxTokens = true
		f.MaxTokens = max(f.MaxTokens, n)
	case "n":
		if string(val) == "null" {
			return nil
		}
		n, ok := parseCount(val)
		if !ok {
			return bodyErr(`"n" must be a non-negative integer`)
		}
		f.N = max(n, 1)
	case "stream":
		switch string(val) {
		case "true":
			f.Stream = true
		case "false", "null":
		default:
			return bodyErr(`"stream" must be a boolean`)
		}
	case "stream_options":
		f.StreamOptions = val
		f.IncludeUsage = includeUsage(val)
	case "speed", "inference_geo":
		if string(val) == "null" {
			return nil
		}
		if val[0] != '"' {
			return bodyErr(`"` + name + `" must be a string`)
		}
		s, err := unquote(val)
		if err != nil {
			return err
		}
		if name == "speed" {
			f.Speed = s
		} else {
			f.InferenceGeo = s
		}
	}
	return nil
}

// CheckModelName refuses a model name no provider could mean: longer than
// MaxModelName bytes, or holding a control character or invalid UTF-8 (a
// body's string is valid UTF-8 already; a URL path's may not be).
func CheckModelName(s string) error {
	if len(s) > MaxModelName {
		return bodyErr("model: a model name is at most " + strconv.Itoa(MaxModelName) + " bytes")
	}
	if !utf8.ValidString(s) {
		return bodyErr("model: the model name is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bodyErr("model: the model name holds a control character")
		}
	}
	return nil
}

// includeUsage reads stream_options.include_usage as the provider does:
// the last of duplicated members wins, names compared unescaped.
func includeUsage(val []byte) bool {
	on := false
	_, _ = walkObject(val, laxSkip, func(key []byte, _, vs, ve int) (bool, error) {
		if keyIs(key[1:len(key)-1], "include_usage") {
			on = string(val[vs:ve]) == "true"
		}
		return true, nil
	})
	return on
}

// parseCount reads a non-negative integer count, written as an integer or
// as a number with no fractional part (1e3, 100.0: JSON parsers of the
// providers accept both), at most maxCount.
func parseCount(val []byte) (int64, bool) {
	if n, err := strconv.ParseInt(string(val), 10, 64); err == nil {
		return n, n >= 0 && n <= maxCount
	}
	fl, err := strconv.ParseFloat(string(val), 64)
	if err != nil || fl < 0 || fl > maxCount || fl != float64(int64(fl)) {
		return 0, false
	}
	return int64(fl), true
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
