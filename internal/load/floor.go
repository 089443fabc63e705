package load

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The handshake floors: servers that do nothing but a WebSocket handshake
// and the close that follows, measured by the same client loop as the
// emulator, to show how much of a handshake's CPU any server on this
// machine spends. "raw" reads the request head and writes the 101 and the
// close echo on the socket itself (the kernel's and Go runtime's share);
// "net/http" is net/http with coder/websocket's Accept and no check (what
// the emulator is built on).

// floorEnv names the floor a process was started to serve.
const floorEnv = "KVSSIGN_LOAD_FLOOR"

// floorKinds are the floors, in the order they are measured.
var floorKinds = []string{"raw", "net/http"}

// IsFloorChild reports whether this process was started to serve a
// handshake floor.
func IsFloorChild() bool { return os.Getenv(floorEnv) != "" }

// FloorChild serves the floor named by the environment on a loopback port
// until killed, and returns the exit code.
func FloorChild() int {
	kind := os.Getenv(floorEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("floor listening on %s\n", ln.Addr())
	switch kind {
	case "raw":
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			go rawHandshake(c)
		}
	case "net/http":
		err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			for {
				if _, _, err := c.Read(r.Context()); err != nil {
					return
				}
			}
		}))
	default:
		err = fmt.Errorf("load: %s=%q: want raw or net/http", floorEnv, kind)
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// wsGUID is the key suffix of RFC 6455's accept hash.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// rawHandshake answers one upgrade and echoes the client's close frame,
// with nothing else: no HTTP parser, no WebSocket library.
func rawHandshake(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		if n == len(buf) {
			return
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
	}
	var key string
	for _, l := range strings.Split(string(buf[:n]), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if _, err := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")); err != nil {
		return
	}
	if _, err := c.Read(buf); err != nil { // the client's close frame
		return
	}
	if _, err := c.Write([]byte{0x88, 2, 0x03, 0xe8}); err != nil { // close, 1000
		return
	}
	c.Read(buf) // until the client closes
}

// runFloor measures cfg's handshakes against a fresh floor process of
// kind.
func runFloor(ctx context.Context, kind string, cfg HandshakeConfig) (HandshakeResult, error) {
	res := HandshakeResult{HandshakeConfig: cfg}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorEnv+"="+kind)
	dir, err := os.MkdirTemp("", "kvssign-load-floor-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	p, addr, err := startProcess(ctx, "the "+kind+" floor", cmd, dir+"/floor.log", prefixed("floor listening on "))
	if err != nil {
		return res, err
	}
	defer p.stop()
	pid := p.cmd.Process.Pid
	u0, s0, err := processCPU(pid)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := handshakes(ctx, cfg, func(int) string { return "ws://" + addr + "/" }); err != nil {
		return res, err
	}
	res.Wall = time.Since(start)
	// The server's last closes follow the clients' by a moment.
	time.Sleep(200 * time.Millisecond)
	u1, s1, err := processCPU(pid)
	res.User, res.Sys = u1-u0, s1-s0
	return res, err
}

// handshakes opens and closes cfg.Handshakes connections to url(i),
// cfg.Workers at a time.
func handshakes(ctx context.Context, cfg HandshakeConfig, url func(i int) string) error {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range max(cfg.Workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Handshakes {
					return
				}
				ws, err := dialWS(ctx, url(i))
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				ws.Close(websocket.StatusNormalClosure, "")
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
