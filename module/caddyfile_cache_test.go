package module

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseCacheCaddyfile(t *testing.T) {
	tests := []struct {
		name, in string
		want     *CacheConfig
		keyCache string
		err      string
	}{
		{name: "bare", in: "cache", want: &CacheConfig{}},
		{name: "full", in: "cache {\n ttl 30m\n max_size 256MiB\n max_entry 2MiB\n scope team\n surfaces openai.embeddings anthropic.messages\n}",
			want: &CacheConfig{TTL: caddy.Duration(30 * time.Minute), MaxSize: 256 << 20, MaxEntry: 2 << 20, Scope: "team", Surfaces: []string{"openai.embeddings", "anthropic.messages"}}},
		{name: "key switch", in: "cache\nkey alice {\n secret x\n cache off\n}", want: &CacheConfig{}, keyCache: "off"},
		{name: "bad scope", in: "cache {\n scope tenant\n}", err: "scope must be key, team, customer or global"},
		{name: "bad surface", in: "cache {\n surfaces bedrock.invoke_stream\n}", err: "not a surface the cache keeps"},
		{name: "tiny max_size", in: "cache {\n max_size 1KB\n}", err: "at least 64KiB"},
		{name: "entry over size", in: "cache {\n max_size 1MiB\n max_entry 2MiB\n}", err: "larger than max_size"},
		{name: "bad ttl", in: "cache {\n ttl soon\n}", err: "invalid duration"},
		{name: "twice", in: "cache\ncache", err: "cache is set twice"},
		{name: "unknown", in: "cache {\n size 1\n}", err: "unknown cache subdirective"},
		{name: "argument", in: "cache on", err: "unexpected argument"},
		{name: "bad switch", in: "key alice {\n secret x\n cache maybe\n}", err: "want on or off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("llm_gateway {\n" + tc.in + "\n}"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Cache == nil || g.Cache.TTL != tc.want.TTL || g.Cache.MaxSize != tc.want.MaxSize || g.Cache.MaxEntry != tc.want.MaxEntry ||
				g.Cache.Scope != tc.want.Scope || strings.Join(g.Cache.Surfaces, " ") != strings.Join(tc.want.Surfaces, " ") {
				t.Errorf("cache %+v, want %+v", g.Cache, tc.want)
			}
			if tc.keyCache != "" && (len(g.Keys) != 1 || g.Keys[0].Cache != tc.keyCache) {
				t.Errorf("key cache switch: %+v", g.Keys)
			}
			cs, err := g.cacheSettings()
			if err != nil || cs == nil || cs.ttl <= 0 || cs.size < cs.maxEntry {
				t.Errorf("cacheSettings = %+v, %v", cs, err)
			}
		})
	}
}
