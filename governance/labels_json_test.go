package governance

import (
	"encoding/json"
	"testing"
)

func TestLabelsJSONMatchesEncodingJSON(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{},
		{"project": "apollo"},
		{"project": "apollo", "env": "prod", "a": "", "": "x"},
		{"b": "2", "a": "1", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9"}, // more than the stack buffer
		{"quote": `say "hi"`, "slash": `a\b`},
		{"html": "<a href='x'>&</a>"},
		{"ctl": "tab\there\nnewline\x00"},
		{"utf8": "café ✓", "ключ": "значение"},
		{"sep": "\u2028\u2029"},
	} {
		want := "{}"
		if len(m) > 0 {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			want = string(b)
		}
		if got := labelsJSON(m); got != want {
			t.Errorf("labelsJSON(%q) = %s, want %s", m, got, want)
		}
	}
}

func FuzzLabelsJSON(f *testing.F) {
	f.Add("project", "apollo", "env", "prod")
	f.Add("a<", ">b", `"`, "\\")
	f.Add("", "", "x", "\xff")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := labelsJSON(m); got != string(b) {
			t.Errorf("labelsJSON(%q) = %s, want %s", m, got, b)
		}
	})
}

func BenchmarkLabelsJSON(b *testing.B) {
	m := map[string]string{"project": "apollo", "env": "prod"}
	b.ReportAllocs()
	for b.Loop() {
		labelsJSON(m)
	}
}
