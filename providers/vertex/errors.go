package vertex

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// googleStatus is what an Anthropic-shaped error becomes for a Google RPC
// status name, when the HTTP status alone does not decide it.
var googleStatus = map[string]struct {
	status int
	typ    string
}{
	"INVALID_ARGUMENT":    {400, "invalid_request_error"},
	"FAILED_PRECONDITION": {400, "invalid_request_error"},
	"OUT_OF_RANGE":        {400, "invalid_request_error"},
	"UNAUTHENTICATED":     {401, "authentication_error"},
	"PERMISSION_DENIED":   {403, "permission_error"},
	"NOT_FOUND":           {404, "not_found_error"},
	"RESOURCE_EXHAUSTED":  {429, "rate_limit_error"},
	"INTERNAL":            {500, "api_error"},
	"UNKNOWN":             {500, "api_error"},
	"DATA_LOSS":           {500, "api_error"},
	"UNAVAILABLE":         {529, "overloaded_error"},
	"DEADLINE_EXCEEDED":   {504, "timeout_error"},
}

// AnthropicStatus maps a Vertex error, given by its HTTP status and its
// Google RPC status name (may be empty), to the status and error type an
// Anthropic client expects:
//
//	400 (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE) → 400 invalid_request_error
//	401 UNAUTHENTICATED     → 401 authentication_error
//	403 PERMISSION_DENIED   → 403 permission_error
//	404 NOT_FOUND           → 404 not_found_error
//	413                     → 413 request_too_large
//	429 RESOURCE_EXHAUSTED  → 429 rate_limit_error
//	500 (INTERNAL, UNKNOWN, DATA_LOSS) → 500 api_error
//	503 UNAVAILABLE         → 529 overloaded_error (what Anthropic answers when capacity is short)
//	504 DEADLINE_EXCEEDED   → 504 timeout_error
//
// The HTTP status decides first; for any other status the RPC status name
// does; failing both the status is kept, typed invalid_request_error (4xx)
// or api_error (5xx).
func AnthropicStatus(status int, rpcStatus string) (int, string) {
	switch status {
	case 400:
		return 400, "invalid_request_error"
	case 401:
		return 401, "authentication_error"
	case 403:
		return 403, "permission_error"
	case 404:
		return 404, "not_found_error"
	case 413:
		return 413, "request_too_large"
	case 429:
		return 429, "rate_limit_error"
	case 500:
		return 500, "api_error"
	case 503:
		return 529, "overloaded_error"
	case 504:
		return 504, "timeout_error"
	}
	if m, ok := googleStatus[rpcStatus]; ok {
		return m.status, m.typ
	}
	if status >= 500 {
		return status, "api_error"
	}
	return status, "invalid_request_error"
}

// googleError is Google's JSON error body, {"error":{"code","message","status"}}.
type googleError struct {
	Type  string `json:"type"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Type    string `json:"type"`
	} `json:"error"`
}

// TranslateError turns a Google-shaped Vertex error body
// ({"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED"}}, or
// the same wrapped in a one-element array, as Google's streaming methods
// answer) into Anthropic's shape
// ({"type":"error","error":{"type":"rate_limit_error","message":"…"}}),
// with the status AnthropicStatus gives. The message is Google's, unchanged.
// ok is false for any other body — Anthropic-shaped errors (Vertex relays
// Claude's own errors, such as 529 overloaded_error, unchanged), other JSON,
// HTML, empty bodies — which are relayed as they are.
func TranslateError(status int, body []byte) (newStatus int, anthropicBody []byte, errType string, ok bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return 0, nil, "", false
	}
	var g googleError
	if b[0] == '[' {
		var arr []googleError
		if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
			return 0, nil, "", false
		}
		g = arr[0]
	} else if json.Unmarshal(b, &g) != nil {
		return 0, nil, "", false
	}
	if g.Type != "" || g.Error == nil || g.Error.Type != "" || (g.Error.Status == "" && g.Error.Code == 0) {
		return 0, nil, "", false
	}
	newStatus, errType = AnthropicStatus(status, g.Error.Status)
	msg := g.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(g.Error.Status + " " + http.StatusText(status))
	}
	type inner struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Type  string `json:"type"`
		Error inner  `json:"error"`
	}{"error", inner{errType, msg}}); err != nil {
		return 0, nil, "", false
	}
	return newStatus, bytes.TrimRight(out.Bytes(), "\n"), errType, true
}
