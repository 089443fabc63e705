// The TURN server behind the URIs GetIceServerConfig returns.

package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

// turnServer is a TURN server (UDP) on 127.0.0.1 that relays only to
// loopback and accepts the time-limited credentials GetIceServerConfig
// issued.
type turnServer struct {
	srv  *turn.Server
	addr *net.UDPAddr
	read chan struct{} // closed when the server's read loop has ended
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

// startTURN starts the TURN server on a free UDP port of 127.0.0.1.
func (e *Emulator) startTURN() (*turnServer, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: TURN: listen: %w", err)
	}
	tc := &trackedConn{PacketConn: pc, done: make(chan struct{})}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         turnRealm,
		AuthHandler:   e.turnAuth,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: tc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
			// Relay to loopback peers only: the emulator is no open relay.
			PermissionHandler: func(_ net.Addr, peer net.IP) bool { return peer.IsLoopback() },
		}},
	})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("emulator: TURN: %w", err)
	}
	return &turnServer{srv: srv, addr: pc.LocalAddr().(*net.UDPAddr), read: tc.done}, nil
}

// close stops the TURN server and waits (briefly) for its read loop to
// end; the server then closes every allocation.
func (t *turnServer) close() error {
	err := t.srv.Close()
	select {
	case <-t.read:
	case <-time.After(time.Second):
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
