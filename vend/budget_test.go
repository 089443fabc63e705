package vend

import (
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
)

// TestThrottleNotRetried: a call KVS throttles is not sent again by the
// resolver's retries within the throttle's second; the request is
// answered 503 with a Retry-After instead, and the device comes back
// later.
func TestThrottleNotRetried(t *testing.T) {
	f := startFleet(t, 1, baseConfig(), nil)
	err := f.emu.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle,
		Operations: []string{emulator.OpGetSignalingChannelEndpoint}, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := f.copies[0].ts.post(t, tokCamera, masterCam1)
	if got.status != 503 || got.header.Get("Retry-After") == "" {
		t.Errorf("after a throttle: %d, Retry-After %q; want 503 with Retry-After", got.status, got.header.Get("Retry-After"))
	}
	s := f.emu.Stats()
	if d := s.Calls[emulator.OpGetSignalingChannelEndpoint]; d != 1 {
		t.Errorf("GetSignalingChannelEndpoint calls = %d; want 1: the throttled call was retried", d)
	}
	time.Sleep(throttlePause)
	if got := f.copies[0].ts.post(t, tokCamera, masterCam1); got.status != 200 {
		t.Errorf("a second after the throttle: %d %s; want 200", got.status, got.body)
	}
}

// TestBudgetBurst: the budget lets out a tenth of a second's calls at
// once, not a second's, so that calls bunched on their way to KVS stay
// within its bucket.
func TestBudgetBurst(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		want      int
	}{{240, 24}, {40, 4}, {4, 1}, {0.2, 1}} {
		if got := burstOf(tc.perSecond); got != tc.want {
			t.Errorf("burstOf(%v) = %d; want %d", tc.perSecond, got, tc.want)
		}
	}
}
