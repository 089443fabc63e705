package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// Options configure a Client. The zero value (or a nil *Options) is usable:
// every field says what its zero value means. The defaults follow the
// service's limits and the AWS SDKs' timeouts.
type Options struct {
	// HTTPClient makes the WebSocket handshake. Set it to trust a private
	// CA (an emulator with TLS) or to use a proxy. Its Timeout, if any, also
	// bounds the handshake. If nil, http.DefaultClient.
	HTTPClient *http.Client
	// DialTimeout bounds one connection attempt: getting the URL from the
	// URLSource, connecting and the upgrade. If zero, 10 seconds.
	DialTimeout time.Duration
	// WriteTimeout bounds the write of one message. A connection that
	// cannot take a message within it is dropped and the message is sent
	// on the next one. If zero, 5 seconds.
	WriteTimeout time.Duration
	// PingInterval is how long the client waits without receiving anything
	// before it sends a WebSocket ping. If zero, 10 seconds (as the C SDK);
	// if negative, the client does not ping.
	PingInterval time.Duration
	// PongTimeout is how long the client waits for the answer to a ping
	// before it declares the connection dead and reconnects. If zero,
	// 5 seconds.
	PongTimeout time.Duration
	// IdleTimeout is the service's idle timeout: it closes a connection on
	// which the client has sent nothing for this long (pings do not count).
	// The client renews such a connection a little before (a tenth of it,
	// at most 30 seconds, before). If zero, 10 minutes; if negative, the
	// client does not renew, and reconnects after the service closes the
	// connection.
	IdleTimeout time.Duration
	// MaxConnectionDuration is the service's limit on a connection's life.
	// The client renews a connection a little before it (a tenth of it, at
	// most 2 minutes, before), ahead of the service's GO_AWAY. If zero,
	// 1 hour; if negative, the client does not renew and relies on GO_AWAY.
	MaxConnectionDuration time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, which doubles from MinBackoff after each failure, with
	// jitter. If zero, 100 milliseconds and 10 seconds.
	MinBackoff, MaxBackoff time.Duration
	// NoReconnect keeps the client to the connection Dial makes: Dial
	// makes a single attempt (even for clock skew), and the client neither
	// renews the connection nor follows GO_AWAY, which it delivers. When
	// the connection ends, Events is closed and Err says why (a
	// *CloseError if the service closed it).
	NoReconnect bool
	// MaxAttempts is how many reconnection attempts in a row may fail
	// before the client gives up. If zero, 20 (about two minutes with the
	// default backoff).
	MaxAttempts int
	// BufferCandidates holds ICE candidates that arrive from a peer before
	// its offer or answer, and delivers them right after it, so that they
	// can be added to a peer connection that has its remote description.
	// If false, candidates are delivered as they arrive.
	BufferCandidates bool
	// SDPRate and ICERate are the service's per-connection limits on SDP
	// offers (and, separately, answers) and ICE candidates per second. The
	// send methods pace messages to stay under them. If zero, 5 and 20; if
	// negative, sends are not paced.
	SDPRate, ICERate float64
	// EventBuffer is the capacity of the Events channel: what arrives
	// while the consumer is busy. If zero, 8, enough for a burst of
	// candidates read in a loop; a consumer that falls further behind
	// holds up the connection's reader, and the service holds the rest.
	// It is unused with OnEvent.
	EventBuffer int
	// OnEvent, if set, receives the events instead of the Events channel,
	// which the client then does not make. The client calls it on its own
	// goroutine, the one that reads the connection, one event at a time
	// and in order, so that a client costs no goroutine of the caller's
	// and no buffer. While it runs, the connection is not read: it must
	// return promptly, and must not call Close (Close waits for that
	// goroutine) nor wait on a send (a send may wait for a connection
	// that the same goroutine makes); start a goroutine to send.
	OnEvent func(Event)
	// Clock is the client's time: when events happen, and the timers of
	// the keepalive, the backoff, the renewals and the pacing. Network
	// deadlines (DialTimeout, WriteTimeout, PongTimeout) run on the
	// system's clock. If nil, the system's clock.
	Clock Clock
	// Logger receives connection changes and retries. It never sees a
	// signature or a session token: URLs are logged redacted. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// Limits of the renewal margins and of 401/403 retries.
const (
	maxIdleMargin     = 30 * time.Second
	maxDurationMargin = 2 * time.Minute
	maxAuthRetries    = 3
	closeGrace        = time.Second
	readLimit         = 64 << 10
	maxSendTries      = 3
	maxFlush          = 2 * time.Second
	// defaultEventBuffer is small: an Event is about 200 bytes, and a
	// client per device or per viewer should cost little.
	defaultEventBuffer = 8
)

// settings are Options with the defaults applied.
type settings struct {
	Options
	idleRenew, durationRenew time.Duration // 0: do not renew
}

func (o *Options) settings() (settings, error) {
	var s settings
	if o != nil {
		s.Options = *o
	}
	def := func(name string, d *time.Duration, v time.Duration) error {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			return fmt.Errorf("signaling: option %s %v: must not be negative", name, *d)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		d    *time.Duration
		v    time.Duration
	}{
		{"DialTimeout", &s.DialTimeout, 10 * time.Second},
		{"WriteTimeout", &s.WriteTimeout, 5 * time.Second},
		{"PongTimeout", &s.PongTimeout, 5 * time.Second},
		{"MinBackoff", &s.MinBackoff, 100 * time.Millisecond},
		{"MaxBackoff", &s.MaxBackoff, 10 * time.Second},
	} {
		if err := def(f.name, f.d, f.v); err != nil {
			return s, err
		}
	}
	if s.MaxBackoff < s.MinBackoff {
		return s, fmt.Errorf("signaling: option MaxBackoff %v: must be at least MinBackoff %v", s.MaxBackoff, s.MinBackoff)
	}
	if s.PingInterval == 0 {
		s.PingInterval = 10 * time.Second
	}
	switch {
	case s.NoReconnect:
	case s.IdleTimeout == 0:
		s.IdleTimeout = 10 * time.Minute
		fallthrough
	case s.IdleTimeout > 0:
		s.idleRenew = s.IdleTimeout - min(s.IdleTimeout/10, maxIdleMargin)
	}
	switch {
	case s.NoReconnect:
	case s.MaxConnectionDuration == 0:
		s.MaxConnectionDuration = time.Hour
		fallthrough
	case s.MaxConnectionDuration > 0:
		s.durationRenew = s.MaxConnectionDuration - min(s.MaxConnectionDuration/10, maxDurationMargin)
	}
	switch {
	case s.MaxAttempts == 0:
		s.MaxAttempts = 20
	case s.MaxAttempts < 0:
		return s, fmt.Errorf("signaling: option MaxAttempts %d: must not be negative", s.MaxAttempts)
	}
	if s.SDPRate == 0 {
		s.SDPRate = 5
	}
	if s.ICERate == 0 {
		s.ICERate = 20
	}
	switch {
	case s.EventBuffer == 0:
		s.EventBuffer = defaultEventBuffer
	case s.EventBuffer < 0:
		return s, fmt.Errorf("signaling: option EventBuffer %d: must not be negative", s.EventBuffer)
	}
	if s.HTTPClient == nil {
		s.HTTPClient = http.DefaultClient
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Clock == nil {
		s.Clock = systemClock{}
	}
	return s, nil
}

// A Client is a connection to a signaling channel that reconnects by itself
// (see the package documentation for the policy). Its methods are safe for
// concurrent use. Close it when done: it leaves no goroutine behind.
//
// An idle Client holds one goroutine, which reads the connection, delivers
// the events and, when the connection drops, reconnects. Keepalive pings
// and renewals start from timers, in goroutines that last while they work.
type Client struct {
	src  URLSource
	opts settings
	log  *slog.Logger

	// stop is cancelled by Close or when the client gives up; every wait
	// of the client (dials, backoff, sends waiting for a connection,
	// pacing) ends with it.
	stop    context.Context
	stopNow context.CancelFunc
	events  chan Event    // nil with Options.OnEvent
	done    chan struct{} // closed once every goroutine has ended

	mu      sync.Mutex
	cur     *conn         // the connection to send on; nil while reconnecting
	ready   chan struct{} // closed while cur != nil
	reading *conn         // the connection the client's goroutine reads
	err     error         // why the client ended
	nconn   int
	ending  bool           // the client's goroutine is ending: no more work
	work    sync.WaitGroup // timer callbacks and replacements under way

	seq    atomic.Uint64
	offers *pacer
	answer *pacer
	cands  *pacer
	held   candidateBuffer
}

// closedEvents is what Events returns to a client with Options.OnEvent.
var closedEvents = func() chan Event {
	ch := make(chan Event)
	close(ch)
	return ch
}()

// Dial connects to a signaling channel with a URL from src and returns a
// Client that stays connected until Close. ctx bounds this first connection
// only; Dial makes one attempt and returns its error (a *HandshakeError if
// the service refused the upgrade), except that a URL refused for clock
// skew, when src corrects for it (see Presigned), is followed by one more
// attempt with a corrected URL. Reconnections later follow the policy in
// the package documentation.
func Dial(ctx context.Context, src URLSource, opts *Options) (*Client, error) {
	if src == nil {
		return nil, errors.New("signaling: URL source is nil")
	}
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	c := &Client{
		src:    src,
		opts:   s,
		log:    s.Logger,
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
		offers: newPacer(s.SDPRate),
		answer: newPacer(s.SDPRate),
		cands:  newPacer(s.ICERate),
	}
	if s.OnEvent == nil {
		c.events = make(chan Event, s.EventBuffer)
	}
	c.held.enabled = s.BufferCandidates
	c.stop, c.stopNow = context.WithCancel(context.Background())
	var skews []Event // delivered first by the client's goroutine
	cn, skew, err := c.dial(ctx)
	for retried := false; skew != nil && !s.NoReconnect; retried = true {
		skews = append(skews, *skew)
		if retried {
			break
		}
		// The URL was refused for clock skew, now corrected: one more
		// attempt.
		cn, skew, err = c.dial(ctx)
	}
	if err != nil {
		c.stopNow()
		return nil, err
	}
	c.setCurrent(cn)
	go c.run(cn, skews)
	return c, nil
}

// Events returns the channel of events: messages from peers and the
// service, and changes of connection. It is closed when the client ends,
// after Close or when it gives up reconnecting (see Err). Receive from it
// promptly: a full channel holds up the connection. With Options.OnEvent
// the events go to it instead, and Events returns a closed channel.
func (c *Client) Events() <-chan Event {
	if c.events == nil {
		return closedEvents
	}
	return c.events
}

// Err returns nil while the client runs, ErrClosed after Close, or the error
// that made it give up reconnecting.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns a channel closed once the client has ended and released
// everything it held.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the connection (with a close frame, waiting at most a second
// for the service's reply) and waits until every goroutine of the client
// has ended. Messages still in Events stay there to be read; no OnEvent
// call is made after Close returns. Close returns nil, or the error that
// had already ended the client; calling it again does the same.
func (c *Client) Close() error {
	prior := c.finish(ErrClosed)
	<-c.done
	if prior == nil || errors.Is(prior, ErrClosed) {
		return nil
	}
	return prior
}

// finish ends the client with err, unless it has ended already, and closes
// the connection its goroutine reads, so that the goroutine ends. It
// returns the error that had ended the client before, if any.
func (c *Client) finish(err error) error {
	c.mu.Lock()
	prior := c.err
	if c.err == nil {
		c.err = err
	}
	cn := c.reading
	c.mu.Unlock()
	c.stopNow()
	if cn != nil {
		cn.shutdown(true)
	}
	return prior
}

// stopped returns why the client stopped.
func (c *Client) stopped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func (c *Client) setCurrent(cn *conn) {
	c.mu.Lock()
	if c.cur == nil {
		close(c.ready)
	}
	c.cur = cn
	c.mu.Unlock()
}

// detach stops sends from using cn.
func (c *Client) detach(cn *conn) {
	c.mu.Lock()
	c.detachLocked(cn)
	c.mu.Unlock()
}

func (c *Client) detachLocked(cn *conn) {
	if c.cur == cn {
		c.cur = nil
		c.ready = make(chan struct{})
	}
}

// current waits for a connection to send on.
func (c *Client) current(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cur, ready, err := c.cur, c.ready, c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if cur != nil {
			return cur, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.stop.Done():
			return nil, c.stopped()
		}
	}
}

// emit delivers an event on the client's goroutine, and reports whether
// the client still runs.
func (c *Client) emit(ev Event) bool {
	if ev.At.IsZero() {
		ev.At = c.opts.Clock.Now()
	}
	if c.stop.Err() != nil {
		return false
	}
	if f := c.opts.OnEvent; f != nil {
		f(ev)
		return true
	}
	select {
	case c.events <- ev:
		return true
	case <-c.stop.Done():
		return false
	}
}

// run is the client's goroutine. It reads the connection (the websocket
// library has no other way to receive than a blocking Read), and when the
// connection ends it takes over the one that replaced it, or reconnects.
// It starts with the connection Dial made and the events Dial saw.
func (c *Client) run(cn *conn, pending []Event) {
	for _, ev := range pending {
		c.emit(ev)
	}
	for cn != nil && c.adopt(cn) {
		cn.read()
		cn = c.after(cn)
	}
	c.mu.Lock()
	c.ending = true
	c.mu.Unlock()
	c.stopNow()
	c.work.Wait()
	if c.events != nil {
		close(c.events)
	}
	close(c.done)
}

// adopt makes cn the connection the client's goroutine reads, and starts
// its timer. If the client has ended, it closes cn instead and returns
// false.
func (c *Client) adopt(cn *conn) bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		cn.release()
		return false
	}
	c.reading = cn
	c.mu.Unlock()
	c.schedule(cn)
	return true
}

// after decides, once the client's goroutine has read cn to its end, which
// connection to read next: the one that replaced cn, or a new one if cn
// was lost. It returns nil when the client ends.
func (c *Client) after(cn *conn) *conn {
	c.mu.Lock()
	h := cn.handoff
	c.mu.Unlock()
	if h != nil {
		<-h.done
		if h.next == nil {
			cn.ws.CloseNow() // in case it ended before the client did
			return nil
		}
		for _, ev := range h.events {
			c.emit(ev)
		}
		c.log.Info("signaling: reconnected", "conn", h.next.id)
		c.emit(Event{Type: EventReconnected, Err: h.why, Conn: h.next.id})
		return h.next
	}
	// Read failed, and the library may not have closed the connection:
	// close it now, so that it holds nothing while the client reconnects
	// (or after it has ended).
	cn.ws.CloseNow()
	if c.stop.Err() != nil {
		return nil
	}
	why := cn.cause()
	if c.opts.NoReconnect {
		c.log.Info("signaling: connection ended", "conn", cn.id, "err", why)
		c.finish(why)
		return nil
	}
	c.log.Info("signaling: connection lost; reconnecting", "conn", cn.id, "err", why)
	c.emit(Event{Type: EventDisconnected, Err: why, Conn: cn.id})
	next, err := c.reconnect(cn, false, func(ev Event) { c.emit(ev) })
	if err != nil {
		if c.stop.Err() == nil {
			// Info, not Warn: the caller gets the error from Err.
			c.log.Info("signaling: giving up", "err", err)
			c.finish(err)
		}
		return nil
	}
	c.setCurrent(next)
	c.log.Info("signaling: reconnected", "conn", next.id)
	c.emit(Event{Type: EventReconnected, Err: why, Conn: next.id})
	return next
}

// A handoff is the replacement of a connection that still works (on
// GO_AWAY, or when it is due for renewal), from the goroutine that dials
// the new one to the client's goroutine, which reads the old one until it
// ends.
type handoff struct {
	why    error         // ErrGoAway or a *RenewalError
	done   chan struct{} // closed when next and events are set
	next   *conn         // nil if the client ended instead
	events []Event       // EventClockSkew seen on the way
}

// begin counts a piece of work outside the client's goroutine, unless the
// client is ending.
func (c *Client) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending {
		return false
	}
	c.work.Add(1)
	return true
}

// schedule sets cn's timer for its next keepalive ping or renewal,
// whichever comes first.
func (c *Client) schedule(cn *conn) {
	now := c.opts.Clock.Now()
	wait, due := c.renewalDue(cn, now)
	planned := wait > 0 || due != nil
	if p, ok := cn.pingWait(now); ok && (!planned || p < wait) {
		wait, planned = max(p, 0), true
	}
	if !planned {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.over || cn.handoff != nil || c.ending {
		return
	}
	if cn.timer != nil {
		cn.timer()
	}
	cn.timer = c.opts.Clock.AfterFunc(wait, func() { c.tick(cn) })
}

// tick runs when cn's timer fires: it replaces cn if it is due for
// renewal, pings it if it has been silent, and sets the timer again.
func (c *Client) tick(cn *conn) {
	if !c.begin() {
		return
	}
	defer c.work.Done()
	c.mu.Lock()
	cn.timer = nil
	over := cn.over
	c.mu.Unlock()
	if over || c.stop.Err() != nil {
		return
	}
	now := c.opts.Clock.Now()
	if _, why := c.renewalDue(cn, now); why != nil {
		if h := c.startReplace(cn, why); h != nil {
			c.replace(cn, h)
		}
		return
	}
	if p, ok := cn.pingWait(now); ok && p <= 0 {
		cn.ping()
	}
	c.schedule(cn)
}

// startReplace starts the replacement of cn for why, unless cn has ended,
// is being replaced already, or the client has ended.
func (c *Client) startReplace(cn *conn, why error) *handoff {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.over || cn.handoff != nil || c.err != nil {
		return nil
	}
	if cn.timer != nil {
		cn.timer()
		cn.timer = nil
	}
	cn.handoff = &handoff{why: why, done: make(chan struct{})}
	c.log.Info("signaling: replacing the connection", "conn", cn.id, "reason", why)
	return cn.handoff
}

// replace dials the connection that replaces cn and hands it over to the
// client's goroutine, then closes cn. If it cannot, the client ends.
func (c *Client) replace(cn *conn, h *handoff) {
	next, err := c.reconnect(cn, true, func(ev Event) {
		ev.At = c.opts.Clock.Now()
		h.events = append(h.events, ev)
	})
	if err != nil {
		close(h.done)
		if c.stop.Err() == nil {
			c.log.Info("signaling: giving up", "err", err)
			c.finish(err)
		}
		return
	}
	c.setCurrent(next)
	h.next = next
	close(h.done)
	cn.shutdown(true)
}

// renewalDue returns how long until cn is due for renewal, or, if it is
// due, why. A wait of 0 with a nil reason means no renewal is planned.
func (c *Client) renewalDue(cn *conn, now time.Time) (time.Duration, error) {
	var wait time.Duration
	if r := c.opts.idleRenew; r > 0 {
		idle := now.Sub(time.Unix(0, cn.lastSent.Load()))
		if idle >= r {
			return 0, &RenewalError{Idle: true, Elapsed: idle.Round(time.Millisecond), Limit: c.opts.IdleTimeout}
		}
		wait = r - idle
	}
	if r := c.opts.durationRenew; r > 0 {
		age := now.Sub(cn.start)
		if age >= r {
			return 0, &RenewalError{Elapsed: age.Round(time.Millisecond), Limit: c.opts.MaxConnectionDuration}
		}
		if wait == 0 || r-age < wait {
			wait = r - age
		}
	}
	return wait, nil
}

// reconnect dials until it succeeds, the policy says stop, or the client
// is closed. graceful means the old connection prev still works, so the
// first attempt need not wait.
//
// While an attempt is under way, sends wait rather than go on prev: the
// service replaces prev as soon as the new connection is accepted, and may
// drop what it has not yet read from a connection it is closing. So before
// each attempt the client also pings prev and waits (briefly) for the pong:
// the service reads frames in order, so the pong means it has read every
// message sent before. Between attempts prev carries the sends again, if
// it still works. Clock skew events go to emit.
func (c *Client) reconnect(prev *conn, graceful bool, emit func(Event)) (*conn, error) {
	authFailures := 0
	retryNow := false // the last attempt corrected the clock
	for attempt := 0; ; attempt++ {
		if graceful && attempt > 0 && !retryNow {
			select {
			case <-prev.dead:
			default:
				c.setCurrent(prev)
			}
		}
		if retryNow {
			retryNow = false
		} else if attempt > 0 || !graceful {
			d := backoff(attempt, c.opts.MinBackoff, c.opts.MaxBackoff, rand.Float64())
			tick, stop := c.opts.Clock.NewTimer(d)
			select {
			case <-tick:
			case <-c.stop.Done():
				stop()
				return nil, c.stopped()
			}
		}
		c.detach(prev)
		if graceful {
			prev.flush(c.stop)
		}
		cn, skew, err := c.dial(c.stop)
		if err == nil {
			return cn, nil
		}
		if c.stop.Err() != nil {
			return nil, c.stopped()
		}
		if skew != nil {
			emit(*skew)
		}
		var he *HandshakeError
		if errors.As(err, &he) {
			if !he.retryable() {
				return nil, &GiveUpError{Attempts: attempt + 1, Last: err}
			}
			if skew != nil {
				// Refused for clock skew, now corrected: not a failure
				// of credentials, and worth retrying at once.
				authFailures = 0
				retryNow = true
			} else if he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden {
				if authFailures++; authFailures >= maxAuthRetries {
					return nil, &GiveUpError{Attempts: attempt + 1, Last: err}
				}
			} else {
				authFailures = 0
			}
		}
		if attempt+1 >= c.opts.MaxAttempts {
			return nil, &GiveUpError{Attempts: attempt + 1, Last: err}
		}
		c.log.Info("signaling: reconnection failed; retrying", "attempt", attempt+1, "err", err)
	}
}

// SendOffer sends an SDP offer. A viewer's messages always go to the master,
// so a viewer passes to = ""; a master names the viewer's client id. It
// waits for its turn under the service's rate limit and, while the client
// is reconnecting, for the new connection, as long as ctx allows. A nil
// error means the message was written to the connection; the service
// reports a failure to deliver it as an EventStatus.
func (c *Client) SendOffer(ctx context.Context, to string, sdp kvs.SessionDescription) error {
	return c.sendSDP(ctx, kvs.ActionSDPOffer, "offer", to, sdp)
}

// SendAnswer sends an SDP answer; see SendOffer.
func (c *Client) SendAnswer(ctx context.Context, to string, sdp kvs.SessionDescription) error {
	return c.sendSDP(ctx, kvs.ActionSDPAnswer, "answer", to, sdp)
}

func (c *Client) sendSDP(ctx context.Context, action, kind, to string, sdp kvs.SessionDescription) error {
	if sdp.Type == "" {
		sdp.Type = kind
	} else if sdp.Type != kind {
		return fmt.Errorf("signaling: %s: description type %q: must be %q", action, sdp.Type, kind)
	}
	if sdp.SDP == "" {
		return fmt.Errorf("signaling: %s: description sdp: is empty", action)
	}
	return c.send(ctx, action, kind, to, sdp)
}

// SendCandidate sends an ICE candidate; see SendOffer. A pion
// ICECandidateInit converts directly: kvs.ICECandidate(init).
func (c *Client) SendCandidate(ctx context.Context, to string, cand kvs.ICECandidate) error {
	return c.send(ctx, kvs.ActionICECandidate, "candidate", to, cand)
}

// send is the typed sends' path: it encodes the payload, sets the
// correlation id kind-N, and sends the message with Send.
func (c *Client) send(ctx context.Context, action, kind, to string, payload any) error {
	m, err := typedMessage(action, kind, to, payload, c.seq.Add(1))
	if err != nil {
		return err
	}
	return c.Send(ctx, m)
}

// Send sends m as it is: its action, recipient, correlation id and base64
// payload go on the wire unchanged (the client neither decodes the payload
// nor sets a correlation id; without one, the service reports no failure
// to deliver the message). It is for relays and for payloads that
// SendOffer, SendAnswer and SendCandidate do not model.
//
// m must pass [kvs.ClientMessage.Validate]; if it does not, Send returns
// an error naming the field and sends nothing. Otherwise Send behaves as
// the typed sends, which go through it: it waits for its turn under the
// rate limit of m's action and, while the client is reconnecting, for the
// new connection, as long as ctx allows; a nil error means the message was
// written to the connection.
func (c *Client) Send(ctx context.Context, m kvs.ClientMessage) error {
	if err := c.Err(); err != nil {
		return err
	}
	frame, err := encodeFrame(m)
	if err != nil {
		return err
	}
	if err := c.pace(ctx, c.pacerFor(m.Action)); err != nil {
		return err
	}
	for try := 1; ; try++ {
		cn, err := c.current(ctx)
		if err != nil {
			return err
		}
		err = cn.write(frame)
		if err == nil {
			return nil
		}
		cn.kill(fmt.Errorf("signaling: write failed: %w", err))
		if try == maxSendTries {
			return fmt.Errorf("signaling: %s: not sent after %d connections failed under it: %w", m.Action, try, err)
		}
		c.log.Info("signaling: write failed; sending on the next connection", "conn", cn.id, "err", err)
	}
}

// pacerFor returns the pacer of an action, or nil for one that
// Validate refuses.
func (c *Client) pacerFor(action string) *pacer {
	switch action {
	case kvs.ActionSDPOffer:
		return c.offers
	case kvs.ActionSDPAnswer:
		return c.answer
	case kvs.ActionICECandidate:
		return c.cands
	}
	return nil
}

// typedMessage builds the message of a typed send, with the correlation
// id kind-seq.
func typedMessage(action, kind, to string, payload any, seq uint64) (kvs.ClientMessage, error) {
	enc, err := kvs.EncodePayload(payload)
	if err != nil {
		return kvs.ClientMessage{}, fmt.Errorf("signaling: %s: %w", action, err)
	}
	return kvs.ClientMessage{
		Action:            action,
		RecipientClientID: to,
		MessagePayload:    enc,
		CorrelationID:     kind + "-" + strconv.FormatUint(seq, 10),
	}, nil
}

// encodeFrame validates m and returns its frame. An error names the
// action (when it is a valid one) and the field.
func encodeFrame(m kvs.ClientMessage) ([]byte, error) {
	if err := m.Validate(); err != nil {
		switch m.Action {
		case kvs.ActionSDPOffer, kvs.ActionSDPAnswer, kvs.ActionICECandidate:
			return nil, fmt.Errorf("signaling: %s: %w", m.Action, err)
		}
		return nil, fmt.Errorf("signaling: %w", err)
	}
	return json.Marshal(m)
}

// pace waits for a turn to send under p.
func (c *Client) pace(ctx context.Context, p *pacer) error {
	d := p.reserve(c.opts.Clock.Now())
	if d <= 0 {
		return nil
	}
	tick, stop := c.opts.Clock.NewTimer(d)
	defer stop()
	select {
	case <-tick:
		return nil
	case <-ctx.Done():
		p.cancel()
		return ctx.Err()
	case <-c.stop.Done():
		p.cancel()
		return c.stopped()
	}
}
