package bedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
	"github.com/llmgateway/caddy-llm-gateway/providers/stream"
)

// MaxErrorCopy is how much of an error or count-tokens body is read to
// translate it.
const MaxErrorCopy = anthropic.MaxErrorCopy

// outcome is a relay's Result plus what only the tests look at.
type outcome struct {
	providers.Result
	metrics      *invocationMetrics // message_stop's invocation metrics, when sent
	metricsAgree bool               // they match the metered input and output
	pings        int                // pings written
}

// Relay writes resp to w, status and headers first, then the body as it
// arrives, flushing every event, and always closes resp.Body.
//
// Anthropic-shaped calls are translated:
//
//   - a 2xx event stream is decoded frame by frame (only a partial frame is
//     ever buffered) and each chunk's Anthropic event is written as SSE,
//     "event: <type>\ndata: <json>\n\n", and metered; message_stop loses
//     Bedrock's amazon-bedrock-invocationMetrics member, so the client sees
//     what the Anthropic API sends. Headers: the upstream's (x-amzn-requestid,
//     also copied to request-id) with Content-Type: text/event-stream and
//     Cache-Control: no-cache, no Content-Length. A ping event is written
//     whenever the client got nothing for the ping interval. An exception
//     frame becomes an Anthropic error event that ends the stream. A stream
//     that is cut (mid-frame, by a read error, or before message_stop) gets
//     a final api_error event and Result.UpstreamErr, with the usage metered
//     so far;
//   - a 2xx JSON body (invoke) is Anthropic's message: it is passed through
//     and metered (anthropic.RelayResponse);
//   - a 2xx count-tokens answer {"inputTokens":N} becomes {"input_tokens":N};
//   - an error status becomes Anthropic's error shape (AnthropicError),
//     Bedrock's message kept verbatim, retry-after kept.
//
// Bedrock-shaped calls are passed through unchanged — status, headers and
// body bytes, event stream included — while a copy of the stream's frames is
// decoded for metering; no ping is added (an AWS event-stream client could
// not read one). Result.ErrorType is the Anthropic error type of an error
// status or exception frame on both kinds of surface.
func (p *Provider) Relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) providers.Result {
	return p.relay(w, resp, call).Result
}

func (p *Provider) relay(w http.ResponseWriter, resp *http.Response, call *llm.Call) outcome {
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	es := ok && isEventStream(resp.Header.Get("Content-Type"))
	if !translated(call.Surface) {
		if es {
			return p.passStream(w, resp)
		}
		res := anthropic.RelayResponse(w, resp, p.now)
		if !ok {
			_, res.ErrorType = AnthropicError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
		return outcome{Result: res}
	}
	switch {
	case !ok:
		return outcome{Result: p.translateError(w, resp)}
	case call.Surface == llm.SurfaceAnthropicCountTokens:
		return outcome{Result: p.translateCount(w, resp)}
	case es:
		return p.translateStream(w, resp)
	}
	setRequestID(w.Header(), resp.Header)
	return outcome{Result: anthropic.RelayResponse(w, resp, p.now)}
}

// isEventStream reports whether a Content-Type is Bedrock's event stream.
func isEventStream(ct string) bool {
	if strings.HasPrefix(ct, EventStreamContentType) && (len(ct) == len(EventStreamContentType) || ct[len(EventStreamContentType)] == ';') {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == EventStreamContentType
}

// setRequestID copies Bedrock's request id to Anthropic's request-id
// header, which the Anthropic SDKs report with every error.
func setRequestID(dst, src http.Header) {
	if id := src.Get("X-Amzn-Requestid"); id != "" && dst.Get("Request-Id") == "" {
		dst.Set("Request-Id", id)
	}
}

// translatedHeaders sets the client's headers for a translated body: the
// upstream's, minus its Content-Type and error type, plus request-id.
func translatedHeaders(dst, src http.Header, contentType string) {
	stream.CopyResponseHeaders(dst, src)
	delete(dst, "X-Amzn-Errortype")
	setRequestID(dst, src)
	dst.Set("Content-Type", contentType)
}

// translateStream relays a Bedrock event stream to an Anthropic client as
// SSE.
func (p *Provider) translateStream(w http.ResponseWriter, resp *http.Response) outcome {
	defer resp.Body.Close()
	h := w.Header()
	translatedHeaders(h, resp.Header, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush := stream.Flusher(w)
	// Send the headers now; a failure shows again at the first write.
	_ = flush()
	out := newSSEOut(w, flush, p.ping)
	out.start()

	d := getDecoder()
	defer d.release()
	d.reset(resp.Body)
	d.meter.Now = p.now
	res := providers.Result{Status: http.StatusOK}
	for {
		kind, typ, data, err := d.next(true)
		if err != nil {
			complete := d.meter.Usage().Complete
			switch {
			case err == io.EOF && !complete && !d.exception:
				res.UpstreamErr = ErrNoMessageStop
			case err != io.EOF:
				res.UpstreamErr = err
			}
			if res.UpstreamErr != nil && !complete {
				// Make the cut visible in the stream itself, as the
				// Anthropic API reports its own failures mid-stream.
				ev := appendErrorEvent(nil, "api_error", "The Bedrock response stream ended before the message was complete.")
				d.meter.Event(errorType, ev)
				_ = out.event(errorType, ev)
			}
			break
		}
		if kind == frameSkip {
			continue
		}
		if out.event(typ, data) != nil || kind == frameError {
			break
		}
	}
	out.close()
	var pings int
	res.BytesWritten, pings, res.ClientErr = out.state()
	res.Usage = d.usage()
	res.FirstToken = d.meter.FirstToken()
	res.ErrorType = d.meter.ErrorType()
	return outcome{Result: res, metrics: d.metrics, metricsAgree: d.metricsAgree(), pings: pings}
}

// passStream relays a Bedrock event stream byte for byte, metering a
// decoded copy of its frames.
func (p *Provider) passStream(w http.ResponseWriter, resp *http.Response) outcome {
	defer resp.Body.Close()
	stream.CopyResponseHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	flush := stream.Flusher(w)
	_ = flush()

	d := getDecoder()
	defer d.release()
	d.reset(resp.Body)
	d.meter.Now = p.now
	d.src.tee, d.src.flush = w, flush
	res := providers.Result{Status: resp.StatusCode}
	for {
		_, _, _, err := d.next(false)
		if err == nil {
			continue
		}
		switch {
		case err == errClientGone:
			res.ClientErr = d.src.clientErr
		case err == io.EOF:
			if !d.meter.Usage().Complete && !d.exception {
				res.UpstreamErr = ErrNoMessageStop
			}
		case errors.Is(err, ErrMalformedStream):
			// The client decodes the stream itself: whatever the meter
			// cannot read still reaches it unchanged.
			res.UpstreamErr = err
			_, _ = io.Copy(io.Discard, &d.src)
			if d.src.clientErr != nil {
				res.ClientErr = d.src.clientErr
			}
		default:
			res.UpstreamErr = err
		}
		break
	}
	if res.ClientErr == nil && d.src.clientErr != nil {
		res.ClientErr = d.src.clientErr
	}
	res.BytesWritten = d.src.written
	res.Usage = d.usage()
	res.FirstToken = d.meter.FirstToken()
	res.ErrorType = d.meter.ErrorType()
	return outcome{Result: res, metrics: d.metrics, metricsAgree: d.metricsAgree()}
}

// AnthropicError maps a Bedrock error response — its status and the name
// in x-amzn-ErrorType ("ThrottlingException:http://internal.amazon.com/…";
// only the part before ':' counts) — to the status and error type the
// Anthropic API would have answered with. The name decides when it is
// known, else the status does:
//
//	ValidationException                  400 → 400 invalid_request_error
//	AccessDeniedException, Unrecognized… 401/403 → 403 permission_error
//	ResourceNotFoundException            404 → 404 not_found_error
//	ModelTimeoutException                408 → 504 timeout_error
//	(any)                                413 → 413 request_too_large
//	ThrottlingException,
//	ServiceQuotaExceededException        429 → 429 rate_limit_error
//	ModelErrorException                  424 → 500 api_error
//	InternalServerException              500 → 500 api_error
//	ServiceUnavailableException,
//	ModelNotReadyException               503 → 529 overloaded_error
//	(any)                                502 → 502 api_error, 504 → 504 timeout_error,
//	                                     other 5xx → 500 api_error,
//	                                     other 4xx → same status, invalid_request_error,
//	                                     anything else → 502 api_error
//
// An upstream 401/403 is the gateway's credentials failing, not the
// client's, hence permission_error rather than authentication_error (which
// would send Claude Code to /login).
func AnthropicError(status int, amznErrorType string) (int, string) {
	name, _, _ := strings.Cut(amznErrorType, ":")
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "validationexception":
		if status == http.StatusRequestEntityTooLarge {
			return 413, "request_too_large"
		}
		return 400, "invalid_request_error"
	case "accessdeniedexception", "unrecognizedclientexception", "invalidsignatureexception",
		"expiredtokenexception", "incompletesignature", "incompletesignatureexception",
		"missingauthenticationtoken", "missingauthenticationtokenexception":
		return 403, "permission_error"
	case "resourcenotfoundexception":
		return 404, "not_found_error"
	case "modeltimeoutexception":
		return 504, "timeout_error"
	case "throttlingexception", "servicequotaexceededexception", "toomanyrequestsexception":
		return 429, "rate_limit_error"
	case "serviceunavailableexception", "modelnotreadyexception":
		return 529, "overloaded_error"
	case "internalserverexception", "modelerrorexception", "modelstreamerrorexception":
		return 500, "api_error"
	}
	switch {
	case status == 400:
		return 400, "invalid_request_error"
	case status == 401 || status == 403:
		return 403, "permission_error"
	case status == 404:
		return 404, "not_found_error"
	case status == 408:
		return 504, "timeout_error"
	case status == 413:
		return 413, "request_too_large"
	case status == 429:
		return 429, "rate_limit_error"
	case status == 424: // a model error (ModelErrorException)
		return 500, "api_error"
	case status == 502:
		return 502, "api_error"
	case status == 503 || status == 529:
		return 529, "overloaded_error"
	case status == 504:
		return 504, "timeout_error"
	case status >= 500 && status <= 599:
		return 500, "api_error"
	case status >= 400 && status <= 499:
		return status, "invalid_request_error"
	}
	return 502, "api_error"
}

// bedrockMessage reads the message of a Bedrock error body ({"message":"…"}
// or {"Message":"…"}); "" when there is none.
func bedrockMessage(body []byte) string {
	var v struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Message
}

// translateError answers a Bedrock error status in Anthropic's error shape.
func (p *Provider) translateError(w http.ResponseWriter, resp *http.Response) providers.Result {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorCopy))
	amzn := resp.Header.Get("X-Amzn-Errortype")
	status, typ := AnthropicError(resp.StatusCode, amzn)
	msg := bedrockMessage(body)
	if msg == "" {
		msg = fmt.Sprintf("Bedrock answered HTTP %d", resp.StatusCode)
		if name, _, _ := strings.Cut(amzn, ":"); name != "" {
			msg += " " + name
		}
	}
	return writeJSON(w, resp.Header, status, appendErrorEvent(nil, typ, msg), typ)
}

// writeJSON writes a translated JSON body with the upstream's headers.
func writeJSON(w http.ResponseWriter, upstream http.Header, status int, body []byte, errType string) providers.Result {
	h := w.Header()
	translatedHeaders(h, upstream, "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	n, err := w.Write(body)
	return providers.Result{Status: status, BytesWritten: int64(n), ClientErr: err, ErrorType: errType}
}

// translateCount turns Bedrock's {"inputTokens":N} into Anthropic's
// {"input_tokens":N}; an unreadable answer becomes a 502 api_error.
func (p *Provider) translateCount(w http.ResponseWriter, resp *http.Response) providers.Result {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxErrorCopy))
	first := p.now()
	var v struct {
		InputTokens *int64 `json:"inputTokens"`
	}
	if err != nil || json.Unmarshal(body, &v) != nil || v.InputTokens == nil || *v.InputTokens < 0 {
		return writeJSON(w, resp.Header, http.StatusBadGateway,
			appendErrorEvent(nil, "api_error", "Bedrock's count-tokens answer could not be read."), "api_error")
	}
	out := strconv.AppendInt([]byte(`{"input_tokens":`), *v.InputTokens, 10)
	out = append(out, '}')
	res := writeJSON(w, resp.Header, http.StatusOK, out, "")
	res.Usage = llm.Usage{Complete: true}
	res.FirstToken = first
	return res
}
