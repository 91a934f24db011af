package module

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestLabelValue(t *testing.T) {
	ascii127 := strings.Repeat("a", 127)
	for _, tc := range []struct{ in, want string }{
		{"claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"claude-\xff", "claude-\uFFFD"},
		{"\xc3", "\uFFFD"},                                   // a rune cut short
		{ascii127 + "é", ascii127},                           // é would straddle byte 128
		{strings.Repeat("x", 300), strings.Repeat("x", 128)}, // long ASCII
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},  // 2-byte runes: 128 bytes exactly
		{strings.Repeat("\xff", 200), "\uFFFD"},              // a run of invalid bytes: one replacement
	} {
		got := labelValue(tc.in)
		if got != tc.want || !utf8.ValidString(got) || len(got) > maxLabelBytes {
			t.Errorf("labelValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { labelValue("claude-sonnet-4-5") }); n != 0 {
		t.Errorf("a valid value allocates %v times", n)
	}
}

// TestUsageCollectorHostileValues: whatever bytes requests put in label
// values, /metrics stays exposable.
func TestUsageCollectorHostileValues(t *testing.T) {
	names := []string{"key", "team", "customer", "provider", "model", "project"}
	c := newUsageCollector(names)
	r := newLabelResolver([]*MetricsLabelConfig{{Name: "test_hostile_label", Header: "X-Project"}}, []string{"test_hostile_label"})
	for _, v := range []string{"\xff\xfe", strings.Repeat("a", 127) + "é", "ok", "\xc3"} {
		vals := append([]string{"alice", "", "", "anthropic", r.model("claude-" + v)}, r.appendValues(nil, http.Header{"X-Project": {v}})...)
		c.get(vals).add(llm.Usage{InputTokens: 1}, 1, true)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	if !utf8.Valid(buf.Bytes()) {
		t.Fatal("exposition is not UTF-8")
	}
}

// TestModelLabelerBounded: models the configuration names keep their
// names; invented ones are kept up to the cap and collapse into _other.
func TestModelLabelerBounded(t *testing.T) {
	prices := governance.NewPriceTable([]governance.PriceOverride{
		{Model: "house-model", Input: new(governance.Money)},
		{Model: "globbed-*", Input: new(governance.Money)},
	})
	m := newModelLabeler(prices, namedModels(map[string]string{"fast": "local-llama"},
		[]*mp.Config{{ModelMap: []mp.ModelLine{{Match: "mapped-one", ID: "deploy-1"}, {Match: "claude-*", ID: "x"}}}}), 2)
	m.set = new(boundedSet)
	for _, name := range []string{"claude-sonnet-4-5", "house-model", "local-llama", "mapped-one"} {
		for range 3 {
			if got := m.value(name); got != name {
				t.Fatalf("named model %s labelled %q", name, got)
			}
		}
	}
	// A glob row does not name a model: globbed-1 counts against the cap.
	for i, want := range []string{"globbed-1", "claude-x-1", OtherLabelValue, OtherLabelValue, "globbed-1"} {
		name := []string{"globbed-1", "claude-x-1", "claude-x-2", "claude-x-3", "globbed-1"}[i]
		if got := m.value(name); got != want {
			t.Errorf("value(%s) = %q, want %q", name, got, want)
		}
	}
	if got := m.value("house-model"); got != "house-model" {
		t.Errorf("named model past the cap: %q", got)
	}
	if got := m.value(""); got != "" {
		t.Errorf("no model: %q", got)
	}
	if d := newModelLabeler(nil, nil, 0); d.max != DefaultModelLabelCap {
		t.Errorf("default cap %d", d.max)
	}
}

// TestWarnUnpricedCapped: one warning per model, for a bounded number of
// models, then one line saying the rest go unnamed.
func TestWarnUnpricedCapped(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	logger := zap.New(core)
	for i := range maxUnpricedWarnings + 50 {
		for range 2 {
			warnUnpriced(logger, fmt.Sprintf("test-unpriced-%d", i))
		}
	}
	n := logs.Len()
	// Other tests in this process may have warned about models already.
	if n > maxUnpricedWarnings+1 || n < 1 {
		t.Fatalf("%d warnings", n)
	}
	last := logs.All()[n-1].Message
	if !strings.Contains(last, "further ones are not logged") {
		t.Errorf("last warning %q", last)
	}
}
