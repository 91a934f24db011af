package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

const monitoringDir = "../caddyfile-examples/monitoring/"

// TestShippedAlertRules: the Prometheus alert rules pass `promtool check
// rules` and their unit tests on synthetic series (`promtool test rules`).
func TestShippedAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run ./scripts/test.sh (it installs Debian's prometheus package) or apt-get install prometheus")
	}
	for _, args := range [][]string{
		{"check", "rules", "llm-gateway-alerts.yml"},
		{"test", "rules", "llm-gateway-alerts.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoringDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName finds the metric names a PromQL expression uses.
var metricName = regexp.MustCompile(`\bllm_gateway_[a-z0-9_]+`)

// TestShippedMonitoringMetricsExist: every metric the alert rules and the
// Grafana dashboard query is one the gateway's /metrics exposes, after a
// little traffic (a served request and a budget refusal).
func TestShippedMonitoringMetricsExist(t *testing.T) {
	used := map[string][]string{} // metric → files
	rules, err := os.ReadFile(monitoringDir + "llm-gateway-alerts.yml")
	must(t, err)
	for _, n := range metricName.FindAllString(string(rules), -1) {
		used[n] = append(used[n], "llm-gateway-alerts.yml")
	}
	dash, err := os.ReadFile(monitoringDir + "llm-gateway-dashboard.json")
	must(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	must(t, json.Unmarshal(dash, &d))
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("dashboard panel %q queries no llm_gateway metric: %s", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = append(used[n], "dashboard panel "+p.Title)
			}
		}
	}
	if len(used) < 5 {
		t.Fatalf("found only %d metric names in the shipped files: %v", len(used), used)
	}

	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: budgetBlock(m, "store memory", "budget 0.004 usd per day", "")})
	c := newClient(g, "", option.WithAuthToken(aliceKey))
	ctx := context.Background()
	_, err = c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	// The canonical reply costs more than the budget: the next is refused.
	_, err = c.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 402 {
		t.Fatalf("second request: %v, want a 402", err)
	}

	fams := g.metrics()
	var missing []string
	for n, where := range used {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && fams[b] != nil && fams[b].GetType().String() == "HISTOGRAM" {
				base = b
			}
		}
		if f := fams[base]; f == nil || len(f.Metric) == 0 {
			missing = append(missing, n+" (used by "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		t.Errorf("not in the gateway's /metrics: %s", n)
	}
}
