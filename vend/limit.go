// Rate limits per client address and per caller: a token bucket for each
// key, in a sharded map whose size is bounded.

package vend

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	limiterShards   = 64
	limiterPerShard = 2048 // keys kept per shard before idle ones are dropped
)

// limiter keeps a token bucket per key.
type limiter[K comparable] struct {
	every     rate.Limit
	burst     int
	unlimited bool
	// full is how long an idle bucket takes to fill up: a bucket idle that
	// long is the same as a new one, so dropping it loses nothing.
	full   time.Duration
	seed   maphash.Seed
	shards [limiterShards]limiterShard[K]
	// record, if set, is told of each request allowed, so that the copies
	// of a fleet can count it (see fleet_limit.go).
	record func(key K)
}

type limiterShard[K comparable] struct {
	mu sync.Mutex
	m  map[K]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // guarded by the shard's mutex
}

func newLimiter[K comparable](r Rate, defPerSecond float64, defBurst int) *limiter[K] {
	l := &limiter[K]{seed: maphash.MakeSeed()}
	per, burst := r.PerSecond, r.Burst
	if per == 0 {
		per, burst = defPerSecond, defBurst
	}
	if per < 0 {
		l.unlimited = true
		return l
	}
	if burst == 0 {
		burst = max(1, int(2*per))
	}
	l.every, l.burst = rate.Limit(per), burst
	l.full = time.Duration(float64(burst) / per * float64(time.Second))
	for i := range l.shards {
		l.shards[i].m = make(map[K]*bucket)
	}
	return l
}

// allow takes a token from key's bucket at now. When there is none, it
// returns false and how long until there is.
func (l *limiter[K]) allow(key K, now time.Time) (bool, time.Duration) {
	if l.unlimited {
		return true, 0
	}
	s := &l.shards[maphash.Comparable(l.seed, key)%limiterShards]
	s.mu.Lock()
	b := s.m[key]
	if b == nil {
		if len(s.m) >= limiterPerShard {
			s.evict(now, l.full)
		}
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		s.m[key] = b
	}
	b.last = now
	s.mu.Unlock()
	if b.lim.AllowN(now, 1) {
		if l.record != nil {
			l.record(key)
		}
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.every) * float64(time.Second))
}

// evict drops the buckets idle long enough to be full again; if that frees
// nothing, it drops half of the shard, which only ever lets some keys
// start over with a full bucket.
func (s *limiterShard[K]) evict(now time.Time, full time.Duration) {
	for k, b := range s.m {
		if now.Sub(b.last) >= full {
			delete(s.m, k)
		}
	}
	if len(s.m) < limiterPerShard {
		return
	}
	n := len(s.m) / 2
	for k := range s.m {
		if n == 0 {
			break
		}
		delete(s.m, k)
		n--
	}
}

// ipKey is the rate-limit key of a client address: the address itself for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
