// Admission: how many connection requests the server works on at once.
// In a reconnect storm thousands of requests arrive together; worked on
// all at once, they share the CPU so thinly that every one is slow, the
// HTTP server's own timeouts close connections before their requests are
// read, and the AWS call budget sits idle while its callers wait for a
// core. Past the bound, a request waits for a slot (at no CPU cost) and
// is answered 503 only if none frees in time.

package vend

import (
	"context"
	"math/rand/v2"
	"runtime"
	"time"
)

// inFlightPerCPU is the default bound per CPU. Measured with the storm
// (BENCHMARKS.md): 4 copies on 2 cores, each bounded at 256, reached one
// copy's times to a URL; unbounded, 1.4–1.8× slower, with a tenth to a
// third of the first requests closed unanswered.
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

// enter takes a slot, waiting up to a.wait or until ctx ends. It returns
// the function that gives the slot back, or false when no slot freed.
func (a *admission) enter(ctx context.Context) (leave func(), ok bool) {
	if a == nil {
		return func() {}, true
	}
	select {
	case a.slots <- struct{}{}:
		return a.leave, true
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return a.leave, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

func (a *admission) leave() { <-a.slots }

// busyRetryAfter is the Retry-After of a request refused for want of a
// slot: a second, plus up to a second at random so that the refused do
// not come back together.
func busyRetryAfter() time.Duration {
	return time.Second + time.Duration(rand.Int64N(int64(time.Second)))
}
