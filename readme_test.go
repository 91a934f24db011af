package llmgateway

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The README stays an entry point (what it is, the two commands, a first
// Caddyfile, Claude Code setup, links); the reference lives in docs/.
const readmeMaxLines = 300

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadmeShortWithTheTwoCommands(t *testing.T) {
	readme := readFile(t, "README.md")
	if n := strings.Count(readme, "\n"); n >= readmeMaxLines {
		t.Errorf("README.md has %d lines; keep it under %d and move reference text to docs/", n, readmeMaxLines)
	}
	for _, cmd := range []string{
		"ANTHROPIC_API_KEY=sk-ant-... go run ./xcaddy/caddy run --config caddyfile-examples/quickstart.Caddyfile",
		"./scripts/test.sh",
	} {
		if !strings.Contains(readme, "```sh\n"+cmd+"\n```") {
			t.Errorf("README.md lost the command %q", cmd)
		}
	}
	docs, err := filepath.Glob("docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, d := range append(docs, "CONTRIBUTING.md", "LICENSE") {
		if !strings.Contains(readme, "]("+filepath.ToSlash(d)) {
			t.Errorf("README.md does not link %s", d)
		}
	}
}

// TestReadmeCaddyfileAdapts adapts the README's Caddyfile.
func TestReadmeCaddyfileAdapts(t *testing.T) {
	readme := readFile(t, "README.md")
	_, rest, ok := strings.Cut(readme, "```caddyfile\n")
	if !ok {
		t.Fatal("README.md has no Caddyfile")
	}
	body, _, _ := strings.Cut(rest, "```")
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "README.md"})
	if err != nil {
		t.Fatalf("README.md's Caddyfile: %v", err)
	}
	if !strings.Contains(string(out), `"handler":"llm_gateway"`) {
		t.Fatalf("no llm_gateway handler in %s", out)
	}
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#{1,6} +(.+)$")
)

// anchor is GitHub's id for a heading: lower case, punctuation dropped,
// spaces to hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocsLinksResolve checks every relative link (and #anchor) in the
// Markdown files.
func TestDocsLinksResolve(t *testing.T) {
	files, _ := filepath.Glob("docs/*.md")
	files = append(files, "README.md", "CONTRIBUTING.md")
	anchors := map[string]map[string]bool{}
	anchorsOf := func(name string) map[string]bool {
		if a, ok := anchors[name]; ok {
			return a
		}
		a := map[string]bool{}
		if b, err := os.ReadFile(name); err == nil {
			for _, m := range mdHeading.FindAllStringSubmatch(string(b), -1) {
				a[anchor(strings.ReplaceAll(m[1], "`", ""))] = true
			}
		}
		anchors[name] = a
		return a
	}
	for _, f := range files {
		for _, m := range mdLink.FindAllStringSubmatch(readFile(t, f), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			target, frag, _ := strings.Cut(link, "#")
			path := f
			if target != "" {
				path = filepath.Join(filepath.Dir(f), target)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links %s, which does not exist", f, link)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !anchorsOf(path)[frag] {
				t.Errorf("%s links %s: no heading with that anchor", f, link)
			}
		}
	}
}

func TestLicenseIsApache2(t *testing.T) {
	l := readFile(t, "LICENSE")
	if !strings.Contains(l, "Apache License") || !strings.Contains(l, "Version 2.0, January 2004") {
		t.Fatal("LICENSE is not the Apache License 2.0")
	}
}
