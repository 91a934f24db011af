package module

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestCredential(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Authorization": {"Bearer sk-1"}}, "sk-1"},
		{http.Header{"Authorization": {"bearer  sk-1 "}}, "sk-1"},
		{http.Header{"X-Api-Key": {"sk-2"}}, "sk-2"},
		{http.Header{"Authorization": {"Bearer sk-1"}, "X-Api-Key": {"sk-2"}}, "sk-1"},
		{http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=x"}, "X-Api-Key": {"sk-2"}}, "sk-2"},
		{http.Header{"Api-Key": {"sk-3"}}, "sk-3"},
		{http.Header{"X-Goog-Api-Key": {"sk-4"}}, "sk-4"},
		{http.Header{}, ""},
	} {
		if got := credential(tc.h); got != tc.want {
			t.Errorf("credential(%v) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

func TestWithTransportDefaults(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{``, `{"keep_alive":{"max_idle_conns_per_host":1024},"protocol":"http"}`},
		{`{"protocol":"http","dial_timeout":5000000000}`, `{"dial_timeout":5000000000,"keep_alive":{"max_idle_conns_per_host":1024},"protocol":"http"}`},
		{`{"protocol":"http","keep_alive":{"max_idle_conns_per_host":8}}`, `{"keep_alive":{"max_idle_conns_per_host":8},"protocol":"http"}`},
		{`{"protocol":"http","keep_alive":{"idle_timeout":1}}`, `{"keep_alive":{"idle_timeout":1,"max_idle_conns_per_host":1024},"protocol":"http"}`},
		{`{"protocol":"fastcgi"}`, `{"protocol":"fastcgi"}`},
	} {
		got, err := withTransportDefaults(json.RawMessage(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("withTransportDefaults(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadStore(t *testing.T) {
	abs, _ := filepath.Abs("x.db")
	t.Setenv("LLMGW_TEST_REDIS", "redis://:hunter2@127.0.0.1:6390/2")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, tc := range []struct {
		counters, ledger string
		key, desc        string
		failOpen         bool
		err              string
	}{
		{``, `{"type":"memory"}`, "http.handlers.llm_gateway.counters.memory|memory||http.handlers.llm_gateway.ledgers.memory|memory", "memory", false, ""},
		{``, `{"type":"sqlite","path":"x.db"}`, "http.handlers.llm_gateway.counters.memory|memory||http.handlers.llm_gateway.ledgers.sqlite|" + abs, "sqlite " + abs, false, ""},
		{`{"type":"redis","url":"{env.LLMGW_TEST_REDIS}","on_error":"open"}`, `{"type":"sqlite","path":"x.db"}`,
			"http.handlers.llm_gateway.counters.redis|redis://:hunter2@127.0.0.1:6390/2|llmgw||http.handlers.llm_gateway.ledgers.sqlite|" + abs,
			"redis redis://:xxxxx@127.0.0.1:6390/2 (ledger sqlite " + abs + ")", true, ""},
		{`{"type":"redis","url":"redis://r:6379","prefix":"team-a"}`, `{"type":"sqlite","path":"x.db"}`,
			"http.handlers.llm_gateway.counters.redis|redis://r:6379|team-a||http.handlers.llm_gateway.ledgers.sqlite|" + abs, "redis redis://r:6379 (ledger sqlite " + abs + ")", false, ""},
		{`{"type":"redis"}`, ``, "", "", false, "needs a url"},
		{`{"type":"redis","url":"{env.LLMGW_TEST_UNSET}"}`, ``, "", "", false, "url:"},
		{`{"type":"redis","url":"redis://r","on_error":"maybe"}`, ``, "", "", false, `on_error: want open or closed, got "maybe"`},
		{``, `{"type":"sqlite","url":"redis://r"}`, "", "", false, `unknown field "url"`},
		{`{"type":"mysql"}`, ``, "", "", false, "unknown module: http.handlers.llm_gateway.counters.mysql"},
	} {
		g := &Gateway{Store: &StoreConfig{CountersRaw: json.RawMessage(tc.counters), LedgerRaw: json.RawMessage(tc.ledger)}}
		sm, err := g.loadStore(ctx)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("loadStore(%s, %s) err = %v, want %q", tc.counters, tc.ledger, err, tc.err)
			}
			continue
		}
		if err != nil || sm.key() != tc.key || sm.describe() != tc.desc || sm.counters.FailOpen() != tc.failOpen {
			t.Errorf("loadStore(%s, %s) = key %q, desc %q, fail open %v, %v", tc.counters, tc.ledger, sm.key(), sm.describe(), sm.counters.FailOpen(), err)
		}
	}
	sm, err := (&Gateway{}).loadStore(ctx)
	if err != nil || !strings.HasSuffix(sm.ledger.Key(), filepath.Join("llm_gateway", "usage.db")) || !sm.counters.Restores() {
		t.Errorf("default store %q %v", sm.key(), err)
	}
}

func TestLabelResolverCap(t *testing.T) {
	r := newLabelResolver([]*MetricsLabelConfig{{Name: "test_cap_label", Header: "x-team-tag", Max: 2}}, []string{"test_cap_label"})
	get := func(v string) string {
		return r.appendValues(nil, http.Header{"X-Team-Tag": {v}})[0]
	}
	if get("a") != "a" || get("b") != "b" || get("a") != "a" {
		t.Fatal("values under the cap must pass")
	}
	if get("c") != OtherLabelValue || get("d") != OtherLabelValue || get("b") != "b" {
		t.Fatal("values past the cap must be _other")
	}
	// The cap is shared by every config load (series outlive reloads).
	r2 := newLabelResolver([]*MetricsLabelConfig{{Name: "test_cap_label", Header: "x-team-tag", Max: 2}}, []string{"test_cap_label"})
	if got := r2.appendValues(nil, http.Header{"X-Team-Tag": {"e"}})[0]; got != OtherLabelValue {
		t.Fatalf("reload reset the cap: %q", got)
	}
	long := strings.Repeat("x", 300)
	r3 := newLabelResolver([]*MetricsLabelConfig{{Name: "test_long_label", Header: "x-long"}}, []string{"test_long_label"})
	if got := r3.appendValues(nil, http.Header{"X-Long": {long}})[0]; len(got) != 128 {
		t.Fatalf("long value kept %d bytes", len(got))
	}
}

func TestValidLabelName(t *testing.T) {
	for s, want := range map[string]bool{"project": true, "repo_2": true, "_x": true, "__x": false, "2x": false, "a-b": false, "": false} {
		if validLabelName(s) != want {
			t.Errorf("validLabelName(%q) != %v", s, want)
		}
	}
}

func TestLabelResolverFollowsProcessLabels(t *testing.T) {
	// The process started with labels project and repo; this config only
	// configures repo (and a label the process does not have).
	r := newLabelResolver([]*MetricsLabelConfig{{Name: "repo", Header: "X-Repo"}, {Name: "new_one", Header: "X-New"}}, []string{"project", "repo"})
	got := r.appendValues(nil, http.Header{"X-Repo": {"r1"}, "X-Project": {"p1"}, "X-New": {"n"}})
	if len(got) != 2 || got[0] != "" || got[1] != "r1" {
		t.Fatalf("values %q", got)
	}
}
