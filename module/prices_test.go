package module

import (
	"bytes"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func TestPricesFileAndListing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"rows": [
  {"model": "claude-opus-4-6", "effective_from": "2027-01-01", "input": "4", "output": "20", "cache_write_5m": "5", "cache_write_1h": "8", "cache_read": "0.40"},
  {"model": "local-*", "effective_from": "2026-01-01", "input": "0", "output": "0", "cache_write_5m": "0", "cache_write_1h": "0", "cache_read": "0"}
]}`)
	g := &Gateway{PricesFile: path, Prices: []*PriceConfig{{Model: "claude-opus-4-6", CacheRead: "0.45"}}}
	reg, err := g.buildRegistry(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	next := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	if p := reg.Prices.LookupAt("claude-opus-4-6", next); p.Input != 4*governance.Dollar || p.CacheRead != 450_000_000 {
		t.Errorf("file row with the price line over it: %+v", p)
	}
	if p := reg.Prices.LookupAt("claude-opus-4-6", next.AddDate(-1, 0, 0)); p.Input != 5*governance.Dollar || p.Fast == nil {
		t.Errorf("built-in row before the file's date: %+v", p)
	}
	l := listPrices(reg.Prices, "claude-opus-4-6-20260205", next, true)
	if len(l.Rows) != 2 || *l.Rows[0].InForce || !*l.Rows[1].InForce || l.Rows[1].EffectiveFrom != "2027-01-01" || *l.Rows[1].CacheRead != "0.45" {
		t.Errorf("listing %+v", l.Rows)
	}
	if l := listPrices(reg.Prices, "local-llama", next, false); len(l.Rows) != 1 || l.Rows[0].Model != "local-*" || l.Rows[0].InForce != nil {
		t.Errorf("glob listing %+v", l.Rows)
	}

	write("{\"rows\": [\n  {\"model\": \"m\", \"effective_from\": \"2027-01-01\", \"input\": \"4\"}\n]}")
	if _, err := g.buildRegistry(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), path+":2: m: output is missing") {
		t.Errorf("a bad prices_file names file and line: %v", err)
	}
}

func TestServePricesParameters(t *testing.T) {
	rec := httptest.NewRecorder()
	err := servePrices(rec, httptest.NewRequest("GET", "/llm_gateway/prices?modle=x", nil))
	if ae, ok := err.(caddy.APIError); !ok || ae.HTTPStatus != 400 {
		t.Errorf("unknown parameter: %v", err)
	}
}

func TestPricesCommand(t *testing.T) {
	c, ok := caddycmd.Commands()["llm-gateway"]
	if !ok {
		t.Fatal("llm-gateway command not registered")
	}
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"rows":[{"model":"local-model","effective_from":"2026-01-01","input":"1","output":"2","cache_write_5m":"0","cache_write_1h":"0","cache_read":"0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		root := &cobra.Command{Use: "llm-gateway"}
		c.CobraFunc(root)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("prices", "--builtin", "claude-haiku-5-5-20261101")
	if err != nil || !strings.Contains(out, "claude-haiku-5-5") || !strings.Contains(out, ">100000: 0.5/2.5") || strings.Count(out, "\n") != 2 {
		t.Errorf("prices haiku 5.5: %v\n%s", err, out)
	}
	out, err = run("prices", "--file", path, "--json", "local-model")
	if err != nil || !strings.Contains(out, `"model": "local-model"`) {
		t.Errorf("prices --file: %v\n%s", err, out)
	}
	if _, err := run("prices", "--builtin", "no-such-model"); err == nil {
		t.Error("an unpriced model is an error")
	}
}
