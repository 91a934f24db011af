package stream

import (
	"reflect"
	"strings"
	"testing"
)

// scanAll feeds the chunks to a fresh scanner and returns the events it
// delivered and the scanner.
func scanAll(max int, chunks ...[]byte) ([]ev, *SSEScanner) {
	s := &SSEScanner{Max: max}
	var got []ev
	for _, c := range chunks {
		s.Feed(c, func(event, data []byte) {
			got = append(got, ev{string(event), string(data)})
		})
	}
	return got, s
}

type sseCase struct {
	name       string
	in         string
	max        int
	want       []ev
	pending    bool
	overflowed bool
}

func sseCases() []sseCase {
	turn := claudeTurn()
	long := strings.Repeat("x", 100)
	return []sseCase{
		{name: "anthropic turn LF", in: encodeSSE("\n", turn...), want: turn},
		{name: "anthropic turn CRLF", in: encodeSSE("\r\n", turn...), want: turn},
		{name: "anthropic turn CR", in: encodeSSE("\r", turn...), want: turn},
		{name: "comments id retry ignored",
			in:   ": keep-alive\n\nid: 7\nretry: 1000\n:comment\nevent: ping\ndata: {}\n\n",
			want: []ev{{"ping", "{}"}}},
		{name: "multi-line data joined",
			in:   "event: x\ndata: a\ndata:b\ndata:  c\ndata\ndata:\n\n",
			want: []ev{{"x", "a\nb\n c\n\n"}}},
		{name: "no event name",
			in:   "data: [DONE]\n\n",
			want: []ev{{"", "[DONE]"}}},
		{name: "event name resets between events",
			in:   "event: a\ndata: 1\n\ndata: 2\n\n",
			want: []ev{{"a", "1"}, {"", "2"}}},
		{name: "event without data is not delivered",
			in:   "event: a\n\nevent: b\ndata: 2\n\n",
			want: []ev{{"b", "2"}}},
		{name: "empty data line delivers empty data",
			in:   "data:\n\n",
			want: []ev{{"", ""}}},
		{name: "extra blank lines",
			in:   "\n\n\r\n\rdata: 1\n\n\n\ndata: 2\r\n\r\n\r\n",
			want: []ev{{"", "1"}, {"", "2"}}},
		{name: "mixed endings",
			in:   "event: a\r\ndata: 1\r\rdata: 2\n\revent: c\rdata: 3\r\n\n",
			want: []ev{{"a", "1"}, {"", "2"}, {"c", "3"}}},
		{name: "unknown field and colon in value",
			in:   "foo: bar\nevent: e\ndata: {\"a\":\"b:c\"}\n\n",
			want: []ev{{"e", `{"a":"b:c"}`}}},
		{name: "unterminated last event is pending",
			in:      encodeSSE("\n", ev{"message_start", evMessageStartPlain}) + "event: content_block_delta\ndata: {\"type\":",
			want:    []ev{{"message_start", evMessageStartPlain}},
			pending: true},
		{name: "event line only is pending",
			in:      "data: 1\n\nevent: x\n",
			want:    []ev{{"", "1"}},
			pending: true},
		{name: "terminated by single newline only is pending",
			in:      "data: 1\n",
			pending: true},
		{name: "overflow drops the big event only",
			in:         "event: a\ndata: 1\n\nevent: big\ndata: " + long + "\n\nevent: c\ndata: 3\n\n",
			max:        64,
			want:       []ev{{"a", "1"}, {"c", "3"}},
			overflowed: true},
		{name: "overflow across data lines",
			in:         "data: " + long[:40] + "\ndata: " + long[:40] + "\n\ndata: ok\n\n",
			max:        64,
			want:       []ev{{"", "ok"}},
			overflowed: true},
		{name: "long comment skipped without dropping its event",
			in:   "data: a\n:" + long + "\ndata: b\n\n",
			max:  64,
			want: []ev{{"", "a\nb"}}},
		{name: "long unknown field skipped",
			in:   "x-" + long + "\ndata: 1\n\n",
			max:  64,
			want: []ev{{"", "1"}}},
		{name: "long event name drops its event",
			in:         "event: " + long + "\ndata: 1\n\ndata: 2\n\n",
			max:        64,
			want:       []ev{{"", "2"}},
			overflowed: true},
		{name: "overflowed unterminated event is pending",
			in:         "data: " + long + "\n",
			max:        64,
			pending:    true,
			overflowed: true},
		{name: "exactly at the limit fits",
			in:   "data: " + long[:64] + "\n\n",
			max:  64,
			want: []ev{{"", long[:64]}}},
	}
}

func TestSSEScanner(t *testing.T) {
	for _, tc := range sseCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			check := func(how string, got []ev, s *SSEScanner) {
				t.Helper()
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s: got %q\nwant %q", how, got, tc.want)
				}
				if s.Pending() != tc.pending {
					t.Fatalf("%s: Pending() = %v, want %v", how, s.Pending(), tc.pending)
				}
				if s.Overflowed() != tc.overflowed {
					t.Fatalf("%s: Overflowed() = %v, want %v", how, s.Overflowed(), tc.overflowed)
				}
			}
			got, s := scanAll(tc.max, in)
			check("whole", got, s)
			for i := 0; i <= len(in); i++ {
				got, s := scanAll(tc.max, in[:i], in[i:])
				check("split at "+itoa(i), got, s)
			}
			chunks := make([][]byte, len(in))
			for i := range in {
				chunks[i] = in[i : i+1]
			}
			got, s = scanAll(tc.max, chunks...)
			check("byte at a time", got, s)
			// Three-way splits around every CR exercise a CRLF split from
			// both sides with an empty Feed between.
			for i := 0; i < len(in); i++ {
				if in[i] == '\r' {
					got, s := scanAll(tc.max, in[:i+1], nil, in[i+1:])
					check("after CR "+itoa(i), got, s)
				}
			}
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestSSEScannerReset(t *testing.T) {
	s := &SSEScanner{Max: 1 << 10}
	s.Feed([]byte("event: a\ndata: part"), func(_, _ []byte) { t.Fatal("delivered a partial event") })
	if !s.Pending() {
		t.Fatal("want pending")
	}
	s.Reset()
	if s.Pending() || s.Overflowed() || s.Max != 1<<10 {
		t.Fatalf("after Reset: pending %v overflowed %v max %d", s.Pending(), s.Overflowed(), s.Max)
	}
	var got []ev
	s.Feed([]byte("data: b\n\n"), func(e, d []byte) { got = append(got, ev{string(e), string(d)}) })
	if want := []ev{{"", "b"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestSSEScannerLargeEventReleased checks that a buffer grown by one large
// event is not kept for the rest of the stream.
func TestSSEScannerLargeEventReleased(t *testing.T) {
	s := &SSEScanner{}
	big := "data: " + strings.Repeat("y", 1<<20) + "\n\n"
	n := 0
	s.Feed([]byte(big[:100]), func(_, _ []byte) {})
	s.Feed([]byte(big[100:]), func(_, d []byte) { n = len(d) })
	if n != 1<<20 {
		t.Fatalf("delivered %d bytes", n)
	}
	if cap(s.data) > KeepCap || cap(s.line) > KeepCap {
		t.Fatalf("kept buffers: data %d line %d", cap(s.data), cap(s.line))
	}
}

func TestSSEScannerAllocs(t *testing.T) {
	stream := []byte(encodeSSE("\n", claudeTurn()...))
	s := &SSEScanner{}
	count := 0
	fn := func(_, _ []byte) { count++ }
	feed := func() {
		// Split mid-event so the carry-over path is exercised.
		s.Feed(stream[:101], fn)
		s.Feed(stream[101:], fn)
	}
	feed() // warm the buffers
	if n := testing.AllocsPerRun(50, feed); n != 0 {
		t.Fatalf("%v allocs per stream, want 0", n)
	}
	if count == 0 {
		t.Fatal("no events")
	}
}

// FuzzSSEScanner checks that chunk boundaries never change what is
// delivered, including around CR LF pairs and the Max limit.
func FuzzSSEScanner(f *testing.F) {
	for _, tc := range sseCases() {
		f.Add([]byte(tc.in), uint16(len(tc.in)/3), uint16(len(tc.in)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, a, b uint16) {
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		want, ws := scanAll(32, in)
		got, gs := scanAll(32, in[:i], in[i:j], in[j:])
		if !reflect.DeepEqual(got, want) || gs.Pending() != ws.Pending() || gs.Overflowed() != ws.Overflowed() {
			t.Fatalf("split %d/%d: got %q (pending %v, overflowed %v), whole %q (pending %v, overflowed %v)",
				i, j, got, gs.Pending(), gs.Overflowed(), want, ws.Pending(), ws.Overflowed())
		}
	})
}
