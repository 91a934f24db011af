package llm

import "testing"

func TestMemberValue(t *testing.T) {
	for _, tc := range []struct {
		name, body, member string
		want               string
		ok                 bool
	}{
		{name: "object value", body: `{"id":"msg_1","usage":{"input_tokens":3}}`, member: "usage", want: `{"input_tokens":3}`, ok: true},
		{name: "nested ignored", body: `{"content":[{"type":"text","usage":{"x":1}}],"meta":{"usage":2},"usage":{"output_tokens":9},"z":1}`, member: "usage", want: `{"output_tokens":9}`, ok: true},
		{name: "in string ignored", body: `{"text":"\"usage\":{\"a\":1}","usage":null}`, member: "usage", want: `null`, ok: true},
		{name: "whitespace", body: " {\n \"a\" : 1 ,\r\n\t\"usage\" :\t[1, 2] \n}", member: "usage", want: `[1, 2]`, ok: true},
		{name: "string value", body: `{"type":"error"}`, member: "type", want: `"error"`, ok: true},
		{name: "number last", body: `{"a":{},"n":-1.5e3}`, member: "n", want: `-1.5e3`, ok: true},
		{name: "escaped key", body: `{"us\u0061ge":7}`, member: "usage", want: `7`, ok: true},
		{name: "first of duplicates", body: `{"k":1,"k":2}`, member: "k", want: `1`, ok: true},
		{name: "found before garbage", body: `{"k":1,"x":`, member: "k", want: `1`, ok: true},
		{name: "backslash before quote", body: `{"a":"x\\","k":true}`, member: "k", want: `true`, ok: true},
		{name: "absent", body: `{"a":1,"b":{"k":2}}`, member: "k"},
		{name: "empty object", body: `{}`, member: "k"},
		{name: "array", body: `[{"k":1}]`, member: "k"},
		{name: "empty", body: ``, member: "k"},
		{name: "truncated before", body: `{"a":[1,2`, member: "k"},
		{name: "missing colon", body: `{"a" 1,"k":2}`, member: "k"},
		{name: "missing comma", body: `{"a":1 "k":2}`, member: "k"},
		{name: "scalars delimited, not validated", body: `{"a":nope,"k":2}`, member: "k", want: `2`, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MemberValue([]byte(tc.body), tc.member)
			if ok != tc.ok || string(got) != tc.want {
				t.Fatalf("MemberValue(%q, %q) = %q, %v; want %q, %v", tc.body, tc.member, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMemberValueAllocs(t *testing.T) {
	b := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello \"world\""}}`)
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := MemberValue(b, "delta"); !ok {
			t.Fatal("not found")
		}
	}); n != 0 {
		t.Fatalf("%v allocs per run, want 0", n)
	}
}
