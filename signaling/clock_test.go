package signaling

import (
	"errors"
	"testing"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// TestRenewalOnTheClientsClock renews connections ahead of the service's
// limits of ten minutes idle and one hour, on a fake clock: no test waits
// for them.
func TestRenewalOnTheClientsClock(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		advance time.Duration
		want    RenewalError
	}{
		{"idle", Options{}, 9*time.Minute + 30*time.Second, RenewalError{Idle: true, Elapsed: 9*time.Minute + 30*time.Second, Limit: 10 * time.Minute}},
		{"duration", Options{IdleTimeout: -1}, 58 * time.Minute, RenewalError{Elapsed: 58 * time.Minute, Limit: time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { checkNoLeak(t) })
			v := newEnv(t, fastConfig())
			clock := newFakeClock(time.Now())
			opts := tc.opts
			opts.Clock, opts.PingInterval = clock, -1
			c := dial(t, v.source(kvs.Master, ""), &opts)
			waitFor(t, "the renewal timer", func() bool { return clock.pending() == 1 })
			clock.Advance(tc.advance - time.Second)
			if clock.pending() != 1 {
				t.Fatalf("renewed %v early", time.Second)
			}
			clock.Advance(time.Second)
			ev, _ := await(t, c, 5*time.Second, "reconnected", isType(EventReconnected))
			var re *RenewalError
			if !errors.As(ev.Err, &re) || *re != tc.want || !errors.Is(ev.Err, ErrRenewed) {
				t.Errorf("reconnected because %v; want %+v", ev.Err, tc.want)
			}
			if !ev.At.Equal(clock.Now()) {
				t.Errorf("event at %v; want the client's clock, %v", ev.At, clock.Now())
			}
			waitConns(t, v.e, 1)
		})
	}
}

// TestKeepaliveOnTheClientsClock: a ping goes after PingInterval of silence
// on the client's clock, and its pong keeps the connection.
func TestKeepaliveOnTheClientsClock(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	clock := newFakeClock(time.Now())
	c := dial(t, v.source(kvs.Master, ""), &Options{Clock: clock, IdleTimeout: -1, MaxConnectionDuration: -1, PingInterval: time.Minute})
	for i := range 3 {
		waitFor(t, "the keepalive timer", func() bool { return clock.pending() == 1 })
		clock.Advance(time.Minute)
		// The ping goes over the real connection; its pong sets the next
		// timer a whole interval on (checked at the top of the loop).
		if c.Err() != nil {
			t.Fatalf("ping %d: client ended: %v", i+1, c.Err())
		}
	}
	waitFor(t, "the keepalive timer", func() bool { return clock.pending() == 1 })
	select {
	case ev := <-c.Events():
		t.Errorf("event %v (%v); want none: the pongs kept the connection", ev.Type, ev.Err)
	default:
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
