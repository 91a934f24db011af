package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// mockAnthropic is an Anthropic Messages API on 127.0.0.1 that speaks the
// real wire format: SSE framing with pings, message_start usage, cumulative
// message_delta usage, cache fields, error events, error statuses with
// Anthropic error bodies, and abrupt cuts. A test picks a behaviour with the
// X-Mock-Scenario request header, which the gateway forwards like any
// unknown header.
type mockAnthropic struct {
	requestLog[seenRequest]

	srv *httptest.Server
	// APIKey is the provider key the gateway must present.
	APIKey string

	mu sync.Mutex
	// hang receives one value per "hang" stream once the upstream noticed
	// the client went away.
	hangDone chan struct{}
	// release gates the "gated" scenario between events.
	release chan struct{}
	// arrivals gets one value per "small" request that reached the
	// upstream; gate, when not nil, holds "small" streams until closed.
	arrivals chan struct{}
	gate     chan struct{}
}

type seenRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// The canonical reply every scenario builds on.
const (
	mockText          = "Hello from the mock upstream. It speaks the real wire format."
	mockInput         = 12
	mockCacheRead     = 9000
	mockCacheWrite5m  = 200
	mockCacheWrite1h  = 100
	mockOutput        = 42
	mockCountedTokens = 1234
	smallInput        = 10
	smallOutput       = 20
	// smallCostSonnetNano is the "small" reply at claude-sonnet-4-5 prices:
	// 10×3 + 20×15 = 330 USD per million → $0.00033.
	smallCostSonnetNano = 330_000
)

func newMockAnthropic(t testing.TB) *mockAnthropic {
	m := &mockAnthropic{APIKey: "sk-ant-provider-secret-0123456789", hangDone: make(chan struct{}, 16), release: make(chan struct{}),
		arrivals: make(chan struct{}, 4096)}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the mock's base URL (no /v1, as the Anthropic SDK expects).
func (m *mockAnthropic) URL() string { return m.srv.URL }

func writeAnthropicError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_mock_error")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q},"request_id":"req_mock_error"}`, typ, msg)
}

func (m *mockAnthropic) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.record(seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})

	if r.Header.Get("X-Api-Key") != m.APIKey {
		writeAnthropicError(w, 401, "authentication_error", "invalid x-api-key")
		return
	}
	scenario := r.Header.Get("X-Mock-Scenario")
	switch scenario {
	case "status-429":
		w.Header().Set("retry-after", "7")
		w.Header().Set("anthropic-ratelimit-requests-remaining", "0")
		writeAnthropicError(w, 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
		return
	case "status-529", "status-529-anthropic-only":
		writeAnthropicError(w, 529, "overloaded_error", "Overloaded")
		return
	case "status-400":
		writeAnthropicError(w, 400, "invalid_request_error", "messages: at least one message is required")
		return
	}

	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	if strings.HasSuffix(r.URL.Path, "/v1/messages/count_tokens") {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, mockCountedTokens)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/v1/messages") {
		writeAnthropicError(w, 404, "not_found_error", "Not found")
		return
	}
	w.Header().Set("request-id", "req_mock_1")
	if !req.Stream && scenario == "small" {
		m.arrivals <- struct{}{}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_s","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":%d,"output_tokens":%d}}`, req.Model, smallInput, smallOutput)
		return
	}
	if !req.Stream && scenario == "fast-us" {
		// The canonical usage, billed in fast mode with US-only inference.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_fast","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%d,"service_tier":"standard","speed":"fast","inference_geo":"us"}}`,
			req.Model, mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h, mockOutput)
		return
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		// usage deliberately not last, and a nested "usage" key in content
		// the meter must not confuse with the real one.
		fmt.Fprintf(w, `{"id":"msg_mock","type":"message","role":"assistant","model":%q,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%d,"service_tier":"standard"},"content":[{"type":"text","text":%q,"citations":null},{"type":"tool_use","id":"toolu_1","name":"probe","input":{"usage":{"input_tokens":999999}}}],"stop_reason":"end_turn","stop_sequence":null}`,
			req.Model, mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h, mockOutput, mockText)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	send := func(event, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		_ = rc.Flush()
	}
	if scenario == "small" {
		// A short reply with a small, fixed usage: 10 input, 20 output.
		m.arrivals <- struct{}{}
		if m.gate != nil {
			<-m.gate
		}
		send("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_s","type":"message","role":"assistant","model":%q,"content":[],"usage":{"input_tokens":%d,"output_tokens":1}}}`, req.Model, smallInput))
		send("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		send("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`)
		send("content_block_stop", `{"type":"content_block_stop","index":0}`)
		send("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":%d}}`, smallOutput))
		send("message_stop", `{"type":"message_stop"}`)
		return
	}
	send("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_mock","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":1,"service_tier":"standard"}}}`,
		req.Model, mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockCacheWrite5m, mockCacheWrite1h))
	send("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	send("ping", `{"type": "ping"}`)
	words := strings.SplitAfter(mockText, " ")
	for i, word := range words {
		if scenario == "gated" && i == 1 {
			<-m.release
		}
		send("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, word))
		if i == 2 {
			switch scenario {
			case "cut":
				// The upstream dies mid-stream: no message_delta, no message_stop.
				hj, ok := w.(http.Hijacker)
				if !ok {
					panic("no hijacker")
				}
				conn, buf, err := hj.Hijack()
				if err == nil {
					_ = buf.Flush()
					conn.Close()
				}
				return
			case "error-event":
				send("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
				return
			case "hang":
				// Keep the stream open until the client goes away.
				<-r.Context().Done()
				m.hangDone <- struct{}{}
				return
			}
		}
	}
	send("content_block_stop", `{"type":"content_block_stop","index":0}`)
	send("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":%d}}`,
		mockInput, mockCacheWrite5m+mockCacheWrite1h, mockCacheRead, mockOutput))
	send("message_stop", `{"type":"message_stop"}`)
}
