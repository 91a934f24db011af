package llm

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ErrorKind is a provider-neutral reason for refusing a request; each
// dialect spells it its own way.
type ErrorKind uint8

// The reasons the gateway itself refuses a request.
const (
	ErrInvalidRequest ErrorKind = iota // 400
	ErrAuthentication                  // 401
	ErrBilling                         // 402 (OpenAI: 429 insufficient_quota)
	ErrPermission                      // 403
	ErrNotFound                        // 404
	ErrTooLarge                        // 413
	ErrRateLimit                       // 429
	ErrAPI                             // 500
	ErrBadGateway                      // 502
	ErrTimeout                         // 504
	ErrOverloaded                      // 529 (OpenAI, Bedrock, Vertex: 503)
)

// errorSpelling is how one dialect names a kind, with its status.
type errorSpelling struct {
	status int
	name   string
}

var anthropicErrors = [...]errorSpelling{
	ErrInvalidRequest: {400, "invalid_request_error"},
	ErrAuthentication: {401, "authentication_error"},
	ErrBilling:        {402, "billing_error"},
	ErrPermission:     {403, "permission_error"},
	ErrNotFound:       {404, "not_found_error"},
	ErrTooLarge:       {413, "request_too_large"},
	ErrRateLimit:      {429, "rate_limit_error"},
	ErrAPI:            {500, "api_error"},
	ErrBadGateway:     {502, "api_error"},
	ErrTimeout:        {504, "timeout_error"},
	ErrOverloaded:     {529, "overloaded_error"},
}

// openAIErrors carry the "type"; the "code" is in openAICodes.
var openAIErrors = [...]errorSpelling{
	ErrInvalidRequest: {400, "invalid_request_error"},
	ErrAuthentication: {401, "invalid_request_error"},
	ErrBilling:        {429, "insufficient_quota"},
	ErrPermission:     {403, "invalid_request_error"},
	ErrNotFound:       {404, "invalid_request_error"},
	ErrTooLarge:       {413, "invalid_request_error"},
	ErrRateLimit:      {429, "requests"},
	ErrAPI:            {500, "server_error"},
	ErrBadGateway:     {502, "server_error"},
	ErrTimeout:        {504, "server_error"},
	ErrOverloaded:     {503, "server_error"},
}

var openAICodes = [...]string{
	ErrInvalidRequest: "invalid_request",
	ErrAuthentication: "invalid_api_key",
	ErrBilling:        "insufficient_quota",
	ErrPermission:     "permission_denied",
	ErrNotFound:       "model_not_found",
	ErrTooLarge:       "request_too_large",
	ErrRateLimit:      "rate_limit_exceeded",
	ErrAPI:            "server_error",
	ErrBadGateway:     "bad_gateway",
	ErrTimeout:        "timeout",
	ErrOverloaded:     "overloaded",
}

var bedrockErrors = [...]errorSpelling{
	ErrInvalidRequest: {400, "ValidationException"},
	ErrAuthentication: {401, "UnrecognizedClientException"},
	ErrBilling:        {402, "ServiceQuotaExceededException"},
	ErrPermission:     {403, "AccessDeniedException"},
	ErrNotFound:       {404, "ResourceNotFoundException"},
	ErrTooLarge:       {413, "ValidationException"},
	ErrRateLimit:      {429, "ThrottlingException"},
	ErrAPI:            {500, "InternalServerException"},
	ErrBadGateway:     {502, "InternalServerException"},
	ErrTimeout:        {504, "ModelTimeoutException"},
	ErrOverloaded:     {503, "ServiceUnavailableException"},
}

var vertexErrors = [...]errorSpelling{
	ErrInvalidRequest: {400, "INVALID_ARGUMENT"},
	ErrAuthentication: {401, "UNAUTHENTICATED"},
	ErrBilling:        {402, "RESOURCE_EXHAUSTED"},
	ErrPermission:     {403, "PERMISSION_DENIED"},
	ErrNotFound:       {404, "NOT_FOUND"},
	ErrTooLarge:       {413, "INVALID_ARGUMENT"},
	ErrRateLimit:      {429, "RESOURCE_EXHAUSTED"},
	ErrAPI:            {500, "INTERNAL"},
	ErrBadGateway:     {502, "UNAVAILABLE"},
	ErrTimeout:        {504, "DEADLINE_EXCEEDED"},
	ErrOverloaded:     {503, "UNAVAILABLE"},
}

// ErrorStatus is the HTTP status a dialect answers a kind with.
func ErrorStatus(d Dialect, kind ErrorKind) int {
	switch d {
	case DialectOpenAI:
		return openAIErrors[kind].status
	case DialectBedrock:
		return bedrockErrors[kind].status
	case DialectVertex:
		return vertexErrors[kind].status
	}
	return anthropicErrors[kind].status
}

// WriteErrorCode answers a request the gateway refuses, in the caller's
// API shape:
//
//	Anthropic: {"type":"error","error":{"type":"billing_error","message":"…"}}
//	OpenAI:    {"error":{"message":"…","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}
//	Bedrock:   {"message":"…"} with x-amzn-ErrorType
//	Vertex:    {"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED"}}
//
// Budget refusals carry x-should-retry: false so official SDKs do not retry
// a spent budget. The message must already be free of secrets.
//
// code is the OpenAI dialect's "code", so that a client can tell which rule
// refused it (e.g. "model_not_allowed" or "key_disabled" for two 403s);
// empty, the kind's code. The other dialects have no such field.
func WriteErrorCode(w http.ResponseWriter, d Dialect, kind ErrorKind, code, message string) {
	if code == "" {
		code = openAICodes[kind]
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if kind == ErrBilling {
		h.Set("X-Should-Retry", "false")
	}
	var body []byte
	status := ErrorStatus(d, kind)
	switch d {
	case DialectOpenAI:
		body, _ = json.Marshal(struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    string  `json:"code"`
			} `json:"error"`
		}{Error: struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		}{Message: message, Type: openAIErrors[kind].name, Code: code}})
	case DialectBedrock:
		h.Set("X-Amzn-Errortype", bedrockErrors[kind].name)
		body, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{message})
	case DialectVertex:
		type inner struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		}
		body, _ = json.Marshal(struct {
			Error inner `json:"error"`
		}{inner{status, message, vertexErrors[kind].name}})
	default:
		type inner struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		body, _ = json.Marshal(struct {
			Type  string `json:"type"`
			Error inner  `json:"error"`
		}{"error", inner{anthropicErrors[kind].name, message}})
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
