// The signaling WebSocket: the presigned handshake and each connection's
// life (timers, GO_AWAY, close).

package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

const (
	statusNormal    = websocket.StatusNormalClosure
	statusGoingAway = websocket.StatusGoingAway

	// readLimit bounds one frame. Payloads over kvs.MaxPayloadSize in a
	// frame under this limit get a STATUS_RESPONSE; frames over it close
	// the connection with 1009 (message too big).
	readLimit = 64 << 10

	// signedWindow is how far from X-Amz-Date KVS accepts a signaling URL,
	// either way, whatever its X-Amz-Expires (up to SigV4's 7 days).
	signedWindow = 5 * time.Minute

	amzDate = "20060102T150405Z"
)

// conn is one signaling connection.
type conn struct {
	e        *Emulator
	ch       *channel
	role     kvs.Role
	clientID string // a viewer's ClientId; empty for the master
	id       uint64
	since    time.Time
	wsMu     sync.Mutex // guards ws, set once the upgrade is done, and the pending close
	ws       *websocket.Conn
	// How to close a connection closed before its upgrade was done.
	pendingCode   websocket.StatusCode
	pendingReason string
	pendingDrop   bool

	lastActive atomic.Int64  // unix nanoseconds of the last message, real time
	writing    atomic.Int32  // writes pending
	written    atomic.Uint64 // writes done
	// Used by watchWrites only: writes done at its last tick, and for how
	// many ticks writes have been pending without one finishing.
	watchedWrites uint64
	stallTicks    int
	closing       atomic.Bool
	goAwaySent    atomic.Bool

	timerMu sync.Mutex // guards the timers
	timers  [3]*time.Timer

	// Guarded by ch.mu: while draining, held messages are being delivered
	// and new ones queue in backlog, so that order is kept.
	registered bool
	draining   bool
	backlog    []kvs.ServerMessage

	// Used by the reader goroutine only.
	offers, answers, candidates bucket
}

// handshakeError is a refused upgrade.
type handshakeError struct {
	status int
	code   string
	msg    string
	upper  bool // body key "Message" rather than "message"
}

func (e *Emulator) refuse(w http.ResponseWriter, op string, he handshakeError) {
	e.stats.fail(op)
	e.stats.handshakesRejected.Add(1)
	e.writeJSONError(w, &apiError{Status: he.status, Code: he.code, Message: he.msg, lowerKey: !he.upper})
	e.log.Info("signaling handshake refused", "op", op, "status", he.status, "code", he.code, "reason", he.msg)
}

// sigv4Refusal maps a presigned URL's verification failure.
func sigv4Refusal(err error) (handshakeError, bool) {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return handshakeError{}, false
	}
	if errors.Is(err, sigv4.ErrMalformed) {
		return handshakeError{http.StatusBadRequest, "InvalidArgumentException", se.Message, false}, true
	}
	return handshakeError{http.StatusForbidden, "AccessDeniedException", se.Message, false}, true
}

// checkSignedTime applies KVS's time rule to a signaling URL, in KVS's
// words: a URL is good from 5 minutes before its X-Amz-Date to 5 minutes
// after it, and not past X-Amz-Date + X-Amz-Expires. A URL whose date or
// expiry does not parse is left to the SigV4 verifier to describe.
func (e *Emulator) checkSignedTime(r *http.Request) (handshakeError, bool) {
	// Two parameters: spare building the whole query's map, which the
	// verifier builds again.
	ds, expires := queryParams(r.URL.RawQuery, sigv4.ParamDate, sigv4.ParamExpires)
	signed, err := time.Parse(amzDate, ds)
	if err != nil {
		return handshakeError{}, true
	}
	now := e.now().UTC()
	denied := func(format string, args ...any) (handshakeError, bool) {
		return handshakeError{http.StatusForbidden, "AccessDeniedException", fmt.Sprintf(format, args...), false}, false
	}
	switch {
	case signed.After(now.Add(signedWindow)):
		return denied("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			ds, now.Add(signedWindow).Format(amzDate), now.Format(amzDate))
	case signed.Before(now.Add(-signedWindow)):
		return denied("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			ds, now.Add(-signedWindow).Format(amzDate), now.Format(amzDate))
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 1 || secs > int64(sigv4.MaxExpires/time.Second) {
		return handshakeError{}, true
	}
	if exp := signed.Add(time.Duration(secs) * time.Second); now.After(exp) {
		return denied("Signature expired: %s is now earlier than %s (%s + %d sec.)",
			exp.Format(amzDate), now.Format(amzDate), ds, secs)
	}
	return handshakeError{}, true
}

// queryParams returns the first values of the parameters a and b in a raw
// query, decoded as url.ParseQuery decodes them (pairs it cannot decode are
// skipped).
func queryParams(raw, a, b string) (va, vb string) {
	var hasA, hasB bool
	for raw != "" && !(hasA && hasB) {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if (k != a || hasA) && (k != b || hasB) {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		if k == a && !hasA {
			va, hasA = v, true
		} else {
			vb, hasB = v, true
		}
	}
	return va, vb
}

// handshakeParams checks a verified signaling URL's own parameters: the
// channel ARN, and the ClientId a viewer must have and a master must not.
func handshakeParams(res *sigv4.Result, role kvs.Role) (arn, clientID string, he handshakeError, ok bool) {
	bad := func(msg string) (string, string, handshakeError, bool) {
		return "", "", handshakeError{http.StatusBadRequest, "InvalidArgumentException", msg, false}, false
	}
	arn, has := res.Get(kvs.ParamChannelARN)
	if !has || arn == "" {
		return bad("Missing required parameter X-Amz-ChannelARN.")
	}
	if _, err := kvs.ParseChannelARN(arn); err != nil {
		return bad("Invalid ChannelARN specified !")
	}
	clientID, has = res.Get(kvs.ParamClientID)
	switch {
	case has && role == kvs.Master:
		// A viewer's URL sent to the master endpoint: KVS refuses it
		// rather than connecting the viewer as the master.
		return bad("X-Amz-ClientId is not accepted at a master endpoint: connect as a viewer at the viewer endpoint.")
	case role == kvs.Viewer && kvs.ValidateClientID(clientID) != nil:
		return bad("Invalid ClientId specified !")
	}
	return arn, clientID, handshakeError{}, true
}

// serveSignaling serves a signaling handshake that came through the HTTP
// server (the emulator mounted in another server, TLS, or a kept-alive
// connection): the connection then lives on in a goroutine of its own, so
// that the server's goroutine, request and response are released.
func (e *Emulator) serveSignaling(w http.ResponseWriter, r *http.Request, role kvs.Role) {
	c := e.upgradeSignaling(w, r, role)
	if c == nil {
		return
	}
	if !e.track() {
		c.drop()
		return
	}
	go func() {
		defer e.untrack()
		c.run()
	}()
}

// upgradeSignaling checks a signaling handshake and answers it: a refusal,
// or 101 and a WebSocket. It returns the connection, registered and ready
// to run, or nil. w must let coder/websocket hijack the socket.
func (e *Emulator) upgradeSignaling(w http.ResponseWriter, r *http.Request, role kvs.Role) *conn {
	e.setCommonHeaders(w)
	op := OpConnectAsMaster
	if role == kvs.Viewer {
		op = OpConnectAsViewer
	}
	e.stats.call(op)
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// An upgrade request has no body; one that announces a body could
		// hold a slot of the budget while the verifier waits to hash it.
		e.refuse(w, op, handshakeError{http.StatusBadRequest, "InvalidArgumentException", "A signaling handshake (WebSocket upgrade) has no body.", false})
		return nil
	}
	if !e.admitConn() {
		e.refuseOverBudget(w, op)
		return nil
	}
	reserved := true
	defer func() {
		if reserved {
			e.releaseConn()
		}
	}()
	ch, clientID, he, ok := e.checkHandshake(r, role, op)
	if !ok {
		e.refuse(w, op, he)
		return nil
	}
	now := e.now()
	c := &conn{e: e, ch: ch, role: role, clientID: clientID, since: now}
	// Register before answering 101, so that when the client sees the
	// upgrade succeed, the connection is counted, routable (its messages
	// queue until the socket is ready) and limits apply to the next one.
	if he, ok := c.register(now); !ok {
		e.refuse(w, op, he)
		return nil
	}
	// Registered, the connection's socket counts in the budget until it
	// is closed: hand the reservation back before the client sees 101, so
	// that a client that dials again at once is not counted twice.
	e.sockets.Add(1)
	e.releaseConn()
	reserved = false
	e.stats.handshakesAccepted.Add(1)
	sc := &socketCounter{ResponseWriter: w, e: e}
	ws, err := websocket.Accept(sc, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		// Accept has answered (e.g. 426 for a request that is no upgrade).
		if !sc.hijacked {
			e.sockets.Add(-1)
		}
		c.closing.Store(true)
		c.unregister()
		e.stats.fail(op)
		e.stats.handshakesAccepted.Add(-1)
		e.stats.handshakesRejected.Add(1)
		return nil
	}
	ws.SetReadLimit(readLimit)
	if !c.setSocket(ws) {
		// Closed (replaced, dropped, channel deleted) in the meantime.
		if c.pendingDrop {
			ws.CloseNow()
		} else {
			ws.Close(c.pendingCode, c.pendingReason)
		}
		return nil
	}
	if e.isClosed() {
		c.close(statusGoingAway, "emulator shutting down")
		return nil
	}
	e.log.Debug("signaling connected", "conn", c.id, "channel", ch.name, "role", string(role), "clientId", clientID)
	e.watchOnce.Do(func() {
		if e.track() {
			go func() {
				defer e.untrack()
				e.watchWrites()
			}()
		}
	})
	return c
}

// run serves an upgraded connection until it ends.
func (c *conn) run() {
	c.startTimers()
	c.drain()
	c.readLoop()
}

// checkHandshake applies KVS's checks to a signaling upgrade request in
// KVS's order: the method, the signed time window, the signature, the
// parameters, the caller's permission, the channel and injected faults. It
// returns the channel and a viewer's client id, or the refusal.
func (e *Emulator) checkHandshake(r *http.Request, role kvs.Role, op string) (*channel, string, handshakeError, bool) {
	if r.Method != http.MethodGet {
		return nil, "", handshakeError{http.StatusBadRequest, "InvalidArgumentException", "The signaling endpoint takes a WebSocket upgrade (GET).", false}, false
	}
	if he, ok := e.checkSignedTime(r); !ok {
		return nil, "", he, false
	}
	res, err := e.verifier.VerifyPresigned(r.Context(), r)
	if err != nil {
		he, ok := sigv4Refusal(err)
		if !ok {
			e.log.Error("verifying a signaling URL", "err", err)
			he = handshakeError{http.StatusInternalServerError, "InternalFailure", "We encountered an internal error. Please try again.", false}
		}
		return nil, "", he, false
	}
	arn, clientID, he, ok := handshakeParams(res, role)
	if !ok {
		return nil, "", he, false
	}
	// Authorised once the URL is known good and before the channel is
	// looked up, so that a caller without the permission cannot learn
	// whether the channel exists.
	who, ae := e.caller(res.AccessKeyID)
	if ae == nil {
		ae = e.authorize(who, op, arn)
	}
	if ae != nil {
		return nil, "", handshakeError{ae.Status, ae.Code, ae.Message, false}, false
	}
	ch, err := e.channelByARN(arn)
	if err != nil {
		return nil, "", handshakeError{http.StatusNotFound, "ResourceNotFoundException", channelNotFound, false}, false
	}
	if ae := e.faults.inject(op, false); ae != nil {
		e.stats.faults.Add(1)
		return nil, "", handshakeError{ae.Status, ae.Code, ae.Message, false}, false
	}
	return ch, clientID, handshakeError{}, true
}

// viewersExcept counts the channel's viewers other than clientID. The
// caller holds ch.mu.
func (ch *channel) viewersExcept(clientID string) int {
	n := len(ch.viewers)
	if _, ok := ch.viewers[clientID]; ok {
		n--
	}
	return n
}

// connsLocked returns the channel's connections. The caller holds ch.mu.
func (ch *channel) connsLocked() []*conn {
	out := make([]*conn, 0, len(ch.viewers)+1)
	if ch.master != nil {
		out = append(out, ch.master)
	}
	for _, v := range ch.viewers {
		out = append(out, v)
	}
	return out
}

// register adds c to its channel, after the connect rate and viewer
// limits, replacing an older master or viewer of the same ClientId.
func (c *conn) register(now time.Time) (handshakeError, bool) {
	e, ch := c.e, c.ch
	ch.mu.Lock()
	b := &ch.connectMaster
	if c.role == kvs.Viewer {
		b = &ch.connectViewers
	}
	switch {
	case ch.deleted:
		ch.mu.Unlock()
		return handshakeError{http.StatusNotFound, "ResourceNotFoundException", channelNotFound, false}, false
	case !b.take(now, e.cfg.ConnectRate):
		ch.mu.Unlock()
		return handshakeError{http.StatusBadRequest, "ClientLimitExceededException",
			"Kinesis Video Streams has throttled the request because you have exceeded the limit of allowed client calls. Try making the call later.", false}, false
	case c.role == kvs.Viewer && e.cfg.MaxViewers >= 0 && ch.viewersExcept(c.clientID) >= e.cfg.MaxViewers:
		ch.mu.Unlock()
		return handshakeError{http.StatusBadRequest, "ClientLimitExceededException", "Maximum number of clients connected to the channel !", true}, false
	}
	var old *conn
	if c.role == kvs.Master {
		old, ch.master = ch.master, c
	} else {
		old = ch.viewers[c.clientID]
		ch.viewers[c.clientID] = c
	}
	c.registered = true
	c.draining = true
	ch.mu.Unlock()

	e.connMu.Lock()
	e.connID++
	c.id = e.connID
	e.conns[c] = struct{}{}
	e.connMu.Unlock()
	e.stats.live(c.role, 1)
	if old != nil {
		e.log.Info("signaling connection replaced", "conn", old.id, "by", c.id)
		old.close(statusNormal, "replaced by a newer connection")
	}
	return handshakeError{}, true
}

// setSocket gives c its WebSocket once the upgrade is done. It reports
// false if c was closed in the meantime; pendingCode, pendingReason and
// pendingDrop then say how.
func (c *conn) setSocket(ws *websocket.Conn) bool {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	if c.closing.Load() {
		return false
	}
	c.ws = ws
	return true
}

// socket returns c's WebSocket, or nil before the upgrade is done.
func (c *conn) socket() *websocket.Conn {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	return c.ws
}

// unregister removes c from its channel, if it is still registered there.
func (c *conn) unregister() {
	e, ch := c.e, c.ch
	ch.mu.Lock()
	if c.registered {
		c.registered = false
		if c.role == kvs.Master && ch.master == c {
			ch.master = nil
		} else if c.role == kvs.Viewer && ch.viewers[c.clientID] == c {
			delete(ch.viewers, c.clientID)
		}
	}
	ch.mu.Unlock()
	e.connMu.Lock()
	_, ok := e.conns[c]
	delete(e.conns, c)
	e.connMu.Unlock()
	if ok {
		e.stats.live(c.role, -1)
	}
}

// startTimers arms the idle timeout, GO_AWAY before the maximum duration,
// and the end of the maximum duration. Timers run on real time.
func (c *conn) startTimers() {
	cfg := &c.e.cfg
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if c.closing.Load() {
		return
	}
	c.timers[0] = time.AfterFunc(cfg.IdleTimeout, c.checkIdle)
	at := cfg.MaxConnectionDuration - cfg.GoAwayGrace
	if at <= 0 {
		// A grace as long as the whole connection: warn half-way.
		at = cfg.MaxConnectionDuration / 2
	}
	c.timers[1] = time.AfterFunc(at, func() { c.goAway(false) })
	c.timers[2] = time.AfterFunc(cfg.MaxConnectionDuration, func() {
		c.close(statusGoingAway, "maximum connection duration reached")
	})
}

func (c *conn) stopTimers() {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	for _, t := range c.timers {
		if t != nil {
			t.Stop()
		}
	}
}

func (c *conn) checkIdle() {
	idle := c.e.cfg.IdleTimeout
	since := time.Since(time.Unix(0, c.lastActive.Load()))
	if since < idle {
		c.timerMu.Lock()
		if !c.closing.Load() {
			c.timers[0].Reset(idle - since)
		}
		c.timerMu.Unlock()
		return
	}
	c.e.log.Info("signaling connection idle", "conn", c.id)
	c.close(statusGoingAway, "idle timeout")
}

// goAway sends GO_AWAY and closes the connection after the grace period.
// It reports whether GO_AWAY was sent (it is sent once per connection).
func (c *conn) goAway(grace bool) bool {
	if c.closing.Load() || !c.goAwaySent.CompareAndSwap(false, true) {
		return false
	}
	c.e.log.Info("signaling GO_AWAY", "conn", c.id)
	if err := c.deliver(kvs.ServerMessage{MessageType: kvs.TypeGoAway}); err != nil {
		return false
	}
	if grace {
		c.timerMu.Lock()
		if !c.closing.Load() {
			if c.timers[2] != nil {
				c.timers[2].Stop()
			}
			c.timers[2] = time.AfterFunc(c.e.cfg.GoAwayGrace, func() {
				c.close(statusGoingAway, "GO_AWAY grace period over")
			})
		}
		c.timerMu.Unlock()
	}
	return true
}

// close closes the connection with a close frame, without waiting.
func (c *conn) close(code websocket.StatusCode, reason string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.stopTimers()
	c.unregister()
	c.wsMu.Lock()
	ws := c.ws
	c.pendingCode, c.pendingReason = code, reason
	c.wsMu.Unlock()
	if ws == nil {
		return
	}
	if !c.e.track() {
		ws.CloseNow()
		return
	}
	go func() {
		defer c.e.untrack()
		ws.Close(code, reason)
	}()
}

// drop closes the TCP connection at once, without a close frame, as a
// network failure would.
func (c *conn) drop() {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.stopTimers()
	c.unregister()
	c.wsMu.Lock()
	ws := c.ws
	c.pendingDrop = true
	c.wsMu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

var errNotReady = errors.New("emulator: connection not upgraded yet")

// deliver sends a message of the emulator's own (GO_AWAY,
// RECONNECT_ICE_SERVER) in order with relayed ones: while c is draining, it
// queues.
func (c *conn) deliver(m kvs.ServerMessage) error {
	c.ch.mu.Lock()
	if c.draining {
		c.backlog = append(c.backlog, m)
		c.ch.mu.Unlock()
		return nil
	}
	c.ch.mu.Unlock()
	return c.send(m)
}

// send writes one message. A write that makes no progress for the write
// timeout is cut off by watchWrites, and a failed write closes the
// connection. The write's context has no deadline on purpose: a deadline
// costs coder/websocket a context registration per write, a tenth of the
// relay's CPU.
func (c *conn) send(m kvs.ServerMessage) error {
	ws := c.socket()
	if ws == nil {
		return errNotReady
	}
	bp := c.e.bufPool.Get().(*[]byte)
	b, err := appendServerMessage((*bp)[:0], m)
	if err == nil {
		c.writeBegin()
		err = ws.Write(context.Background(), websocket.MessageText, b)
		c.writeEnd()
		if err != nil {
			c.drop()
		}
	}
	if cap(b) <= readLimit {
		*bp = b[:0]
		c.e.bufPool.Put(bp)
	}
	return err
}

// writeBegin and writeEnd bracket a write, for watchWrites. They count
// rather than read the clock, which costs more than the count on the
// relay's path.
func (c *conn) writeBegin() { c.writing.Add(1) }

func (c *conn) writeEnd() {
	c.written.Add(1)
	c.writing.Add(-1)
}

// stallTicks is how many of watchWrites' ticks, a quarter of the write
// timeout each, a connection's writes may make no progress: the fifth tick
// without progress is at least a whole write timeout after the stall began.
const stallTicks = 5

// stalled reports, once per tick of watchWrites (its only caller), whether
// c has had writes pending and none finished for stallTicks ticks.
func (c *conn) stalled() bool {
	if c.writing.Load() == 0 {
		c.stallTicks = 0
		return false
	}
	if n := c.written.Load(); n != c.watchedWrites {
		c.watchedWrites, c.stallTicks = n, 0
	}
	c.stallTicks++
	return c.stallTicks >= stallTicks
}

// watchWrites cuts off the connections whose writes have stalled for the
// write timeout (a peer that stopped reading), as a deadline on each write
// would.
func (e *Emulator) watchWrites() {
	t := time.NewTicker(max(e.cfg.WriteTimeout/(stallTicks-1), time.Millisecond))
	defer t.Stop()
	var stalled []*conn
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		stalled = stalled[:0]
		e.connMu.Lock()
		for c := range e.conns {
			if c.stalled() {
				stalled = append(stalled, c)
			}
		}
		e.connMu.Unlock()
		for _, c := range stalled {
			e.log.Debug("signaling write timed out", "conn", c.id)
			if ws := c.socket(); ws != nil {
				ws.CloseNow()
			}
		}
	}
}

// readLoop reads frames until the connection ends.
func (c *conn) readLoop() {
	// Close aborts the reads of peers that do not answer its close frame.
	// One registration per connection: a context given to each Reader call
	// would cost a registration per message.
	aborted := make(chan struct{})
	stop := context.AfterFunc(c.e.stopCtx, func() {
		c.ws.CloseNow()
		close(aborted)
	})
	defer func() {
		if !stop() {
			// The abort runs in a goroutine of its own: wait for it,
			// since Close waits for this one only.
			<-aborted
		}
		c.closing.Store(true)
		c.stopTimers()
		c.unregister()
		c.ws.CloseNow()
		c.e.log.Debug("signaling disconnected", "conn", c.id)
	}()
	for {
		_, rd, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		bp := c.e.bufPool.Get().(*[]byte)
		b, err := readAll(rd, (*bp)[:0])
		if err != nil {
			return
		}
		c.lastActive.Store(time.Now().UnixNano())
		c.handle(b)
		if cap(b) <= readLimit {
			*bp = b[:0]
			c.e.bufPool.Put(bp)
		}
	}
}

// readAll is io.ReadAll into a caller's buffer.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
