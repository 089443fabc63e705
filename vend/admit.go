// Admission: how many connection requests the server works on at once.
// In a reconnect storm thousands of requests arrive together; worked on
// all at once, they share the CPU so thinly that every one is slow and the
// AWS call budget sits idle while its callers wait for a core. Past the
// bound, a request waits for a slot (at no CPU cost) and is answered 503
// only if none frees in time. (The connections themselves are bounded by
// limits.maxConnections, conncap.go.)

package vend

import (
	"context"
	"math/rand/v2"
	"runtime"
	"time"
)

// inFlightPerCPU is the default bound per CPU. Measured with the storm
// (BENCHMARKS.md, "Admission"): 4 copies on 2 cores, each bounded at 256,
// handed out URLs as fast as one copy; unbounded, 1.75–4.8× slower (p50,
// alternated runs), the more so the busier the machine.
const inFlightPerCPU = 128

// admission bounds the requests worked on at once. A nil *admission
// admits every request.
type admission struct {
	slots chan struct{}
	wait  time.Duration // how long a request waits for a slot
}

// newAdmission returns the bound of max requests (0: inFlightPerCPU per
// CPU; negative: none), whose requests wait up to wait for a slot.
func newAdmission(max int, wait time.Duration) *admission {
	if max < 0 {
		return nil
	}
	if max == 0 {
		max = inFlightPerCPU * runtime.GOMAXPROCS(0)
	}
	return &admission{slots: make(chan struct{}, max), wait: wait}
}

// enter takes a slot, waiting up to a.wait or until ctx ends, and reports
// whether it got one; leave gives it back.
func (a *admission) enter(ctx context.Context) bool {
	if a == nil {
		return true
	}
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// leave gives back the slot enter took.
func (a *admission) leave() {
	if a != nil {
		<-a.slots
	}
}

// busyRetryAfter is the Retry-After of a request refused for want of a
// slot: 1 or 2 seconds at random (the header counts whole seconds), so
// that the refused do not all come back together.
func busyRetryAfter() time.Duration {
	return time.Duration(1+rand.IntN(2)) * time.Second
}
