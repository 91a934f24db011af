package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestNew(t *testing.T) {
	tr := http.DefaultTransport
	static := func(c Config) Config {
		c.AccessKeyID, c.SecretAccessKey, c.Transport = testAccessKey, testSecretKey, tr
		return c
	}
	for _, tc := range []struct {
		name       string
		cfg        Config
		wantBase   string
		wantRegion string
		wantGeo    string
		wantErr    string
	}{
		{name: "default endpoint", cfg: static(Config{Region: "us-east-1"}), wantBase: "https://bedrock-runtime.us-east-1.amazonaws.com", wantRegion: "us-east-1", wantGeo: "us."},
		{name: "eu region", cfg: static(Config{Region: "eu-west-3"}), wantBase: "https://bedrock-runtime.eu-west-3.amazonaws.com", wantRegion: "eu-west-3", wantGeo: "eu."},
		{name: "apac region", cfg: static(Config{Region: "ap-northeast-1"}), wantBase: "https://bedrock-runtime.ap-northeast-1.amazonaws.com", wantRegion: "ap-northeast-1", wantGeo: "apac."},
		{name: "govcloud", cfg: static(Config{Region: "us-gov-west-1"}), wantBase: "https://bedrock-runtime.us-gov-west-1.amazonaws.com", wantRegion: "us-gov-west-1", wantGeo: "us-gov."},
		{name: "other region is global", cfg: static(Config{Region: "ca-central-1"}), wantBase: "https://bedrock-runtime.ca-central-1.amazonaws.com", wantRegion: "ca-central-1", wantGeo: "global."},
		{name: "region from base url", cfg: static(Config{BaseURL: "https://bedrock-runtime.eu-central-1.amazonaws.com/"}), wantBase: "https://bedrock-runtime.eu-central-1.amazonaws.com", wantRegion: "eu-central-1", wantGeo: "eu."},
		{name: "region from vpc endpoint", cfg: static(Config{BaseURL: "https://vpce-0abc123-xyz.bedrock-runtime.ap-southeast-2.vpce.amazonaws.com"}), wantBase: "https://vpce-0abc123-xyz.bedrock-runtime.ap-southeast-2.vpce.amazonaws.com", wantRegion: "ap-southeast-2", wantGeo: "apac."},
		{name: "region from fips host", cfg: static(Config{BaseURL: "https://bedrock-runtime-fips.us-west-2.amazonaws.com"}), wantBase: "https://bedrock-runtime-fips.us-west-2.amazonaws.com", wantRegion: "us-west-2", wantGeo: "us."},
		{name: "explicit region wins over host", cfg: static(Config{Region: "us-west-2", BaseURL: "https://bedrock-runtime.eu-west-1.amazonaws.com"}), wantBase: "https://bedrock-runtime.eu-west-1.amazonaws.com", wantRegion: "us-west-2", wantGeo: "us."},
		{name: "prefix kept", cfg: static(Config{Region: "us-east-1", BaseURL: "http://127.0.0.1:9/bedrock/"}), wantBase: "http://127.0.0.1:9/bedrock", wantRegion: "us-east-1", wantGeo: "us."},
		{name: "api key", cfg: Config{Region: "us-east-1", APIKey: testAPIKey, Transport: tr}, wantBase: "https://bedrock-runtime.us-east-1.amazonaws.com", wantRegion: "us-east-1", wantGeo: "us."},
		{name: "credentials provider", cfg: Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, Transport: tr}, wantBase: "https://bedrock-runtime.us-east-1.amazonaws.com", wantRegion: "us-east-1", wantGeo: "us."},
		{name: "no region", cfg: static(Config{}), wantErr: "region is required"},
		{name: "no region in a custom host", cfg: static(Config{BaseURL: "http://127.0.0.1:8080"}), wantErr: "region is required"},
		{name: "bad region", cfg: static(Config{Region: "us-east-1.evil.com/"}), wantErr: "not an AWS region"},
		{name: "no transport", cfg: Config{Region: "us-east-1", APIKey: testAPIKey}, wantErr: "transport"},
		{name: "bad scheme", cfg: static(Config{Region: "us-east-1", BaseURL: "ftp://x"}), wantErr: "scheme"},
		{name: "no host", cfg: static(Config{Region: "us-east-1", BaseURL: "https:///x"}), wantErr: "host"},
		{name: "query", cfg: static(Config{Region: "us-east-1", BaseURL: "https://x/?a=1"}), wantErr: "query"},
		{name: "fragment", cfg: static(Config{Region: "us-east-1", BaseURL: "https://x/#f"}), wantErr: "fragment"},
		{name: "user info", cfg: static(Config{Region: "us-east-1", BaseURL: "https://u:p@x"}), wantErr: "credentials"},
		{name: "unparseable", cfg: static(Config{Region: "us-east-1", BaseURL: "http://[::1"}), wantErr: "base_url"},
		{name: "secret without key id", cfg: Config{Region: "us-east-1", SecretAccessKey: testSecretKey, Transport: tr}, wantErr: "both"},
		{name: "key id without secret", cfg: Config{Region: "us-east-1", AccessKeyID: testAccessKey, Transport: tr}, wantErr: "both"},
		{name: "api key and static keys", cfg: static(Config{Region: "us-east-1", APIKey: testAPIKey}), wantErr: "only one"},
		{name: "provider and static keys", cfg: static(Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}), wantErr: "only one"},
		{name: "api key with newline", cfg: Config{Region: "us-east-1", APIKey: testAPIKey + "\n", Transport: tr}, wantErr: "control"},
		{name: "secret with space", cfg: Config{Region: "us-east-1", AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey + " x", Transport: tr}, wantErr: "control"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				for _, s := range []string{testSecretKey, testAPIKey} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.base != tc.wantBase || p.Region() != tc.wantRegion || p.geo != tc.wantGeo {
				t.Fatalf("base %q region %q geo %q, want %q %q %q", p.base, p.Region(), p.geo, tc.wantBase, tc.wantRegion, tc.wantGeo)
			}
			if p.ping != DefaultPingInterval {
				t.Errorf("ping interval %v", p.ping)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	p := newTestProvider(t, "", func(c *Config) { c.Name = "aws-us" })
	if p.Name() != "aws-us" || p.Family() != "bedrock" {
		t.Fatalf("Name %q Family %q", p.Name(), p.Family())
	}
	served := map[llm.Surface]bool{
		llm.SurfaceAnthropicMessages: true, llm.SurfaceAnthropicCountTokens: true,
		llm.SurfaceBedrockInvoke: true, llm.SurfaceBedrockInvokeStream: true, llm.SurfaceBedrockCountTokens: true,
	}
	for s := llm.SurfaceUnknown; s <= llm.SurfaceVertexCountTokens+1; s++ {
		if p.Serves(s) != served[s] {
			t.Errorf("Serves(%s) = %v", s, !served[s])
		}
	}
}

func TestModelID(t *testing.T) {
	mapped := providers.ModelMap{
		{Glob: "claude-sonnet-4-5*", ID: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{Glob: "claude-opus-*", ID: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5"},
	}
	for _, tc := range []struct {
		name    string
		region  string
		models  providers.ModelMap
		call    llm.Call
		want    string
		wantErr string
	}{
		{name: "mapping wins", models: mapped, call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5"},
			want: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{name: "mapping to an ARN", models: mapped, call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-6", CanonicalModel: "claude-opus-4-6"},
			want: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5"},
		{name: "mapping remaps a bedrock-shaped id", models: mapped, call: llm.Call{Surface: llm.SurfaceBedrockInvoke, Model: "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", CanonicalModel: "claude-sonnet-4-5"},
			want: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{name: "bedrock-shaped id unmapped is forwarded", models: mapped, call: llm.Call{Surface: llm.SurfaceBedrockInvokeStream, Model: "us.anthropic.claude-haiku-4-5-20251001-v1:0", CanonicalModel: "claude-haiku-4-5"},
			want: "us.anthropic.claude-haiku-4-5-20251001-v1:0"},
		{name: "bedrock-shaped unknown model forwarded", call: llm.Call{Surface: llm.SurfaceBedrockCountTokens, Model: "anthropic.claude-future-9", CanonicalModel: "claude-future-9"},
			want: "anthropic.claude-future-9"},
		{name: "bedrock-shaped without model", call: llm.Call{Surface: llm.SurfaceBedrockInvoke}, wantErr: "names no model"},
		{name: "anthropic surface with a bedrock id", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", CanonicalModel: "claude-sonnet-4-5"},
			want: "global.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{name: "anthropic surface with an ARN", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-opus-4-6-v1", CanonicalModel: "claude-opus-4-6"},
			want: "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-opus-4-6-v1"},
		{name: "built-in us", region: "us-west-2", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-5-20250929", CanonicalModel: "claude-sonnet-4-5"},
			want: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{name: "built-in eu", region: "eu-west-1", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-haiku-4-5", CanonicalModel: "claude-haiku-4-5"},
			want: "eu.anthropic.claude-haiku-4-5-20251001-v1:0"},
		{name: "built-in apac", region: "ap-southeast-1", call: llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-opus-4-5-20251101", CanonicalModel: "claude-opus-4-5"},
			want: "apac.anthropic.claude-opus-4-5-20251101-v1:0"},
		{name: "built-in global", region: "sa-east-1", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-6", CanonicalModel: "claude-opus-4-6"},
			want: "global.anthropic.claude-opus-4-6-v1"},
		{name: "built-in sonnet 4.6", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-sonnet-4-6", CanonicalModel: "claude-sonnet-4-6"},
			want: "us.anthropic.claude-sonnet-4-6"},
		{name: "built-in opus 4.1", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-opus-4-1-20250805", CanonicalModel: "claude-opus-4-1"},
			want: "us.anthropic.claude-opus-4-1-20250805-v1:0"},
		{name: "unknown model", call: llm.Call{Surface: llm.SurfaceAnthropicMessages, Model: "claude-nova-9", CanonicalModel: "claude-nova-9"}, wantErr: "add a model line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, "", func(c *Config) {
				c.Models = tc.models
				if tc.region != "" {
					c.Region = tc.region
				}
			})
			got, err := p.ModelID(&tc.call)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ModelID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSendURLs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prefix   string
		models   providers.ModelMap
		call     *llm.Call
		wantPath string // escaped, as on the wire
	}{
		{name: "anthropic stream", call: messagesCall(claudeCodeHeader(), true),
			wantPath: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"},
		{name: "anthropic non-stream", call: messagesCall(claudeCodeHeader(), false),
			wantPath: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"},
		{name: "anthropic count tokens", call: func() *llm.Call {
			c := messagesCall(claudeCodeHeader(), false)
			c.Surface, c.Stream, c.PathSuffix = llm.SurfaceAnthropicCountTokens, false, "/v1/messages/count_tokens"
			return c
		}(), wantPath: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"},
		{name: "mapped inference profile", models: providers.ModelMap{{Glob: "claude-sonnet-*", ID: "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
			call: messagesCall(claudeCodeHeader(), true), wantPath: "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"},
		{name: "mapped ARN percent-encoded", models: providers.ModelMap{{Glob: "*", ID: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5"}},
			call:     messagesCall(claudeCodeHeader(), false),
			wantPath: "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fa1b2c3d4e5/invoke"},
		{name: "base path prefix kept", prefix: "/vpce/runtime", call: messagesCall(claudeCodeHeader(), true),
			wantPath: "/vpce/runtime/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"},
		{name: "bedrock invoke pass-through", call: bedrockCall(llm.SurfaceBedrockInvoke, "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
			wantPath: "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke"},
		{name: "bedrock stream pass-through", call: bedrockCall(llm.SurfaceBedrockInvokeStream, "global.anthropic.claude-opus-4-6-v1"),
			wantPath: "/model/global.anthropic.claude-opus-4-6-v1/invoke-with-response-stream"},
		{name: "bedrock count-tokens pass-through", call: bedrockCall(llm.SurfaceBedrockCountTokens, "anthropic.claude-sonnet-4-6"),
			wantPath: "/model/anthropic.claude-sonnet-4-6/count-tokens"},
		{name: "bedrock ARN pass-through", call: bedrockCall(llm.SurfaceBedrockInvoke, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
			wantPath: "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"},
		{name: "bedrock id remapped", models: providers.ModelMap{{Glob: "claude-haiku-4-5", ID: "apac.anthropic.claude-haiku-4-5-20251001-v1:0"}},
			call: bedrockCall(llm.SurfaceBedrockInvoke, "us.anthropic.claude-haiku-4-5-20251001-v1:0"), wantPath: "/model/apac.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
			p := newTestProvider(t, srv.URL+tc.prefix, func(c *Config) { c.Models = tc.models })
			resp, err := p.Send(context.Background(), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-got
			if r.req.Method != http.MethodPost || r.req.RequestURI != tc.wantPath {
				t.Errorf("upstream saw %s %s, want POST %s", r.req.Method, r.req.RequestURI, tc.wantPath)
			}
			if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
				t.Errorf("SigV4: %v", err)
			}
		})
	}
}

func TestTranslateBody(t *testing.T) {
	const version = `"anthropic_version":"bedrock-2023-05-31"`
	for _, tc := range []struct {
		name   string
		body   string
		header http.Header
		want   string
	}{
		{
			name:   "claude code body",
			body:   claudeCodeBody,
			header: claudeCodeHeader(),
			want: `{"messages":[{"role":"user","content":[{"type":"text","text":"say \"hi\" \u00e9"}]}],"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"tools":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"},"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"unknown_future_field":[1, 2, {"model":"nested-stays"}],` +
				version + `,"anthropic_beta":["claude-code-20250219","interleaved-thinking-2025-05-14","context-management-2025-06-27","fine-grained-tool-streaming-2025-05-14"]}`,
		},
		{
			name:   "no beta header: no anthropic_beta",
			body:   `{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}`,
			header: http.Header{"Anthropic-Version": {"2023-06-01"}},
			want:   `{"max_tokens":5,"messages":[],` + version + `}`,
		},
		{
			name:   "empty beta header: no anthropic_beta",
			body:   `{"model":"m","messages":[]}`,
			header: http.Header{"Anthropic-Beta": {" , ,"}},
			want:   `{"messages":[],` + version + `}`,
		},
		{
			name:   "several header lines, repeats dropped",
			body:   `{"stream":false,"model":"m","messages":[]}`,
			header: http.Header{"Anthropic-Beta": {"a-1, b-2", "a-1,c-3"}},
			want:   `{"messages":[],` + version + `,"anthropic_beta":["a-1","b-2","c-3"]}`,
		},
		{
			name:   "existing version and beta replaced in place",
			body:   `{"anthropic_version":"vertex-2023-10-16","anthropic_beta":["old"],"model":"m","messages":[]}`,
			header: http.Header{"Anthropic-Beta": {"new-1"}},
			want:   `{` + version + `,"anthropic_beta":["new-1"],"messages":[]}`,
		},
		{
			name:   "existing beta kept without header",
			body:   `{"anthropic_beta":["kept"],"model":"m"}`,
			header: http.Header{},
			want:   `{"anthropic_beta":["kept"],` + version + `}`,
		},
		{
			name:   "whitespace and escapes inside values kept",
			body:   "{ \"model\" : \"m\" ,\n \"messages\" : [ {\"role\":\"user\", \"content\":\"a\\u0022b\\n\"} ] , \"stream\" : true }",
			header: nil,
			want:   "{\"messages\":[ {\"role\":\"user\", \"content\":\"a\\u0022b\\n\"} ]," + version + "}",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TranslateBody([]byte(tc.body), tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatal("not valid JSON")
			}
		})
	}
	if _, err := TranslateBody([]byte(`[1]`), nil); err == nil {
		t.Error("a non-object body was accepted")
	}
}

func TestSendHeadersAndBody(t *testing.T) {
	for _, tc := range []struct {
		name       string
		call       *llm.Call
		wantAccept string
		wantBody   func(t *testing.T, got []byte)
	}{
		{
			name: "anthropic stream", call: messagesCall(claudeCodeHeader(), true), wantAccept: EventStreamContentType,
			wantBody: func(t *testing.T, got []byte) {
				want, _ := TranslateBody([]byte(claudeCodeBody), claudeCodeHeader())
				if !bytes.Equal(got, want) {
					t.Errorf("body %s", got)
				}
			},
		},
		{
			name: "anthropic non-stream", call: messagesCall(claudeCodeHeader(), false), wantAccept: "application/json",
			wantBody: func(t *testing.T, got []byte) {
				if bytes.Contains(got, []byte(`"stream"`)) || bytes.Contains(got, []byte(`"model":"claude`)) {
					t.Errorf("model or stream left in %s", got)
				}
			},
		},
		{
			name: "bedrock stream body untouched", call: bedrockCall(llm.SurfaceBedrockInvokeStream, "us.anthropic.claude-haiku-4-5-20251001-v1:0"), wantAccept: EventStreamContentType,
			wantBody: func(t *testing.T, got []byte) {
				if string(got) != bedrockBody {
					t.Errorf("body %s, want it untouched", got)
				}
			},
		},
		{
			name: "bedrock invoke body untouched", call: bedrockCall(llm.SurfaceBedrockInvoke, "us.anthropic.claude-haiku-4-5-20251001-v1:0"), wantAccept: "application/json",
			wantBody: func(t *testing.T, got []byte) {
				if string(got) != bedrockBody {
					t.Errorf("body %s, want it untouched", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := recordingUpstream(t, nil)
			p := newTestProvider(t, srv.URL, nil)
			inbound := tc.call.Header.Clone()
			resp, err := p.Send(context.Background(), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-got
			tc.wantBody(t, r.body)
			if r.req.ContentLength != int64(len(r.body)) {
				t.Errorf("Content-Length %d for %d bytes", r.req.ContentLength, len(r.body))
			}
			if r.req.URL.RawQuery != "" {
				t.Errorf("query %q forwarded", r.req.URL.RawQuery)
			}
			h := r.req.Header
			for name, want := range map[string]string{
				"Accept": tc.wantAccept, "Content-Type": "application/json", "Accept-Encoding": "identity",
				"X-Amz-Date": "20260304T050607Z", "X-Amz-Security-Token": testToken,
			} {
				if got := h.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for name, vals := range h {
				for _, v := range vals {
					if strings.Contains(v, virtualKey) {
						t.Errorf("client credential reached upstream in %s", name)
					}
				}
			}
			for _, stripped := range []string{"X-Api-Key", "Proxy-Authorization", "Cookie", "X-Hop-Secret", "Anthropic-Version", "Anthropic-Beta"} {
				if v, ok := h[stripped]; ok {
					t.Errorf("%s forwarded: %q", stripped, v)
				}
			}
			for _, passed := range []string{"X-App", "X-Claude-Code-Session-Id", "X-Stainless-Lang", "X-Project", "X-Amzn-Bedrock-Trace", "User-Agent", "X-Amzn-Bedrock-Accept"} {
				if want := inbound[passed]; want != nil && !reflect.DeepEqual(h[passed], want) {
					t.Errorf("%s = %q, want %q", passed, h[passed], want)
				}
			}
			// Every header sent is signed, but those SigV4 never signs.
			auth, err := parseSigV4(h.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			signed := map[string]bool{}
			for _, s := range auth.SignedHeaders {
				signed[s] = true
			}
			for name := range h {
				if l := strings.ToLower(name); !signed[l] && l != "authorization" && l != "user-agent" {
					t.Errorf("header %s sent but not signed (signed: %v)", name, auth.SignedHeaders)
				}
			}
			for _, must := range []string{"host", "content-length", "content-type", "x-amz-date", "x-amz-security-token", "accept"} {
				if !signed[must] {
					t.Errorf("%s not signed: %v", must, auth.SignedHeaders)
				}
			}
			if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
				t.Errorf("SigV4: %v", err)
			}
			if !reflect.DeepEqual(tc.call.Header, inbound) {
				t.Error("Send modified the inbound header")
			}
		})
	}
}

// TestSigV4Verifiable checks the signature against an independent
// recomputation, and that it really covers the path, the body and the
// headers: a tampered copy of the request fails verification.
func TestSigV4Verifiable(t *testing.T) {
	srv, got := recordingUpstream(t, nil)
	p := newTestProvider(t, srv.URL, func(c *Config) {
		c.Models = providers.ModelMap{{Glob: "*", ID: "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"}}
		c.Now = nil // the real clock
	})
	resp, err := p.Send(context.Background(), messagesCall(claudeCodeHeader(), true))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
		t.Fatalf("genuine request: %v", err)
	}
	for _, tamper := range []struct {
		name string
		mod  func(req *http.Request, body []byte) []byte
	}{
		{"body", func(_ *http.Request, b []byte) []byte { return bytes.Replace(b, []byte("32000"), []byte("64000"), 1) }},
		{"path unescaped", func(req *http.Request, b []byte) []byte { req.URL.RawPath = ""; return b }},
		{"signed header", func(req *http.Request, b []byte) []byte { req.Header.Set("X-App", "other"); return b }},
		{"region", func(req *http.Request, b []byte) []byte {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/us-east-1/", "/us-west-2/", 1))
			return b
		}},
	} {
		req := r.req.Clone(context.Background())
		body := tamper.mod(req, append([]byte(nil), r.body...))
		if err := verifySigV4(req, body, testCreds, testRegion); err == nil {
			t.Errorf("tampered %s still verifies", tamper.name)
		}
	}
	if err := verifySigV4(r.req, r.body, aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: "wrong", SessionToken: testToken}, testRegion); err == nil {
		t.Error("verifies with the wrong secret")
	}
}

func TestAPIKeyBearer(t *testing.T) {
	srv, got := recordingUpstream(t, nil)
	p, err := New(context.Background(), Config{Name: "b", Region: testRegion, BaseURL: srv.URL, APIKey: testAPIKey, Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []*llm.Call{messagesCall(claudeCodeHeader(), true), bedrockCall(llm.SurfaceBedrockInvoke, "us.anthropic.claude-haiku-4-5-20251001-v1:0")} {
		resp, err := p.Send(context.Background(), call)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-got
		if a := r.req.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+testAPIKey {
			t.Errorf("Authorization %q, want the API key only", a)
		}
		for _, h := range []string{"X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
			if v := r.req.Header.Get(h); v != "" {
				t.Errorf("%s = %q in API-key mode", h, v)
			}
		}
	}
}

func TestSendRequestIsRewindable(t *testing.T) {
	ct := &captureTransport{}
	p := newTestProvider(t, "", func(c *Config) { c.Transport = ct })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := p.Send(ctx, messagesCall(claudeCodeHeader(), true))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := ct.last()
	if got := r.URL.String(); got != "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream" {
		t.Errorf("URL %s", got)
	}
	if r.URL.Path != "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream" ||
		r.URL.RawPath != "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream" {
		t.Errorf("Path %q RawPath %q", r.URL.Path, r.URL.RawPath)
	}
	want, _ := TranslateBody([]byte(claudeCodeBody), claudeCodeHeader())
	if r.ContentLength != int64(len(want)) || r.GetBody == nil {
		t.Fatalf("ContentLength %d, GetBody set %v", r.ContentLength, r.GetBody != nil)
	}
	for i := 0; i < 2; i++ {
		b, err := r.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(b); !bytes.Equal(got, want) {
			t.Fatalf("GetBody #%d returned a different body", i)
		}
	}
	if r.Context() != ctx {
		t.Error("request does not carry the caller's context")
	}
}

func TestSendErrors(t *testing.T) {
	p := newTestProvider(t, "http://127.0.0.1:1", nil)
	if _, err := p.Send(context.Background(), &llm.Call{Surface: llm.SurfaceOpenAIChat}); err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Errorf("unserved surface: err = %v", err)
	}
	bad := messagesCall(claudeCodeHeader(), true)
	bad.Body = []byte(`{"model":`)
	if _, err := p.Send(context.Background(), bad); err == nil {
		t.Error("a malformed body was sent")
	}

	_, err := p.Send(context.Background(), messagesCall(claudeCodeHeader(), true))
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Host != "127.0.0.1:1" {
		t.Fatalf("connection refused: err = %#v", err)
	}
	if msg := err.Error(); strings.Contains(msg, testSecretKey) || strings.Contains(msg, virtualKey) || strings.Contains(msg, "/model/") {
		t.Errorf("error message %q must name the host only", msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = p.Send(ctx, messagesCall(claudeCodeHeader(), true)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}

	// A transport that echoes what it was given never leaks a secret.
	echo := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused %s / %s", r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token"))
	})
	pk, _ := New(context.Background(), Config{Name: "k", Region: testRegion, APIKey: testAPIKey, Transport: echo})
	if _, err := pk.Send(context.Background(), messagesCall(claudeCodeHeader(), true)); err == nil || strings.Contains(err.Error(), testAPIKey) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("API key leaked or not redacted: %v", err)
	}
	ps := newTestProvider(t, "", func(c *Config) { c.Transport = echo })
	if _, err := ps.Send(context.Background(), messagesCall(claudeCodeHeader(), true)); err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("session token leaked: %v", err)
	}

	// Credentials that cannot be had: no request goes out.
	ct := &captureTransport{}
	pc, _ := New(context.Background(), Config{Name: "c", Region: testRegion, Transport: ct,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		})})
	_, err = pc.Send(context.Background(), messagesCall(claudeCodeHeader(), true))
	var ce *CredentialsError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "IMDS") || len(ct.reqs) != 0 {
		t.Errorf("credentials failure: err = %v, %d requests sent", err, len(ct.reqs))
	}
}

// TestCredentialsChain loads the standard AWS chain and finds the keys in
// the environment.
func TestCredentialsChain(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const envKey, envSecret = "AKIDFROMENVIRONMENT", "secret-from-the-environment-0123"
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty,
		"AWS_ACCESS_KEY_ID": envKey, "AWS_SECRET_ACCESS_KEY": envSecret, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
	} {
		t.Setenv(k, v)
	}
	srv, got := recordingUpstream(t, nil)
	p, err := New(context.Background(), Config{Name: "chain", Region: "eu-west-1", BaseURL: srv.URL, Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		resp, err := p.Send(context.Background(), messagesCall(claudeCodeHeader(), false))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-got
		if err := verifySigV4(r.req, r.body, aws.Credentials{AccessKeyID: envKey, SecretAccessKey: envSecret}, "eu-west-1"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r.req.Header.Get("X-Amz-Security-Token") != "" {
			t.Error("a session token was sent for long-term keys")
		}
		if !strings.Contains(r.req.RequestURI, "/model/eu.anthropic.") {
			t.Errorf("path %s, want the eu inference profile", r.req.RequestURI)
		}
	}

	// Without keys anywhere the chain loads but yields no credentials, and
	// nothing is sent.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	ct := &captureTransport{}
	p, err = New(context.Background(), Config{Name: "none", Region: "eu-west-1", Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), messagesCall(claudeCodeHeader(), false))
	var ce *CredentialsError
	if !errors.As(err, &ce) || len(ct.reqs) != 0 {
		t.Fatalf("err = %v, %d requests", err, len(ct.reqs))
	}
}

func TestCountTokensBody(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantInner string
		has                 bool
	}{
		{name: "max_tokens added", in: `{"messages":[{"role":"user","content":"hi"}],"anthropic_version":"bedrock-2023-05-31"}`,
			wantInner: `{"messages":[{"role":"user","content":"hi"}],"anthropic_version":"bedrock-2023-05-31","max_tokens":1}`},
		{name: "max_tokens kept", in: `{"max_tokens":99,"messages":[]}`, wantInner: `{"max_tokens":99,"messages":[]}`, has: true},
		{name: "null max_tokens replaced", in: `{"max_tokens":null,"messages":[]}`, wantInner: `{"max_tokens":1,"messages":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := CountTokensBody([]byte(tc.in), tc.has)
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				Input struct {
					InvokeModel struct {
						Body string `json:"body"`
					} `json:"invokeModel"`
				} `json:"input"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			inner, err := base64.StdEncoding.DecodeString(v.Input.InvokeModel.Body)
			if err != nil || string(inner) != tc.wantInner {
				t.Fatalf("inner body %s (%v), want %s", inner, err, tc.wantInner)
			}
		})
	}

	// Through Send: the count_tokens body is translated, then wrapped.
	srv, got := recordingUpstream(t, nil)
	p := newTestProvider(t, srv.URL, nil)
	call := &llm.Call{Surface: llm.SurfaceAnthropicCountTokens, Model: "claude-haiku-4-5", CanonicalModel: "claude-haiku-4-5",
		Body:   []byte(`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"count me"}],"tools":[{"name":"x","input_schema":{"type":"object"}}]}`),
		Header: http.Header{"Anthropic-Beta": {"token-counting-2024-11-01"}}}
	resp, err := p.Send(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	want := `{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(
		`{"messages":[{"role":"user","content":"count me"}],"tools":[{"name":"x","input_schema":{"type":"object"}}],"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["token-counting-2024-11-01"],"max_tokens":1}`)) + `"}}}`
	if string(r.body) != want {
		t.Errorf("count-tokens body\n got %s\nwant %s", r.body, want)
	}
	if r.req.RequestURI != "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/count-tokens" || r.req.Header.Get("Accept") != "application/json" {
		t.Errorf("%s Accept %q", r.req.RequestURI, r.req.Header.Get("Accept"))
	}
	if err := verifySigV4(r.req, r.body, testCreds, testRegion); err != nil {
		t.Error(err)
	}
}
