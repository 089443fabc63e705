package emulator

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestDefaultMaxConnections(t *testing.T) {
	tests := []struct {
		soft uint64
		want int
	}{
		{1024, 1024 - 128},
		{20000, 20000 - 2500},
		{1 << 20, 1<<20 - 1<<17},
		{200, 100}, // half at least
		{0, 0},
		{1 << 40, 1<<31 - 1},
	}
	for _, tt := range tests {
		if got := defaultMaxConnections(tt.soft); got != tt.want {
			t.Errorf("defaultMaxConnections(%d) = %d; want %d", tt.soft, got, tt.want)
		}
	}
}

// emfileListener fails its first n accepts as a process out of
// descriptors does, then accepts from the real listener it wraps.
type emfileListener struct {
	net.Listener
	n int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptErrors: accept errors are counted, logged at warn once per
// interval rather than once each, and serving goes on.
func TestAcceptErrors(t *testing.T) {
	var logs bytes.Buffer
	e, err := New(Config{DisableTURN: true, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serve(&emfileListener{Listener: ln, n: 3}); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /_emulator/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Errorf("after accept errors, the admin endpoint answered %q", buf[:n])
	}
	if got := e.Stats().AcceptErrors; got != 3 {
		t.Errorf("AcceptErrors = %d; want 3", got)
	}
	if got := strings.Count(logs.String(), "accepting a connection failed"); got != 1 {
		t.Errorf("%d warnings for 3 accept errors in a moment; want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("warning %q does not say what failed", logs.String())
	}
}
