package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// terminalControlRE matches what could drive a terminal: C0 controls but
// tab and line feed, DEL, C1 controls.
var terminalControlRE = regexp.MustCompile("[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")

// TestConnectPrintsNoTerminalEscapes: a refusal message from the service,
// and a --url given on the command line, reach the terminal quoted: no
// escape sequence, no carriage return, no forged kvssign line.
func TestConnectPrintsNoTerminalEscapes(t *testing.T) {
	const evil = "\x1b]0;pwned\x07\x1b[2J\u009b2J\r\nkvssign: connected as MASTER to arn:forged"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"message":"` + strings.NewReplacer("\x1b", `\u001b`, "\x07", `\u0007`, "\r", `\r`, "\n", `\n`).Replace(evil) + `"}`))
	}))
	t.Cleanup(srv.Close)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"refusal message", []string{"--url", ws + "/signaling/viewer/v?X-Amz-ClientId=v%1B%5B2J&X-Amz-Signature=00"}, 1},
		{"refusal message, json", []string{"--url", ws + "/?X-Amz-ClientId=v%C2%9B2J&X-Amz-Signature=00", "--output", "json"}, 1},
		{"URL with escapes", []string{"--url", "wss://h\x1b]0;pwned\x07\r\nkvssign: connected/?X-Amz-Signature=00"}, 2},
		{"escape in the ARN", []string{"--url", ws + "/?X-Amz-ChannelARN=arn%1B%5D0%3Bx%07&X-Amz-Signature=00"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, nil, append([]string{"connect", "--once", "--timeout", "5s"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d; want %d\n%v", r.code, tc.code, r)
			}
			for _, out := range []string{r.stdout, r.stderr} {
				if m := terminalControlRE.FindString(out); m != "" {
					t.Errorf("output holds %q:\n%q", m, out)
				}
				for _, l := range strings.Split(out, "\n") {
					if strings.HasPrefix(l, "kvssign: connected") {
						t.Errorf("a forged line was printed: %q", l)
					}
				}
			}
		})
	}
}

// TestConnectPrintsWhatItCannotModel: connect, a relay, prints every
// signaling message as received, also of a type the client does not know
// or with a payload it cannot decode; it skips the service's blank
// keep-alive frames, and ends with exit 0 when the service closes.
func TestConnectPrintsWhatItCannotModel(t *testing.T) {
	frames := []string{
		" ",
		`{"messageType":"SOMETHING_NEW","messagePayload":"e30="}`,
		`{"messageType":"SDP_OFFER","senderClientId":"v","messagePayload":"***"}`,
		// A peer's SDP with a raw C1 control (CSI) in it: valid JSON.
		`{"messageType":"SDP_OFFER","senderClientId":"v","messagePayload":"` + base64.StdEncoding.EncodeToString([]byte("{\"type\":\"offer\",\"sdp\":\"v=0 \u009b2J\"}")) + `"}`,
		`{"messageType":"GO_AWAY"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for _, f := range frames {
			c.Write(r.Context(), websocket.MessageText, []byte(f))
		}
		c.Close(websocket.StatusGoingAway, "bye")
	}))
	t.Cleanup(srv.Close)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?X-Amz-Signature=00"
	r := cli(t, nil, "connect", "--url", u, "--timeout", "5s")
	want := `{"messageType":"SOMETHING_NEW","messagePayload":{}}` + "\n" +
		`{"messageType":"SDP_OFFER","senderClientId":"v","messagePayload":"***","payloadError":"kvs: message payload: not base64: illegal base64 data at input byte 0"}` + "\n" +
		`{"messageType":"SDP_OFFER","senderClientId":"v","messagePayload":{"type":"offer","sdp":"v=0 \u009b2J"}}` + "\n" +
		`{"messageType":"GO_AWAY"}` + "\n"
	if r.code != 0 || r.stdout != want || !strings.Contains(r.stderr, "the service closed the connection (1001") || strings.Contains(r.stderr, "ignoring") {
		t.Errorf("%v\nwant stdout:\n%s", r, want)
	}
}
