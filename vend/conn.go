// JSON for the answers net/http writes itself. When http.Server cannot
// read a request (headers over MaxHeaderBytes, a malformed request line,
// Host or header), it writes a plain-text 4xx or 5xx straight to the
// connection, before any handler runs. Those writes are recognisable:
// one Write that starts with a status line and has no Date header, which
// every handler's answer has. The listener here rewrites them as JSON.

package vend

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Listener returns ln with its connections' answers from net/http itself
// made JSON, as the handler's are, and with limits.maxConnections. Serve
// [Server.HTTPServer] on it: its ConnState tells the listener which
// connections are idle, to close when the cap is reached.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &jsonErrorListener{Listener: ln, headerLimit: s.headerLimit(), cap: s.conns, done: make(chan struct{})}
}

type jsonErrorListener struct {
	net.Listener
	headerLimit int
	cap         *connCap // nil: no cap
	done        chan struct{}
	closeOnce   sync.Once
}

func (l *jsonErrorListener) Accept() (net.Conn, error) {
	if l.cap != nil && !l.cap.take(l.done) {
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if l.cap != nil {
			l.cap.give()
		}
		return nil, err
	}
	jc := &jsonErrorConn{Conn: c, headerLimit: l.headerLimit}
	if l.cap != nil {
		jc.release = l.cap.give
	}
	return jc, nil
}

// Close also ends an Accept waiting for a slot.
func (l *jsonErrorListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type jsonErrorConn struct {
	net.Conn
	headerLimit int
	release     func() // gives back the connection's slot; nil without a cap
	closeOnce   sync.Once
}

// Close closes the connection and gives back its slot.
func (c *jsonErrorConn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.closeOnce.Do(c.release)
	}
	return err
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	if b, ok := jsonServerError(p, c.headerLimit); ok {
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite half-closes the connection when the one under it can: after
// an error answer, net/http does so and lets the client finish sending, so
// that closing does not reset the connection before the answer is read.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// jsonServerError returns the JSON version of p when p is a whole error
// answer written by net/http itself.
func jsonServerError(p []byte, headerLimit int) ([]byte, bool) {
	// "HTTP/1.1 4": every answer passes here, and the handler's 2xx and
	// 3xx go no further than this.
	if len(p) < 10 || !bytes.HasPrefix(p, []byte("HTTP/1.")) || (p[9] != '4' && p[9] != '5') {
		return nil, false
	}
	head, body, ok := bytes.Cut(p, []byte("\r\n\r\n"))
	if !ok || bytes.Contains(head, []byte("\r\nDate: ")) {
		return nil, false
	}
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	fields := strings.SplitN(string(line), " ", 3)
	if len(fields) < 2 {
		return nil, false
	}
	status, err := strconv.Atoi(fields[1])
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	code, msg := "bad_request", "the request is not valid HTTP/1.1"
	switch {
	case status == 431:
		code, msg = "headers_too_large", fmt.Sprintf("the request line and headers must be at most %d bytes (limits.maxHeaderBytes)", headerLimit)
	case status == 501:
		code = "not_implemented"
	}
	// net/http's detail, such as "missing required Host header", is its
	// own wording and holds nothing from the request.
	if _, detail, ok := strings.Cut(string(body), ": "); ok && status != 431 {
		msg += ": " + strings.TrimSpace(detail)
	} else if status == 501 {
		msg = "unsupported transfer encoding"
	}
	js, _ := marshalNoEscape(apiError{errorBody{Code: code, Message: msg}})
	js = append(js, '\n')
	out := fmt.Appendf(nil, "%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n", line, len(js))
	return append(out, js...), true
}
