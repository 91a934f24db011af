package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestPlaceholders: the gateway's placeholders reach Caddy's own
// directives — a deferred header sees who and what before the response is
// written, log_append sees the settled tokens and cost.
func TestPlaceholders(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{
		SiteExtra: `header >X-Gw-Key {http.llm_gateway.key}
	header >X-Gw-Team {http.llm_gateway.team}
	header >X-Gw-Model {http.llm_gateway.model}
	header >X-Gw-Requested {http.llm_gateway.requested_model}
	header >X-Gw-Provider {http.llm_gateway.provider}
	header >X-Gw-Id {http.llm_gateway.request_id}
	log_append llm_cost_placeholder {http.llm_gateway.cost_usd}
	log_append llm_output_placeholder {http.llm_gateway.output_tokens}
	log_append llm_session_placeholder {http.llm_gateway.session}
	log_append llm_rejection_placeholder {http.llm_gateway.rejection}`,
		Block: gatewayBlock(m, "", ""),
	})
	c := newClient(g, "", option.WithAPIKey(aliceKey), option.WithHeader("X-Claude-Code-Session-Id", "sess-42"))
	var raw *http.Response
	_, err := c.Messages.New(context.Background(), messageParams("claude-sonnet-4-5-20250929"), option.WithResponseInto(&raw))
	must(t, err)
	h := raw.Header
	for name, want := range map[string]string{
		"X-Gw-Key": "alice", "X-Gw-Team": "platform", "X-Gw-Model": "claude-sonnet-4-5",
		"X-Gw-Requested": "claude-sonnet-4-5-20250929", "X-Gw-Provider": "anthropic",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if id := h.Get("X-Gw-Id"); id == "" || id != h.Get("X-Llm-Gateway-Request-Id") {
		t.Errorf("request id placeholder %q, header %q", id, h.Get("X-Llm-Gateway-Request-Id"))
	}
	e := g.waitLog()
	if e["llm_cost_placeholder"] != fmt.Sprintf("%.9f", float64(mockCostSonnetNano)/1e9) ||
		e["llm_output_placeholder"] != fmt.Sprint(mockOutput) || e["llm_session_placeholder"] != "sess-42" || e["llm_rejection_placeholder"] != "" {
		t.Errorf("log_append fields: cost %v output %v session %v rejection %v", e["llm_cost_placeholder"], e["llm_output_placeholder"],
			e["llm_session_placeholder"], e["llm_rejection_placeholder"])
	}

	// A refusal names its reason.
	resp, _ := g.doRaw("POST", "/v1/messages", map[string]string{"X-Api-Key": bobKey, "Content-Type": "application/json"},
		`{"model":"claude-opus-4-1","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 403 || resp.Header.Get("X-Gw-Key") != "bob" {
		t.Fatalf("refusal %d, key header %q", resp.StatusCode, resp.Header.Get("X-Gw-Key"))
	}
	if e := g.waitLog(); e["llm_rejection_placeholder"] != "model" {
		t.Errorf("rejection placeholder %v", e["llm_rejection_placeholder"])
	}
}
