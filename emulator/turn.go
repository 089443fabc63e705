// The TURN server behind the URIs GetIceServerConfig returns.

package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// turnRealm is the realm the TURN server challenges clients with.
const turnRealm = "kinesisvideo"

// turnServer is a TURN server on 127.0.0.1 that relays only to loopback
// and accepts the time-limited credentials GetIceServerConfig issued. It
// listens on UDP, TCP (the same port number when free) and, given a
// certificate, TLS, as KVS's servers do.
type turnServer struct {
	srv *turn.Server
	udp *net.UDPAddr
	tcp *net.TCPAddr
	tls *net.TCPAddr // nil without a certificate
	// ended holds one channel per read or accept loop of the server,
	// closed when that loop has stopped.
	ended []chan struct{}
}

// trackedConn tells when the TURN server's read loop, which ends on the
// first read error, has stopped reading.
type trackedConn struct {
	net.PacketConn
	once sync.Once
	done chan struct{}
}

func (c *trackedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.once.Do(func() { close(c.done) })
	}
	return n, addr, err
}

// trackedListener closes the connections it accepted when it is closed:
// the TURN server closes its listeners but not their connections, whose
// goroutines would otherwise outlive the emulator. Like trackedConn, it
// tells when the server's accept loop, which ends on the first error, has
// stopped.
type trackedListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	once   sync.Once
	done   chan struct{}
}

func newTrackedListener(ln net.Listener) *trackedListener {
	return &trackedListener{Listener: ln, conns: make(map[net.Conn]struct{}), done: make(chan struct{})}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.once.Do(func() { close(l.done) })
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		l.once.Do(func() { close(l.done) })
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &listenedConn{Conn: c, l: l}, nil
}

func (l *trackedListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
	l.mu.Unlock()
	return err
}

// listenedConn is a connection a trackedListener accepted.
type listenedConn struct {
	net.Conn
	l *trackedListener
}

func (c *listenedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// startTURN starts a TURN server on free ports of 127.0.0.1: UDP, TCP and,
// with cert, TLS.
func (e *Emulator) startTURN(cert *tls.Certificate) (ts *turnServer, err error) {
	var closers []io.Closer
	defer func() {
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
		}
	}()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: TURN: listen: %w", err)
	}
	closers = append(closers, pc)
	udp := pc.LocalAddr().(*net.UDPAddr)
	tcpLn, err := net.Listen("tcp4", udp.String())
	if err != nil {
		// The UDP port's number is taken for TCP: any other will do.
		if tcpLn, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("emulator: TURN: listen: %w", err)
		}
	}
	closers = append(closers, tcpLn)
	relay := &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"}
	// Relay to loopback peers only: the emulator is no open relay.
	loopbackOnly := func(_ net.Addr, peer net.IP) bool { return peer.IsLoopback() }
	ts = &turnServer{udp: udp, tcp: tcpLn.Addr().(*net.TCPAddr)}
	tcpTracked := newTrackedListener(tcpLn)
	ts.ended = append(ts.ended, tcpTracked.done)
	listeners := []turn.ListenerConfig{{Listener: tcpTracked, RelayAddressGenerator: relay, PermissionHandler: loopbackOnly}}
	if cert != nil {
		tlsLn, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("emulator: TURN: listen: %w", err)
		}
		closers = append(closers, tlsLn)
		ts.tls = tlsLn.Addr().(*net.TCPAddr)
		// TLS over the tracked listener, so that its raw connections are
		// closed with it and the server still sees *tls.Conn.
		tlsTracked := newTrackedListener(tlsLn)
		ts.ended = append(ts.ended, tlsTracked.done)
		wrapped := tls.NewListener(tlsTracked, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
		listeners = append(listeners, turn.ListenerConfig{Listener: wrapped, RelayAddressGenerator: relay, PermissionHandler: loopbackOnly})
	}
	tc := &trackedConn{PacketConn: pc, done: make(chan struct{})}
	ts.ended = append(ts.ended, tc.done)
	ts.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:             turnRealm,
		AuthHandler:       e.turnAuth,
		LoggerFactory:     &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: tc, RelayAddressGenerator: relay, PermissionHandler: loopbackOnly}},
		ListenerConfigs:   listeners,
	})
	if err != nil {
		return nil, fmt.Errorf("emulator: TURN: %w", err)
	}
	return ts, nil
}

// uris returns the server's URIs on host, in the shapes KVS uses: TURN
// over UDP, over TLS (turns:, when served) and over TCP, each with its
// port.
func (t *turnServer) uris(host string) []string {
	at := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	out := []string{"turn:" + at(t.udp.Port) + "?transport=udp"}
	if t.tls != nil {
		out = append(out, "turns:"+at(t.tls.Port)+"?transport=tcp")
	}
	return append(out, "turn:"+at(t.tcp.Port)+"?transport=tcp")
}

// close stops the TURN server and waits (briefly) for its read and accept
// loops to end; the server then closes every allocation.
func (t *turnServer) close() error {
	err := t.srv.Close()
	deadline := time.After(time.Second)
	for _, done := range t.ended {
		select {
		case <-done:
		case <-deadline:
			return err
		}
	}
	return err
}

// turnPassword is the password of a TURN username the emulator issued:
// base64 of HMAC-SHA256 of the username under the emulator's random key,
// so any issued username can be checked without being stored.
func (e *Emulator) turnPassword(username string) string {
	m := hmac.New(sha256.New, e.turnKey)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// turnAuth is the TURN server's AuthHandler. It refuses a username that is
// not "<expiry epoch>:…" or whose expiry has passed on the emulator's
// clock; for any other it returns the key of the password the emulator
// issued, so a wrong password fails the message integrity check.
func (e *Emulator) turnAuth(ra *turn.RequestAttributes) (string, []byte, bool) {
	exp, _, ok := strings.Cut(ra.Username, ":")
	epoch, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil {
		e.log.Debug("TURN: refused a username the emulator did not issue", "client", ra.SrcAddr.String())
		return "", nil, false
	}
	if !e.now().Before(time.Unix(epoch, 0)) {
		e.log.Debug("TURN: refused expired credentials", "client", ra.SrcAddr.String(), "expired", time.Unix(epoch, 0).UTC())
		return "", nil, false
	}
	if ra.Realm != turnRealm {
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, e.turnPassword(ra.Username)), true
}

// newTURNKey returns a random key for turnPassword.
func newTURNKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}
