// Rate limits counted across a fleet. Each copy decides at once from its
// own token bucket per key, so that no request waits for Redis; every
// limitSync it adds what it allowed to a GCRA bucket per key in Redis and
// takes back the fleet's state of the keys it saw, and the keys the fleet
// has run dry are announced to every copy. Over time a key gets the
// configured rate whatever the number of copies; the error is bounded by
// what the copies allow between two syncs (a key's burst, once per copy,
// plus its rate times limitSync).

package vend

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// limitSync is how often a copy reconciles its rate-limit buckets with the
// fleet's.
const limitSync = 100 * time.Millisecond

// maxPending bounds the keys a copy remembers between two syncs; beyond
// it, allowed requests go uncounted in the fleet until the next sync.
const maxPending = 50000

// recordHits adds ARGV[3] requests to a GCRA bucket (ARGV[1] microseconds
// per request, a burst of ARGV[2]) and returns the tokens left, negative
// when the fleet has allowed more than the bucket holds. A debt is capped
// at one more burst, so that a flood is refused for a bounded time.
var recordHits = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or now)
if tat < now then tat = now end
tat = tat + tonumber(ARGV[3]) * interval
local cap = now + 2 * burst * interval
if tat > cap then tat = cap end
redis.call("SET", KEYS[1], string.format("%.0f", tat), "PX", math.ceil((tat - now) / 1000) + 1)
return tostring(burst - (tat - now) / interval)
`)

// fleetLimit is a limiter whose keys the copies count together.
type fleetLimit[K comparable] struct {
	f     *Fleet
	l     *limiter[K]
	name  string
	str   func(K) string
	parse func(string) (K, bool)
	clock func() time.Time

	mu      sync.Mutex
	pending map[K]int
}

// shareLimiter makes l count its keys across the fleet, under name. str
// and parse turn a key into its text in Redis and back.
func shareLimiter[K comparable](f *Fleet, l *limiter[K], name string, str func(K) string, parse func(string) (K, bool), clock func() time.Time) {
	if l.unlimited {
		return
	}
	fl := &fleetLimit[K]{f: f, l: l, name: name, str: str, parse: parse, clock: clock, pending: map[K]int{}}
	l.record = fl.record
	f.onLimited(name, fl.apply)
	f.wg.Add(1)
	go fl.run()
}

func (fl *fleetLimit[K]) record(key K) {
	if !fl.f.Up() {
		return
	}
	fl.mu.Lock()
	if len(fl.pending) < maxPending {
		fl.pending[key]++
	}
	fl.mu.Unlock()
}

func (fl *fleetLimit[K]) run() {
	defer fl.f.wg.Done()
	t := time.NewTicker(limitSync)
	defer t.Stop()
	for {
		select {
		case <-fl.f.stop:
			return
		case <-t.C:
			fl.sync()
		}
	}
}

// sync sends what this copy allowed since the last sync, takes back the
// fleet's state of those keys, and announces the keys run dry.
func (fl *fleetLimit[K]) sync() {
	fl.mu.Lock()
	pend := fl.pending
	if len(pend) == 0 {
		fl.mu.Unlock()
		return
	}
	fl.pending = make(map[K]int, len(pend))
	fl.mu.Unlock()
	if !fl.f.Up() {
		return
	}
	interval := strconv.FormatFloat(1e6/float64(fl.l.every), 'f', 3, 64)
	keys := make([]K, 0, len(pend))
	cmds := make([]*redis.Cmd, 0, len(pend))
	ctx := context.Background()
	err := fl.f.doBatch(ctx, fl.f.requestTimeout()+time.Duration(len(pend))*time.Microsecond*20, func(ctx context.Context) error {
		_, err := fl.f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, n := range pend {
				keys = append(keys, k)
				cmds = append(cmds, recordHits.Eval(ctx, p, []string{fl.f.prefix + "limit:" + fl.name + ":" + fl.str(k)}, interval, fl.l.burst, n))
			}
			return nil
		})
		return err
	})
	if err != nil {
		return
	}
	now := fl.clock()
	var dry strings.Builder
	for i, c := range cmds {
		s, err := c.Text()
		if err != nil {
			continue
		}
		tokens, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		fl.l.consumeTo(keys[i], tokens, now)
		if tokens < 1 {
			dry.WriteString(formatDry(fl.str(keys[i]), s))
		}
	}
	if dry.Len() > 0 {
		fl.f.do(ctx, func(ctx context.Context) error {
			return fl.f.rdb.Publish(ctx, fl.f.limitedChannel(), fl.name+"\n"+dry.String()).Err()
		})
	}
}

// apply takes the keys another copy found run dry.
func (fl *fleetLimit[K]) apply(lines string) {
	now := fl.clock()
	for _, d := range parseDry(lines) {
		if k, ok := fl.parse(d.key); ok {
			fl.l.consumeTo(k, d.tokens, now)
		}
	}
}

// dryKey is a rate-limit key the fleet has run dry, and its tokens.
type dryKey struct {
	key    string
	tokens float64
}

// formatDry is a line of an announcement of dry keys: the key, quoted so
// that no character of a caller's name can start another line, a tab and
// its tokens.
func formatDry(key, tokens string) string {
	return strconv.Quote(key) + "\t" + tokens + "\n"
}

// parseDry reads an announcement of dry keys, lines of formatDry.
// Malformed lines are skipped, and a debt is never read as more than a
// million tokens either way.
func parseDry(lines string) []dryKey {
	var out []dryKey
	for line := range strings.Lines(lines) {
		qs, ts, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			continue
		}
		ks, err := strconv.Unquote(qs)
		if err != nil || ks == "" {
			continue
		}
		tokens, err := strconv.ParseFloat(ts, 64)
		if err != nil || math.IsNaN(tokens) || math.Abs(tokens) > 1e6 {
			continue
		}
		out = append(out, dryKey{ks, tokens})
	}
	return out
}

// consumeTo lowers key's bucket to tokens (a negative count is a debt)
// when it holds more; a bucket is never raised, since the fleet's count
// may miss what this copy allowed since. It is lowered by whole tokens,
// rounded down, except that a key the fleet has run dry (less than one
// token) runs dry here too: rounded down, a bucket of 3 told 0.99998
// kept 1.00002 and allowed a request the fleet had refused.
func (l *limiter[K]) consumeTo(key K, tokens float64, now time.Time) {
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
	over := b.lim.TokensAt(now) - tokens
	n := int(over)
	if tokens < 1 {
		n = int(math.Ceil(over))
	}
	if n >= 1 {
		b.lim.ReserveN(now, min(n, l.burst))
	}
}

func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

func sameString(s string) string { return s }

func sameKey(s string) (string, bool) { return s, true }
