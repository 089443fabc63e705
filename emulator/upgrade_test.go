package emulator_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// rawRequest sends a request to e in parts, one write each, and returns
// the answer's status line.
func rawRequest(t *testing.T, addr string, parts ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, p := range parts {
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatal(err)
		}
	}
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return strings.TrimSpace(status)
}

// TestUpgradeFastPath: signaling upgrades are read and answered by the
// emulator's own reader, whose requests may come in pieces; everything
// else reaches the HTTP server whole.
func TestUpgradeFastPath(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "pieces")
	u, err := url.Parse(signedURL(t, e, arn, "VIEWER", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	upgrade := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host)
	stats := "GET /_emulator/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	cases := []struct {
		name  string
		parts []string
		want  string
	}{
		{"upgrade", []string{upgrade}, "HTTP/1.1 101 Switching Protocols"},
		{"upgrade in pieces", []string{upgrade[:3], upgrade[3:17], upgrade[17:40], upgrade[40:]}, "HTTP/1.1 101 Switching Protocols"},
		{"admin in pieces", []string{stats[:1], stats[1:6], stats[6:]}, "HTTP/1.1 200 OK"},
		{"short request", []string{"GET / HTTP/1.0\r\n\r\n"}, "HTTP/1.0 404 Not Found"},
		{"no Host", []string{strings.Replace(upgrade, "Host: ", "X-Host: ", 1)}, "HTTP/1.1 400 Bad Request"},
		{"head too large", []string{strings.Replace(upgrade, "\r\n\r\n", "\r\nX-Big: "+strings.Repeat("b", 80<<10)+"\r\n\r\n", 1)},
			"HTTP/1.1 431 Request Header Fields Too Large"},
		{"not a WebSocket", []string{strings.Replace(upgrade, "Upgrade: websocket\r\n", "", 1)}, "HTTP/1.1 426 Upgrade Required"},
		{"bad request line", []string{"GET /signaling/viewer/v HTTP/1.1 x\r\nHost: a\r\n\r\n"}, "HTTP/1.1 400 Bad Request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawRequest(t, u.Host, tc.parts...); got != tc.want {
				t.Errorf("answer %q; want %q", got, tc.want)
			}
		})
	}
}

// TestCloseEndsPendingHeads: Close does not wait for a client that has
// sent only part of its request head.
func TestCloseEndsPendingHeads(t *testing.T) {
	e := start(t, fastConfig())
	u, _ := url.Parse(e.URL())
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /signaling/viewer/v HTTP/1.1\r\nHost: ")
	// Once the stats answer, the emulator has accepted c (it accepts in
	// order); wait for it to be reading c's head.
	if resp, err := httpGet(e.URL() + "/_emulator/stats"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %v %v", resp, err)
	}
	e.Close()
	// Shorter than the emulator's 10 s head timeout.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection outlived Close: %v", err)
	}
}
