// One WebSocket connection: the handshake, the reader, the keepalive ping,
// and its end.

package signaling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// errClosedByClient is why a connection the client closed ended.
var errClosedByClient = errors.New("signaling: connection closed by the client")

type conn struct {
	c     *Client
	id    int
	ws    *websocket.Conn
	start time.Time
	// ctx is cancelled when the connection is done with: reads and
	// writes under it end, and the websocket library closes the
	// connection, even in the middle of a close handshake.
	ctx    context.Context
	cancel context.CancelFunc

	lastSent atomic.Int64 // unix nanoseconds
	lastRecv atomic.Int64

	dead    chan struct{} // closed when the reading has ended
	endOnce sync.Once
	endErr  error // why the connection ended; read after dead

	// Guarded by c.mu.
	over    bool        // the client's goroutine has read it to its end
	timer   func() bool // stops the pending keepalive or renewal timer
	handoff *handoff    // set once its replacement has started
}

// dial makes one connection attempt, bounded by ctx and the dial timeout.
// If the service refused the URL for clock skew and the URL source's
// ClockSkew learned the offset from it, skew is the EventClockSkew to
// report: another attempt at once should succeed. Nobody reads the new
// connection until the client's goroutine adopts it.
func (c *Client) dial(ctx context.Context) (cn *conn, skew *Event, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	rep := new(skewReport)
	u, err := c.src(context.WithValue(ctx, skewKey{}, rep))
	if err != nil {
		return nil, nil, fmt.Errorf("signaling: getting a signed URL: %w", err)
	}
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.opts.HTTPClient})
	if err != nil {
		shown := sigv4.Redact(u)
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			at := c.opts.Clock.Now()
			he := handshakeError(resp, shown)
			return nil, c.learnSkew(he, rep, at), he
		}
		return nil, nil, dialError(err, u, shown)
	}
	ws.SetReadLimit(readLimit)
	now := c.opts.Clock.Now()
	c.mu.Lock()
	c.nconn++
	id := c.nconn
	c.mu.Unlock()
	cn = &conn{c: c, id: id, ws: ws, start: now, dead: make(chan struct{})}
	cn.ctx, cn.cancel = context.WithCancel(context.Background())
	cn.lastSent.Store(now.UnixNano())
	cn.lastRecv.Store(now.UnixNano())
	// The redacted URL is made for the log only: a client keeps no copy.
	if c.log.Enabled(ctx, slog.LevelInfo) {
		c.log.Info("signaling: connected", "conn", id, "url", sigv4.Redact(u))
	}
	return cn, nil, nil
}

// dialError rewrites a failed dial's error so that it cannot carry the
// signed URL: net/http puts the whole URL in a *url.Error.
func dialError(err error, u, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	for _, secret := range secretsOf(u) {
		if strings.Contains(msg, secret) {
			return fmt.Errorf("signaling: connecting to %s: %s", shown, strings.ReplaceAll(msg, secret, sigv4.Redacted))
		}
	}
	return fmt.Errorf("signaling: connecting to %s: %w", shown, err)
}

// secretsOf returns the signature and session token of a signed URL, as
// they appear in it.
func secretsOf(u string) []string {
	_, q, _ := strings.Cut(u, "?")
	var out []string
	for _, p := range strings.Split(q, "&") {
		name, value, _ := strings.Cut(p, "=")
		if value != "" && (strings.EqualFold(name, "X-Amz-Signature") || strings.EqualFold(name, "X-Amz-Security-Token")) {
			out = append(out, value)
			if dec, err := url.QueryUnescape(value); err == nil && dec != value {
				out = append(out, dec)
			}
		}
	}
	return out
}

// end records why the connection ended; the first reason wins.
func (cn *conn) end(err error) {
	cn.endOnce.Do(func() { cn.endErr = err })
}

// cause returns why the connection ended. Call it after dead is closed.
func (cn *conn) cause() error { return cn.endErr }

// kill ends a connection found broken outside the reader.
func (cn *conn) kill(err error) {
	cn.end(err)
	cn.c.detach(cn)
	cn.cancel()
	cn.ws.CloseNow()
}

// stopTimer stops cn's keepalive and renewal timer. Call it with c.mu
// held.
func (cn *conn) stopTimer() {
	if cn.timer != nil {
		cn.timer()
		cn.timer = nil
	}
}

// shutdown closes the connection, with a close frame if graceful, and
// waits until the client's goroutine has stopped reading it.
func (cn *conn) shutdown(graceful bool) {
	c := cn.c
	c.mu.Lock()
	cn.stopTimer()
	c.detachLocked(cn)
	c.mu.Unlock()
	if graceful {
		done := make(chan struct{})
		go func() {
			cn.ws.Close(websocket.StatusNormalClosure, "")
			close(done)
		}()
		tick, stop := c.opts.Clock.NewTimer(closeGrace)
		select {
		case <-done:
		case <-tick:
		}
		stop()
		cn.end(errClosedByClient)
		cn.cancel()
		<-done
	}
	cn.end(errClosedByClient)
	cn.cancel()
	cn.ws.CloseNow()
	<-cn.dead
}

// release closes a connection that the client's goroutine never read,
// without a close frame: nothing reads the service's reply, and nothing
// but the library's own timeout would end the wait for it.
func (cn *conn) release() {
	cn.c.mu.Lock()
	cn.over = true
	cn.c.mu.Unlock()
	close(cn.dead)
	cn.shutdown(false)
}

// flush waits, at most maxFlush, until the service has read everything
// sent on cn, using a ping as a barrier.
func (cn *conn) flush(stop context.Context) {
	select {
	case <-cn.dead:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(stop, min(cn.c.opts.PongTimeout, maxFlush))
	defer cancel()
	if err := cn.ws.Ping(ctx); err != nil {
		cn.c.log.Debug("signaling: no pong before replacing the connection", "conn", cn.id, "err", err)
	}
}

// write sends one frame, bounded by the write timeout.
func (cn *conn) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(cn.ctx, cn.c.opts.WriteTimeout)
	defer cancel()
	if err := cn.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return err
	}
	cn.lastSent.Store(cn.c.opts.Clock.Now().UnixNano())
	return nil
}

// read runs on the client's goroutine for the connection's life, turning
// frames into events.
func (cn *conn) read() {
	c := cn.c
	defer func() {
		c.mu.Lock()
		cn.over = true
		cn.stopTimer()
		c.detachLocked(cn)
		if c.reading == cn {
			c.reading = nil
		}
		c.mu.Unlock()
		cn.cancel()
		close(cn.dead)
	}()
	for {
		typ, data, err := cn.ws.Read(cn.ctx)
		if err != nil {
			cn.end(readError(err))
			return
		}
		now := c.opts.Clock.Now()
		cn.lastRecv.Store(now.UnixNano())
		if typ != websocket.MessageText {
			c.log.Warn("signaling: ignoring a binary frame", "conn", cn.id, "bytes", len(data))
			continue
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // the service's keep-alive
		}
		ev, err := parseFrame(data)
		if err != nil {
			c.log.Warn("signaling: ignoring a frame", "conn", cn.id, "err", err)
			continue
		}
		c.log.Debug("signaling: received", "conn", cn.id, "type", ev.Type, "from", ev.From)
		ev.At, ev.Conn = now, cn.id
		// Once the client has stopped, events are dropped, and reading
		// goes on until the connection is closed: a close handshake under
		// way needs the reader, to get the service's reply or be cut
		// short.
		cn.handle(ev)
	}
}

// handle delivers ev, and the candidates it releases, and starts the
// connection's replacement on GO_AWAY.
func (cn *conn) handle(ev Event) {
	c := cn.c
	if ev.Type == EventCandidate && c.held.hold(ev) {
		return
	}
	if !c.emit(ev) {
		return
	}
	switch ev.Type {
	case EventOffer, EventAnswer:
		for _, held := range c.held.release(ev.From) {
			held.Conn = cn.id
			if !c.emit(held) {
				return
			}
		}
	case EventGoAway:
		if c.opts.NoReconnect {
			break // delivered, and the service's close awaited
		}
		if h := c.startReplace(cn, ErrGoAway); h != nil {
			c.work.Add(1) // on the client's goroutine: before its Wait
			go func() {
				defer c.work.Done()
				c.replace(cn, h)
			}()
		}
	}
}

// parseFrame turns a frame from the service into an event: an EventOther
// for a message the client does not model. It fails only for a frame that
// is no signaling message.
func parseFrame(data []byte) (Event, error) {
	m, err := kvs.DecodeServerMessage(data)
	if err != nil {
		return Event{}, err
	}
	ev := Event{From: m.SenderClientID, Message: m}
	other := func(err error) (Event, error) {
		return Event{Type: EventOther, From: m.SenderClientID, Message: m,
			Err: fmt.Errorf("signaling: %s from %q: %w", m.MessageType, m.SenderClientID, err)}, nil
	}
	switch m.MessageType {
	case kvs.ActionSDPOffer, kvs.ActionSDPAnswer:
		ev.Type = EventOffer
		if m.MessageType == kvs.ActionSDPAnswer {
			ev.Type = EventAnswer
		}
		if err := kvs.DecodePayload(m.MessagePayload, &ev.SDP); err != nil {
			return other(err)
		}
	case kvs.ActionICECandidate:
		ev.Type = EventCandidate
		if err := kvs.DecodePayload(m.MessagePayload, &ev.Candidate); err != nil {
			return other(err)
		}
	case kvs.TypeGoAway:
		ev.Type = EventGoAway
	case kvs.TypeReconnectICEServer:
		ev.Type = EventReconnectICEServer
	case kvs.TypeStatusResponse:
		ev.Type = EventStatus
		ev.Err = statusError(m.StatusResponse)
	default:
		ev.Type = EventOther
	}
	return ev, nil
}

// readError describes why reading ended.
func readError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return fmt.Errorf("signaling: connection lost: %w", err)
}

// pingWait returns how long until cn is due for a keepalive ping: after
// PingInterval without receiving anything. ok is false if the client does
// not ping.
func (cn *conn) pingWait(now time.Time) (wait time.Duration, ok bool) {
	interval := cn.c.opts.PingInterval
	if interval < 0 {
		return 0, false
	}
	return interval - now.Sub(time.Unix(0, cn.lastRecv.Load())), true
}

// ping sends a keepalive ping and kills the connection if no pong comes
// within PongTimeout. The reader receives the pong.
func (cn *conn) ping() {
	ctx, cancel := context.WithTimeout(cn.ctx, cn.c.opts.PongTimeout)
	unlink := context.AfterFunc(cn.c.stop, cancel) // Close does not wait for the pong
	err := cn.ws.Ping(ctx)
	unlink()
	cancel()
	switch {
	case err == nil:
		cn.lastRecv.Store(cn.c.opts.Clock.Now().UnixNano())
	case cn.ctx.Err() == nil && cn.c.stop.Err() == nil:
		cn.kill(fmt.Errorf("signaling: no pong within %v: %w", cn.c.opts.PongTimeout, err))
	}
}

// Bounds of the candidate buffer.
const (
	maxHeldSenders   = 64
	maxHeldPerSender = 128
	maxSeenSenders   = 4096
)

// candidateBuffer holds ICE candidates from a sender until its offer or
// answer has been delivered.
type candidateBuffer struct {
	enabled bool
	mu      sync.Mutex
	seen    map[string]bool // senders whose description was delivered
	held    map[string][]Event
	order   []string // senders with held candidates, oldest first
}

// hold keeps ev if its sender's description has not come yet.
func (b *candidateBuffer) hold(ev Event) bool {
	if !b.enabled {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[ev.From] {
		return false
	}
	if b.held == nil {
		b.held = make(map[string][]Event)
	}
	q, ok := b.held[ev.From]
	if !ok {
		if len(b.order) >= maxHeldSenders {
			delete(b.held, b.order[0])
			b.order = b.order[1:]
		}
		b.order = append(b.order, ev.From)
	}
	if len(q) >= maxHeldPerSender {
		q = q[1:]
	}
	b.held[ev.From] = append(q, ev)
	return true
}

// release marks sender's description delivered and returns its held
// candidates.
func (b *candidateBuffer) release(sender string) []Event {
	if !b.enabled {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil || len(b.seen) >= maxSeenSenders {
		b.seen = make(map[string]bool)
	}
	b.seen[sender] = true
	q := b.held[sender]
	if q == nil {
		return nil
	}
	delete(b.held, sender)
	for i, s := range b.order {
		if s == sender {
			b.order = append(b.order[:i], b.order[i+1:]...)
			break
		}
	}
	return q
}
