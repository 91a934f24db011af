package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// Tests for "nothing served goes unbilled": shutdown, Redis outages and
// reloads of the store's options.

// redisProc is a real redis-server the test can stop and start again on the
// same port (with no persistence: a restart comes back empty).
type redisProc struct {
	t    *testing.T
	port int
	dir  string
	URL  string
	cmd  *exec.Cmd
}

func startRedisProc(t *testing.T) *redisProc {
	t.Helper()
	r := &redisProc{t: t, port: freePort(t), dir: t.TempDir()}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatal("redis-server is not installed: run ./scripts/test.sh (it installs Debian's redis-server) or apt-get install redis-server")
	}
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no")
	must(r.t, r.cmd.Start())
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	deadline := time.Now().Add(10 * time.Second)
	for !pingRedis(addr) {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING within 10s", addr)
		}
		time.Sleep(10 * time.Millisecond) // waiting for a process to come up, not synchronising a test
	}
}

func (r *redisProc) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// waitFor polls cond until it holds, failing the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline, not synchronising
	}
}

// TestStopSettlesStreamCutByGracePeriod: a stream still flowing when Caddy
// stops with a 1 s grace period is cut when the grace period ends, and is
// settled and ledgered (the input of message_start, the output that passed)
// before Stop returns: after a restart the ledger has it.
func TestStopSettlesStreamCutByGracePeriod(t *testing.T) {
	m := newMockAnthropic(t)
	db := t.TempDir() + "/usage.db"
	opts := gatewayOptions{Global: "grace_period 1s", Block: gatewayBlock(m, db, "")}
	g := startGateway(t, opts)
	c := newClient(g, "", option.WithAPIKey(aliceKey))

	// "hang": three deltas ("Hello from the ", 15 bytes → 4 output tokens),
	// then nothing until the connection closes.
	stream := c.Messages.NewStreaming(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "hang"))
	t.Cleanup(func() { _ = stream.Close() }) // whatever happens, the mock's handler ends
	deltas := 0
	for deltas < 3 && stream.Next() {
		if _, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			deltas++
		}
	}
	if deltas != 3 {
		t.Fatalf("stream: %d deltas, %v", deltas, stream.Err())
	}
	clientDone := make(chan error, 1)
	go func() {
		for stream.Next() {
		}
		clientDone <- stream.Err()
	}()

	stopped := time.Now()
	g.stop()
	if took := time.Since(stopped); took < time.Second {
		t.Errorf("stop took %v: the grace period was not honoured", took)
	}
	// Restart on the same ledger: the cut stream is there, charged for what
	// passed.
	g.load(opts)
	const passedOutput = 4
	const cutCost = 4_146_000 // 12×3 + 200×3.75 + 100×6 + 9000×0.30 + 4×15 USD per million
	spend := adminKeys(g)["alice"].Spend
	if spend.Requests != 1 || spend.InputTokens != mockInput || spend.CacheReadTokens != mockCacheRead ||
		spend.OutputTokens != passedOutput || spend.CostNanoUSD != cutCost {
		t.Fatalf("after restart alice's spend is %+v, want the cut stream (input %d, output %d, %d nano-USD)",
			spend, mockInput, passedOutput, cutCost)
	}
	ledger, err := governance.OpenSQLiteStore(db, governance.SQLiteOptions{})
	must(t, err)
	defer ledger.Close()
	rows, err := ledger.Records(context.Background(), time.Time{}, time.Time{}, 0)
	must(t, err)
	if len(rows) != 1 || rows[0].Status != 200 || rows[0].Usage.Complete || !rows[0].Usage.OutputEstimated || rows[0].Cost != cutCost {
		t.Fatalf("ledger rows %+v", rows)
	}

	select {
	case err := <-clientDone:
		if err == nil {
			t.Error("the client saw a clean end of a stream cut by shutdown")
		}
	case <-time.After(10 * time.Second):
		t.Error("the client's stream was not cut")
	}
	select {
	case <-m.hangDone: // the upstream request was cancelled
	case <-time.After(10 * time.Second):
		t.Error("the upstream request was not cut")
	}
}

// TestProcessStopLedgersCutStream: the same through a real process exit, as
// `caddy stop` or SIGTERM do it: Caddy waits out its 1 s grace period, the
// gateway cuts the stream, ledgers it and only then lets the process exit.
func TestProcessStopLedgersCutStream(t *testing.T) {
	m := newMockAnthropic(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "usage.db")
	port, admin := freePort(t), freePort(t)
	cf := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	storage file_system %s
	grace_period 1s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	llm_gateway {
		%s
	}
}
`, admin, filepath.Join(dir, "caddy"), port, gatewayBlock(m, db, ""))
	file := filepath.Join(dir, "Caddyfile")
	must(t, os.WriteFile(file, []byte(cf), 0o600))
	cmd := exec.Command(os.Args[0], "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), runCaddyEnv+"=1", "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	must(t, err)
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, "the caddy process to serve", func() bool {
		resp, err := http.Head(url + "/v1/messages")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})

	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(url), option.WithMaxRetries(0), option.WithAPIKey(aliceKey))
	stream := c.Messages.NewStreaming(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "hang"))
	t.Cleanup(func() { _ = stream.Close() })
	deltas := 0
	for deltas < 3 && stream.Next() {
		if _, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			deltas++
		}
	}
	if deltas != 3 {
		t.Fatalf("stream: %d deltas, %v", deltas, stream.Err())
	}
	must(t, cmd.Process.Signal(os.Interrupt)) // a graceful stop
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		out, _ := os.ReadFile(logFile.Name())
		t.Fatalf("caddy did not exit\n%s", out)
	}
	ledger, err := governance.OpenSQLiteStore(db, governance.SQLiteOptions{})
	must(t, err)
	defer ledger.Close()
	rows, err := ledger.Records(context.Background(), time.Time{}, time.Time{}, 0)
	must(t, err)
	if len(rows) != 1 || rows[0].Key != "alice" || rows[0].Usage.InputTokens != mockInput || rows[0].Usage.OutputTokens != 4 || rows[0].Cost != 4_146_000 {
		out, _ := os.ReadFile(logFile.Name())
		t.Fatalf("ledger after the process stopped: %+v\n%s", rows, out)
	}
}

// TestRedisOnErrorFollowsReload: on_error changed by a reload applies to the
// next request, in either direction, with Redis then stopped.
func TestRedisOnErrorFollowsReload(t *testing.T) {
	m := newMockAnthropic(t)
	for _, tc := range []struct{ from, to string }{{"open", "closed"}, {"closed", "open"}} {
		t.Run(tc.from+" to "+tc.to, func(t *testing.T) {
			rs := startRedisProc(t)
			ledger := t.TempDir() + "/l.db"
			block := func(mode string) gatewayOptions {
				store := fmt.Sprintf("store redis %s {\n\t\t\tledger %s\n\t\t\ton_error %s\n\t\t}", rs.URL, ledger, mode)
				return gatewayOptions{Block: budgetBlock(m, store, "budget 1 usd per day", "")}
			}
			g := startGateway(t, block(tc.from))
			c := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
			_, err := c.Messages.New(context.Background(), smallParams(10))
			must(t, err)
			g.waitLog()

			g.load(block(tc.to))
			rs.stop()
			_, err = c.Messages.New(context.Background(), smallParams(10))
			e := g.waitLog()
			if tc.to == "closed" {
				var apiErr *anthropic.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.RawJSON(), "cannot check budgets") || e["llm.rejection"] != "store" {
					t.Fatalf("on_error closed after reload: a budgeted key was not refused: %v (log %v)", err, e)
				}
				return
			}
			if err != nil || num(e, "status") != 200 {
				t.Fatalf("on_error open after reload: refused: %v (log %v)", err, e)
			}
		})
	}
}

// TestRedisOutageSpendReachesFleet: with on_error open, spend served while
// Redis was unreachable is queued and reaches the fleet's budget counters
// once Redis answers again.
func TestRedisOutageSpendReachesFleet(t *testing.T) {
	m := newMockAnthropic(t)
	rs := startRedisProc(t)
	store := fmt.Sprintf("store redis %s {\n\t\t\tledger %s/l.db\n\t\t\ton_error open\n\t\t}", rs.URL, t.TempDir())
	g := startGateway(t, gatewayOptions{Block: budgetBlock(m, store, "budget 1 usd per day", "budget 5 usd per day")})
	before := g.metrics()
	c := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	spent := func() (key, team int64) {
		return adminKeysFull(g)["alice"].Budgets[0].SpentNanoUSD, adminTeams(g)["platform"].Budgets[0].SpentNanoUSD
	}

	// A stream admitted while Redis answers, whose settlement fails.
	stream := c.Messages.NewStreaming(context.Background(), messageParams("claude-sonnet-4-5"), option.WithHeader("X-Mock-Scenario", "gated"))
	if !stream.Next() {
		t.Fatal(stream.Err())
	}
	rs.stop()
	m.release <- struct{}{}
	for stream.Next() {
	}
	must(t, stream.Err())
	g.waitLog()
	// Requests served unchecked while Redis is down.
	for range 3 {
		_, err := c.Messages.New(context.Background(), smallParams(10))
		must(t, err)
		if e := g.waitLog(); int64(num(e, "llm.cost_nano_usd")) != smallCostSonnetNano {
			t.Fatalf("logged %v", e)
		}
	}

	// Redis comes back (empty: no persistence): the queued spend reaches it.
	rs.start()
	want := 3*smallCostSonnetNano + mockCostSonnetNano
	waitFor(t, "the queued spend to reach Redis", func() bool {
		k, tm := spent()
		return k == int64(want) && tm == int64(want)
	})
	if b := adminKeysFull(g)["alice"].Budgets[0]; b.ReservedNanoUSD != 0 {
		t.Errorf("reservation left: %+v", b)
	}
	if got := metricDelta(before, g.metrics(), "llm_gateway_store_settlements_dropped_total", nil); got != 0 {
		t.Errorf("dropped %v settlements", got)
	}
}
