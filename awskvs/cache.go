// A small TTL cache whose misses are collapsed into one call per key
// (singleflight) and which can serve a value past its expiry, for a
// bounded time, while the source is failing.

package awskvs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// maxEntries bounds each cache. When full, expired entries go first, then
// arbitrary ones: a cache only saves calls, so losing an entry is cheap.
const maxEntries = 10000

// staleRetry is how long a stale value is served before the source is
// asked again, so an outage does not turn every request into a slow,
// retried call.
const staleRetry = 5 * time.Second

type entry[V any] struct {
	val        V
	err        error     // a remembered "not found", served until expires
	expires    time.Time // fresh until then
	staleUntil time.Time // servable after a failed refresh until then
	stale      bool      // a refresh failed; expires is the next retry
}

type flight[V any] struct {
	done chan struct{}
	val  V
	exp  time.Time
	err  error
}

// cache maps keys to values that expire. The zero value is not usable:
// call newCache.
type cache[K comparable, V any] struct {
	// notFound is how long an ErrNotFound from the source is remembered;
	// zero means not at all.
	notFound time.Duration
	// dropped, if set, is incremented after entries are dropped before
	// their expiry, so that a caller keeping values until then can tell.
	dropped *atomic.Uint64

	mu      sync.Mutex
	entries map[K]*entry[V]
	flights map[K]*flight[V]
}

func newCache[K comparable, V any](notFound time.Duration, dropped *atomic.Uint64) *cache[K, V] {
	return &cache[K, V]{notFound: notFound, dropped: dropped, entries: make(map[K]*entry[V]), flights: make(map[K]*flight[V])}
}

// fetchFunc loads a value and says when it expires.
type fetchFunc[V any] func(ctx context.Context) (V, time.Time, error)

// result is what get returns besides the value.
type result struct {
	expires time.Time
	stale   bool
	hit     bool // no call was made for this answer
}

// get returns the value for key: a fresh cached one, or one loaded by
// fetch. Concurrent misses for a key share one fetch, which runs on its
// own (the values of ctx, not its cancellation), so that one caller giving
// up does not fail the others; each caller still stops waiting when its
// own ctx is done. When fetch fails with a transient error and a value is
// within maxStale of its expiry, that value is returned as stale. An
// ErrNotFound is remembered for c.notFound, so that asking for something
// missing over and over makes one call per period.
//
// fetch must bound its own run time.
func (c *cache[K, V]) get(ctx context.Context, key K, now func() time.Time, maxStale time.Duration, fetch fetchFunc[V]) (V, result, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now().Before(e.expires) {
		v, r, err := e.val, result{expires: e.expires, stale: e.stale, hit: true}, e.err
		c.mu.Unlock()
		return v, r, err
	}
	f, ok := c.flights[key]
	if !ok {
		f = &flight[V]{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), key, f, now, maxStale, fetch)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		var zero V
		return zero, result{}, ctx.Err()
	}
	if f.err != nil {
		var zero V
		return zero, result{}, f.err
	}
	c.mu.Lock()
	stale := false
	if e, ok := c.entries[key]; ok && e.stale {
		stale = true
	}
	c.mu.Unlock()
	return f.val, result{expires: f.exp, stale: stale}, nil
}

// run performs one fetch and publishes its outcome to the flight's waiters.
func (c *cache[K, V]) run(ctx context.Context, key K, f *flight[V], now func() time.Time, maxStale time.Duration, fetch fetchFunc[V]) {
	v, exp, err := fetch(ctx)
	t := now()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, key)
	defer close(f.done)
	if err == nil {
		f.val, f.exp = v, exp
		if exp.After(t) {
			c.makeRoom(t)
			c.entries[key] = &entry[V]{val: v, expires: exp, staleUntil: exp.Add(max(maxStale, 0))}
		} else {
			delete(c.entries, key)
		}
		return
	}
	e, ok := c.entries[key]
	if ok && transient(err) && t.Before(e.staleUntil) {
		e.stale = true
		e.expires = minTime(t.Add(staleRetry), e.staleUntil)
		f.val, f.exp = e.val, e.staleUntil
		return
	}
	f.err = err
	if c.notFound > 0 && errors.Is(err, ErrNotFound) {
		c.makeRoom(t)
		c.entries[key] = &entry[V]{err: err, expires: t.Add(c.notFound)}
		return
	}
	if ok && !transient(err) {
		// The source answered, and not with the value: forget it.
		delete(c.entries, key)
	}
}

// makeRoom drops expired entries, then arbitrary ones, when the cache is
// full. The caller holds c.mu.
func (c *cache[K, V]) makeRoom(now time.Time) {
	if len(c.entries) < maxEntries {
		return
	}
	for k, e := range c.entries {
		if !now.Before(e.staleUntil) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < maxEntries {
			break
		}
		delete(c.entries, k)
	}
}

// forget drops the entries whose keys match.
func (c *cache[K, V]) forget(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.countDrop()
	for k := range c.entries {
		if match(k) {
			delete(c.entries, k)
		}
	}
}

// forgetValue drops the entries whose values match.
func (c *cache[K, V]) forgetValue(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.countDrop()
	for k, e := range c.entries {
		if e.err == nil && match(e.val) {
			delete(c.entries, k)
		}
	}
}

// countDrop counts a drop. It runs after the entries are gone: a caller
// that reads the count, then a value, and finds the count changed later
// knows to look again.
func (c *cache[K, V]) countDrop() {
	if c.dropped != nil {
		c.dropped.Add(1)
	}
}

// peek returns the cached value for key, expired or not.
func (c *cache[K, V]) peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.err == nil {
		return e.val, true
	}
	var zero V
	return zero, false
}

// transient reports whether err is worth serving stale data over: the
// service was throttling, failing or unreachable, rather than saying no.
func transient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.transient
	}
	return classify(err).transient
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
