package vend

import (
	"bufio"
	"encoding/json"
	"errors"
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

// capServer starts a server with limits.maxConnections n and a header
// timeout long enough that silent clients hold their places, and returns
// it with a function that opens such a client.
func capServer(t *testing.T, n int) (*testServer, func() net.Conn) {
	t.Helper()
	cfg := baseConfig()
	cfg.Limits.MaxConnections = n
	cfg.Limits.ReadHeaderTimeout = Duration(time.Minute)
	ts := startServer(t, cfg, Options{})
	silent := func() net.Conn {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return ts, silent
}

// getAsync asks for /healthz with c from another goroutine (sendAsync).
func getAsync(c *http.Client, url string) <-chan *http.Response {
	req, _ := http.NewRequest(http.MethodGet, url+"/healthz", nil)
	return sendAsync(c, req)
}

// sendAsync sends req with c from another goroutine, reads the answer's
// body, and sends the answer (nil if none came).
func sendAsync(c *http.Client, req *http.Request) <-chan *http.Response {
	out := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			out <- nil
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- resp
	}()
	return out
}

// TestMaxConnections: past limits.maxConnections a new connection waits
// until one closes, and while one waits, answers close their connections.
func TestMaxConnections(t *testing.T) {
	ts, silent := capServer(t, 2)
	a, _ := silent(), silent() // the kernel hands them over first: both places taken

	waiting := getAsync(ts.client, ts.URL)
	select {
	case resp := <-waiting:
		t.Fatalf("a third connection was served (%v) while two were open", resp != nil)
	case <-time.After(300 * time.Millisecond):
	}
	a.Close()
	resp := <-waiting
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("once a place freed: %v; want 200", resp)
	}
	// The server's next Accept waits for a place now: the answer gave its
	// connection back rather than keep it idle.
	if !resp.Close {
		t.Errorf("the answer given while a connection waited has Connection: %q; want close", resp.Header.Get("Connection"))
	}
}

// TestMaxConnectionsClosesIdle: a keep-alive connection idle between
// requests is closed to make room for a new one.
func TestMaxConnectionsClosesIdle(t *testing.T) {
	ts, silent := capServer(t, 2)
	if resp := <-getAsync(ts.client, ts.URL); resp == nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %v; want 200, kept alive", resp)
	}
	waitFor(t, func() bool { // the server has seen it turn idle
		ts.conns.mu.Lock()
		defer ts.conns.mu.Unlock()
		return len(ts.conns.idle) == 1
	})
	silent() // takes the second place; the next Accept waits

	fresh := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer fresh.CloseIdleConnections()
	if resp := <-getAsync(fresh, ts.URL); resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with an idle keep-alive connection to close: %v; want 200", resp)
	}
}

// TestMaxConnectionsListenerClose: closing the listener ends an Accept
// that waits for a place.
func TestMaxConnectionsListenerClose(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.MaxConnections = 1
	srv, err := New(cfg, Options{Backend: newFakeBackend(), Credentials: testCreds})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := srv.Listener(inner)
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	ln.Close()
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting for a place after the listener closed")
	}
}
