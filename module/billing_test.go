package module

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers"
	"github.com/llmgateway/caddy-llm-gateway/providers/anthropic"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// recordingLedger is a memory ledger that keeps every record for a test.
type recordingLedger struct {
	*governance.MemoryStore
	mu   sync.Mutex
	recs []governance.Record
}

func (l *recordingLedger) Record(r *governance.Record) {
	l.MemoryStore.Record(r)
	l.mu.Lock()
	l.recs = append(l.recs, *r)
	l.mu.Unlock()
}

func (l *recordingLedger) records() []governance.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]governance.Record(nil), l.recs...)
}

const testSecret = "sk-llmgw-test"

// testGateway is a provisioned-equivalent gateway whose one Anthropic
// provider is the round tripper up, with a recording memory ledger.
func testGateway(t *testing.T, up http.RoundTripper) (*Gateway, *recordingLedger) {
	t.Helper()
	ledger := &recordingLedger{MemoryStore: governance.NewMemoryStore()}
	return newTestGateway(t, up, testSecret, ledger), ledger
}

// newTestGateway builds the gateway state Provision would: key alice
// (secret) in team platform, one Anthropic provider on up serving claude-*,
// memory counters over ledger.
func newTestGateway(tb testing.TB, up http.RoundTripper, secret string, ledger governance.Store) *Gateway {
	tb.Helper()
	p, err := anthropic.New(anthropic.Config{Name: "anthropic", APIKeys: []string{"sk-ant-test"}, Transport: up})
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := governance.NewRegistry(nil, []governance.TeamSpec{{Name: "platform"}},
		[]governance.KeySpec{{Name: "alice", Hash: governance.HashSecret(secret), Team: "platform"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	store := &sharedStore{ledger: ledger, counters: governance.NewMemoryCounters(nil), logger: zap.NewNop()}
	store.leases = newLeaseTracker(store, zap.NewNop(), newMetrics(baseLabels))
	tb.Cleanup(store.leases.stop)
	store.refs.Store(1)
	return &Gateway{state: &state{
		registry: reg,
		keys:     governance.NewKeyring(reg, nil),
		router:   providers.NewRouter(providers.RouterConfig{Providers: []providers.Eligible{{Provider: p, Models: []llm.Glob{"claude-*"}}}}),
		store:    store,
		metrics:  newMetrics(baseLabels),
		location: time.UTC,
		maxBody:  DefaultMaxRequestBody,
		logger:   zap.NewNop(),
		labels:   newLabelResolver(nil, nil),
	}}
}

// serveTest runs one request through g with an access-log field set, the
// way Caddy's server does, and returns the fields the gateway logged.
func serveTest(t *testing.T, g *Gateway, ctx context.Context, w http.ResponseWriter, body string) map[string]any {
	t.Helper()
	elf := new(caddyhttp.ExtraLogFields)
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, elf)
	r := httptest.NewRequestWithContext(ctx, "POST", "http://gw/v1/messages", bytes.NewReader([]byte(body)))
	r.Header.Set("X-Api-Key", testSecret)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		if err := g.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
	}()
	return extraFields(elf)
}

// extraFields reads the fields added to an access-log entry (Caddy keeps
// them unexported): bools and integers as int64, strings as strings.
func extraFields(elf *caddyhttp.ExtraLogFields) map[string]any {
	out := map[string]any{}
	fields := reflect.ValueOf(elf).Elem().FieldByName("fields")
	for i := range fields.Len() {
		f := fields.Index(i)
		key := f.FieldByName("Key").String()
		if s := f.FieldByName("String").String(); s != "" {
			out[key] = s
		} else {
			out[key] = f.FieldByName("Integer").Int()
		}
	}
	return out
}

// cuttingBody returns data, then fails as a connection reset would.
type cuttingBody struct {
	data []byte
	done bool
}

func (b *cuttingBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.ErrUnexpectedEOF
	}
	b.done = true
	return copy(p, b.data), nil
}

func (b *cuttingBody) Close() error { return nil }

// TestNonStreamedCutIsCharged: a non-streamed reply cut halfway (its usage,
// at the end, never arrived) is charged the input estimated from the
// request and the output from the bytes that passed, marked estimated.
func TestNonStreamedCutIsCharged(t *testing.T) {
	full := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"` +
		string(bytes.Repeat([]byte("all work and no play "), 40)) + `"}],"stop_reason":"end_turn","usage":{"input_tokens":30,"output_tokens":200}}`
	half := []byte(full[:len(full)/2])
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: &cuttingBody{data: half}, ContentLength: int64(len(full)), Request: r}, nil
	})
	g, ledger := testGateway(t, up)
	body := `{"model":"claude-sonnet-4-5","max_tokens":1000,"messages":[{"role":"user","content":"write the same sentence forty times, please"}]}`
	w := httptest.NewRecorder()
	fields := serveTest(t, g, context.Background(), w, body)

	recs := ledger.records()
	if len(recs) != 1 {
		t.Fatalf("%d ledger records", len(recs))
	}
	u := recs[0].Usage
	wantIn, wantOut := int64((len(body)+3)/4), int64((len(half)+3)/4)
	if u.InputTokens != wantIn || !u.InputEstimated || u.OutputTokens != wantOut || !u.OutputEstimated || u.Complete {
		t.Fatalf("usage %+v, want input %d and output %d, both estimated", u, wantIn, wantOut)
	}
	// claude-sonnet-4-5: $3 in, $15 out per million.
	if want := governance.Money(wantIn*3+wantOut*15) * governance.Dollar / 1_000_000; recs[0].Cost != want {
		t.Fatalf("cost %s, want %s", recs[0].Cost, want)
	}
	if fields["llm.input_estimated"] != int64(1) || fields["llm.output_estimated"] != int64(1) {
		t.Fatalf("log fields %v", fields)
	}
}

// endCancelWriter cancels the request's context once the whole body
// (Content-Length bytes) has been written: a client that read the complete
// response and hung up before the handler returned.
type endCancelWriter struct {
	*httptest.ResponseRecorder
	cancel  context.CancelFunc
	written int
}

func (w *endCancelWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	w.written += n
	if cl := w.Header().Get("Content-Length"); cl != "" && cl == strconv.Itoa(w.written) {
		w.cancel()
	}
	return n, err
}

// TestRelayedErrorReadCompletelyIsNotClientGone: a relayed 429 whose body
// the client read completely is not logged as the client gone, even if the
// client hung up before the handler returned; one that left mid-stream is.
func TestRelayedErrorReadCompletelyIsNotClientGone(t *testing.T) {
	errBody := `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 429, Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"7"}},
			Body: io.NopCloser(bytes.NewReader([]byte(errBody))), ContentLength: int64(len(errBody)), Request: r}, nil
	})
	g, _ := testGateway(t, up)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &endCancelWriter{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
	fields := serveTest(t, g, ctx, w, `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	if ctx.Err() == nil || w.Code != 429 || w.Body.String() != errBody {
		t.Fatalf("setup: ctx %v, %d %q", ctx.Err(), w.Code, w.Body.String())
	}
	if _, gone := fields["llm.client_gone"]; gone {
		t.Fatalf("a client that read the whole 429 is logged as gone: %v", fields)
	}

	// A client gone mid-body is still reported.
	hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body: &ctxBody{ctx: r.Context(), first: []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n")}, Request: r}, nil
	})
	g2, _ := testGateway(t, hang)
	ctx2, cancel2 := context.WithCancel(context.Background())
	w2 := &firstWriteCancel{ResponseRecorder: httptest.NewRecorder(), cancel: cancel2}
	fields = serveTest(t, g2, ctx2, w2, `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if fields["llm.client_gone"] != int64(1) {
		t.Fatalf("client gone mid-stream not logged: %v", fields)
	}
}

// ctxBody returns first, then blocks until ctx is done.
type ctxBody struct {
	ctx   context.Context
	first []byte
	sent  bool
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, b.first), nil
	}
	<-b.ctx.Done()
	return 0, errors.Join(context.Canceled, b.ctx.Err())
}

func (b *ctxBody) Close() error { return nil }

// firstWriteCancel cancels the request after the first body write.
type firstWriteCancel struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *firstWriteCancel) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	w.cancel()
	return n, err
}
