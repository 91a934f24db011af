package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	mp "github.com/llmgateway/caddy-llm-gateway/module/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	anthropicfam "github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// houseFamily is a provider family from outside this repository, written
// the way a third party would write one and build it in with `xcaddy build
// --with`: a module registered in the providers namespace, nothing of the
// gateway edited. It serves an in-house Anthropic-compatible server that
// takes its key in X-House-Token and a team in X-House-Team.
type houseFamily struct {
	mp.Config
	// Team is sent as X-House-Team.
	Team string `json:"team,omitempty"`
}

func init() {
	caddy.RegisterModule(houseFamily{})
}

func (houseFamily) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  mp.Namespace + ".house",
		New: func() caddy.Module { return new(houseFamily) },
	}
}

func (h *houseFamily) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return h.UnmarshalBlock(d, "house", func(d *caddyfile.Dispenser) (bool, error) {
		if d.Val() != "team" {
			return false, nil
		}
		var err error
		h.Team, err = mp.OneArg(d)
		return true, err
	}, h.Validate)
}

func (h *houseFamily) Validate() error {
	switch {
	case h.BaseURL == "":
		return fmt.Errorf("base_url is required")
	case len(h.APIKeys) != 1:
		return fmt.Errorf("one api_key is required")
	case h.Team == "":
		return fmt.Errorf("team is required")
	}
	return nil
}

func (h *houseFamily) NewProvider(_ caddy.Context, env mp.Env) (providers.Provider, error) {
	u, err := providers.ParseBaseURL(h.BaseURL)
	if err != nil {
		return nil, err
	}
	return &houseProvider{name: h.Name, base: u.Base, key: h.APIKeys[0], team: h.Team, rt: env.Transport}, nil
}

var (
	_ mp.Family             = (*houseFamily)(nil)
	_ caddy.Provisioner     = (*houseFamily)(nil)
	_ caddy.Validator       = (*houseFamily)(nil)
	_ caddyfile.Unmarshaler = (*houseFamily)(nil)
)

type houseProvider struct {
	name, base, key, team string
	rt                    http.RoundTripper
}

func (p *houseProvider) Name() string              { return p.name }
func (p *houseProvider) Family() string            { return "house" }
func (p *houseProvider) Serves(s llm.Surface) bool { return s == llm.SurfaceAnthropicMessages }
func (p *houseProvider) Relay(w http.ResponseWriter, resp *http.Response, _ *llm.Call) providers.Result {
	return anthropicfam.RelayResponse(w, resp, time.Now)
}

func (p *houseProvider) Send(ctx context.Context, call *llm.Call) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/messages", bytes.NewReader(call.Body))
	if err != nil {
		return nil, err
	}
	req.Header = stream.ForwardRequestHeaders(call.Header)
	req.Header.Set("X-House-Token", p.key)
	req.Header.Set("X-House-Team", p.team)
	return p.rt.RoundTrip(req)
}

// TestThirdPartyFamily: a family registered by another package is
// configured from a Caddyfile like the built-in ones, is routed to, and its
// requests are metered, priced and ledgered end to end.
func TestThirdPartyFamily(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/v1/messages" || r.Header.Get("X-House-Token") != "house-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"msg_house","type":"message","role":"assistant","model":"house-model-1","content":[{"type":"text","text":"from the house"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}`)
	}))
	defer upstream.Close()
	t.Setenv("LLMGW_HOUSE_KEY", "house-secret")
	block := fmt.Sprintf(`store memory
		provider inhouse {
			type     house
			base_url %s
			api_key  {env.LLMGW_HOUSE_KEY}
			team     platform
			models   house-*
		}
		provider anthropic {
			type    anthropic
			api_key unused
		}
		key alice {
			secret %s
		}
		price house-* input 1 output 2`, upstream.URL, aliceKey)
	g := startGateway(t, gatewayOptions{Block: block})

	c := newClient(g, "", option.WithAPIKey(aliceKey))
	msg, err := c.Messages.New(context.Background(), messageParams("house-model-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "from the house" {
		t.Fatalf("reply %+v", msg.Content)
	}
	mu.Lock()
	if got.Get("X-House-Team") != "platform" || got.Get("X-Api-Key") != "" || strings.Contains(fmt.Sprint(got), aliceKey) {
		t.Errorf("upstream headers %v", got)
	}
	mu.Unlock()
	// 10 input × $1 + 5 output × $2 per million tokens.
	if u := adminUsage(g, "key")["alice"]; u.Requests != 1 || u.InputTokens != 10 || u.OutputTokens != 5 || u.CostNanoUSD != 20_000 {
		t.Errorf("usage %+v", u)
	}
	e := g.waitLog()
	if e["llm.provider"] != "inhouse" {
		t.Errorf("log entry provider %v", e["llm.provider"])
	}

	// The family's own checks reach a Caddyfile with its file and line.
	bad := ":8080 {\n\tllm_gateway {\n\t\tprovider inhouse {\n\t\t\ttype house\n\t\t\tbase_url http://127.0.0.1:1\n\t\t\tapi_key k\n\t\t}\n\t}\n}\n"
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(bad), map[string]any{"filename": "Caddyfile"}); err == nil ||
		!strings.Contains(err.Error(), "provider inhouse: team is required") || !strings.Contains(err.Error(), "Caddyfile:7") {
		t.Errorf("adapting a house provider without a team: %v", err)
	}
}
