package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchUpstream answers every POST with the same short Claude stream,
// as fast as it can.
func benchUpstream(b *testing.B) *httptest.Server {
	var body bytes.Buffer
	ev := func(t, d string) { fmt.Fprintf(&body, "event: %s\ndata: %s\n\n", t, d) }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":9000,"output_tokens":1}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for i := range 20 {
		ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word %d "}}`, i))
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":40}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	reply := body.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(reply)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkEndToEnd compares, in the same Caddy and the same run, a plain
// `reverse_proxy` and llm_gateway in front of the same mock upstream, with
// parallel keep-alive clients sending a small streaming Messages request.
// The difference per request is the gateway's whole cost: auth, body read,
// routing, metering, pricing, ledger and metrics.
func BenchmarkEndToEnd(b *testing.B) {
	up := benchUpstream(b)
	g := startGateway(b, gatewayOptions{Block: fmt.Sprintf(`store sqlite %s/bench.db
		provider anthropic {
			type anthropic
			api_key sk-ant-bench
			base_url %s
		}
		key alice {
			secret %s
		}`, b.TempDir(), up.URL, aliceKey)})
	// A second site on its own port: plain reverse_proxy to the same upstream.
	plainPort := freePort(b)
	// Both sites write the same access log, so the comparison is the
	// gateway's work alone.
	g.loadExtraSite(fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\tlog {\n\t\toutput llm_test_sink %d\n\t\tformat filter {\n\t\t\trequest>headers>X-Api-Key delete\n\t\t}\n\t}\n\treverse_proxy %s\n}\n", plainPort, g.port, up.URL))
	plain := fmt.Sprintf("http://127.0.0.1:%d", plainPort)

	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hello"}]}`)
	for _, tc := range []struct{ name, url string }{
		{"reverse_proxy", plain + "/v1/messages"},
		{"llm_gateway", g.URL + "/v1/messages"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", tc.url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+aliceKey)
					req.Header.Set("X-Api-Key", "sk-ant-bench")
					req.Header.Set("Anthropic-Version", "2023-06-01")
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
	// Drain the access log lines the benchmark produced.
	for len(g.sink.ch) > 0 {
		<-g.sink.ch
	}
}
