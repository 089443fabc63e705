package vend

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest sends head as it is and reads one answer.
func rawRequest(t *testing.T, addr, head string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// headOfSize is a GET /healthz whose request line and headers, final
// blank line included, are n bytes.
func headOfSize(n int) string {
	h := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
	pad := n - len(h) - len("\r\n\r\n")
	return h + strings.Repeat("a", pad) + "\r\n\r\n"
}

// TestServerErrorsAreJSON: the answers net/http writes itself, before the
// handler runs, are JSON too, and the header limit is the configured one.
func TestServerErrorsAreJSON(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.MaxHeaderBytes = 16 << 10
	addr := strings.TrimPrefix(startServer(t, cfg, Options{}).URL, "http://")
	cases := []struct {
		name, head string
		status     int
		code       string
	}{
		{"headers at the limit", headOfSize(16 << 10), 200, ""},
		{"headers one byte over", headOfSize(16<<10 + 1), 431, "headers_too_large"},
		{"headers 4 KiB over", headOfSize(20 << 10), 431, "headers_too_large"},
		{"not HTTP", "HELLO\r\n\r\n", 400, "bad_request"},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request"},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400, "bad_request"},
		{"unknown transfer encoding", "POST /v1/connections HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"},
		{"still serving", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, c.head)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json (%s)", ct, body)
			}
			if c.status == 200 {
				return
			}
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("body %s (%v); want a JSON error with code %s", body, err, c.code)
			}
		})
	}
}
