// The connection budget: signaling connections are refused, at once and
// with a clear answer, before they would use the descriptors the control
// plane and the admin endpoints need.

package emulator

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// minReserve is the fewest descriptors kept for everything but signaling
// connections: listeners, the state file, TURN, control-plane and admin
// requests.
const minReserve = 128

// defaultMaxConnections derives the budget from the soft descriptor
// limit: an eighth of it, at least minReserve, stays in reserve, and at
// least half goes to signaling.
func defaultMaxConnections(soft uint64) int {
	reserve := max(uint64(minReserve), soft/8)
	budget := max(soft/2, soft-min(reserve, soft))
	return int(min(budget, uint64(1<<31-1)))
}

// admitConn reserves room for one more signaling connection, or reports
// that the budget is spent. A reservation lasts until the handshake ends
// (releaseConn); by then an accepted connection's socket is counted until
// it is closed (countedConn), whether or not the connection is still
// registered: a replaced or dropped connection holds its descriptor until
// its close handshake is over.
func (e *Emulator) admitConn() bool {
	if e.cfg.MaxConnections < 0 {
		e.inflight.Add(1)
		return true
	}
	n := e.inflight.Add(1)
	if n+e.sockets.Load() > int64(e.cfg.MaxConnections) {
		e.inflight.Add(-1)
		return false
	}
	return true
}

func (e *Emulator) releaseConn() { e.inflight.Add(-1) }

// countedConn is a signaling connection's socket, counted in e.sockets
// until it is closed.
type countedConn struct {
	net.Conn
	e      *Emulator
	closed atomic.Bool
}

// Close closes the socket and then gives its place in the budget back.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.e.sockets.Add(-1)
	}
	return err
}

// socketCounter hands coder/websocket the hijacked socket as a
// countedConn, so that the budget counts it until coder/websocket closes
// it. hijacked says whether it did: if not, the caller gives the place
// back.
type socketCounter struct {
	http.ResponseWriter
	e        *Emulator
	hijacked bool
}

func (w *socketCounter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return &countedConn{Conn: c, e: w.e}, brw, nil
}

// Unwrap lets http.ResponseController reach the server's own writer.
func (w *socketCounter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refuseOverBudget answers a handshake beyond the budget: 503, which
// clients retry with back-off, since the limit is the emulator's capacity
// rather than a quota the caller exceeded.
func (e *Emulator) refuseOverBudget(w http.ResponseWriter, op string) {
	e.stats.overBudget.Add(1)
	e.stats.fail(op)
	e.stats.handshakesRejected.Add(1)
	b, _ := json.Marshal(map[string]string{"message": "The emulator is at its limit of " + strconv.Itoa(e.cfg.MaxConnections) +
		" signaling connections (--max-connections); try again later."})
	h := w.Header()
	h.Set("x-amzn-ErrorType", "ServiceUnavailableException"+errorTypeSuffix)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write(b)
	e.budgetLog.Do(func() {
		e.log.Warn("signaling handshake refused: connection budget spent", "op", op, "maxConnections", e.cfg.MaxConnections,
			"refusedSoFar", e.stats.overBudget.Load())
	})
}

// acceptWatcher counts and logs the listener's accept errors (typically
// EMFILE once descriptors run out); the HTTP server retries them.
type acceptWatcher struct {
	net.Listener
	e   *Emulator
	log *rate.Sometimes
}

func (e *Emulator) watchAccept(ln net.Listener) net.Listener {
	return &acceptWatcher{Listener: ln, e: e, log: &rate.Sometimes{First: 1, Interval: 10 * time.Second}}
}

func (l *acceptWatcher) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		n := l.e.stats.acceptErrors.Add(1)
		l.log.Do(func() {
			l.e.log.Warn("accepting a connection failed; retrying", "err", err, "acceptErrorsSoFar", n)
		})
	}
	return c, err
}

// maxClosers bounds the goroutines that close connections in bulk.
const maxClosers = 32

// forEachConn runs fn on every connection of conns, on up to maxClosers
// goroutines at once, so that dropping or closing thousands of
// connections takes a fraction of the time without a goroutine each, and
// returns how many calls returned true.
func forEachConn(conns []*conn, fn func(*conn) bool) int {
	workers := min(len(conns), maxClosers)
	if workers <= 1 {
		n := 0
		for _, c := range conns {
			if fn(c) {
				n++
			}
		}
		return n
	}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(conns)) {
					return
				}
				if fn(conns[i]) {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(done.Load())
}
