package module

import (
	"bytes"
	"net/http"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// costHeader is the response header that tells a client what its
// non-streamed request cost, in exact decimal dollars ("0.000123000").
// Streams cannot carry it (their headers leave before their usage is
// known): GET …/llm_gateway/me gives the session's figure instead.
const costHeader = "X-Llm-Gateway-Cost-Usd"

// maxHeldResponse is the largest non-streamed response held back to put
// its cost in a header; a larger one (a big embeddings answer) goes out as
// it arrives, without the header.
const maxHeldResponse = 4 << 20

// costWriter holds a non-streamed response — status and body — until the
// request is settled, so its headers can carry the cost. A non-streamed
// body is only useful to a client once complete, so holding it adds no
// latency a client can use; the relay already keeps a copy to read the
// usage at its end. Past maxHeldResponse it lets go and passes through.
type costWriter struct {
	http.ResponseWriter
	buf     *bytes.Buffer
	status  int
	passing bool // let go: writes go straight through
}

// holdForCost wraps w for a non-streamed response.
func holdForCost(w http.ResponseWriter) *costWriter {
	b := bodyPool.Get().(*bytes.Buffer)
	b.Reset()
	return &costWriter{ResponseWriter: w, buf: b}
}

// WriteHeader records the status; it is sent with the body.
func (c *costWriter) WriteHeader(status int) {
	if c.passing {
		c.ResponseWriter.WriteHeader(status)
		return
	}
	if c.status == 0 {
		c.status = status
	}
}

// Write holds p, or passes everything held and p through once the response
// outgrows maxHeldResponse.
func (c *costWriter) Write(p []byte) (int, error) {
	if c.passing {
		return c.ResponseWriter.Write(p)
	}
	if c.buf.Len()+len(p) <= maxHeldResponse {
		return c.buf.Write(p)
	}
	if err := c.letGo(); err != nil {
		return 0, err
	}
	return c.ResponseWriter.Write(p)
}

// FlushError holds flushes back with the body; once passing, it flushes.
func (c *costWriter) FlushError() error {
	if !c.passing {
		return nil
	}
	return http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap gives http.NewResponseController the real writer for everything
// but flushing.
func (c *costWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// letGo sends what is held and passes the rest through.
func (c *costWriter) letGo() error {
	c.passing = true
	if c.status != 0 {
		c.ResponseWriter.WriteHeader(c.status)
	}
	_, err := c.ResponseWriter.Write(c.buf.Bytes())
	c.free()
	return err
}

func (c *costWriter) free() {
	if c.buf != nil {
		putBuffer(c.buf)
		c.buf = nil
	}
}

// release sends the held response with its cost header (known: the
// request was priced). It is a no-op for a response already let go.
func (c *costWriter) release(cost governance.Money, known bool) {
	if c.passing {
		return
	}
	if known {
		c.ResponseWriter.Header().Set(costHeader, cost.String())
	}
	_ = c.letGo()
}
