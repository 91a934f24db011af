package llm

import "net/http"

// Call is one inbound request as every provider family receives it: the
// surface, the models involved, the fields the gateway read from the body in
// its single pass, and the raw body and headers to forward untouched.
type Call struct {
	// Surface is the API shape the request arrived in.
	Surface Surface
	// Model is the model id exactly as the client asked for it (from the
	// body's "model" or the URL path).
	Model string
	// CanonicalModel is Model without provider decoration or date, the name
	// routing, allow-lists, prices and metric labels use.
	CanonicalModel string
	// Stream is true when the client asked for a streamed response.
	Stream bool
	// MaxTokens is the body's max_tokens (or max_output_tokens); 0 when absent.
	MaxTokens int64
	// Body is the raw request body.
	Body []byte
	// Fields is ParseBody's reading of Body: families take what they need
	// of the body from here, never by reading Body again, so that what the
	// gateway checked is what they act on.
	Fields BodyFields
	// Header is the inbound request's header. Families copy what they forward
	// and never forward the client's credentials.
	Header http.Header
	// RawQuery is the inbound query string (Claude Code sends ?beta=true).
	RawQuery string
	// PathSuffix is the surface-specific tail of the path after the prefix the
	// site used, e.g. "/v1/messages" or "/v1/models/claude-sonnet-4-5".
	PathSuffix string
}
