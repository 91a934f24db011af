package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// process is a second Caddy, in its own process: the test binary re-run as
// `caddy run --config <file>`.
type process struct {
	URL, AdminURL string
}

func startCaddyProcess(t *testing.T, block string) *process {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	cf := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	storage file_system %s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	llm_gateway {
		%s
	}
}
`, admin, filepath.Join(dir, "caddy"), port, block)
	file := filepath.Join(dir, "Caddyfile")
	must(t, os.WriteFile(file, []byte(cf), 0o600))
	cmd := exec.Command(os.Args[0], "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), runCaddyEnv+"=1", "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	})
	p := &process{URL: fmt.Sprintf("http://127.0.0.1:%d", port), AdminURL: fmt.Sprintf("http://127.0.0.1:%d", admin)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready when both the admin API and the site answer.
		resp, err := http.Get(p.AdminURL + "/llm_gateway/keys")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				var head *http.Response
				if head, err = http.Head(p.URL + "/v1/messages"); err == nil {
					head.Body.Close()
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("second caddy did not come up: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to start, not synchronising
	}
}

func (p *process) usage(t *testing.T, groupBy string) map[string]usageRow {
	t.Helper()
	resp, err := http.Get(p.AdminURL + "/llm_gateway/usage?group_by=" + groupBy)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Rows []usageRow `json:"rows"`
	}
	if err := jsonUnmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	out := map[string]usageRow{}
	for _, r := range doc.Rows {
		out[r.Group] = r
	}
	return out
}

// TestFleetSharesOneBudget: two Caddy instances (one in this process, one
// a separate process) on one real Redis enforce one budget: together they
// spend it and stop, never more than one request's worst case past it.
func TestFleetSharesOneBudget(t *testing.T) {
	redisURL := startRedis(t)
	m := newMockAnthropic(t)
	block := func(ledger string) string {
		return budgetBlock(m, fmt.Sprintf("store redis %s {\n\t\t\tledger %s\n\t\t}\n\t\treservation_lease 5s", redisURL, ledger),
			"budget 0.01 usd per day", "budget 1 usd per day")
	}
	g := startGateway(t, gatewayOptions{Block: block(t.TempDir() + "/a.db")})
	other := startCaddyProcess(t, block(t.TempDir()+"/b.db"))

	clients := []anthropic.Client{
		newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small")),
		anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(other.URL), option.WithMaxRetries(0),
			option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small")),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := [2]int{}
	refused := 0
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%2]
			for range 40 {
				stream := c.Messages.NewStreaming(context.Background(), smallParams(100))
				for stream.Next() {
				}
				err := stream.Err()
				mu.Lock()
				var apiErr *anthropic.Error
				switch {
				case err == nil:
					admitted[w%2]++
				case errors.As(err, &apiErr) && apiErr.StatusCode == 402:
					refused++
				case errors.As(err, &apiErr) && apiErr.StatusCode == 429 && strings.Contains(apiErr.RawJSON(), "held by requests in flight"):
					refused++ // headroom held by the fleet's requests in flight
				default:
					t.Errorf("instance %d: %v", w%2, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	g.waitLogs(8 * 40)
	total := admitted[0] + admitted[1]
	t.Logf("instance A admitted %d, instance B %d, %d refused", admitted[0], admitted[1], refused)
	if admitted[0] == 0 || admitted[1] == 0 {
		t.Fatalf("both instances must serve: %v", admitted)
	}
	if m.count() != total {
		t.Fatalf("upstream saw %d, admitted %d", m.count(), total)
	}
	const budget, worst = 10_000_000, 1_800_000
	charged := int64(total) * smallCostSonnetNano
	if charged > budget+worst || charged < budget {
		t.Fatalf("fleet charged %d nano, want within [%d, %d]", charged, budget, budget+worst)
	}
	// Redis holds the fleet's spend; each instance's ledger holds its own rows.
	b := adminKeysFull(g)["alice"].Budgets[0]
	if b.SpentNanoUSD != charged || b.ReservedNanoUSD != 0 {
		t.Fatalf("redis budget %+v, charged %d", b, charged)
	}
	if team := adminTeams(g)["platform"].Budgets[0]; team.SpentNanoUSD != charged {
		t.Fatalf("team budget %+v", team)
	}
	a, bb := adminUsage(g, "key")["alice"], other.usage(t, "key")["alice"]
	if a.CostNanoUSD+bb.CostNanoUSD != charged || a.CostNanoUSD != int64(admitted[0])*smallCostSonnetNano {
		t.Fatalf("ledgers A %+v B %+v, charged %d", a, bb, charged)
	}
}

// TestRedisUnreachable: on_error closed refuses (and says why), on_error
// open serves unchecked; both log and count the store error.
func TestRedisUnreachable(t *testing.T) {
	m := newMockAnthropic(t)
	dead := fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t))
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			store := fmt.Sprintf("store redis %s {\n\t\t\tledger %s/l.db\n\t\t\ton_error %s\n\t\t}", dead, t.TempDir(), mode)
			g := startGateway(t, gatewayOptions{Block: budgetBlock(m, store, "budget 1 usd per day", "")})
			before := g.metrics()
			c := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
			_, err := c.Messages.New(context.Background(), smallParams(10))
			e := g.waitLog()
			fams := g.metrics()
			if got := metricDelta(before, fams, "llm_gateway_store_errors_total", map[string]string{"op": "admit"}); got != 1 {
				t.Errorf("store errors = %v", got)
			}
			if mode == "closed" {
				var apiErr *anthropic.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.RawJSON(), "cannot check budgets") {
					t.Fatalf("closed: %v", err)
				}
				if e["llm.rejection"] != "store" {
					t.Errorf("log %v", e)
				}
				return
			}
			must(t, err)
			if num(e, "status") != 200 || int64(num(e, "llm.cost_nano_usd")) != smallCostSonnetNano {
				t.Errorf("open: logged %v", e)
			}
		})
	}
}
