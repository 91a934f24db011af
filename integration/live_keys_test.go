package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/internal/clock"
	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// settableClock is the gateway's live key clock (internal/clock), moved by
// the test instead of waiting.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keysCLI runs `caddy llm-gateway keys …` against the gateway's admin API.
func keysCLI(t *testing.T, g *gateway, args ...string) (string, error) {
	t.Helper()
	c, ok := caddycmd.Commands()["llm-gateway"]
	if !ok {
		t.Fatal("llm-gateway command not registered")
	}
	root := &cobra.Command{Use: "llm-gateway", SilenceUsage: true, SilenceErrors: true}
	c.CobraFunc(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append(append([]string{"keys"}, args...), "--address", strings.TrimPrefix(g.AdminURL, "http://")))
	err := root.Execute()
	return out.String(), err
}

var secretLine = regexp.MustCompile(`(?m)^secret: (sk-llmgw-\S+)$`)

// cliSecret runs a create or rotate and returns the printed secret.
func cliSecret(t *testing.T, g *gateway, args ...string) string {
	t.Helper()
	out, err := keysCLI(t, g, args...)
	if err != nil {
		t.Fatalf("keys %v: %v", args, err)
	}
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys %v printed no secret:\n%s", args, out)
	}
	return m[1]
}

// adminDo sends a request to the admin API.
func adminDo(t *testing.T, g *gateway, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, g.AdminURL+path, strings.NewReader(body))
	must(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	doc := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// tryLoad adapts and loads a config like gateway.load, returning the error.
func tryLoad(g *gateway, opts gatewayOptions) error {
	cf := string(caddyfile.Format([]byte(g.caddyfile(opts))))
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return err
	}
	return caddy.Load(cfgJSON, true)
}

// TestLiveKeys: a key created with the CLI through the admin API works with
// the SDK, is attributed in the ledger, survives a Caddyfile reload and a
// restart (SQLite), rotates with a grace period on a controlled clock, and
// once revoked answers 401 in the Anthropic shape; Caddyfile keys are
// read-only (409); a name in both places is refused at load; every change is
// in the audit trail with the admin's identity.
func TestLiveKeys(t *testing.T) {
	clk := &settableClock{t: time.Now()}
	t.Cleanup(clock.Set(clk.Now))
	m := newMockAnthropic(t)
	db := t.TempDir() + "/usage.db"
	opts := gatewayOptions{Block: gatewayBlock(m, db, "")}
	g := startGateway(t, opts)
	ctx := context.Background()

	secret := cliSecret(t, g, "create", "dave", "--team", "platform", "--budget", "5/day", "--rate-limit", "100/minute",
		"--model", "claude-sonnet-*", "--as", "ops@corp.example")
	dave := newClient(g, "", option.WithAPIKey(secret))
	_, err := dave.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	e := g.waitLog()
	checkLogUsage(t, e, "dave", "claude-sonnet-4-5", mockCostSonnetNano)
	if k := adminKeys(g)["dave"]; k.Team != "platform" || k.Customer != "acme" || k.Spend.Requests != 1 {
		t.Fatalf("dave in the admin API: %+v", k)
	}
	if row := adminUsage(g, "key")["dave"]; row.Requests != 1 || row.CostNanoUSD != mockCostSonnetNano {
		t.Fatalf("dave in the ledger: %+v", row)
	}
	// The key's model allow-list applies.
	if _, err := dave.Messages.New(ctx, messageParams("claude-haiku-4-5")); apiStatus(err) != 403 {
		t.Fatalf("haiku with a sonnet-only key: %v", err)
	}

	// A reload of the Caddyfile keeps the key; so does a restart.
	reloaded := gatewayOptions{Block: gatewayBlock(m, db, `key carol {
			secret sk-llmgw-carol-virtual-key
		}`)}
	g.load(reloaded)
	_, err = dave.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()
	g.restart(reloaded)
	_, err = dave.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()
	if k := adminKeysFull(g)["dave"]; len(k.Budgets) != 1 || k.Budgets[0].SpentNanoUSD != 3*mockCostSonnetNano {
		t.Fatalf("dave's budget after the restart: %+v", k)
	}

	// The listing marks sources.
	out, err := keysCLI(t, g, "list")
	must(t, err)
	if !regexp.MustCompile(`(?m)^dave\s+api\s+platform\s+acme\s+\$5\.00/day`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^alice\s+config\s+platform`).MatchString(out) {
		t.Fatalf("keys list:\n%s", out)
	}

	// Rotate with a grace period: both secrets work until it ends.
	fresh := cliSecret(t, g, "rotate", "dave", "--grace", "1h", "--as", "ops@corp.example")
	daveNew := newClient(g, "", option.WithAPIKey(fresh))
	for _, c := range []struct {
		name string
		err  error
	}{{"old", func() error { _, err := dave.Messages.New(ctx, messageParams("claude-sonnet-4-5")); return err }()},
		{"new", func() error { _, err := daveNew.Messages.New(ctx, messageParams("claude-sonnet-4-5")); return err }()}} {
		if c.err != nil {
			t.Fatalf("%s secret during the grace period: %v", c.name, c.err)
		}
		g.waitLog()
	}
	clk.Add(time.Hour)
	resp, body := g.doRaw("POST", "/v1/messages", map[string]string{"X-Api-Key": secret, "Anthropic-Version": "2023-06-01",
		"Content-Type": "application/json"}, `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	var doc struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if resp.StatusCode != 401 || json.Unmarshal([]byte(body), &doc) != nil || doc.Type != "error" || doc.Error.Type != "authentication_error" {
		t.Fatalf("old secret after the grace period: %d %s", resp.StatusCode, body)
	}
	_, err = daveNew.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()

	// Caddyfile keys are read-only; bad input is a 400 that changes nothing.
	if code, doc := adminDo(t, g, "PATCH", "/llm_gateway/keys/alice", `{"disabled":true}`); code != 409 || !strings.Contains(fmt.Sprint(doc["error"]), "read-only") {
		t.Fatalf("patch a Caddyfile key: %d %v", code, doc)
	}
	if _, err := keysCLI(t, g, "revoke", "alice"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("revoke a Caddyfile key: %v", err)
	}
	for _, body := range []string{`{"name":"erin","team":"nope"}`, `{"name":"erin","colour":"red"}`, `{"name":`, `{"name":"dave"}`} {
		if code, doc := adminDo(t, g, "POST", "/llm_gateway/keys", body); code != 400 || doc["error"] == "" {
			t.Fatalf("POST %s: %d %v", body, code, doc)
		}
	}
	if code, _ := adminDo(t, g, "GET", "/llm_gateway/keys/erin", ""); code != 404 {
		t.Fatal("a refused create left a key behind")
	}

	// A Caddyfile key named like a live key is refused at load, and the
	// running config stays.
	conflict := gatewayOptions{Block: gatewayBlock(m, db, `key dave {
			secret sk-llmgw-dave-in-the-caddyfile
		}`)}
	if err := tryLoad(g, conflict); err == nil || !strings.Contains(err.Error(), `key "dave" is defined in the configuration and was also created through the admin API`) {
		t.Fatalf("conflicting load: %v", err)
	}
	_, err = daveNew.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	must(t, err)
	g.waitLog()

	// Revoked: 401 like an unknown key, through the SDK.
	out, err = keysCLI(t, g, "revoke", "dave", "--as", "lead@corp.example")
	if err != nil || !strings.Contains(out, "revoked dave") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if _, err := daveNew.Messages.New(ctx, messageParams("claude-sonnet-4-5")); apiStatus(err) != 401 {
		t.Fatalf("revoked key: %v", err)
	}
	// The OpenAI surface answers in its own shape.
	if status, doc := rawPostPath(t, g.URL+"/v1/chat/completions", fresh); status != 401 || doc["type"] != nil {
		t.Fatalf("revoked key on the OpenAI surface: %d %v", status, doc)
	} else if typ, _ := errorType(doc); typ == "" {
		t.Fatalf("revoked key on the OpenAI surface: no error type: %v", doc)
	}
	// The revoked name no longer conflicts.
	g.load(conflict)
	g.load(reloaded)

	// The audit trail names who did what.
	out, err = keysCLI(t, g, "audit", "--key", "dave")
	must(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"revoke dave lead@corp.example", "rotate dave ops@corp.example", "create dave ops@corp.example"}
	if len(lines) != len(want)+1 {
		t.Fatalf("audit:\n%s", out)
	}
	for i, w := range want {
		if f := strings.Fields(lines[i+1]); strings.Join(f[1:], " ") != w {
			t.Fatalf("audit line %d %q, want %q", i, lines[i+1], w)
		}
	}
}

// TestLiveKeysFleetPostgres: two gateways (this process and another Caddy
// process) on one PostgreSQL ledger share live keys. A key created on one
// instance works on the other, a revocation on one is a 401 on the other;
// an admin read refreshes the instance it asks, so the test needs no wait
// for the 2-second poll.
func TestLiveKeysFleetPostgres(t *testing.T) {
	pg := testkit.StartPostgres(t)
	m := newMockAnthropic(t)
	block := budgetBlock(m, "store postgres "+pg.DSN, "", "budget 50 usd per day")
	g := startGateway(t, gatewayOptions{Block: block})
	other := startCaddyProcess(t, block)
	ctx := context.Background()

	// Created on the other instance …
	code, doc := adminDoURL(t, other.AdminURL, "POST", "/llm_gateway/keys",
		`{"name":"frank","team":"platform","budgets":[{"usd":"5","period":"day"}]}`, "X-Forwarded-User", "ops@corp.example")
	if code != 201 {
		t.Fatalf("create on the other instance: %d %v", code, doc)
	}
	secret := doc["secret"].(string)
	// … is known here once this instance has read the changes.
	if code, doc := adminDo(t, g, "GET", "/llm_gateway/keys/frank", ""); code != 200 || doc["source"] != "api" {
		t.Fatalf("frank here: %d %v", code, doc)
	}
	frank := newClient(g, "", option.WithAPIKey(secret), option.WithHeader("X-Mock-Scenario", "small"))
	_, err := frank.Messages.New(ctx, smallParams(10))
	must(t, err)
	g.waitLog()
	// Revoked here: a 401 on the other instance.
	if code, doc := adminDo(t, g, "DELETE", "/llm_gateway/keys/frank", ""); code != 200 {
		t.Fatalf("revoke: %d %v", code, doc)
	}
	if code, doc := adminDoURL(t, other.AdminURL, "GET", "/llm_gateway/keys/frank", ""); code != 200 || doc["revoked"] == nil {
		t.Fatalf("frank on the other instance: %d %v", code, doc)
	}
	oc := newClientURL(other.URL, option.WithAPIKey(secret), option.WithHeader("X-Mock-Scenario", "small"))
	if _, err := oc.Messages.New(ctx, smallParams(10)); apiStatus(err) != 401 {
		t.Fatalf("revoked key on the other instance: %v", err)
	}
	// The audit trail is the fleet's.
	code, doc = adminDoURL(t, other.AdminURL, "GET", "/llm_gateway/audit?key=frank", "")
	if entries, _ := doc["entries"].([]any); code != 200 || len(entries) != 2 {
		t.Fatalf("audit on the other instance: %d %v", code, doc)
	}
}

// adminDoURL is adminDo against any admin address.
func adminDoURL(t *testing.T, adminURL, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	return adminDo(t, &gateway{AdminURL: adminURL}, method, path, body, hdr...)
}

// newClientURL is an SDK client on any gateway address.
func newClientURL(url string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(url), option.WithMaxRetries(0)}, opts...)...)
}
