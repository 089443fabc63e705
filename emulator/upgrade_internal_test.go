package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

func TestSniffSignaling(t *testing.T) {
	cases := []struct {
		in   string
		role kvs.Role
		fast bool
	}{
		{"GET /signaling/viewer/v-1?X-Amz-ChannelARN=a HTTP/1.1\r\n", kvs.Viewer, true},
		{"GET /signaling/master?X HTTP/1.1\r\n", kvs.Master, true},
		{"GET /signaling/master HTTP/1.1\r\n", kvs.Master, true},
		{"GET /signaling/masters HTTP/1.1\r\n", "", false},
		{"GET /signaling/%6Daster/m HTTP/1.1\r\n", "", false},
		{"POST /signaling/master/m HTTP/1.1\r\n", "", false},
		{"GET / HTTP/1.0\r\n\r\n", "", false},
		{"G", "", false},
		{"", "", false},
		{"POST /createSignalingChannel HTTP/1.1\r\n", "", false},
	}
	for _, tc := range cases {
		// One byte a read, as a slow client sends.
		br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.in)), 64)
		role, fast, err := sniffSignaling(br)
		if role != tc.role || fast != tc.fast {
			t.Errorf("sniffSignaling(%q) = %q, %v, %v; want %q, %v", tc.in, role, fast, err, tc.role, tc.fast)
		}
		if rest, _ := io.ReadAll(br); string(rest) != tc.in {
			t.Errorf("sniffSignaling(%q) consumed input: %q left", tc.in, rest)
		}
	}
}

// TestSniffDoesNotWait: a request that cannot be a signaling one is
// passed on with what has arrived, without waiting for more bytes.
func TestSniffDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go io.WriteString(pw, "GET / HTTP/1.0\r\n\r\n")
	if _, fast, err := sniffSignaling(bufio.NewReader(pr)); fast || err != nil {
		t.Errorf("sniffSignaling = %v, %v; want not a signaling request", fast, err)
	}
}

func TestReadUpgradeHead(t *testing.T) {
	const good = "GET /signaling/viewer/v?a=b HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\n\r\n"
	cases := []struct {
		name, in string
		status   int // 0 when the head is taken
	}{
		{"good", good, 0},
		{"no host", "GET /signaling/viewer/v HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400},
		{"HTTP/1.0 without host", "GET /signaling/viewer/v HTTP/1.0\r\n\r\n", 0},
		{"two hosts", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad host", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"HTTP/2", "GET /signaling/viewer/v HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"bad header", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400},
		{"cut short", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a\r\n", 400},
		{"near the limit, more bytes behind", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", maxHeaderBytes+headBufSize-100) + "\r\n\r\n" + strings.Repeat("f", headBufSize), 0},
		{"too large", "GET /signaling/viewer/v HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", maxHeaderBytes+headBufSize) + "\r\n\r\n", 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hr := &headReader{r: strings.NewReader(tc.in), remain: maxHeaderBytes + headBufSize}
			r, err := readUpgradeHead(bufio.NewReaderSize(hr, headBufSize), hr)
			var he *headError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.status == 0 && (r.Header.Get("Upgrade") != "websocket" && tc.in == good):
				t.Errorf("headers %v", r.Header)
			case tc.status != 0 && !errors.As(err, &he):
				t.Fatalf("err = %v; want a headError", err)
			case tc.status != 0 && he.status != tc.status:
				t.Errorf("status %d (%s); want %d", he.status, he.reason, tc.status)
			}
		})
	}
}

// TestUpgradeWriterRefusal: a refusal written by the fast path is a whole
// HTTP/1.1 answer that says the connection ends.
func TestUpgradeWriterRefusal(t *testing.T) {
	var out bytes.Buffer
	w := &upgradeWriter{bw: nil, header: make(http.Header)}
	w.c = writeConn{w: &out}
	e := &Emulator{}
	e.writeJSONError(w, errf(http.StatusForbidden, "AccessDeniedException", "no"))
	w.finish()
	resp, err := http.ReadResponse(bufio.NewReader(&out), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !resp.Close || resp.Header.Get("Date") == "" || string(body) != `{"Message":"no"}` {
		t.Errorf("answer %d close=%v date=%q body %s", resp.StatusCode, resp.Close, resp.Header.Get("Date"), body)
	}
}

// FuzzUpgradeHead feeds request heads to the fast path's reader: it never
// panics, never consumes what it passes on, takes only requests the HTTP
// server would route to the same signaling endpoint, and refuses the rest
// with a status.
func FuzzUpgradeHead(f *testing.F) {
	f.Add("GET /signaling/viewer/v-1?X-Amz-ChannelARN=a&X-Amz-ClientId=c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	f.Add("GET /signaling/master HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	f.Add("GET /signaling/master?%zz HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("GET /signaling/viewer\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), headBufSize)
		role, fast, _ := sniffSignaling(br)
		if !fast {
			rest, _ := io.ReadAll(br)
			if string(rest) != in {
				t.Fatalf("passed on %q of %q", rest, in)
			}
			return
		}
		hr := &headReader{r: br, remain: maxHeaderBytes + headBufSize}
		r, err := readUpgradeHead(bufio.NewReaderSize(hr, headBufSize), hr)
		if err != nil {
			var he *headError
			if !errors.As(err, &he) || he.status < 400 || he.status > 599 {
				t.Fatalf("refusal %v has no status", err)
			}
			return
		}
		if got, ok := signalingRole(r.URL.Path); !ok || got != role || r.Method != http.MethodGet {
			t.Fatalf("%q: taken for %q, routed to %q %v (%s %s)", in, role, got, ok, r.Method, r.URL.Path)
		}
	})
}

// writeConn is a net.Conn that writes to a buffer.
type writeConn struct {
	net.Conn
	w io.Writer
}

func (c writeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

func (c writeConn) SetWriteDeadline(time.Time) error { return nil }
