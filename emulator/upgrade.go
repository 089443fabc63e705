// The upgrade fast path: the emulator reads the head of each new
// connection's first request itself. A signaling WebSocket upgrade is
// checked and answered on that connection's goroutine, without net/http's
// server and its per-connection state, background read and hijack;
// anything else goes to the HTTP server with the bytes already read
// replayed.

package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

const (
	// headTimeout bounds reading a request head, as the HTTP server's
	// ReadHeaderTimeout does.
	headTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request head, as the HTTP server's
	// MaxHeaderBytes does (which also allows 4 KB more).
	maxHeaderBytes = 64 << 10
	// headBufSize is the size of a connection's read buffer, which
	// coder/websocket keeps once the connection is upgraded.
	headBufSize = 4096
	// lingerTimeout bounds how long lingerClose waits for a refused client
	// to close its side.
	lingerTimeout = time.Second
)

// handoffListener is the listener the HTTP server serves: the connections
// the fast path passes on.
type handoffListener struct {
	ln   net.Listener
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(ln net.Listener) *handoffListener {
	return &handoffListener{ln: ln, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the real listener too, which ends acceptLoop.
func (l *handoffListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

func (l *handoffListener) Addr() net.Addr { return l.ln.Addr() }

// handoff passes c to the HTTP server, or closes it once the server has
// stopped accepting.
func (l *handoffListener) handoff(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// acceptLoop accepts connections on ln (already watched for accept
// errors) and serves each on a goroutine of its own, until ln is closed.
// Failed accepts (typically EMFILE) are retried after a pause that doubles
// up to a second, as the HTTP server does.
func (e *Emulator) acceptLoop(ln net.Listener, hl *handoffListener) {
	defer e.wg.Done()
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			select {
			case <-hl.done:
				return
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		if !e.track() {
			c.Close()
			continue
		}
		go func() {
			defer e.untrack()
			e.serveConn(c, hl)
		}()
	}
}

// holdRaw counts c among the connections whose request head is being read
// or checked, which Close closes; it reports false once the emulator is
// closed.
func (e *Emulator) holdRaw(c net.Conn) bool {
	e.rawMu.Lock()
	defer e.rawMu.Unlock()
	if e.rawClosed {
		return false
	}
	e.raw[c] = struct{}{}
	return true
}

func (e *Emulator) releaseRaw(c net.Conn) {
	e.rawMu.Lock()
	delete(e.raw, c)
	e.rawMu.Unlock()
}

// closeRaw closes the connections held by holdRaw and refuses new ones.
func (e *Emulator) closeRaw() {
	e.rawMu.Lock()
	e.rawClosed = true
	raw := e.raw
	e.raw = nil
	e.rawMu.Unlock()
	for c := range raw {
		c.Close()
	}
}

// serveConn reads the head of c's first request: a signaling upgrade is
// served here, anything else goes to the HTTP server.
func (e *Emulator) serveConn(c net.Conn, hl *handoffListener) {
	if !e.holdRaw(c) {
		c.Close()
		return
	}
	defer func() {
		// Invariant: bad input never takes the emulator down.
		if v := recover(); v != nil {
			e.log.Error("panic serving a connection", "panic", fmt.Sprint(v))
			e.releaseRaw(c)
			c.Close()
		}
	}()
	c.SetReadDeadline(time.Now().Add(headTimeout))
	hr := &headReader{r: c, remain: maxHeaderBytes + headBufSize}
	br := bufio.NewReaderSize(hr, headBufSize)
	role, fast, err := sniffSignaling(br)
	if err != nil {
		// Gone, or silent past the deadline, before a request line.
		e.releaseRaw(c)
		c.Close()
		return
	}
	if !fast {
		c.SetReadDeadline(time.Time{})
		b, _ := br.Peek(br.Buffered())
		e.releaseRaw(c)
		hl.handoff(&replayConn{Conn: c, buf: bytes.Clone(b)})
		return
	}
	w := &upgradeWriter{c: c, br: br, header: make(http.Header, 8)}
	r, err := readUpgradeHead(br, hr)
	if err != nil {
		w.fail(err)
		e.releaseRaw(c)
		lingerClose(c)
		return
	}
	c.SetReadDeadline(time.Time{})
	r.RemoteAddr = c.RemoteAddr().String()
	cn := e.upgradeSignaling(w, r, role)
	e.releaseRaw(c)
	if cn == nil {
		if !w.hijacked {
			w.finish()
			if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || br.Buffered() > 0 {
				lingerClose(c)
			} else {
				c.Close()
			}
		}
		return
	}
	// The connection lives on in a fresh goroutine, whose stack stays at
	// what reading needs: this one's has grown to verify the handshake,
	// and would keep 4 KB more per idle connection.
	if !e.track() {
		cn.drop()
		return
	}
	go func() {
		defer e.untrack()
		cn.run()
	}()
}

// signalingPrefixes are the starts of a request line the fast path takes,
// each followed by '/', '?' or ' '.
var signalingPrefixes = [...]struct {
	prefix string
	role   kvs.Role
}{
	{"GET /signaling/master", kvs.Master},
	{"GET /signaling/viewer", kvs.Viewer},
}

// sniffLen is how many bytes sniffSignaling needs to decide.
const sniffLen = len("GET /signaling/master") + 1

// sniffSignaling reads (without consuming) as much of a request as it
// needs to tell whether it is a signaling upgrade, and for which role. It
// reads no more than has arrived once it can tell it is not, so that a
// short request that is not a signaling one is never kept waiting.
func sniffSignaling(br *bufio.Reader) (kvs.Role, bool, error) {
	for {
		n := br.Buffered()
		b, _ := br.Peek(min(n, sniffLen))
		if len(b) >= sniffLen {
			for _, p := range signalingPrefixes {
				if string(b[:len(p.prefix)]) == p.prefix {
					switch b[len(p.prefix)] {
					case '/', '?', ' ':
						return p.role, true, nil
					}
				}
			}
			return "", false, nil
		}
		if !couldBeSignaling(b) {
			return "", false, nil
		}
		// Wait for one more byte than has arrived.
		if _, err := br.Peek(n + 1); err != nil {
			return "", false, err
		}
	}
}

// couldBeSignaling reports whether b is the start of a signaling request
// line.
func couldBeSignaling(b []byte) bool {
	for _, p := range signalingPrefixes {
		if len(b) <= len(p.prefix) && string(b) == p.prefix[:len(b)] {
			return true
		}
		if len(b) > len(p.prefix) && string(b[:len(p.prefix)]) == p.prefix {
			return true
		}
	}
	return false
}

// errHeadTooLarge is the head reader's error once a head is over
// maxHeaderBytes.
var errHeadTooLarge = errors.New("emulator: request head too large")

// headReader reads a request head of at most remain bytes.
type headReader struct {
	r      io.Reader
	remain int
}

func (h *headReader) Read(p []byte) (int, error) {
	if h.remain <= 0 {
		return 0, errHeadTooLarge
	}
	n, err := h.r.Read(p[:min(len(p), h.remain)])
	h.remain -= n
	return n, err
}

// headError is a request head the emulator answers as the HTTP server
// would, with a status and a plain-text reason.
type headError struct {
	status int
	reason string
}

func (e *headError) Error() string { return "emulator: " + e.reason }

// readUpgradeHead reads a request head as the HTTP server does, with its
// checks: HTTP/1.x, one valid Host header, at most maxHeaderBytes. Unlike
// the server, it takes an empty Host header for a missing one.
func readUpgradeHead(br *bufio.Reader, hr *headReader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	switch {
	case err != nil && hr.remain <= 0:
		return nil, &headError{http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large"}
	case err != nil:
		return nil, &headError{http.StatusBadRequest, "Bad Request"}
	case r.ProtoMajor != 1:
		return nil, &headError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	// ReadRequest has taken the Host header out (and refused two).
	if r.Host == "" && r.ProtoAtLeast(1, 1) {
		return nil, &headError{http.StatusBadRequest, "missing required Host header"}
	}
	if !validHost(r.Host) {
		return nil, &headError{http.StatusBadRequest, "malformed Host header"}
	}
	return r, nil
}

// validHost reports whether h is made of the bytes a Host header may
// hold (RFC 3986's reg-name, IP literals and a port).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// upgradeWriter is the http.ResponseWriter and http.Hijacker of a
// signaling handshake served by the fast path: it writes the answer to
// the connection itself.
type upgradeWriter struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	header   http.Header
	status   int
	hijacked bool
}

func (w *upgradeWriter) Header() http.Header { return w.header }

// WriteHeader writes the status line and the headers. Every answer but
// 101 ends the connection, so it says so.
func (w *upgradeWriter) WriteHeader(status int) {
	if w.status != 0 || w.hijacked {
		return
	}
	w.status = status
	w.bw = bufio.NewWriterSize(w.c, headBufSize)
	if status != http.StatusSwitchingProtocols {
		w.header.Set("Connection", "close")
	}
	if w.header.Get("Date") == "" {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	w.bw.WriteString("HTTP/1.1 ")
	w.bw.WriteString(strconv.Itoa(status))
	w.bw.WriteByte(' ')
	w.bw.WriteString(http.StatusText(status))
	w.bw.WriteString("\r\n")
	w.header.Write(w.bw)
	w.bw.WriteString("\r\n")
}

func (w *upgradeWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.bw.Write(p)
}

// Hijack sends what is written so far (the 101) and hands the connection
// over, with what has been read of it beyond the request head.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.bw.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return w.c, bufio.NewReadWriter(w.br, w.bw), nil
}

// finish sends a refusal's answer, within the head timeout.
func (w *upgradeWriter) finish() {
	if w.bw == nil {
		return
	}
	w.c.SetWriteDeadline(time.Now().Add(headTimeout))
	w.bw.Flush()
}

// fail answers a request head the emulator cannot take.
func (w *upgradeWriter) fail(err error) {
	he := &headError{http.StatusBadRequest, "Bad Request"}
	errors.As(err, &he)
	body := strconv.Itoa(he.status) + " " + he.reason
	w.header.Set("Content-Type", "text/plain; charset=utf-8")
	w.header.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(he.status)
	w.bw.WriteString(body)
	w.finish()
}

// lingerClose closes c after its answer: it half-closes first and reads
// what the client still sends, for a moment, until it closes too, so that
// a client whose request was not read to the end (a body it announced,
// pipelined requests, a head the emulator could not read) gets the answer
// rather than a reset. A refused request read to its end is closed at
// once.
func lingerClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, io.LimitReader(c, maxHeaderBytes))
	}
	c.Close()
}

// replayConn is a connection passed on to the HTTP server: its reads
// return first what the fast path has already read.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets the HTTP server half-close the connection, as it does
// after some error answers, when the socket allows it.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
