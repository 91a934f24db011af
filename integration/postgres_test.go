package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// serialClient sends every request on one keep-alive connection, so each
// response arrives only after the server finished the request before it
// (a Go server reads the next request once the handler returned): after a
// final request, every earlier one has been ledgered. It makes the child
// Caddy's ledger deterministic without watching its log.
func serialClient(base, secret string) (anthropic.Client, func(t *testing.T)) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	hc := &http.Client{Transport: tr}
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithMaxRetries(0),
		option.WithHTTPClient(hc), option.WithAuthToken(secret), option.WithHeader("X-Mock-Scenario", "small"))
	barrier := func(t *testing.T) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodHead, base+"/v1/messages", nil)
		resp, err := hc.Do(req)
		must(t, err)
		resp.Body.Close()
	}
	return c, barrier
}

// adminJSON GETs an admin path and decodes it.
func adminJSON(t *testing.T, adminURL, path string) map[string]any {
	t.Helper()
	resp, err := http.Get(adminURL + path)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return doc
}

// keySpend is a key's spend and budgets as GET /llm_gateway/keys shows them.
func keySpend(t *testing.T, adminURL, name string) any {
	t.Helper()
	doc := adminJSON(t, adminURL, "/llm_gateway/keys")
	for _, k := range doc["keys"].([]any) {
		if k := k.(map[string]any); k["name"] == name {
			return []any{k["spend"], k["budgets"]}
		}
	}
	t.Fatalf("no key %s in %v", name, doc)
	return nil
}

// TestPostgresFleetLedger: two Caddy instances (this process and a child
// process) with Redis counters and one PostgreSQL ledger, the DSN from an
// environment placeholder. The usage query and /llm_gateway/keys answer the
// same, fleet-wide, from both; PostgreSQL stopping mid-traffic blocks no
// request, and every row arrives once it is back.
func TestPostgresFleetLedger(t *testing.T) {
	pg := testkit.StartPostgres(t)
	redisURL := startRedis(t)
	m := newMockAnthropic(t)
	t.Setenv("LLM_GATEWAY_PG", pg.DSN) // the child inherits it
	block := budgetBlock(m, fmt.Sprintf("store redis %s {\n\t\t\tledger postgres {env.LLM_GATEWAY_PG}\n\t\t}", redisURL),
		"budget 5 usd per day", "")
	g := startGateway(t, gatewayOptions{Block: block})
	other := startCaddyProcess(t, block)

	ca := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	cb := newClient(g, "", option.WithAuthToken(bobKey), option.WithHeader("X-Mock-Scenario", "small"))
	for range 3 {
		_, err := ca.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	for range 2 {
		_, err := cb.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	g.waitLogs(5)
	oc, barrier := serialClient(other.URL, aliceKey)
	for range 4 {
		_, err := oc.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	barrier(t)

	const q = "/llm_gateway/usage?group_by=key,model,day"
	// Each query flushes its instance's ledger; the second round sees both.
	adminJSON(t, g.AdminURL, q)
	adminJSON(t, other.AdminURL, q)
	a, b := adminJSON(t, g.AdminURL, q), adminJSON(t, other.AdminURL, q)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("usage differs:\nA %v\nB %v", a, b)
	}
	total := a["total"].(map[string]any)
	if total["requests"] != float64(9) || total["cost_nano_usd"] != float64(9*smallCostSonnetNano) {
		t.Fatalf("fleet total %v", total)
	}
	if ka, kb := keySpend(t, g.AdminURL, "alice"), keySpend(t, other.AdminURL, "alice"); !reflect.DeepEqual(ka, kb) {
		t.Fatalf("/llm_gateway/keys alice differs:\nA %v\nB %v", ka, kb)
	}
	spend := keySpend(t, g.AdminURL, "alice").([]any)[0].(map[string]any)
	if spend["requests"] != float64(7) || spend["cost_nano_usd"] != float64(7*smallCostSonnetNano) {
		t.Fatalf("alice spend %v", spend)
	}
	ra, rb := adminJSON(t, g.AdminURL, "/llm_gateway/requests?key=alice&limit=3"), adminJSON(t, other.AdminURL, "/llm_gateway/requests?key=alice&limit=3")
	if !reflect.DeepEqual(ra, rb) || len(ra["rows"].([]any)) != 3 {
		t.Fatalf("requests differ or wrong size:\nA %v\nB %v", ra, rb)
	}

	// PostgreSQL goes away: requests are still served, their rows queue.
	before := g.metrics()
	pg.Stop()
	for range 3 {
		_, err := ca.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	g.waitLogs(3)
	pg.Restart()
	a = adminJSON(t, g.AdminURL, q) // waits for the queued rows
	if total := a["total"].(map[string]any); total["requests"] != float64(12) {
		t.Fatalf("after the outage: %v", total)
	}
	after := g.metrics()
	if d := metricDelta(before, after, "llm_gateway_ledger_postgres_rows_committed_total", nil); d != 3 {
		t.Errorf("committed delta %v", d)
	}
	if v := metricValue(after, "llm_gateway_ledger_postgres_rows_dropped_total", nil); v != 0 {
		t.Errorf("dropped %v", v)
	}
	if strings.Contains(g.allLogText(), testkit.PostgresPassword) {
		t.Errorf("the DSN's password reached the log")
	}
}

// TestPostgresRestartRestoresFleetSpend: with `store postgres` (counters
// in memory), an instance that restarts restores its budgets from the
// spend of the whole fleet.
func TestPostgresRestartRestoresFleetSpend(t *testing.T) {
	pg := testkit.StartPostgres(t)
	m := newMockAnthropic(t)
	opts := gatewayOptions{Block: budgetBlock(m, "store postgres "+pg.DSN+" {\n\t\t\trefresh_interval 1h\n\t\t}", "budget 1 usd per day", "")}
	g := startGateway(t, opts)
	other := startCaddyProcess(t, budgetBlock(m, "store postgres "+pg.DSN, "budget 1 usd per day", ""))

	ca := newClient(g, "", option.WithAuthToken(aliceKey), option.WithHeader("X-Mock-Scenario", "small"))
	for range 2 {
		_, err := ca.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	g.waitLogs(2)
	oc, barrier := serialClient(other.URL, aliceKey)
	for range 3 {
		_, err := oc.Messages.New(context.Background(), smallParams(10))
		must(t, err)
	}
	barrier(t)
	adminJSON(t, other.AdminURL, "/llm_gateway/usage?group_by=key") // flushes the child's rows

	// Before: this instance's counters know only its own spend.
	if b := adminKeysFull(g)["alice"].Budgets[0]; b.SpentNanoUSD != 2*smallCostSonnetNano {
		t.Fatalf("before restart: %+v", b)
	}
	g.restart(opts)
	if b := adminKeysFull(g)["alice"].Budgets[0]; b.SpentNanoUSD != 5*smallCostSonnetNano {
		t.Fatalf("after restart: %+v, want the fleet's %d", b, 5*smallCostSonnetNano)
	}
}

// TestPostgresCaddyfile: the store lines adapt to the ledger module's JSON
// and bad ones are refused with the line's error.
func TestPostgresCaddyfile(t *testing.T) {
	adapt := func(store string) (string, error) {
		cf := "http://127.0.0.1:1 {\n\tllm_gateway {\n\t\t" + store + "\n\t}\n}\n"
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		return string(out), err
	}
	for _, tc := range []struct{ store, want string }{
		{"store postgres {env.PG}", `"ledger":{"dsn":"{env.PG}","type":"postgres"}`},
		{"store postgres postgres://u:p@db/x {\n\t\t\tqueue_size 10\n\t\t\trefresh_interval 5s\n\t\t\tmax_conns 2\n\t\t}",
			`"ledger":{"dsn":"postgres://u:p@db/x","max_conns":2,"queue_size":10,"refresh_interval":5000000000,"type":"postgres"}`},
		{"store redis redis://r:6379/0 {\n\t\t\tledger postgres {env.PG}\n\t\t}", `"ledger":{"dsn":"{env.PG}","type":"postgres"}`},
	} {
		out, err := adapt(tc.store)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s:\n%v\n%s", tc.store, err, out)
		}
	}
	for _, tc := range []struct{ store, want string }{
		{"store postgres", "needs a DSN"},
		{"store postgres a b", "wrong argument count"},
		{"store postgres x {\n\t\t\tqueue_size 0\n\t\t}", "positive integer"},
		{"store postgres x {\n\t\t\tbogus 1\n\t\t}", `unknown store postgres subdirective "bogus"`},
		{"store redis redis://r {\n\t\t\tledger postgres\n\t\t}", "ledger postgres needs a DSN"},
	} {
		if _, err := adapt(tc.store); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.store, err, tc.want)
		}
	}
}
