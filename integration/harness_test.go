package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	_ "github.com/llmgateway/caddy-llm-gateway/module"
)

// caddyMu serialises tests that load a Caddy config: Caddy is a process
// singleton.
var caddyMu sync.Mutex

func init() {
	caddy.RegisterModule(logSink{})
	// Never reach a cloud metadata endpoint, whatever the machine.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gateway is a running Caddy with the plugin.
type gateway struct {
	t        testing.TB
	URL      string // http://127.0.0.1:port
	AdminURL string
	port     int
	admin    int
	dataDir  string
	sink     *logLines
	opts     gatewayOptions
}

// gatewayOptions shape the Caddyfile the harness writes.
type gatewayOptions struct {
	// Block is the body of the llm_gateway directive (without braces).
	Block string
	// SiteExtra is added to the site block before llm_gateway.
	SiteExtra string
	// ExtraSites are whole site blocks appended to the Caddyfile.
	ExtraSites string
	// Global are extra global options (grace_period 1s, …).
	Global string
}

// startGateway writes a Caddyfile around the llm_gateway block, adapts it
// like `caddy run --config` would, and loads it.
func startGateway(t testing.TB, opts gatewayOptions) *gateway {
	t.Helper()
	caddyMu.Lock()
	g := &gateway{t: t, port: freePort(t), admin: freePort(t), dataDir: t.TempDir()}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	g.AdminURL = fmt.Sprintf("http://127.0.0.1:%d", g.admin)
	g.sink = newLogLines(g.port)
	t.Cleanup(func() {
		g.stop()
		caddyMu.Unlock()
	})
	g.load(opts)
	return g
}

// caddyfile renders the full Caddyfile.
func (g *gateway) caddyfile(opts gatewayOptions) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	storage file_system %s
	log {
		output discard
	}
	%s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	log {
		output llm_test_sink %d
		# Caddy redacts Authorization but not x-api-key: keep virtual keys out
		# of the access log (docs/operations.md, "Keeping keys out of the log").
		format filter {
			request>headers>X-Api-Key delete
			request>headers>Api-Key delete
			request>headers>X-Goog-Api-Key delete
			request>uri query {
				delete key
				delete api_key
				delete api-key
			}
		}
	}
	%s
	llm_gateway {
		%s
	}
}

%s
`, g.admin, filepath.Join(g.dataDir, "caddy"), opts.Global, g.port, g.port, opts.SiteExtra, opts.Block, opts.ExtraSites)
}

// load adapts and (re)loads a config: the first call starts Caddy, later
// calls are a live reload exactly like `caddy reload`.
func (g *gateway) load(opts gatewayOptions) {
	g.t.Helper()
	g.opts = opts
	cf := string(caddyfile.Format([]byte(g.caddyfile(opts))))
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		g.t.Fatalf("adapting Caddyfile: %v\n%s", err, cf)
	}
	for _, w := range warnings {
		g.t.Logf("caddyfile warning: %s", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		g.t.Fatalf("loading config: %v", err)
	}
	// Start the test's clients on a fresh connection pool (see
	// reload_retry_test.go for what a reload does to connections).
	reloadSafe.freshPool()
}

// loadExtraSite reloads the current config with one more site block.
func (g *gateway) loadExtraSite(site string) {
	g.opts.ExtraSites += site
	g.load(g.opts)
}

// stop stops Caddy (Cleanup of every module runs, stores close).
func (g *gateway) stop() {
	if err := caddy.Stop(); err != nil {
		g.t.Logf("stopping caddy: %v", err)
	}
}

// restart stops Caddy completely and starts it again with opts: a process
// restart as far as the plugin's state is concerned (the store is closed
// and reopened; in-memory counters are rebuilt from it).
func (g *gateway) restart(opts gatewayOptions) {
	g.t.Helper()
	g.stop()
	g.load(opts)
}

// adminGet fetches a JSON document from the admin API.
func (g *gateway) adminGet(path string, v any) {
	g.t.Helper()
	resp, err := http.Get(g.AdminURL + path)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		g.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		g.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// metrics scrapes the admin /metrics endpoint.
func (g *gateway) metrics() map[string]*dto.MetricFamily {
	g.t.Helper()
	resp, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		g.t.Fatalf("%v\n%.2000s", err, body)
	}
	return fams
}

// metricsText returns the raw exposition text.
func (g *gateway) metricsText() string {
	g.t.Helper()
	resp, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue sums the samples of a family whose labels include want.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// nanoUSD turns a dollar metric back into the integer nano-dollars it was
// exported from (a float64 holds them exactly up to $9M), so tests compare
// exact integers, never floats.
func nanoUSD(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// metricDelta is how much a metric grew between two scrapes (metrics are
// process-wide and outlive each test's Caddy, like they outlive reloads).
func metricDelta(before, after map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	return metricValue(after, name, want) - metricValue(before, name, want)
}

// waitLog returns the next access-log entry, which Caddy writes once the
// handler has returned: after it, the ledger, the totals and the metrics of
// that request are all settled.
func (g *gateway) waitLog() map[string]any {
	g.t.Helper()
	select {
	case line := <-g.sink.ch:
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			g.t.Fatalf("access log line %q: %v", line, err)
		}
		return m
	case <-time.After(30 * time.Second):
		g.t.Fatal("no access log entry within 30s")
		return nil
	}
}

// waitLogs collects n access-log entries.
func (g *gateway) waitLogs(n int) []map[string]any {
	out := make([]map[string]any, 0, n)
	for range n {
		out = append(out, g.waitLog())
	}
	return out
}

// allLogText is every log line written so far (for secret scans).
func (g *gateway) allLogText() string { return g.sink.all() }

// logLines is where the llm_test_sink writer sends lines, one instance per
// gateway port (Caddy may open the writer again on reload).
type logLines struct {
	ch  chan []byte
	mu  sync.Mutex
	buf bytes.Buffer
}

// maxSinkText caps the log text kept for secret scans.
const maxSinkText = 16 << 20

var (
	sinksMu sync.Mutex
	sinks   = map[string]*logLines{}
)

func newLogLines(port int) *logLines {
	l := &logLines{ch: make(chan []byte, 4096)}
	sinksMu.Lock()
	sinks[fmt.Sprint(port)] = l
	sinksMu.Unlock()
	return l
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logSink is a test-only Caddy log writer module: `output llm_test_sink <id>`.
type logSink struct {
	ID string `json:"id"`
}

func (logSink) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.llm_test_sink", New: func() caddy.Module { return new(logSink) }}
}

func (s logSink) String() string    { return "llm_test_sink " + s.ID }
func (s logSink) WriterKey() string { return "llm_test_sink:" + s.ID }

func (s logSink) OpenWriter() (io.WriteCloser, error) {
	sinksMu.Lock()
	l := sinks[s.ID]
	sinksMu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("no sink %s", s.ID)
	}
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			l.mu.Lock()
			if l.buf.Len() < maxSinkText {
				l.buf.Write(line)
				l.buf.WriteByte('\n')
			}
			l.mu.Unlock()
			select {
			case l.ch <- line:
			default: // a benchmark's flood: never block Caddy's logger
			}
		}
	}()
	return pw, nil
}

func (s *logSink) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.ArgErr()
	}
	s.ID = d.Val()
	return nil
}

// num reads a numeric log field.
func num(m map[string]any, key string) float64 {
	v, _ := m[key].(float64)
	return v
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// doRaw sends a raw request to the gateway.
func (g *gateway) doRaw(method, path string, header map[string]string, body string) (*http.Response, string) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, g.URL+path, strings.NewReader(body))
	must(g.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	must(g.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	_ caddy.WriterOpener    = logSink{}
	_ caddyfile.Unmarshaler = (*logSink)(nil)
)
