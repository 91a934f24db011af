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

// The fixed usage every successful mock OpenAI reply reports: 1200 prompt
// tokens of which 1000 cached, 300 completion tokens of which 100
// reasoning. The gateway meters it as 200 input + 1000 cache read + 300
// output.
const (
	mockOpenAIKey       = "sk-proj-mock-openai-provider-0123456789"
	mockOpenAIPrompt    = 1200
	mockOpenAICached    = 1000
	mockOpenAIOutput    = 300
	mockOpenAIReasoning = 100
	mockOpenAIEmbedding = 8 // prompt tokens of an embeddings call
	// mockOpenAIText is the streamed reply, one chunk per word.
	mockOpenAIText = "Hello from the mock OpenAI upstream."
)

// mockOpenAI is an OpenAI API on 127.0.0.1 that speaks the real wire
// format, as the base URL http://127.0.0.1:port/v1 (URL):
//
//   - Authorization: Bearer mockOpenAIKey is required (an Azure-style
//     api-key header with the same key is accepted too); anything else gets
//     401 in OpenAI's error shape ({"error":{"message","type","param","code"}}).
//   - POST /v1/chat/completions, streamed or not. Streams honour
//     stream_options.include_usage exactly like OpenAI: only when it is true
//     does every chunk carry "usage":null and an extra chunk with
//     "choices":[] carry the usage before "data: [DONE]"; otherwise no chunk
//     has a usage member. mockOpenAIChatStream returns the exact bytes, so a
//     test can compare what a client received through the gateway.
//   - POST /v1/responses, streamed (named events, usage in
//     response.completed) or not.
//   - POST /v1/embeddings.
//   - The response's "model" echoes the request's.
//
// A test picks a behaviour with the X-Mock-Scenario request header, which
// the gateway forwards like any unknown header:
//
//	status-429  429 rate_limit_exceeded (retry-after: 7, x-ratelimit-* headers)
//	status-500  500 server_error
//	cut         a chat stream whose connection drops after two content chunks
//
// Every request is recorded (requests, count).
type mockOpenAI struct {
	requestLog[seenRequest]

	srv *httptest.Server
	// APIKey is the provider key the gateway must present.
	APIKey string

	mu sync.Mutex
}

func newMockOpenAI(t testing.TB) *mockOpenAI {
	m := &mockOpenAI{APIKey: mockOpenAIKey}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the mock's base URL, version included (as the OpenAI SDKs and the
// gateway's openai base_url expect).
func (m *mockOpenAI) URL() string { return m.srv.URL + "/v1" }

func writeOpenAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-request-id", "req_mock_error")
	w.WriteHeader(status)
	codeJSON := "null"
	if code != "" {
		codeJSON = fmt.Sprintf("%q", code)
	}
	fmt.Fprintf(w, `{"error":{"message":%q,"type":%q,"param":null,"code":%s}}`, msg, typ, codeJSON)
}

// mockOpenAIUsage is the chat usage object.
const mockOpenAIUsage = `{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":100,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`

// mockOpenAIResponsesUsage is the Responses API usage object.
const mockOpenAIResponsesUsage = `{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1000},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":100},"total_tokens":1500}`

// mockOpenAIChatEvents is the streamed chat reply for model, event by event,
// exactly as the mock writes it.
func mockOpenAIChatEvents(model string, includeUsage bool) []string {
	null := ""
	if includeUsage {
		null = `,"usage":null`
	}
	m, _ := json.Marshal(model)
	chunk := func(choices, usage string) string {
		return `data: {"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1750000000,"model":` + string(m) +
			`,"service_tier":"default","system_fingerprint":"fp_mock","choices":` + choices + usage + "}\n\n"
	}
	delta := func(d, finish string) string {
		return chunk(`[{"index":0,"delta":`+d+`,"logprobs":null,"finish_reason":`+finish+`}]`, null)
	}
	evs := []string{delta(`{"role":"assistant","content":"","refusal":null}`, "null")}
	for _, word := range strings.SplitAfter(mockOpenAIText, " ") {
		w, _ := json.Marshal(word)
		evs = append(evs, delta(`{"content":`+string(w)+`}`, "null"))
	}
	evs = append(evs, delta(`{}`, `"stop"`))
	if includeUsage {
		evs = append(evs, chunk(`[]`, `,"usage":`+mockOpenAIUsage))
	}
	return append(evs, "data: [DONE]\n\n")
}

// mockOpenAIChatStream is the whole streamed chat body the mock sends for
// model, with or without include_usage: what a client of the gateway must
// receive byte for byte.
func mockOpenAIChatStream(model string, includeUsage bool) string {
	return strings.Join(mockOpenAIChatEvents(model, includeUsage), "")
}

func mockOpenAIResponse(model, status, usage string) string {
	m, _ := json.Marshal(model)
	t, _ := json.Marshal(mockOpenAIText)
	return `{"id":"resp_mock1","object":"response","created_at":1750000000,"status":"` + status + `","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":` + string(m) +
		`,"output":[{"type":"reasoning","id":"rs_mock1","summary":[]},{"type":"message","id":"msg_mock1","status":"completed","role":"assistant","content":[{"type":"output_text","text":` + string(t) + `,"annotations":[],"logprobs":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"store":true,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"truncation":"disabled","usage":` + usage + `,"user":null,"metadata":{}}`
}

// mockOpenAIResponsesEvents is the streamed Responses reply for model.
func mockOpenAIResponsesEvents(model string) []string {
	seq := 0
	ev := func(typ, rest string) string {
		s := fmt.Sprintf("event: %s\ndata: {\"type\":%q,\"sequence_number\":%d,%s}\n\n", typ, typ, seq, rest)
		seq++
		return s
	}
	evs := []string{
		ev("response.created", `"response":`+mockOpenAIResponse(model, "in_progress", "null")),
		ev("response.in_progress", `"response":`+mockOpenAIResponse(model, "in_progress", "null")),
		ev("response.output_item.added", `"output_index":1,"item":{"id":"msg_mock1","type":"message","status":"in_progress","content":[],"role":"assistant"}`),
		ev("response.content_part.added", `"item_id":"msg_mock1","output_index":1,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`),
	}
	for _, word := range strings.SplitAfter(mockOpenAIText, " ") {
		w, _ := json.Marshal(word)
		evs = append(evs, ev("response.output_text.delta", `"item_id":"msg_mock1","output_index":1,"content_index":0,"delta":`+string(w)+`,"logprobs":[]`))
	}
	t, _ := json.Marshal(mockOpenAIText)
	return append(evs,
		ev("response.output_text.done", `"item_id":"msg_mock1","output_index":1,"content_index":0,"text":`+string(t)+`,"logprobs":[]`),
		ev("response.output_item.done", `"output_index":1,"item":{"id":"msg_mock1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":`+string(t)+`}],"role":"assistant"}`),
		ev("response.completed", `"response":`+mockOpenAIResponse(model, "completed", mockOpenAIResponsesUsage)))
}

func (m *mockOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.record(seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})

	if r.Header.Get("Authorization") != "Bearer "+m.APIKey && r.Header.Get("Api-Key") != m.APIKey {
		writeOpenAIError(w, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	switch r.Header.Get("X-Mock-Scenario") {
	case "status-429":
		w.Header().Set("retry-after", "7")
		w.Header().Set("x-ratelimit-limit-requests", "500")
		w.Header().Set("x-ratelimit-remaining-requests", "0")
		writeOpenAIError(w, 429, "requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 500, Used 500, Requested 1.")
		return
	case "status-500":
		writeOpenAIError(w, 500, "server_error", "", "The server had an error while processing your request. Sorry about that!")
		return
	}
	if r.Method != http.MethodPost {
		writeOpenAIError(w, 405, "invalid_request_error", "", "Method not allowed")
		return
	}

	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, 400, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	if req.Model == "" {
		writeOpenAIError(w, 400, "invalid_request_error", "", "you must provide a model parameter")
		return
	}
	w.Header().Set("x-request-id", "req_mock_1")
	w.Header().Set("openai-processing-ms", "42")
	model, _ := json.Marshal(req.Model)

	switch {
	case r.URL.Path == "/v1/embeddings":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
			model, mockOpenAIEmbedding, mockOpenAIEmbedding)

	case r.URL.Path == "/v1/responses" && req.Stream:
		m.stream(w, r, mockOpenAIResponsesEvents(req.Model), -1)

	case r.URL.Path == "/v1/responses":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, mockOpenAIResponse(req.Model, "completed", mockOpenAIResponsesUsage))

	case r.URL.Path == "/v1/chat/completions" && req.Stream:
		cut := -1
		if r.Header.Get("X-Mock-Scenario") == "cut" {
			cut = 3 // role chunk and two content chunks, then the connection drops
		}
		m.stream(w, r, mockOpenAIChatEvents(req.Model, req.StreamOptions != nil && req.StreamOptions.IncludeUsage), cut)

	case r.URL.Path == "/v1/chat/completions" && req.StreamOptions != nil:
		writeOpenAIError(w, 400, "invalid_request_error", "", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")

	case r.URL.Path == "/v1/chat/completions":
		t, _ := json.Marshal(mockOpenAIText)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-mock2","object":"chat.completion","created":1750000000,"model":%s,"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":%s,"service_tier":"default","system_fingerprint":"fp_mock"}`,
			model, t, mockOpenAIUsage)

	default:
		writeOpenAIError(w, 404, "invalid_request_error", "", "Invalid URL (POST "+r.URL.Path+")")
	}
}

// stream writes events, flushing each; with cut >= 0 the connection is
// dropped after that many events.
func (m *mockOpenAI) stream(w http.ResponseWriter, r *http.Request, events []string, cut int) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	for i, e := range events {
		if i == cut {
			conn, buf, err := rc.Hijack()
			if err == nil {
				_ = buf.Flush()
				conn.Close()
			}
			return
		}
		if _, err := io.WriteString(w, e); err != nil {
			return
		}
		if err := rc.Flush(); err != nil || r.Context().Err() != nil {
			return
		}
	}
}
