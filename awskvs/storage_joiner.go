// StorageJoiner: what keeps a master in its channel's storage session.

package awskvs

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kvssign/kvssign/signaling"
)

// Defaults of a [StorageJoiner]. The offer timeout is the one of the KVS
// JavaScript SDK's ingestion sample; KVS ends a storage session after an
// hour.
const (
	DefaultOfferTimeout   = 6 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultSessionLimit   = time.Hour
	DefaultJoinFailures   = 8
	defaultJoinMinBackoff = time.Second
	defaultJoinMaxBackoff = 30 * time.Second
	// stableSession is how long a storage connection must last for the
	// next loss to be treated as a first one again.
	stableSession = time.Minute
)

// Reasons a [StorageJoiner] joins, as reported in a [JoinAttempt].
const (
	JoinStart        = "start"
	JoinNoOffer      = "no offer"
	JoinNotConnected = "not connected"
	JoinRetry        = "retry"
	JoinReconnected  = "signaling reconnected"
	JoinPeerLost     = "peer lost"
	JoinSessionLimit = "session limit"
)

// A JoinAttempt is one call to join a storage session, for a
// [StorageJoiner]'s OnJoin.
type JoinAttempt struct {
	// Reason is why it joined: JoinStart, JoinNoOffer, ….
	Reason string
	// N counts the joins since the last storage connection (from 1).
	N int
	// Err is the call's error, or nil.
	Err error
	// Took is how long the call took.
	Took time.Duration
}

// A StorageJoiner keeps a master in its channel's storage session. KVS
// sends the master an SDP offer over signaling after each join; the
// joiner joins again when none comes within OfferTimeout, when the
// signaling client reconnects (a storage session follows the master's
// signaling connection), when the master reports that its storage peer
// connection was lost, and a little before the session's hour is up. Joins
// that fail are retried with backoff and jitter.
//
// Start Run once the master's signaling client is connected, feed it the
// client's events with Observe, and report the storage peer connection's
// state with Connected and Lost. Each offer replaces the previous storage
// peer: the master answers it with a new peer connection.
//
// Two masters on one channel take the session from each other (the newest
// wins): each loss makes the other join again, after a backoff that grows
// while the connections stay short.
type StorageJoiner struct {
	// Join joins the storage session, typically a Resolver's
	// JoinStorageSession for the channel. Required.
	Join func(ctx context.Context) error
	// OfferTimeout is how long to wait for the offer after joining. If
	// zero, DefaultOfferTimeout.
	OfferTimeout time.Duration
	// ConnectTimeout is how long to wait, after the offer, for Connected.
	// If zero, DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// SessionLimit is the longest KVS keeps a storage session; the joiner
	// joins again a sixtieth of it (at most a minute) before. If zero,
	// DefaultSessionLimit.
	SessionLimit time.Duration
	// MinBackoff and MaxBackoff bound the pause before joining again
	// after a failure, a missing offer or a loss, which doubles from
	// MinBackoff, with jitter. If zero, 1 second and 30 seconds.
	MinBackoff, MaxBackoff time.Duration
	// MaxFailures is how many failed joins in a row end Run. If zero,
	// DefaultJoinFailures. AccessDenied and NotFound end it at once.
	MaxFailures int
	// OnJoin, if set, is called after each join, from Run's goroutine.
	OnJoin func(JoinAttempt)
	// Logger receives a debug record per join. If nil, nothing is logged.
	Logger *slog.Logger

	mu      sync.Mutex
	pending []joinSignal
	wake    chan struct{}
}

type joinSignal int

const (
	sigOffer joinSignal = iota + 1
	sigConnected
	sigLost
	sigDisconnected
	sigReconnected
)

// joinState is where Run is between joins.
type joinState int

const (
	awaitOffer   joinState = iota // joined; the offer is due
	awaitConnect                  // the offer came; the connection is due
	live                          // connected: the hour runs
	paused                        // signaling is down: joining would fail
)

func (j *StorageJoiner) signal(s joinSignal) {
	j.mu.Lock()
	if j.wake == nil {
		j.wake = make(chan struct{}, 1)
	}
	j.pending = append(j.pending, s)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

func (j *StorageJoiner) wakeChan() chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.wake == nil {
		j.wake = make(chan struct{}, 1)
	}
	return j.wake
}

func (j *StorageJoiner) take() []joinSignal {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.pending
	j.pending = nil
	return p
}

// Observe feeds the joiner an event of the master's signaling client: an
// offer (with storage on, offers come from the storage session),
// a disconnection and a reconnection. Other events are ignored.
func (j *StorageJoiner) Observe(ev signaling.Event) {
	switch ev.Type {
	case signaling.EventOffer:
		j.signal(sigOffer)
	case signaling.EventDisconnected:
		j.signal(sigDisconnected)
	case signaling.EventReconnected:
		j.signal(sigReconnected)
	}
}

// Offered tells the joiner that an offer arrived, for a master that does
// not pass its events through Observe.
func (j *StorageJoiner) Offered() { j.signal(sigOffer) }

// Connected tells the joiner that the storage peer connection is up.
func (j *StorageJoiner) Connected() { j.signal(sigConnected) }

// Lost tells the joiner that the storage peer connection failed or
// closed.
func (j *StorageJoiner) Lost() { j.signal(sigLost) }

func (j *StorageJoiner) settings() (offer, connect, limit, minB, maxB time.Duration, failures int) {
	offer = durationSetting(j.OfferTimeout, DefaultOfferTimeout)
	connect = durationSetting(j.ConnectTimeout, DefaultConnectTimeout)
	limit = durationSetting(j.SessionLimit, DefaultSessionLimit)
	minB = durationSetting(j.MinBackoff, defaultJoinMinBackoff)
	maxB = max(durationSetting(j.MaxBackoff, defaultJoinMaxBackoff), minB)
	failures = j.MaxFailures
	if failures <= 0 {
		failures = DefaultJoinFailures
	}
	return
}

// Run joins the storage session and keeps joining as needed until ctx is
// done (it then returns ctx's error) or joining fails for good: access
// denied, the channel gone, or MaxFailures failures in a row.
func (j *StorageJoiner) Run(ctx context.Context) error {
	if j.Join == nil {
		return errors.New("awskvs: StorageJoiner has no Join function")
	}
	offerWait, connectWait, limit, minB, maxB, maxFailures := j.settings()
	renewAt := limit - min(limit/60, time.Minute)
	wake := j.wakeChan()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C

	reason, n, failures, lossStreak := JoinStart, 0, 0, 0
	pause := time.Duration(0) // before the next join
	var connectedAt time.Time
	for {
		if pause > 0 {
			if err := j.sleep(ctx, timer, pause, wake); err != nil {
				return err
			}
		}
		j.take() // what happened before this join concerns an older offer
		n++
		start := time.Now()
		err := j.Join(ctx)
		if ctx.Err() != nil {
			// An attempt cut short by the caller is no attempt to report.
			return ctx.Err()
		}
		j.report(ctx, JoinAttempt{Reason: reason, N: n, Err: err, Took: time.Since(start)})
		if err != nil {
			failures++
			if failures >= maxFailures || errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNotFound) {
				return err
			}
			reason, pause = JoinRetry, joinBackoff(failures, minB, maxB)
			continue
		}
		failures = 0
		state := awaitOffer
		timer.Reset(offerWait)
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				switch state {
				case awaitOffer:
					reason, pause = JoinNoOffer, joinBackoff(n, minB, maxB)
				case awaitConnect:
					reason, pause = JoinNotConnected, joinBackoff(n, minB, maxB)
				case live:
					reason, pause, n = JoinSessionLimit, 0, 0
				}
				break wait
			case <-wake:
			}
			for _, s := range j.take() {
				switch {
				case s == sigDisconnected:
					state = paused
					stopTimer(timer)
				case s == sigReconnected:
					reason, pause = JoinReconnected, 0
					break wait
				case s == sigOffer && state != paused:
					state = awaitConnect
					stopTimer(timer)
					timer.Reset(connectWait)
				case s == sigConnected && state == awaitConnect:
					state, connectedAt = live, time.Now()
					stopTimer(timer)
					timer.Reset(renewAt)
				case s == sigLost && (state == awaitConnect || state == live):
					if state == live && time.Since(connectedAt) >= stableSession {
						lossStreak = 0
					}
					lossStreak++
					reason, pause = JoinPeerLost, joinBackoff(lossStreak, minB, maxB)
					break wait
				}
			}
		}
		stopTimer(timer)
		if state == live {
			n = 0
		}
	}
}

// sleep waits for d, or for a reconnection of signaling, which cuts the
// pause short: a fresh connection is when joining is due.
func (j *StorageJoiner) sleep(ctx context.Context, timer *time.Timer, d time.Duration, wake chan struct{}) error {
	stopTimer(timer)
	timer.Reset(d)
	defer stopTimer(timer)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-wake:
			j.mu.Lock()
			reconnected := false
			for _, s := range j.pending {
				reconnected = reconnected || s == sigReconnected
			}
			j.mu.Unlock()
			if reconnected {
				return nil
			}
		}
	}
}

func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

// joinBackoff is the pause before the n-th join again (n ≥ 1): a random
// time in [d/2, d) where d doubles from minB up to maxB.
func joinBackoff(n int, minB, maxB time.Duration) time.Duration {
	d := minB << min(n-1, 16)
	if d > maxB || d <= 0 {
		d = maxB
	}
	return d/2 + rand.N(d/2+1)
}

func (j *StorageJoiner) report(ctx context.Context, a JoinAttempt) {
	if j.Logger != nil {
		j.Logger.Log(ctx, slog.LevelDebug, "awskvs: join storage session", "reason", a.Reason, "n", a.N, "took", a.Took.Round(time.Millisecond), "err", a.Err)
	}
	if j.OnJoin != nil {
		j.OnJoin(a)
	}
}
