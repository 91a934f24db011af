package providers

import (
	"strings"
	"testing"
)

func TestParseBaseURL(t *testing.T) {
	for _, tc := range []struct {
		in, base, host, err string
	}{
		{"https://api.anthropic.com", "https://api.anthropic.com", "api.anthropic.com", ""},
		{"https://gw.example.com/anthropic/", "https://gw.example.com/anthropic", "gw.example.com", ""},
		{"http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1", "127.0.0.1:11434", ""},
		{"ftp://x", "", "", "scheme must be http or https"},
		{"https://", "", "", "has no host"},
		{"https://x/?a=1", "", "", "must not have a query"},
		{"https://x/#f", "", "", "must not have a fragment"},
		{"https://u:p@x/", "", "", "must not hold credentials"},
		{"::", "", "", "base_url"},
	} {
		b, err := ParseBaseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "u:p") {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || b.Base != tc.base || b.Host != tc.host {
			t.Errorf("%q: %+v %v", tc.in, b, err)
		}
	}
}
