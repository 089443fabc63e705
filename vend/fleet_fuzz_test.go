package vend

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/awskvs"
)

// FuzzParseDry: an announcement from another copy (or anyone who can
// publish on the Redis) never panics, and only yields keys with a finite,
// bounded number of tokens.
func FuzzParseDry(f *testing.F) {
	for _, s := range []string{`"token:alice"` + "\t-2.5\n", `"10.0.0.1"` + "\t0\n" + `"::1"` + "\t0.5", `""` + "\t1\n", `"k"` + "\tNaN\n" + `"k"` + "\t1e308\n", "no tab\n", "token:bob\t1\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range parseDry(s) {
			if back := parseDry(formatDry(d.key, "0")); len(back) != 1 || back[0].key != d.key {
				t.Errorf("formatDry(%q) reads back as %+v", d.key, back)
			}
			if d.key == "" || d.tokens != d.tokens || d.tokens > 1e6 || d.tokens < -1e6 {
				t.Errorf("parseDry(%q) yielded %+v", s, d)
			}
		}
	})
}

// FuzzReadCall: whatever the body of a KVS request, reading its channel
// neither panics nor changes the body sent.
func FuzzReadCall(f *testing.F) {
	for _, s := range []string{`{"ChannelName":"cam-1"}`, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/c/1"}`, `{`, ``, `[]`, `{"ChannelName":5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest("POST", "http://127.0.0.1/describeSignalingChannel", bytes.NewReader(body))
		read, _, err := readCall(r, "DescribeSignalingChannel")
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > 0 && !bytes.Equal(read, body) {
			t.Errorf("read %q of %q", read, body)
		}
		got, _ := io.ReadAll(r.Body)
		if !bytes.Equal(got, body) {
			t.Errorf("the body changed: %q → %q", body, got)
		}
	})
}

// TestDryKeysCarryAnyName: a caller whose name holds a tab or a newline
// (a JWT's subject can) is announced as itself, and its name cannot add
// another caller's line.
func TestDryKeysCarryAnyName(t *testing.T) {
	names := []string{"token:alice", "jwt:evil\n\"token:bob\"\t-1000000", "jwt:tab\there", `jwt:"quoted"`, "ip:::1"}
	var msg strings.Builder
	for _, n := range names {
		msg.WriteString(formatDry(n, "-2"))
	}
	var got []string
	for _, d := range parseDry(msg.String()) {
		if d.tokens != -2 {
			t.Errorf("%q: %v tokens; want -2", d.key, d.tokens)
		}
		got = append(got, d.key)
	}
	if !slices.Equal(got, names) {
		t.Errorf("parseDry read %q; want %q", got, names)
	}
}

// FuzzICEAged: whatever a GetIceServerConfig answer kept in Redis holds,
// aging it never panics, and what it yields keeps every server with a Ttl
// past the resolvers' margin.
func FuzzICEAged(f *testing.F) {
	for _, s := range []string{`{"IceServerList":[{"Password":"p","Ttl":300,"Uris":["turn:a"],"Username":"u"}]}`,
		`{"IceServerList":[{"Ttl":"300"}]}`, `{"IceServerList":[{"Ttl":1e30}]}`, `{"IceServerList":null}`, `[`, ``} {
		f.Add([]byte(s), int64(10*time.Second))
	}
	f.Fuzz(func(t *testing.T, body []byte, d int64) {
		out, ok := iceAged(body, time.Duration(d))
		if !ok {
			return
		}
		var a iceAnswer
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatalf("aged answer is not JSON: %v", err)
		}
		ttls, ok := a.ttls()
		if !ok {
			t.Fatalf("aged answer %s has a bad Ttl", out)
		}
		for _, ttl := range ttls {
			if time.Duration(ttl)*time.Second <= awskvs.ICEMargin {
				t.Errorf("aged by %v: Ttl %d within the margin", time.Duration(d), ttl)
			}
		}
	})
}
