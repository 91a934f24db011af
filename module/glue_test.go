package module

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
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

func TestResolveStore(t *testing.T) {
	abs, _ := filepath.Abs("x.db")
	repl := caddy.NewReplacer()
	t.Setenv("LLMGW_TEST_REDIS", "redis://:hunter2@127.0.0.1:6390/2")
	for _, tc := range []struct {
		in       *StoreConfig
		key      string
		failOpen bool
		err      string
	}{
		{&StoreConfig{Type: "memory"}, "memory", false, ""},
		{&StoreConfig{Type: "sqlite", Path: "x.db"}, "sqlite:" + abs, false, ""},
		{&StoreConfig{Type: "redis", URL: "{env.LLMGW_TEST_REDIS}", Path: "x.db", OnError: "open"}, "redis:redis://:hunter2@127.0.0.1:6390/2|llmgw|" + abs, true, ""},
		{&StoreConfig{Type: "redis", URL: "redis://r:6379", Path: "x.db", Prefix: "team-a"}, "redis:redis://r:6379|team-a|" + abs, false, ""},
		{&StoreConfig{Type: "redis"}, "", false, "needs a url"},
		{&StoreConfig{Type: "redis", URL: "redis://r", OnError: "maybe"}, "", false, "on_error"},
		{&StoreConfig{Type: "sqlite", URL: "redis://r"}, "", false, "are for store redis"},
		{&StoreConfig{Type: "mysql"}, "", false, "unknown store type"},
	} {
		spec, err := resolveStore(tc.in, repl)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveStore(%+v) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || spec.key() != tc.key || spec.failOpen != tc.failOpen {
			t.Errorf("resolveStore(%+v) = %+v (key %q), %v", tc.in, spec, spec.key(), err)
		}
		if strings.Contains(spec.describe(), "hunter2") {
			t.Errorf("describe leaks the password: %s", spec.describe())
		}
	}
	spec, _ := resolveStore(nil, repl)
	if spec.typ != "sqlite" || !strings.HasSuffix(spec.path, filepath.Join("llm_gateway", "usage.db")) {
		t.Errorf("default store %+v", spec)
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
