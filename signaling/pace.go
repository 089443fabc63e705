// Client-side pacing of sends, and the backoff between reconnection attempts.

package signaling

import (
	"math"
	"sync"
	"time"
)

// pacer is a token bucket that hands out send times rather than refusals:
// reserve returns how long the caller must wait for its turn. It paces at
// 90% of the service's rate with half its burst, so that messages bunched
// by the network still arrive within the service's limit.
type pacer struct {
	mu     sync.Mutex
	rate   float64 // tokens per second; <= 0 means no pacing
	burst  float64
	tokens float64 // may go negative: turns already promised
	last   time.Time
}

func newPacer(serviceRate float64) *pacer {
	if serviceRate <= 0 {
		return &pacer{}
	}
	return &pacer{rate: serviceRate * 0.9, burst: math.Max(1, math.Floor(serviceRate/2))}
}

// reserve takes a turn at now and returns the wait before it.
func (p *pacer) reserve(now time.Time) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.IsZero() {
		p.tokens = p.burst
	} else if d := now.Sub(p.last); d > 0 {
		p.tokens = math.Min(p.burst, p.tokens+d.Seconds()*p.rate)
	}
	if now.After(p.last) {
		p.last = now
	}
	p.tokens--
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / p.rate * float64(time.Second))
}

// cancel gives back a turn the caller did not use.
func (p *pacer) cancel() {
	if p.rate <= 0 {
		return
	}
	p.mu.Lock()
	p.tokens = math.Min(p.burst, p.tokens+1)
	p.mu.Unlock()
}

// backoff returns the wait before reconnection attempt n (0 for the first
// attempt after a connection was lost), given a random number in [0, 1).
// The first attempt waits a random part of min, so that clients dropped
// together do not return together; later ones wait between half and all of
// min·2ⁿ, capped at max.
func backoff(n int, min, max time.Duration, rnd float64) time.Duration {
	if n <= 0 {
		return time.Duration(rnd * float64(min))
	}
	d := min
	for i := 0; i < n && d < max; i++ {
		if d > max/2 {
			d = max
			break
		}
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rnd*float64(d/2))
}
