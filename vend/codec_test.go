package vend

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
)

func TestUnknownKey(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{`{}`, "", false},
		{`{"channel":"a","role":"VIEWER","clientId":"x","create":true}`, "", false},
		{` { "ROLE" : "VIEWER" , "Channel":"a" } `, "", false},
		{`{"channel":{"nested":[1,"]}",{"x":"}"}]},"role":"V"}`, "", false},
		{`{"channel":"a\"}","role":"x"}`, "", false},
		{`{"expires":300}`, "expires", true},
		{`{"channel":"a","expires":300}`, "expires", true},
		{`{"chan\u006eel":"a"}`, "", false},
		{`{"ro\u006ce2":"a"}`, "role2", true},
		{`{"channel":null,"x":[]}`, "x", true},
		{`null`, "", false},
		{`[]`, "", false},
	}
	s := &Server{maxBody: 4096}
	for _, c := range cases {
		_, status, code, msg, field := s.decode(newJSONRequest([]byte(c.in)))
		unknown := status == 400 && code == "invalid_argument" && strings.Contains(msg, "unknown field")
		if unknown != c.ok || unknown && field != c.want {
			t.Errorf("decode(%s) = %d %s on %q; want an unknown field: %v %q", c.in, status, code, field, c.ok, c.want)
		}
	}
}

// strictDecode is the reference: encoding/json's Decoder with
// DisallowUnknownFields, one value and nothing after it.
func strictDecode(b []byte) (connectionRequest, error) {
	var req connectionRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("trailing data")
	}
	return req, nil
}

// FuzzDecode checks that the fast decoder accepts exactly what the strict
// reference accepts, with the same result, and never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"channel":"cam-1","role":"VIEWER"}`, `{"channel":"cam-1","role":"VIEWER","clientId":"a","create":true}`,
		`{"CHANNEL":"x"}`, `{"ſhannel":"x"}`, `{"channel":1}`, `{"x":1}`, `{"channel":"a"}{}`, `[]`, `null`, ` `, `{"channel":"\u00e9"}`,
		`{"channel":"a","role":"b","role":"c"}`, `{"create":"yes"}`, `{"a":{"b":[1,2,{"c":"}"}]}}`, "{\"channel\":\"a\"}\n",
	} {
		f.Add([]byte(s))
	}
	s := &Server{maxBody: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		got, status, _, _, _ := s.decode(newJSONRequest(b))
		want, err := strictDecode(b)
		if (status == 0) != (err == nil) {
			t.Fatalf("%q: fast status %d, strict error %v", b, status, err)
		}
		if status == 0 && got != want {
			t.Fatalf("%q: fast %+v, strict %+v", b, got, want)
		}
	})
}

func TestDecodeLimits(t *testing.T) {
	s := &Server{maxBody: 64}
	body := []byte(`{"channel":"` + strings.Repeat("a", 60) + `"}`)
	r := newJSONRequest(body)
	r.ContentLength = -1 // chunked: the length is found while reading
	if _, status, _, _, _ := s.decode(r); status != 413 {
		t.Errorf("chunked body over the limit: %d; want 413", status)
	}
	r = newJSONRequest([]byte(`{"channel":"a","role":"VIEWER"}`))
	r.Body = io.NopCloser(iotest.OneByteReader(bytes.NewReader([]byte(`{"channel":"a","role":"VIEWER"}`))))
	if req, status, _, _, _ := s.decode(r); status != 0 || req.Channel != "a" {
		t.Errorf("a body read a byte at a time: %d %+v", status, req)
	}
	r.Body = io.NopCloser(iotest.ErrReader(errors.New("connection reset")))
	if _, status, _, _, _ := s.decode(r); status != 400 {
		t.Errorf("a failing body: %d; want 400", status)
	}
}

func TestJSONStrings(t *testing.T) {
	long := "wss://v-1.example/?X-Amz-ClientId=token-alice.x&X-Amz-Signature=0123456789abcdef"
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "tab\tnl\ncr\r", "\x00\x01\x1f\x7f", "é ü 日本", "a&b<c>d", "ls\u2028ps\u2029", "\xff\xfe",
		long, long + `"`, `"` + long, long[:7] + "\n" + long, long[:8] + "\\" + long, long[:15] + "\u2028" + long, long[:16] + "\x7f\x1f" + long, long + "é\u2029"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		want := strings.TrimSuffix(buf.String(), "\n")
		var rec recordWriter
		rec.benchWriter = &benchWriter{h: make(http.Header)}
		(&Server{}).writeConnection(&rec, &connectionResponse{URL: s, ICEServers: []ICEServer{}})
		var back map[string]json.RawMessage
		if err := json.Unmarshal(rec.body.Bytes(), &back); err != nil {
			t.Fatalf("writeConnection with URL %q: %s: %v", s, rec.body.Bytes(), err)
		}
		got := string(back["url"])
		if s == "\xff\xfe" {
			// encoding/json replaces invalid UTF-8; both decode to valid JSON.
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Errorf("the URL %q as JSON = %s: not JSON: %v", s, got, err)
			}
			continue
		}
		if got != want {
			t.Errorf("the URL %q as JSON = %s; want %s", s, got, want)
		}
	}
}

// FuzzJSONString checks appendJSONString on valid UTF-8: the JSON decodes
// back to the string, has no raw control character or line separator
// (which some JavaScript parsers reject), and escapes nothing else.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "wss://v-1.example/?a=b&c=d", "0123456\"89abcdef\\\n\b", "ls\u2028ps\u2029 é 日本 \x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Fatalf("appendJSONString(%q) = %s, which decodes to %q, %v", s, got, back, err)
		}
		// Each escape has one backslash, and an escaped backslash two.
		backslashes := strings.Count(s, `\`)
		for _, r := range s {
			if r < 0x20 || r == '"' || r == '\\' || r == '\u2028' || r == '\u2029' {
				backslashes++
			}
		}
		if n := bytes.Count(got, []byte(`\`)); n != backslashes {
			t.Errorf("appendJSONString(%q) = %s: %d backslashes; want %d", s, got, n, backslashes)
		}
		if bytes.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == '\u2028' || r == '\u2029' }) {
			t.Errorf("appendJSONString(%q) = %s: a raw control character or line separator", s, got)
		}
	})
}

func TestWriteConnectionMatchesEncodingJSON(t *testing.T) {
	s := &Server{}
	c := &connectionResponse{
		URL: "wss://v-1.example/?a=b&c=d", ExpiresAt: time.Date(2026, 11, 23, 10, 4, 59, 0, time.UTC), Role: kvs.Viewer,
		ClientID: "token-alice.x", ChannelARN: testARN("cam-1"), Region: "us-west-2", Endpoint: "wss://v-1.example",
		ICEServers: testICE,
	}
	odd := &connectionResponse{URL: "u", Role: kvs.Master, ExpiresAt: c.ExpiresAt,
		ICEServers: []ICEServer{{URLs: []string{}}, {URLs: []string{`a"b`, "c"}, Username: "u<&>", Credential: "p\u2028w"}}}
	for _, cc := range []*connectionResponse{c, {URL: "u", Role: kvs.Master, ExpiresAt: c.ExpiresAt, ICEServers: []ICEServer{}}, odd} {
		w := &benchWriter{h: make(map[string][]string)}
		rec := &recordWriter{benchWriter: w}
		s.writeConnection(rec, cc)
		want, _ := marshalNoEscape(cc)
		if got := strings.TrimSuffix(rec.body.String(), "\n"); got != string(want) {
			t.Errorf("writeConnection:\n got %s\nwant %s", got, want)
		}
		var back connectionResponse
		if err := json.Unmarshal(rec.body.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(*cc, back); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

type recordWriter struct {
	*benchWriter
	body bytes.Buffer
}

func (w *recordWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

func newJSONRequest(b []byte) *http.Request {
	r, _ := http.NewRequest("POST", "http://127.0.0.1/v1/connections", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	return r
}
