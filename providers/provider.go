// Package providers holds the upstream API families, one subpackage each
// (anthropic; bedrock; vertex; azure, for Microsoft Foundry; openai, for
// OpenAI and OpenAI-compatible servers), and the seam they share: a Provider
// turns an llm.Call into an upstream request and relays the upstream
// response to the client through a meter that ends with an llm.Usage. Here
// too is what every family uses: routing with fallback and passive health
// (Router), provider key rotation (KeyRing), model id maps, base URLs, the
// query and error redaction that keeps credentials out of requests and
// logs, and the estimate of usage a provider never reported. Nothing here
// imports Caddy.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// Provider is one configured upstream (a "provider <name> { … }" block).
// Implementations are safe for concurrent use.
type Provider interface {
	// Name is the provider's configured name, used in routes, metrics and logs.
	Name() string
	// Family is the API family: "anthropic", "bedrock", "vertex", "azure", "openai".
	Family() string
	// Serves reports whether the provider can answer calls on a surface.
	Serves(s llm.Surface) bool
	// Send forwards the call upstream and returns the response as soon as
	// its headers arrive, body unread. The caller decides, from the status,
	// whether to relay it or fall back to another provider (closing it).
	Send(ctx context.Context, call *llm.Call) (*http.Response, error)
	// Relay writes resp to the client, status and headers first, then the
	// body as it arrives, flushing every read, while metering usage. It
	// always closes resp.Body and always returns the usage seen, whether the
	// stream completed, was cut by the upstream, or the client went away.
	Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) Result
}

// Result is how a relay ended.
type Result struct {
	// Usage is what the meter read (zero for error responses).
	Usage llm.Usage
	// Status is the status written to the client.
	Status int
	// BytesWritten counts body bytes delivered to the client.
	BytesWritten int64
	// FirstToken is when the first generated content passed (the first
	// content delta of a stream, or the body of a non-streamed response);
	// zero when none did.
	FirstToken time.Time
	// UpstreamErr is set when reading the upstream body failed (a cut).
	UpstreamErr error
	// ClientErr is set when writing to the client failed (client gone).
	ClientErr error
	// ErrorType is the type of an in-stream error event or of an error
	// response body ("overloaded_error"), when there was one.
	ErrorType string
}

// Metered fills in what a metered relay saw.
func (r *Result) Metered(m stream.Metered) {
	r.Usage, r.FirstToken, r.ErrorType = m.Usage, m.FirstToken, m.ErrorType
	r.BytesWritten, r.UpstreamErr, r.ClientErr = m.Written, m.UpstreamErr, m.ClientErr
}

// Retryable reports whether an upstream status, seen before any byte was
// sent to the client, should make the gateway try the next provider:
// 429, 500–504 and 529.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status <= 504) || status == 529
}

// UpstreamError is a failure to get a response from the upstream (dial,
// TLS, timeout, reset, cancellation). Its message names the provider and the
// upstream host only: no URL path or query, no header, no key.
type UpstreamError struct {
	// Provider is the provider's configured name.
	Provider string
	// Host is the upstream host (and port, when the base URL has one).
	Host string
	// Err is the round tripper's error.
	Err error

	msg string
}

// NewUpstreamError describes err for a family's provider, redacting the
// given secrets should a transport ever echo them (Go's does not), so that
// the error never holds a key.
func NewUpstreamError(family, provider, host string, err error, secrets ...string) *UpstreamError {
	var msg string
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		msg = "request canceled"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "deadline exceeded"
	case errors.As(err, &ue):
		msg = ue.Err.Error()
	default:
		msg = err.Error()
	}
	msg = Redact(msg, secrets...)
	return &UpstreamError{
		Provider: provider,
		Host:     host,
		Err:      err,
		msg:      fmt.Sprintf("%s provider %q: upstream %s: %s", family, provider, host, msg),
	}
}

// Error implements error.
func (e *UpstreamError) Error() string { return e.msg }

// Unwrap returns the transport's error, for errors.Is and errors.As
// (net.Error timeouts, context cancellation).
func (e *UpstreamError) Unwrap() error { return e.Err }
