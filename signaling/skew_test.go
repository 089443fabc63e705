package signaling

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

// skewedClock is real time plus an offset the test sets: the emulator's
// clock, to be off from the client's.
type skewedClock struct{ off atomic.Int64 }

func (c *skewedClock) now() time.Time             { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewedClock) set(off time.Duration)      { c.off.Store(int64(off)) }
func near(got, want time.Duration) bool           { return (got - want).Abs() <= 2*time.Second }
func skewedEnv(t *testing.T) (*env, *skewedClock) { return skewedEnvWith(t, fastConfig()) }

func skewedEnvWith(t *testing.T, cfg emulator.Config) (*env, *skewedClock) {
	t.Helper()
	clk := new(skewedClock)
	cfg.Clock = clk.now
	return newEnv(t, cfg), clk // in step while the channel is made
}

// TestClockSkewCorrected runs the client against a service whose clock is
// ten minutes off: Dial's first URL is refused, and it connects with a
// second, signed with the service's time learned from the refusal. Then the
// service's clock is put right and the connection dropped: the client's
// first reconnection is refused, it unlearns the offset and reconnects.
func TestClockSkewCorrected(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	for _, tc := range []struct {
		name    string
		off     time.Duration
		ownSkew bool // the caller's Presigner has a ClockSkew
		message string
	}{
		{"service ahead", 10 * time.Minute, false, "Signature expired"},
		{"service behind", -10 * time.Minute, true, "Signature not yet current"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, clk := skewedEnv(t)
			var userSkew *kvs.ClockSkew
			if tc.ownSkew {
				userSkew = new(kvs.ClockSkew)
				v.signer.Skew = userSkew
			}
			clk.set(tc.off)
			src := v.source(kvs.Viewer, "skewed")
			c := dial(t, src, &Options{Logger: testLogger(t), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
			if n := src.calls(); n != 2 {
				t.Errorf("Dial signed %d URLs; want 2", n)
			}
			ev, skipped := await(t, c, 5*time.Second, "clock skew", isType(EventClockSkew))
			if len(skipped) > 0 {
				t.Errorf("before the EventClockSkew: %s", describe(skipped))
			}
			var he *HandshakeError
			if !near(ev.Skew, tc.off) || ev.Conn != 0 || !errors.As(ev.Err, &he) || he.StatusCode != 403 || !strings.Contains(he.Message, tc.message) {
				t.Errorf("event: skew %v, conn %d, err %v; want skew %v and a 403 %q", ev.Skew, ev.Conn, ev.Err, tc.off, tc.message)
			}
			if tc.ownSkew {
				if got := userSkew.Offset(); !near(got, tc.off) {
					t.Errorf("the caller's ClockSkew learned %v; want %v", got, tc.off)
				}
			} else if v.signer.Skew != nil {
				t.Error("Presigned modified the caller's Presigner")
			}
			if err := c.SendCandidate(testContext(t), "", candidate(1)); err != nil {
				t.Fatal(err)
			}

			// The service's clock is put right.
			clk.set(0)
			waitConns(t, v.e, 1)
			v.e.Drop(emulator.Target{})
			ev, skipped = await(t, c, 5*time.Second, "reconnection", isType(EventReconnected))
			var sawSkew bool
			for _, s := range skipped {
				if s.Type == EventClockSkew {
					sawSkew = true
					if s.Skew != 0 {
						t.Errorf("second EventClockSkew: skew %v; want 0", s.Skew)
					}
				}
			}
			if !sawSkew || ev.Conn != 2 {
				t.Errorf("reconnected as conn %d after %s; want conn 2 after an EventClockSkew", ev.Conn, describe(skipped))
			}
			if n := src.calls(); n != 4 {
				t.Errorf("%d URLs signed in all; want 4", n)
			}
			if tc.ownSkew && userSkew.Offset() != 0 {
				t.Errorf("the caller's ClockSkew has %v; want 0", userSkew.Offset())
			}
		})
	}
}

// TestNoClockSkew checks that a client in step with the service learns no
// offset and reports no EventClockSkew.
func TestNoClockSkew(t *testing.T) {
	v := newEnv(t, fastConfig())
	skew := new(kvs.ClockSkew)
	v.signer.Skew = skew
	src := v.source(kvs.Master, "")
	c := dial(t, src, nil)
	waitConns(t, v.e, 1)
	v.e.Drop(emulator.Target{})
	_, skipped := await(t, c, 5*time.Second, "reconnection", isType(EventReconnected))
	for _, ev := range skipped {
		if ev.Type == EventClockSkew {
			t.Errorf("EventClockSkew with skew %v", ev.Skew)
		}
	}
	if n := src.calls(); n != 2 {
		t.Errorf("%d URLs signed; want 2", n)
	}
	if off := skew.Offset(); off != 0 {
		t.Errorf("learned offset %v; want 0", off)
	}
}

// TestClockSkewOtherSource checks that a URL source other than Presigned's
// is left alone: Dial makes one attempt and returns the 403.
func TestClockSkewOtherSource(t *testing.T) {
	v, clk := skewedEnv(t)
	clk.set(10 * time.Minute)
	inner := v.source(kvs.Master, "")
	var calls atomic.Int32
	src := func(ctx context.Context) (string, error) {
		calls.Add(1)
		return inner.get(context.Background()) // not the client's context: no report
	}
	_, err := Dial(testContext(t), src, nil)
	if statusOf(err) != 403 || calls.Load() != 1 {
		t.Errorf("Dial: %v after %d URLs; want a 403 after 1", err, calls.Load())
	}
}

func TestSkewRefusal(t *testing.T) {
	local := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		he     HandshakeError
		offset time.Duration
		want   bool
	}{
		{"expired", HandshakeError{StatusCode: 403, Message: "Signature expired: 20261123T094000Z is now earlier than …", Date: local.Add(10 * time.Minute)}, 0, true},
		{"not yet current", HandshakeError{StatusCode: 403, Message: "Signature not yet current: …", Date: local.Add(-10 * time.Minute)}, 0, true},
		{"no Date", HandshakeError{StatusCode: 403, Message: "Signature expired: …"}, 0, false},
		{"other 403, Date far", HandshakeError{StatusCode: 403, Message: "The request signature we calculated does not match", Date: local.Add(5 * time.Minute)}, 0, true},
		{"other 403, Date near", HandshakeError{StatusCode: 403, Message: "The request signature we calculated does not match", Date: local.Add(3 * time.Minute)}, 0, false},
		{"other 403, already corrected", HandshakeError{StatusCode: 403, Date: local.Add(10 * time.Minute)}, 10 * time.Minute, false},
		{"not a 403", HandshakeError{StatusCode: 400, Message: "Signature expired", Date: local.Add(10 * time.Minute)}, 0, false},
	} {
		if got := skewRefusal(&tc.he, local, tc.offset); got != tc.want {
			t.Errorf("%s: skewRefusal = %v; want %v", tc.name, got, tc.want)
		}
	}
	if got := EventClockSkew.String(); got != "CLOCK_SKEW" {
		t.Errorf("EventClockSkew.String() = %q", got)
	}
}
