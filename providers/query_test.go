package providers

import "testing"

func TestForwardQuery(t *testing.T) {
	const secret = "sk-llmgw-alice"
	for in, want := range map[string]string{
		"":                              "",
		"beta=true":                     "beta=true",
		"beta=true&x=1&y":               "beta=true&x=1&y",
		"key=sk-llmgw-alice":            "",
		"beta=true&key=sk-llmgw-alice":  "beta=true",
		"key=x&beta=true":               "beta=true",
		"beta=true&KEY=x&api_key=y&b=2": "beta=true&b=2",
		"api-key=z&Api-Key=w":           "",
		"a=1&token=sk-llmgw-alice&b=2":  "a=1&b=2", // the presented key, whatever the name
		"a=1&t=sk%2Dllmgw%2Dalice":      "a=1",     // escaped
		"sk-llmgw-alice&a=1":            "a=1",     // a bare component
		"k%65y=1&a=2":                   "a=2",     // an escaped name
		"keys=1&monkey=2&a=sk-other":    "keys=1&monkey=2&a=sk-other",
		"a=1&&key=2&b=3":                "a=1&b=3",
	} {
		if got := ForwardQuery(in, secret); got != want {
			t.Errorf("ForwardQuery(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ForwardQuery("key=1&b=2", ""); got != "b=2" {
		t.Errorf("without a secret: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { ForwardQuery("beta=true", secret) }); n != 0 {
		t.Errorf("a clean query allocates %v times", n)
	}
}
