package providers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

type fakeProvider struct {
	name     string
	surfaces []llm.Surface
}

func (f *fakeProvider) Name() string   { return f.name }
func (f *fakeProvider) Family() string { return "fake" }
func (f *fakeProvider) Serves(s llm.Surface) bool {
	for _, x := range f.surfaces {
		if x == s {
			return true
		}
	}
	return false
}
func (f *fakeProvider) Send(context.Context, *llm.Call) (*http.Response, error) { return nil, nil }
func (f *fakeProvider) Relay(http.ResponseWriter, *http.Response, *llm.Call) Result {
	return Result{}
}

func names(ps []Provider) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name())
	}
	return out
}

func TestRouterRoutesAndHealth(t *testing.T) {
	msgs := []llm.Surface{llm.SurfaceAnthropicMessages}
	anth := &fakeProvider{"anthropic", msgs}
	bed := &fakeProvider{"bedrock", append(msgs, llm.SurfaceBedrockInvoke)}
	vtx := &fakeProvider{"vertex", msgs}
	oai := &fakeProvider{"openai", []llm.Surface{llm.SurfaceOpenAIChat}}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := NewRouter(RouterConfig{
		Providers: []Eligible{{Provider: anth, Models: []llm.Glob{"claude-*"}}, {Provider: bed}, {Provider: vtx, Models: []llm.Glob{"claude-opus-*"}}, {Provider: oai}},
		Routes: []Route{
			{Glob: "claude-sonnet-*", Providers: []string{"bedrock", "anthropic", "vertex"}},
			{Glob: "claude-opus-*", Providers: []string{"vertex", "bedrock"}},
		},
		Aliases:  map[string]string{"sonnet": "claude-sonnet-4-5"},
		Cooldown: 30 * time.Second,
		Now:      func() time.Time { return now },
	})
	for _, tc := range []struct {
		s     llm.Surface
		model string
		want  []string
	}{
		{llm.SurfaceAnthropicMessages, "claude-sonnet-4-5", []string{"bedrock", "anthropic"}}, // vertex's globs exclude sonnet
		{llm.SurfaceAnthropicMessages, "claude-opus-4-5", []string{"vertex", "bedrock"}},
		{llm.SurfaceAnthropicMessages, "claude-haiku-4-5", []string{"anthropic", "bedrock"}}, // no route: declaration order
		{llm.SurfaceBedrockInvoke, "claude-sonnet-4-5", []string{"bedrock"}},
		{llm.SurfaceOpenAIChat, "gpt-4o", []string{"openai"}},
		{llm.SurfaceOpenAIChat, "claude-sonnet-4-5", nil},
	} {
		if got := names(r.Candidates(nil, tc.s, tc.model)); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || (len(got) > 1 && got[1] != tc.want[1]) {
			t.Errorf("Candidates(%s, %s) = %v, want %v", tc.s, tc.model, got, tc.want)
		}
	}
	if m, ok := r.Alias("sonnet"); !ok || m != "claude-sonnet-4-5" {
		t.Error("alias")
	}
	if !r.Routable("gpt-4o", llm.SurfaceOpenAIChat) || r.Routable("claude-opus-4-5", llm.SurfaceOpenAIChat) {
		t.Error("routable")
	}

	// Three failures put bedrock in cool-down: it goes last.
	for i := range 3 {
		if cooled := r.Report(bed, false); cooled != (i == 2) {
			t.Fatalf("failure %d: cooled %v", i, cooled)
		}
	}
	if got := names(r.Candidates(nil, llm.SurfaceAnthropicMessages, "claude-sonnet-4-5")); got[0] != "anthropic" || got[1] != "bedrock" || !r.CoolingDown("bedrock") {
		t.Fatalf("during cool-down: %v", got)
	}
	// A success elsewhere does not reset it; time does.
	now = now.Add(31 * time.Second)
	if got := names(r.Candidates(nil, llm.SurfaceAnthropicMessages, "claude-sonnet-4-5")); got[0] != "bedrock" {
		t.Fatalf("after cool-down: %v", got)
	}
	// On probation: one failure sends it back at once.
	if !r.Report(bed, false) || !r.CoolingDown("bedrock") {
		t.Fatal("probation failure did not cool down")
	}
	now = now.Add(31 * time.Second)
	r.Report(bed, true)
	r.Report(bed, false)
	if r.CoolingDown("bedrock") {
		t.Fatal("a success must reset the failure count")
	}
}

// familyProvider is a fakeProvider of a real family.
type familyProvider struct {
	fakeProvider
	family string
}

func (f *familyProvider) Family() string { return f.family }

// TestRouterFamilyDefaults: a provider without a models line serves its own
// family's models only, so an Anthropic provider is never sent gpt-5 and
// discovery lists only what some provider serves on that surface.
func TestRouterFamilyDefaults(t *testing.T) {
	msgs := []llm.Surface{llm.SurfaceAnthropicMessages, llm.SurfaceAnthropicCountTokens}
	anth := &familyProvider{fakeProvider{"anthropic", msgs}, "anthropic"}
	bed := &familyProvider{fakeProvider{"bedrock", append(msgs, llm.SurfaceBedrockInvoke)}, "bedrock"}
	oai := &familyProvider{fakeProvider{"openai", []llm.Surface{llm.SurfaceOpenAIChat, llm.SurfaceOpenAIEmbeddings}}, "openai"}
	proxy := &familyProvider{fakeProvider{"proxy", []llm.Surface{llm.SurfaceOpenAIChat}}, "openai"}
	only := NewRouter(RouterConfig{Providers: []Eligible{{Provider: anth}}})
	if got := only.Candidates(nil, llm.SurfaceAnthropicMessages, "gpt-5"); len(got) != 0 {
		t.Fatalf("gpt-5 sent to %v", names(got))
	}
	if only.Routable("gpt-5", llm.SurfaceAnthropicMessages) || !only.Routable("claude-sonnet-4-5", llm.SurfaceAnthropicMessages) {
		t.Fatal("routable with only an anthropic provider")
	}
	r := NewRouter(RouterConfig{
		Providers: []Eligible{{Provider: anth}, {Provider: bed}, {Provider: oai}, {Provider: proxy, Models: []llm.Glob{"claude-*"}}},
		Routes:    []Route{{Glob: "*", Providers: []string{"anthropic", "bedrock", "openai", "proxy"}}},
	})
	for _, tc := range []struct {
		s     llm.Surface
		model string
		want  string
	}{
		{llm.SurfaceAnthropicMessages, "claude-sonnet-4-5", "anthropic bedrock"},
		{llm.SurfaceAnthropicMessages, "gpt-5", ""}, // a catch-all route does not change families
		{llm.SurfaceOpenAIChat, "gpt-5", "openai"},
		{llm.SurfaceOpenAIChat, "llama3.2", "openai"},
		{llm.SurfaceOpenAIChat, "claude-sonnet-4-5", "proxy"}, // only with a models line
		{llm.SurfaceBedrockInvoke, "a1b2c3d4e5", "bedrock"},   // a cloud's own shape: its own ids
	} {
		if got := strings.Join(names(r.Candidates(nil, tc.s, tc.model)), " "); got != tc.want {
			t.Errorf("Candidates(%s, %s) = %q, want %q", tc.s, tc.model, got, tc.want)
		}
	}
	if r.Routable("gpt-5", llm.SurfaceAnthropicMessages) || !r.Routable("gpt-5", llm.SurfaceOpenAIChat) {
		t.Error("routable gpt-5")
	}
}
