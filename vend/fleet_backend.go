// The shared cache: what one copy resolves, every copy uses, and a miss
// asked by many copies at once makes one set of AWS calls.

package vend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
)

// memoFor is how long a copy keeps an answer read from Redis before it
// reads it again. Invalidations reach it at once by pub/sub; memoFor
// bounds what a copy that missed one (Redis restarting) serves.
const memoFor = 5 * time.Second

// pollEvery is how often a copy waiting for another's lookup reads Redis,
// in case it missed the announcement that the lookup is done (a storm of
// copies polling Redis more often made Redis the bottleneck).
const pollEvery = 200 * time.Millisecond

// refreshGrace is how long past its expiry an answer is still served while
// one copy, in the background, resolves it again: no request waits for
// the ICE servers' refresh. The expiry of ICE servers is already 30 s
// before their credentials' end (awskvs.ICEMargin), so an answer served in
// the grace has at least 20 s of validity left.
const refreshGrace = 10 * time.Second

// Backend returns a [Backend] that shares the answers of inner (usually
// [NewResolverBackend]) among the copies of the fleet: an answer is kept in
// Redis until its [Target.Expires], and for a channel none has, one copy
// asks inner while the others wait up to redis.leaseWait for its answer
// (then ask inner themselves). An answer asked for just after it expires
// is served once more while one copy resolves it again in the background,
// so that requests do not wait for the ICE servers' refresh. When AWS
// fails, an expired answer is served stale for cache.StaleFor, at most the
// 30 s ICE servers stay valid past their refresh time. A channel found
// missing is remembered for cache.NotFoundFor. Forget reaches every copy.
// While Redis is out of reach, inner answers alone. The Backend has a
// method Close() error that closes inner if it has one ([Server.Close]
// calls it); the fleet's own work ends with [Fleet.Close].
func (f *Fleet) Backend(inner Backend, cache Cache) Backend {
	return newFleetBackend(f, inner, cache, nil)
}

// newFleetBackend is [Fleet.Backend] with a clock; nil is time.Now.
func newFleetBackend(f *Fleet, inner Backend, cache Cache, clock func() time.Time) *fleetBackend {
	if clock == nil {
		clock = time.Now
	}
	b := &fleetBackend{
		f: f, inner: inner, now: clock,
		staleFor:    min(orDuration(cache.StaleFor, awskvs.DefaultMaxStale), awskvs.ICEMargin),
		notFoundFor: orDuration(cache.NotFoundFor, awskvs.DefaultNotFoundTTL),
		memo:        map[string]memoEntry{},
		flights:     map[string]*fleetFlight{},
		pending:     map[string]*sharedEntry{},
	}
	if rb, ok := inner.(*resolverBackend); ok {
		rb.grace = false // the fleet refreshes ahead itself, once for all copies
	}
	b.refreshing.spawn = f.bg.spawn
	f.subscribe(b.forgetLocal, b.clearMemo, b.writePending)
	return b
}

type fleetBackend struct {
	f                     *Fleet
	inner                 Backend
	now                   func() time.Time
	staleFor, notFoundFor time.Duration

	mu         sync.RWMutex
	memo       map[string]memoEntry
	flights    map[string]*fleetFlight
	refreshing refreshes[string]
	// pending holds what this copy resolved while Redis was out of
	// reach, to write once it is back: otherwise the other copies
	// resolve it again.
	pending map[string]*sharedEntry
}

// Close closes inner if it has a method Close() error.
func (b *fleetBackend) Close() error {
	if c, ok := b.inner.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// maxWriteBack bounds pending; past it, answers are not written back.
const maxWriteBack = 8192

// sharedEntry is an answer as kept in Redis.
type sharedEntry struct {
	ARN      string      `json:"arn,omitempty"`
	Region   string      `json:"region,omitempty"`
	Endpoint string      `json:"endpoint,omitempty"`
	ICE      []ICEServer `json:"ice,omitempty"`
	Expires  int64       `json:"exp"` // Unix milliseconds
	NotFound bool        `json:"notFound,omitempty"`
}

func (e *sharedEntry) expires() time.Time { return time.UnixMilli(e.Expires) }

// graceUntil is when e stops being served: its expiry, and for an answer
// (not a channel found missing) the refresh grace after it.
func (e *sharedEntry) graceUntil() time.Time {
	if e.NotFound {
		return e.expires()
	}
	return e.expires().Add(refreshGrace)
}

func (e *sharedEntry) target() Target {
	return Target{ChannelARN: e.ARN, Region: e.Region, Endpoint: e.Endpoint, ICEServers: e.ICE, FromCache: true, Expires: e.expires()}
}

type memoEntry struct {
	e     *sharedEntry
	until time.Time
}

type fleetFlight struct {
	done chan struct{}
	t    Target
	err  error
}

// errNotFoundShared is the error of a channel another copy found missing.
var errNotFoundShared = errors.Join(ErrChannelNotFound, errors.New("vend: the channel does not exist (found by another copy)"))

func sharedAnswer(e *sharedEntry) (Target, error) {
	if e.NotFound {
		return Target{}, errNotFoundShared
	}
	return e.target(), nil
}

func (b *fleetBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error) {
	k := b.f.prefix + "conn:" + channel + "|" + string(role)
	if create {
		k += "|create"
	}
	if !b.f.Up() {
		return b.fallback(ctx, k, channel, role, create)
	}
	now := b.now()
	b.mu.RLock()
	m, ok := b.memo[k]
	b.mu.RUnlock()
	if ok && now.Before(m.until) {
		if !now.Before(m.e.expires()) {
			b.refreshAsync(ctx, k, channel, role, create)
		}
		return sharedAnswer(m.e)
	}
	// One lookup per key in this copy; the others wait for it. It goes
	// on when its request ends, so that its answer is shared.
	b.mu.Lock()
	fl, ok := b.flights[k]
	if !ok {
		fl = &fleetFlight{done: make(chan struct{})}
		b.flights[k] = fl
	}
	b.mu.Unlock()
	if !ok {
		run := func(ctx context.Context) {
			fl.t, fl.err = b.lookup(ctx, k, channel, role, create)
			b.mu.Lock()
			delete(b.flights, k)
			b.mu.Unlock()
			close(fl.done)
		}
		if !b.f.bg.spawn(ctx, backgroundTimeout, run) {
			run(ctx) // the fleet is closed: inner answers alone, at once
		}
	}
	select {
	case <-fl.done:
		return fl.t, fl.err
	case <-ctx.Done():
		return Target{}, ctx.Err()
	}
}

// lookup answers from Redis, or resolves with inner under the key's lease.
func (b *fleetBackend) lookup(ctx context.Context, k, channel string, role kvs.Role, create bool) (Target, error) {
	old, err := b.get(ctx, k)
	if err != nil && !errors.Is(err, redis.Nil) {
		return b.fallback(ctx, k, channel, role, create)
	}
	if old != nil && b.now().Before(old.graceUntil()) {
		b.remember(k, old)
		if !b.now().Before(old.expires()) {
			b.refreshAsync(ctx, k, channel, role, create)
		}
		return sharedAnswer(old)
	}
	release, won, err := b.lease(ctx, k)
	if err != nil {
		return b.fallback(ctx, k, channel, role, create)
	}
	if !won {
		if e, ok := b.await(ctx, k); ok {
			return sharedAnswer(e)
		}
		// The copy holding the lease is slow or gone: ask ourselves.
		return b.resolve(ctx, k, channel, role, create, old, nil)
	}
	return b.resolve(ctx, k, channel, role, create, old, release)
}

// fallback answers with inner alone, Redis being out of reach for this
// request or for the copy, and shares a fresh answer when it can: at once
// (best effort) if Redis is in use, else once it is back.
func (b *fleetBackend) fallback(ctx context.Context, k, channel string, role kvs.Role, create bool) (Target, error) {
	t, err := b.inner.Connection(ctx, channel, role, create)
	if err != nil || t.Stale {
		return t, err
	}
	e, keep := b.entryOf(t)
	if b.f.Up() {
		b.f.bg.spawn(ctx, 0, func(ctx context.Context) { b.putNX(ctx, k, e, keep) })
		return t, nil
	}
	b.mu.Lock()
	if len(b.pending) < maxWriteBack {
		b.pending[k] = e
	}
	b.mu.Unlock()
	return t, nil
}

// entryOf is the shared entry of a fresh answer, and how long Redis keeps
// it.
func (b *fleetBackend) entryOf(t Target) (*sharedEntry, time.Duration) {
	exp := t.Expires
	if exp.IsZero() {
		exp = b.now().Add(time.Minute)
	}
	e := &sharedEntry{ARN: t.ChannelARN, Region: t.Region, Endpoint: t.Endpoint, ICE: t.ICEServers, Expires: exp.UnixMilli()}
	return e, exp.Add(max(b.staleFor, refreshGrace)).Sub(b.now())
}

// writePending writes, in the background, what this copy resolved while
// Redis was out of reach.
func (b *fleetBackend) writePending() {
	b.mu.Lock()
	pending := b.pending
	b.pending = map[string]*sharedEntry{}
	b.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	b.f.bg.spawn(context.Background(), 0, func(ctx context.Context) {
		for k, e := range pending {
			keep := e.expires().Add(max(b.staleFor, refreshGrace)).Sub(b.now())
			if b.putNX(ctx, k, e, keep) != nil && !b.f.Up() {
				return
			}
		}
	})
}

// putNX writes e unless Redis has an answer for k already: another
// copy's, as fresh as this one.
func (b *fleetBackend) putNX(ctx context.Context, k string, e *sharedEntry, keep time.Duration) error {
	if keep <= 0 {
		return nil
	}
	raw, _ := json.Marshal(e)
	// Off the request path: a longer timeout than a request's.
	return b.f.doFor(ctx, b.f.patientTimeout(), func(ctx context.Context) error {
		return b.f.pat.SetNX(ctx, k, raw, keep).Err()
	})
}

// lease takes k's lease, which lets one copy of the fleet resolve k.
// release gives it back if this copy still holds it.
func (b *fleetBackend) lease(ctx context.Context, k string) (release func(), won bool, err error) {
	key := b.f.prefix + "lease:" + strings.TrimPrefix(k, b.f.prefix+"conn:")
	err = b.f.do(ctx, func(ctx context.Context) error {
		var err error
		won, err = b.f.rdb.SetNX(ctx, key, b.f.id, 2*b.f.leaseWait).Result()
		return err
	})
	release = func() { b.f.release(ctx, key, k) }
	return release, won, err
}

// refreshAsync resolves k again in the background, once in this copy and,
// by the key's lease, once in the fleet; another copy's fresh answer, once
// in Redis, is taken instead.
func (b *fleetBackend) refreshAsync(ctx context.Context, k, channel string, role kvs.Role, create bool) {
	b.refreshing.start(ctx, k, func(ctx context.Context) {
		old, err := b.get(ctx, k)
		if err != nil && !errors.Is(err, redis.Nil) {
			return
		}
		if old != nil && b.now().Before(old.expires()) {
			b.remember(k, old)
			return
		}
		release, won, err := b.lease(ctx, k)
		if err != nil || !won {
			return
		}
		b.resolve(ctx, k, channel, role, create, old, release)
	})
}

// await reads k when the copy holding its lease gives it back, or every
// pollEvery, until another copy's answer is there, for at most the lease
// wait. A lease given back without an answer (AWS failed) ends the wait.
func (b *fleetBackend) await(ctx context.Context, k string) (*sharedEntry, bool) {
	deadline := time.Now().Add(b.f.leaseWait)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for time.Now().Before(deadline) {
		gaveBack := false
		select {
		case <-ctx.Done():
			return nil, false
		case <-b.f.released(k):
			gaveBack = true
		case <-t.C:
		}
		e, err := b.get(ctx, k)
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, false
		}
		if e != nil && b.now().Before(e.graceUntil()) {
			b.remember(k, e)
			return e, true
		}
		if gaveBack {
			return nil, false
		}
	}
	return nil, false
}

// resolve asks inner and shares its answer. old is what Redis held, if
// anything: served stale when AWS fails, and the ARN every copy must
// forget when the channel is gone or was created again. release, if not
// nil, gives back k's lease once the answer is written.
func (b *fleetBackend) resolve(ctx context.Context, k, channel string, role kvs.Role, create bool, old *sharedEntry, release func()) (Target, error) {
	defer func() {
		if release != nil {
			release()
		}
	}()
	t, err := b.inner.Connection(ctx, channel, role, create)
	if old != nil && !old.NotFound && old.ARN != "" && old.ARN != channel &&
		(errors.Is(err, ErrChannelNotFound) || err == nil && t.ChannelARN != old.ARN) {
		// Other copies still map the name to the old ARN in their own
		// resolvers; they must not serve it when Redis is out of reach.
		forgetCalls(ctx, b.f, old.ARN)
		b.f.publishForget(ctx, old.ARN)
	}
	switch {
	case err == nil && !t.Stale:
		e, keep := b.entryOf(t)
		b.put(ctx, k, e, keep, release)
		release = nil
		return t, nil
	case errors.Is(err, ErrChannelNotFound):
		e := &sharedEntry{NotFound: true, Expires: b.now().Add(b.notFoundFor).UnixMilli()}
		b.put(ctx, k, e, b.notFoundFor, release)
		release = nil
	case errors.Is(err, ErrUnavailable) && old != nil && !old.NotFound && b.now().Before(old.expires().Add(b.staleFor)):
		s := old.target()
		s.Stale = true
		return s, nil
	}
	return t, err
}

func (b *fleetBackend) get(ctx context.Context, k string) (*sharedEntry, error) {
	var raw []byte
	err := b.f.do(ctx, func(ctx context.Context) error {
		var err error
		raw, err = b.f.rdb.Get(ctx, k).Bytes()
		return err
	})
	if err != nil {
		return nil, err
	}
	var e sharedEntry
	if json.Unmarshal(raw, &e) != nil {
		// Not ours, or from an incompatible version: a miss.
		return nil, redis.Nil
	}
	return &e, nil
}

// put writes e for keep, then runs after (if not nil). A write past the
// timeout is tried again in the background, with a longer one: an answer
// not shared costs every other copy the same AWS calls (measured in the
// storm, most lost answers were writes that timed out).
func (b *fleetBackend) put(ctx context.Context, k string, e *sharedEntry, keep time.Duration, after func()) {
	b.remember(k, e)
	done := func() {
		if after != nil {
			after()
		}
	}
	if keep <= 0 {
		done()
		return
	}
	raw, _ := json.Marshal(e)
	set := func(ctx context.Context) error { return b.f.rdb.Set(ctx, k, raw, keep).Err() }
	if b.f.do(ctx, set) == nil {
		done()
		return
	}
	retry := func(ctx context.Context) {
		b.f.doFor(ctx, b.f.patientTimeout(), func(ctx context.Context) error {
			return b.f.pat.Set(ctx, k, raw, keep).Err()
		})
		done()
	}
	if !b.f.bg.spawn(ctx, 0, retry) {
		done()
	}
}

// remember keeps e in this copy for memoFor, or until it expires and its
// grace is over.
func (b *fleetBackend) remember(k string, e *sharedEntry) {
	until := b.now().Add(memoFor)
	if g := e.graceUntil(); g.Before(until) {
		until = g
	}
	b.mu.Lock()
	if len(b.memo) >= 8192 {
		clear(b.memo) // a memo only saves Redis reads
	}
	b.memo[k] = memoEntry{e: e, until: until}
	b.mu.Unlock()
}

func (b *fleetBackend) clearMemo() {
	b.mu.Lock()
	clear(b.memo)
	b.mu.Unlock()
}

// Forget drops the channel (a name or an ARN) from Redis, from this copy
// and, by pub/sub, from every other copy.
func (b *fleetBackend) Forget(channel string) {
	ctx := context.Background()
	names := []string{channel}
	if arn := b.arnOf(channel); arn != "" {
		names = append(names, arn)
	}
	keys := make([]string, 0, 4*len(names))
	for _, n := range names {
		for _, suffix := range []string{"|MASTER", "|VIEWER", "|MASTER|create", "|VIEWER|create"} {
			keys = append(keys, b.f.prefix+"conn:"+n+suffix)
		}
	}
	b.f.do(ctx, func(ctx context.Context) error { return b.f.rdb.Del(ctx, keys...).Err() })
	forgetCalls(ctx, b.f, names...)
	for _, n := range names {
		b.forgetLocal(n)
		b.f.publishForget(ctx, n)
	}
}

// arnOf returns the ARN this copy knows for a channel name.
func (b *fleetBackend) arnOf(channel string) string {
	if strings.HasPrefix(channel, "arn:") {
		return ""
	}
	prefix := b.f.prefix + "conn:" + channel + "|"
	b.mu.RLock()
	defer b.mu.RUnlock()
	for k, m := range b.memo {
		if strings.HasPrefix(k, prefix) && m.e.ARN != "" {
			return m.e.ARN
		}
	}
	return ""
}

// forgetLocal drops what this copy keeps about channel (a name or an ARN).
func (b *fleetBackend) forgetLocal(channel string) {
	prefix := b.f.prefix + "conn:" + channel + "|"
	b.mu.Lock()
	for k, m := range b.memo {
		if strings.HasPrefix(k, prefix) || m.e.ARN == channel {
			delete(b.memo, k)
		}
	}
	for k, e := range b.pending {
		if strings.HasPrefix(k, prefix) || e.ARN == channel {
			delete(b.pending, k)
		}
	}
	b.mu.Unlock()
	b.inner.Forget(channel)
}
