package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestMetricsPassPromtool scrapes the gateway's metrics after served,
// streamed and refused requests and runs Prometheus's own linter over the
// exposition: names, types, HELP text and label sets are what Prometheus
// and its tooling expect.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run ./scripts/test.sh (it installs Debian's prometheus package) or apt-get install prometheus")
	}
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: gatewayBlock(m, "", "")})
	ctx := context.Background()

	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Project", "apollo"))
	_, err = c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	stream := c.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
	for stream.Next() {
	}
	must(t, stream.Err())
	// A refusal: bob may only use Haiku.
	bob := newClient(g, "", option.WithAPIKey(bobKey))
	if _, err := bob.Messages.New(ctx, messageParams("claude-opus-4-1")); err == nil {
		t.Fatal("bob's Opus request was served")
	}
	g.waitLogs(3)

	text := g.metricsText()
	if !strings.Contains(text, "llm_gateway_requests_total") {
		t.Fatalf("no gateway metrics in the exposition:\n%.2000s", text)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// promtool exits non-zero on lint problems; show only ours.
		var ours []string
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "llm_gateway") {
				ours = append(ours, line)
			}
		}
		if len(ours) > 0 {
			t.Fatalf("promtool check metrics on llm_gateway series:\n%s", strings.Join(ours, "\n"))
		}
		if !strings.Contains(out.String(), "llm_gateway") && strings.TrimSpace(out.String()) != "" &&
			!lintOnlyOthers(out.String()) {
			t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
		}
	}
}

// lintOnlyOthers reports whether every line promtool printed is a lint
// finding (name: message) rather than a parse error; findings on metrics
// that are not ours (Caddy's, Go's) are Caddy's business.
func lintOnlyOthers(out string) bool {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, "error while linting") || strings.Contains(line, "parse") {
			return false
		}
	}
	return true
}
