package governance

import (
	"encoding/json"
	"slices"
	"strings"
)

// labelsJSON is the ledger's labels column: a JSON object of the labels
// with keys sorted ("{}" when there are none), byte for byte what
// encoding/json writes. The writer encodes one per row, so labels of plain
// printable ASCII (what metrics_label values almost always are) are written
// directly; anything that JSON escapes goes through encoding/json.
func labelsJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var buf [8]string
	keys := buf[:0]
	n := 1
	for k, v := range m {
		if !plainJSONString(k) || !plainJSONString(v) {
			return marshalLabels(m)
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 6 // "k":"v",
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":"`)
		b.WriteString(m[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// plainJSONString reports whether encoding/json writes s as itself between
// quotes: printable ASCII other than the quote, the backslash and the
// characters it escapes for HTML (<, >, &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// marshalLabels is labelsJSON through encoding/json.
func marshalLabels(m map[string]string) string {
	b, err := json.Marshal(m) // keys sorted; cannot fail for a map of strings
	if err != nil {
		return "{}"
	}
	return string(b)
}
