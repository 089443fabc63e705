// The Backend over awskvs.Resolver: its caching, singleflight, retries and
// stale-on-error are what keep a fleet of vending servers under the KVS
// API quotas.

package vend

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
)

// NewResolverBackend returns a [Backend] that resolves channels with r,
// which must have IncludeICEServers set. creating, if not nil, is used
// when a request asks to create a missing channel; it must have
// CreateIfMissing set (it keeps a cache of its own).
//
// When the channel's endpoints are AWS's, the ICE servers start with the
// region's KVS STUN server, as the KVS SDKs' samples do.
//
// An answer asked for just after its ICE servers are due for refresh is
// served once more (their credentials stay valid awskvs.ICEMargin longer)
// while the refresh runs in the background: no request waits for it. The
// Backend has a method Close() error that ends such refreshes and waits
// for them ([Server.Close] calls it); an AWS call one of them started
// belongs to r, which bounds it with its own timeout.
func NewResolverBackend(r, creating *awskvs.Resolver) Backend {
	b := &resolverBackend{r: r, creating: creating, grace: true}
	for i := range b.shards {
		b.shards[i].m = make(map[memoKey]memo)
	}
	b.bg.init()
	b.refreshing.spawn = b.bg.spawn
	return b
}

type resolverBackend struct {
	r, creating *awskvs.Resolver
	// shards remember the converted ICE server list per channel and role
	// until the resolver's expires: reusing it saves its conversion and,
	// the slice being the same, lets the server reuse its JSON (iceJSON).
	// Measured: without both, a request costs 24% more CPU.
	shards [16]memoShard

	// grace serves the last answer in the refresh grace while the ICE
	// servers are refreshed in the background; off under a fleet, which
	// does the same fleet-wide.
	grace      bool
	refreshing refreshes[memoKey]
	bg         background
}

// Close ends the refreshes under way and returns once they have.
func (b *resolverBackend) Close() error {
	b.bg.close()
	return nil
}

type memoShard struct {
	mu sync.RWMutex
	m  map[memoKey]memo
}

type memoKey struct {
	channel string
	role    kvs.Role
	create  bool
}

type memo struct {
	arn    string
	iceExp time.Time
	ice    []ICEServer
	last   Target // the last fresh answer; its Expires is the soonest of the resolver's
	gen    uint64 // the resolver's Generation before it gave last
}

func (b *resolverBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error) {
	k := memoKey{channel, role, create && b.creating != nil}
	sh := &b.shards[shardOf(channel)%uint32(len(b.shards))]
	m, ok := sh.get(k)
	if ok && m.ice != nil {
		// Until the soonest of its expiries, and unless the resolver has
		// dropped something since, the answer is what the resolver would
		// give: asking it costs three cache lookups and a copy of the ICE
		// servers.
		now := b.now()
		if now.Before(m.last.Expires) && m.gen == b.resolverFor(k).Generation() {
			t := m.last
			t.FromCache = true
			return t, nil
		}
		if b.grace && b.inGrace(now, m.iceExp) {
			b.refreshAsync(ctx, k)
			t := m.last
			t.FromCache = true
			return t, nil
		}
	}
	return b.resolve(ctx, k, sh, m, ok)
}

func (b *resolverBackend) resolverFor(k memoKey) *awskvs.Resolver {
	if k.create {
		return b.creating
	}
	return b.r
}

// get returns k's memo, if any.
func (sh *memoShard) get(k memoKey) (memo, bool) {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	m, ok := sh.m[k]
	return m, ok
}

// resolve asks the resolver and remembers the answer in sh; m and ok are
// k's memo as read before, which the answer replaces when it differs.
func (b *resolverBackend) resolve(ctx context.Context, k memoKey, sh *memoShard, m memo, ok bool) (Target, error) {
	r := b.resolverFor(k)
	gen := r.Generation()
	c, err := r.Resolve(ctx, k.channel, k.role)
	if err != nil {
		return Target{}, backendError(err)
	}
	exp := soonest(c.ARNExpires, c.EndpointsExpire, c.ICEServersExpire)
	changed := !ok || m.ice == nil || m.arn != c.ChannelARN || !m.iceExp.Equal(c.ICEServersExpire) || m.last.Endpoint != c.WSSEndpoint
	if changed {
		a, _ := kvs.ParseChannelARN(c.ChannelARN)
		m = memo{arn: c.ChannelARN, iceExp: c.ICEServersExpire, ice: convertICE(c)}
		m.last = Target{ChannelARN: c.ChannelARN, Region: a.Region, Endpoint: c.WSSEndpoint, ICEServers: m.ice, Expires: exp}
	}
	if !c.Stale && (changed || m.gen != gen || !m.last.Expires.Equal(exp)) {
		m.gen, m.last.Expires = gen, exp
		sh.mu.Lock()
		if len(sh.m) >= 4096 {
			clear(sh.m) // a memo only saves work; start over when it grows
		}
		sh.m[k] = m
		sh.mu.Unlock()
	}
	t := m.last
	t.FromCache, t.Stale = c.FromCache, c.Stale
	return t, nil
}

// refreshAsync resolves k again in the background, once at a time.
func (b *resolverBackend) refreshAsync(ctx context.Context, k memoKey) {
	b.refreshing.start(ctx, k, func(ctx context.Context) {
		sh := &b.shards[shardOf(k.channel)%uint32(len(b.shards))]
		m, ok := sh.get(k)
		b.resolve(ctx, k, sh, m, ok)
	})
}

// inGrace reports whether ICE servers due at exp are in their refresh
// grace at now.
func (b *resolverBackend) inGrace(now, exp time.Time) bool {
	return !now.Before(exp) && now.Before(exp.Add(refreshGrace))
}

func (b *resolverBackend) now() time.Time {
	if b.r.Clock != nil {
		return b.r.Clock()
	}
	return time.Now()
}

// soonest returns the earliest of the times that are set.
func soonest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

func (b *resolverBackend) Forget(channel string) {
	b.r.Invalidate(channel)
	if b.creating != nil {
		b.creating.Invalidate(channel)
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for k, m := range sh.m {
			if k.channel == channel || m.arn == channel {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

func shardOf(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// convertICE returns the ICE servers of c, with the region's KVS STUN
// server first when the endpoints are AWS's (never for a local emulator,
// whose clients must stay on loopback).
func convertICE(c awskvs.Connection) []ICEServer {
	out := make([]ICEServer, 0, len(c.ICEServers)+1)
	if host, ok := awsDomain(c.WSSEndpoint); ok {
		a, _ := kvs.ParseChannelARN(c.ChannelARN)
		out = append(out, ICEServer{URLs: []string{"stun:stun.kinesisvideo." + a.Region + "." + host + ":443"}})
	}
	for _, s := range c.ICEServers {
		out = append(out, ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// awsDomain returns amazonaws.com (or amazonaws.com.cn) when endpoint is
// on it.
func awsDomain(endpoint string) (string, bool) {
	_, rest, _ := strings.Cut(endpoint, "://")
	host, _, _ := strings.Cut(rest, "/")
	for _, d := range []string{"amazonaws.com", "amazonaws.com.cn"} {
		if strings.HasSuffix(host, "."+d) {
			return d, true
		}
	}
	return "", false
}

// backendError maps the resolver's errors to the kinds the server answers
// with.
func backendError(err error) error {
	var ae *awskvs.Error
	switch {
	case errors.Is(err, awskvs.ErrNotFound):
		return errors.Join(ErrChannelNotFound, err)
	case errors.Is(err, awskvs.ErrInvalidArgument):
		return errors.Join(ErrInvalid, err)
	case errors.Is(err, awskvs.ErrAccessDenied):
		return errors.Join(ErrForbidden, err)
	case errors.Is(err, awskvs.ErrThrottled):
		return unavailable{err}
	case errors.As(err, &ae) && ae.Kind == nil && (ae.StatusCode >= 500 || ae.StatusCode == 0):
		// A 5xx, or no answer in time.
		return unavailable{err}
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable{err}
	}
	return err
}

// refreshes runs background refreshes, one per key at a time, each with
// its own deadline and detached from the request that asked for it.
type refreshes[K comparable] struct {
	// spawn runs fn in a goroutine its owner waits for on close (see
	// background.spawn), and returns false when the owner is closed.
	spawn func(ctx context.Context, d time.Duration, fn func(ctx context.Context)) bool

	mu      sync.Mutex
	running map[K]bool
}

// backgroundTimeout bounds work that outlives the request that started
// it: a refresh, or a fleet's lookup whose answer the other copies share.
const backgroundTimeout = 15 * time.Second

// start runs fn for k in a goroutine, unless one for k is running.
func (r *refreshes[K]) start(ctx context.Context, k K, fn func(ctx context.Context)) {
	r.mu.Lock()
	if r.running[k] {
		r.mu.Unlock()
		return
	}
	if r.running == nil {
		r.running = make(map[K]bool)
	}
	r.running[k] = true
	r.mu.Unlock()
	done := func() {
		r.mu.Lock()
		delete(r.running, k)
		r.mu.Unlock()
	}
	run := func(ctx context.Context) {
		defer done()
		fn(ctx)
	}
	if !r.spawn(ctx, backgroundTimeout, run) {
		done()
	}
}
