package kvs

import (
	"sync"
	"sync/atomic"
	"time"
)

// skewThreshold is the smallest clock skew a ClockSkew acts on. An HTTP
// Date header has one-second resolution and the response takes time to
// arrive, so smaller differences are noise.
const skewThreshold = 2 * time.Second

// A ClockSkew learns how far the local clock is from a server's, from the
// Date headers of the server's responses, so that a Presigner can sign with
// the server's time (see Presigner.Skew). The zero value has learned
// nothing: its offset is zero. It is safe for concurrent use, and Offset
// does not allocate.
type ClockSkew struct {
	mu     sync.Mutex // serialises Observe
	offset atomic.Int64
}

// Observe records that a server's Date header read serverDate when the
// local clock read localNow (take it when the response arrived). Since a
// Date header is truncated to the second, the server's time is taken to be
// serverDate plus half a second. The learned offset is replaced only if
// the observation differs from it by more than two seconds, and an
// observation within two seconds of the local clock counts as none (a
// zero offset). Observe returns the offset now in force and whether it
// changed. A zero serverDate is ignored.
func (s *ClockSkew) Observe(serverDate, localNow time.Time) (offset time.Duration, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := time.Duration(s.offset.Load())
	if serverDate.IsZero() {
		return cur, false
	}
	obs := serverDate.Add(time.Second / 2).Sub(localNow)
	if absDuration(obs-cur) <= skewThreshold {
		return cur, false
	}
	if absDuration(obs) <= skewThreshold {
		obs = 0
	}
	s.offset.Store(int64(obs))
	return obs, obs != cur
}

// NewClockSkew returns a ClockSkew that starts with a known offset: what
// to add to the local clock to get the server's time. Observe replaces it
// once a server's Date header says otherwise.
func NewClockSkew(offset time.Duration) *ClockSkew {
	s := new(ClockSkew)
	s.offset.Store(int64(offset))
	return s
}

// Offset returns the learned offset: what to add to the local clock to get
// the server's time. A nil *ClockSkew has learned nothing and returns zero.
func (s *ClockSkew) Offset() time.Duration {
	if s == nil {
		return 0
	}
	return time.Duration(s.offset.Load())
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
