package stream

import (
	"io"
	"testing"
	"time"
)

// benchTurn is a realistic ~300-event Claude Code turn: a long thinking
// block, a long text answer with non-ASCII and escapes, a tool call streamed
// as JSON fragments, pings, and the closing usage.
func benchTurn() []ev {
	evs := []ev{{"message_start", evMessageStartCached}, {"content_block_start", evThinkingStart}}
	words := []string{`"Let me look at "`, `"the failing test \u2014 "`, `"it asserts \"ok\"\n"`, `"but the handler "`, `"returns caf\u00e9 \ud83d\ude00 "`}
	for i := 0; i < 70; i++ {
		evs = append(evs, ev{"content_block_delta", thinkingDelta(words[i%len(words)])})
		if i%40 == 39 {
			evs = append(evs, ev{"ping", evPing})
		}
	}
	evs = append(evs, ev{"content_block_delta", evSignature}, ev{"content_block_stop", evBlockStop0}, ev{"content_block_start", evTextStart1})
	for i := 0; i < 170; i++ {
		evs = append(evs, ev{"content_block_delta", textDelta(1, words[(i+2)%len(words)])})
		if i%40 == 39 {
			evs = append(evs, ev{"ping", evPing})
		}
	}
	evs = append(evs, ev{"content_block_stop", evBlockStop1}, ev{"content_block_start", evToolStart2})
	for i := 0; i < 45; i++ {
		evs = append(evs, ev{"content_block_delta", jsonDelta(`"{\"file_path\": \"/src/handler.go\", \"old_string\": \"return nil\"`)})
	}
	evs = append(evs,
		ev{"content_block_stop", evBlockStop2},
		ev{"message_delta", messageDelta("tool_use", `{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":90112,"output_tokens":1789}`)},
		ev{"message_stop", evMessageStop})
	return evs
}

func countContentDeltas(evs []ev) int {
	n := 0
	for _, e := range evs {
		if e.event == "content_block_delta" {
			n++
		}
	}
	return n
}

// BenchmarkAnthropicMeterStream meters the whole turn through scanner and
// meter, fed in 1400-byte chunks (a TCP segment). The few allocations per
// stream are message_start's and message_delta's usage decoding; content
// deltas allocate nothing.
func BenchmarkAnthropicMeterStream(b *testing.B) {
	evs := benchTurn()
	stream := []byte(encodeSSE("\n", evs...))
	a := &AnthropicSSE{}
	a.Meter.Now = time.Now
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		for p := stream; len(p) > 0; {
			n := min(1400, len(p))
			a.Feed(p[:n])
			p = p[n:]
		}
		if !a.Meter.Usage().Complete {
			b.Fatal("incomplete")
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkAnthropicMeterContentDelta is the hot path alone: one
// content_block_delta event through scanner and meter.
func BenchmarkAnthropicMeterContentDelta(b *testing.B) {
	event := []byte(encodeSSE("\n", ev{"content_block_delta", textDelta(1, `"returns caf\u00e9 \ud83d\ude00 and \"more\" text here"`)}))
	a := &AnthropicSSE{}
	a.Meter.Now = time.Now
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		a.Feed(event)
	}
}

// eventReader returns one SSE event per Read, as an upstream that flushes
// every event does.
type eventReader struct {
	events [][]byte
	i      int
}

func (r *eventReader) Read(p []byte) (int, error) {
	if r.i == len(r.events) {
		return 0, io.EOF
	}
	n := copy(p, r.events[r.i])
	r.i++
	return n, nil
}

// BenchmarkPumpStream relays the turn, one event per read, through Pump with
// a flush per write and the meter as onChunk.
func BenchmarkPumpStream(b *testing.B) {
	evs := benchTurn()
	chunks := make([][]byte, len(evs))
	total := 0
	for i, e := range evs {
		chunks[i] = []byte(encodeSSE("\n", e))
		total += len(chunks[i])
	}
	a := &AnthropicSSE{}
	r := &eventReader{events: chunks}
	flushes := 0
	flush := func() error { flushes++; return nil }
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		r.i = 0
		if _, up, cl := Pump(io.Discard, flush, r, a.Feed); up != nil || cl != nil {
			b.Fatal(up, cl)
		}
	}
}

// TestStreamSteadyStateAllocs asserts the per-content-delta target over a
// whole realistic stream: allocations do not grow with the number of deltas.
func TestStreamSteadyStateAllocs(t *testing.T) {
	short := []ev{{"message_start", evMessageStartCached}, {"content_block_start", evTextStart1}}
	long := append([]ev(nil), short...)
	for i := 0; i < 500; i++ {
		long = append(long, ev{"content_block_delta", textDelta(1, `"caf\u00e9 \ud83d\ude00 \"x\"\n"`)})
	}
	tail := []ev{{"content_block_stop", evBlockStop1}, {"message_delta", messageDelta("end_turn", `{"output_tokens":9}`)}, {"message_stop", evMessageStop}}
	short, long = append(short, tail...), append(long, tail...)
	allocs := func(evs []ev) float64 {
		stream := []byte(encodeSSE("\r\n", evs...))
		a := &AnthropicSSE{}
		run := func() {
			a.Reset()
			for p := stream; len(p) > 0; {
				n := min(777, len(p))
				a.Feed(p[:n])
				p = p[n:]
			}
		}
		run()
		return testing.AllocsPerRun(20, run)
	}
	s, l := allocs(short), allocs(long)
	if l != s {
		t.Fatalf("%v allocs for 500 deltas vs %v for none: content deltas allocate", l, s)
	}
	if countContentDeltas(benchTurn()) < 250 || len(benchTurn()) < 280 {
		t.Fatal("bench turn too small")
	}
}
