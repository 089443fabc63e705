// A fleet: copies of the server that share a cache, rate limits and an
// AWS call budget through Redis, and fall back to their own while Redis is
// out of reach.

package vend

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// fleetOptions are what newFleet needs besides the Redis settings.
type fleetOptions struct {
	// logger receives one line when Redis goes out of reach and one when
	// it is back. If nil, nothing is logged.
	logger *slog.Logger
	// registry receives the fleet's metrics. If nil, they are not exported.
	registry prometheus.Registerer
	// getenv reads the password's environment variable. If nil, os.Getenv.
	getenv func(string) string
	// probeEvery is how often Redis is pinged, to learn that it is out of
	// reach or back. If zero, 500ms.
	probeEvery time.Duration
	// clock times the failures of a streak and the age of shared
	// answers. If nil, time.Now.
	clock func() time.Time
}

// A Fleet is this copy's link to the Redis the copies of the server share.
// Give it to [Options.Fleet] (limits), [Fleet.Backend] (the cache) and
// [BudgetUpstream] (the AWS call budget). Redis
// being slow or out of reach never fails a request: the copy uses its own
// cache, limits and share of the budget until Redis answers again. Create
// it with [NewFleet]; it is safe for concurrent use.
type Fleet struct {
	rdb       *redis.Client
	pat       *redis.Client // for the patient commands (patientTimeout)
	beat      *redis.Client // the heartbeat's own connection
	rate      *redis_rate.Limiter
	prefix    string
	timeout   time.Duration // redis.timeout: the least a command is allowed
	answers   answerTime
	leaseWait time.Duration
	copies    int
	probe     time.Duration
	id        string // this copy, as a lease's owner
	log       *slog.Logger

	up  atomic.Bool
	now func() time.Time
	// fails counts the commands that failed in a row, and failedSince
	// holds when the first of them failed (Unix nanoseconds).
	fails       atomic.Int64
	failedSince atomic.Int64

	mu       sync.Mutex
	onForget []func(channel string)
	onBack   []func()
	onUp     []func()
	// waiters are closed when a copy announces that it is done with the
	// lease of their key (see release).
	waiters map[string]chan struct{}
	limited map[string]func(lines string)

	upGauge   prometheus.Gauge
	fallbacks prometheus.Counter

	stop chan struct{}
	// bg runs the work that outlives a request; Close ends it and waits.
	bg        background
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// NewFleet connects to the Redis of cfg.Redis, which must be set. A Redis
// that cannot be reached yet is not an error: the fleet starts in fallback
// and keeps trying. log, if not nil, gets a line when Redis goes out of
// reach and one when it is back; reg, if not nil, the fleet's metrics.
// Call Close when done.
func NewFleet(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Fleet, error) {
	if cfg.Redis.URL == "" {
		return nil, errors.New("vend: redis.url is not set")
	}
	return newFleet(cfg.Redis, fleetOptions{logger: log, registry: reg})
}

func newFleet(cfg redisConfig, opts fleetOptions) (*Fleet, error) {
	ro, err := redisOptions(cfg, opts.getenv)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	// The heartbeat measures Redis, not this copy's pool, which a storm
	// of requests can drain: measured, its pings then timed out waiting
	// for a connection and took the copies off the fleet.
	bo := *ro
	bo.PoolSize, bo.MinIdleConns, bo.MaxIdleConns = 1, 0, 1
	bo.ReadTimeout, bo.WriteTimeout = 0, 0 // go-redis's 5 s; the heartbeat's context bounds it
	// A command's context carries its timeout (see answerTime); the
	// clients' own are the most a command may be given.
	po := *ro
	po.ReadTimeout = max(patientFactor*ro.ReadTimeout, time.Second)
	po.WriteTimeout, po.PoolTimeout = po.ReadTimeout, po.ReadTimeout
	f := &Fleet{
		rdb:       redis.NewClient(ro),
		pat:       redis.NewClient(&po),
		beat:      redis.NewClient(&bo),
		prefix:    cfg.KeyPrefix,
		timeout:   orDuration(cfg.Timeout, defaultRedisTimeout),
		leaseWait: orDuration(cfg.LeaseWait, defaultLeaseWait),
		copies:    max(cfg.Copies, 1),
		probe:     opts.probeEvery,
		id:        hex.EncodeToString(b[:]),
		log:       opts.logger,
		now:       opts.clock,
		stop:      make(chan struct{}),
		upGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvssign_vend_redis_up", Help: "1 while the shared Redis answers, 0 while this copy uses its own cache, limits and budget.",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvssign_vend_redis_fallbacks_total", Help: "Times this copy lost the shared Redis and fell back to its own cache, limits and budget.",
		}),
	}
	f.bg.init()
	if f.prefix == "" {
		f.prefix = defaultKeyPrefix
	}
	if f.probe <= 0 {
		f.probe = 500 * time.Millisecond
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.rate = redis_rate.NewLimiter(f.rdb)
	if opts.registry != nil {
		for _, c := range []prometheus.Collector{f.upGauge, f.fallbacks} {
			if err := opts.registry.Register(c); err != nil {
				f.rdb.Close()
				f.pat.Close()
				f.beat.Close()
				return nil, fmt.Errorf("vend: fleet metrics: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f.up.Store(true) // so that down logs an outage
	if err := f.rdb.Ping(ctx).Err(); err != nil {
		f.down(err, "first ping")
	} else {
		f.upGauge.Set(1)
	}
	ps := f.rdb.Subscribe(context.Background(), f.forgetChannel(), f.limitedChannel(), f.releasedChannel())
	if f.Up() {
		// Subscribed before the copy serves, so that it misses nothing
		// the others announce from then on; otherwise go-redis keeps
		// trying in the background.
		ps.Receive(ctx)
	}
	f.wg.Add(2)
	go f.listen(ps)
	go f.watch()
	return f, nil
}

// redisOptions turns the settings into go-redis options with bounded
// timeouts and no retries: a slow Redis must cost a request at most one
// timeout before the copy stops asking it.
func redisOptions(cfg redisConfig, getenv func(string) string) (*redis.Options, error) {
	ro, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// go-redis's message may quote the URL, and with it a password.
		return nil, errors.New("vend: redis.url: not a valid redis:// or rediss:// URL")
	}
	if cfg.PasswordEnv != "" {
		if getenv == nil {
			getenv = os.Getenv
		}
		pw := getenv(cfg.PasswordEnv)
		if pw == "" {
			return nil, fmt.Errorf("vend: redis.passwordEnv: the environment variable %s is empty", cfg.PasswordEnv)
		}
		ro.Password = pw
	}
	if cfg.CAFile != "" {
		if ro.TLSConfig == nil {
			return nil, errors.New("vend: redis.caFile: set only with a rediss:// URL")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("vend: redis.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vend: redis.caFile: %s holds no PEM certificate", cfg.CAFile)
		}
		ro.TLSConfig.RootCAs = pool
	}
	if ro.TLSConfig != nil {
		ro.TLSConfig.MinVersion = tls.VersionTLS12
	}
	t := orDuration(cfg.Timeout, defaultRedisTimeout)
	ro.DialTimeout = max(4*t, 200*time.Millisecond)
	// The most a request's command may be given (requestTimeout); the
	// patient commands' client allows more.
	most := beatBound(t)
	ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = most, most, most
	// A connection made anew (after one timed out) costs round trips
	// before its first command; on a busy Redis each waits its turn.
	// These two are only for Redis's own bookkeeping.
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1
	ro.DialerRetries = 1
	quietRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	return ro, nil
}

// quietRedis silences go-redis's own log, which writes plain text to
// stderr (where kvssign serve writes JSON lines): the fleet logs Redis's
// outages and returns itself, once each.
var quietRedis sync.Once

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// Close stops listening for invalidations, ends the work under way in the
// background (lookups that outlived their request, late writes,
// refreshes) and waits for it, and closes the connections.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		// No background work starts once Close has begun: a lookup asked
		// for from now on is answered by inner alone, at once.
		f.bg.shut()
		f.mu.Lock()
		close(f.stop)
		f.mu.Unlock()
		f.bg.close()
		f.closeErr = f.rdb.Close()
		f.pat.Close()
		f.beat.Close()
		f.wg.Wait()
	})
	return f.closeErr
}

// closed reports whether Close has begun: work still under way in the
// background (a lookup, a late write) then sends no command, and what
// fails is no sign that Redis is out of reach.
func (f *Fleet) closed() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// Up reports whether Redis is in use (true) or the copy is on its own.
func (f *Fleet) Up() bool { return f.up.Load() }

// readiness is the note /readyz adds about Redis.
func (f *Fleet) readiness() string {
	if f.Up() {
		return "ok"
	}
	return "unreachable: using this copy's own cache, limits and budget share"
}

// do runs fn on Redis with the request timeout, unless Redis is known to
// be out of reach. An error other than a missing key makes the caller fall
// back for this request; see failed for when it puts the whole copy in
// fallback.
func (f *Fleet) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return f.doFor(ctx, f.requestTimeout(), fn)
}

// requestTimeout bounds a command on the request path: redis.timeout
// while Redis answers in time, and while it answers slowly (see
// answerTime) up to the heartbeat's bound: no command waits longer than
// the heartbeat does before it calls Redis out of reach.
func (f *Fleet) requestTimeout() time.Duration {
	return f.answers.timeout(f.timeout, f.beatTimeout())
}

// beatTimeout bounds the heartbeat: a Redis that does not answer a PING
// in that time is out of reach.
func (f *Fleet) beatTimeout() time.Duration { return beatBound(f.timeout) }

// beatBound is the heartbeat's bound for a redis.timeout of t.
func beatBound(t time.Duration) time.Duration { return max(10*t, 2*time.Second) }

// patientFactor is how many request timeouts the patient commands wait.
const patientFactor = 5

// patientTimeout bounds the commands where waiting costs less than what
// failing would: a write retried off the request path, and the shared
// calls' reads and leases, whose failure sends an AWS call another copy
// may be making (measured in the storm: with the request's timeout, most
// of the calls made twice).
// While commands are failing, it is the request timeout: a Redis that
// does not answer at all must cost a request little.
func (f *Fleet) patientTimeout() time.Duration {
	t := f.requestTimeout()
	if f.fails.Load() > 0 {
		return t
	}
	return max(patientFactor*t, time.Second)
}

// doFor is do with a timeout of d.
func (f *Fleet) doFor(ctx context.Context, d time.Duration, fn func(ctx context.Context) error) error {
	return f.run(ctx, d, true, fn)
}

// doBatch is doFor for a batch of commands, whose time is not one
// command's answer time.
func (f *Fleet) doBatch(ctx context.Context, d time.Duration, fn func(ctx context.Context) error) error {
	return f.run(ctx, d, false, fn)
}

// run runs fn on Redis with a timeout of d and counts its failure; with
// sample, its time is an answer time (see answerTime).
func (f *Fleet) run(ctx context.Context, d time.Duration, sample bool, fn func(ctx context.Context) error) error {
	if !f.up.Load() || f.closed() {
		return errRedisDown
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		if sample {
			f.answers.observe(time.Since(start))
		}
		f.fails.Store(0)
	case !f.closed():
		f.failed(err)
	}
	return err
}

// answerTime estimates how long Redis takes to answer this copy, and sets
// the commands' timeouts from it as TCP sets its retransmission timer from
// round trips (RFC 6298): the smoothed answer time plus four times its
// mean deviation. On busy cores Redis and the copies answer in hundreds of
// milliseconds (measured with the reconnect storm, BENCHMARKS.md); a fixed
// timeout of redis.timeout then failed commands that would have answered,
// and each such failure sent an AWS call that another copy was making.
// The samples are the commands that answered (pool wait included) and the
// heartbeat's pings, which wait up to beatTimeout on a connection of their
// own and so are seen even when every command runs out of time. A Redis
// that answers nothing gives no sample: the timeouts stay as they were
// until the heartbeat takes the copy off the fleet.
type answerTime struct {
	mu           sync.Mutex
	srtt, rttvar time.Duration
}

// observe records an answer in d.
func (a *answerTime) observe(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srtt == 0 {
		a.srtt, a.rttvar = d, d/2
		return
	}
	dev := a.srtt - d
	if dev < 0 {
		dev = -dev
	}
	a.rttvar += (dev - a.rttvar) / 4
	a.srtt += (d - a.srtt) / 8
}

// timeout is the estimate's timeout, within [least, most].
func (a *answerTime) timeout(least, most time.Duration) time.Duration {
	a.mu.Lock()
	t := a.srtt + 4*a.rttvar
	a.mu.Unlock()
	return min(max(t, least), most)
}

// Failure detection. On a busy host one command can miss its timeout
// while Redis is fine; taking the copy off the fleet for it cost the
// storm (BENCHMARKS.md) many round trips between fleet and local mode,
// and with them AWS calls made twice. So a failed command only makes its
// own request fall back; the copy leaves the fleet after downAfter
// failures in a row spanning downSpan, or when the heartbeat fails. Off
// the fleet a copy makes its AWS calls alone, which in the storm cost
// more than waiting for a slow Redis: both bounds are generous.
const (
	downAfter = 3
	downSpan  = 2 * time.Second
)

// failed counts a failed command, and puts the copy in fallback when the
// streak is long enough. A command that found no free connection in this
// copy's pool says nothing of Redis: it is not counted.
func (f *Fleet) failed(err error) {
	if errors.Is(err, redis.ErrPoolTimeout) {
		return
	}
	now := f.now().UnixNano()
	if f.fails.Add(1) == 1 {
		f.failedSince.Store(now)
		return
	}
	if f.fails.Load() >= downAfter && now-f.failedSince.Load() >= int64(downSpan) {
		f.down(err, "commands failing for "+downSpan.String())
	}
}

var errRedisDown = errors.New("vend: redis is out of reach")

// down puts the copy in fallback and logs it, once per outage; watch
// brings it back.
func (f *Fleet) down(err error, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upGauge.Set(0)
	f.fails.Store(0)
	if !f.up.Swap(false) {
		return
	}
	f.fallbacks.Inc()
	f.log.Warn("vend: redis out of reach; this copy uses its own cache, limits and budget share until it is back", "err", err.Error(), "after", why)
}

// watch pings Redis every probe interval: a copy that serves from its
// memory learns of an outage even when no request needs Redis, and one in
// fallback learns that Redis is back.
func (f *Fleet) watch() {
	defer f.wg.Done()
	t := time.NewTicker(f.probe)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		// The heartbeat may wait longer than a request's command: it is
		// off the request path, and a failed one takes the copy off the
		// fleet.
		ctx, cancel := context.WithTimeout(context.Background(), f.beatTimeout())
		start := time.Now()
		err := f.beat.Ping(ctx).Err()
		cancel()
		if err == nil {
			f.answers.observe(time.Since(start))
		}
		switch {
		case err != nil:
			f.down(err, "heartbeat")
		case !f.up.Load():
			f.mu.Lock()
			backs := f.onBack
			f.mu.Unlock()
			// What was cached locally meanwhile may have missed
			// invalidations.
			for _, fn := range backs {
				fn()
			}
			f.mu.Lock()
			f.up.Store(true)
			f.upGauge.Set(1)
			ups := f.onUp
			f.mu.Unlock()
			f.log.Info("vend: redis is back; the copies share cache, limits and budget again")
			for _, fn := range ups {
				fn()
			}
		}
	}
}

// forgetChannel is the pub/sub channel on which copies tell each other to
// forget what they cached about a signaling channel.
func (f *Fleet) forgetChannel() string { return f.prefix + "forget" }

// limitedChannel is the pub/sub channel on which copies announce the
// rate-limit keys the fleet has run dry.
func (f *Fleet) limitedChannel() string { return f.prefix + "limited" }

// releasedChannel is the pub/sub channel on which a copy announces the
// keys whose lease it gave back, its answer written (or not, when AWS
// failed), so that the copies waiting for it read Redis at once.
func (f *Fleet) releasedChannel() string { return f.prefix + "released" }

// maxWaiters bounds the keys waited for; past it, every waiter is woken
// (and reads Redis once more) rather than kept.
const maxWaiters = 16384

// released returns a channel closed when a copy gives back key's lease.
func (f *Fleet) released(key string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiters == nil {
		f.waiters = map[string]chan struct{}{}
	}
	ch, ok := f.waiters[key]
	if !ok {
		if len(f.waiters) >= maxWaiters {
			for _, c := range f.waiters {
				close(c)
			}
			clear(f.waiters)
		}
		ch = make(chan struct{})
		f.waiters[key] = ch
	}
	return ch
}

// wake wakes the waiters of key.
func (f *Fleet) wake(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.waiters[key]; ok {
		close(ch)
		delete(f.waiters, key)
	}
}

// release gives back lease if this copy still holds it, and tells the
// copies waiting for key.
func (f *Fleet) release(ctx context.Context, lease, key string) {
	f.do(ctx, func(ctx context.Context) error {
		return releaseLease.Run(ctx, f.rdb, []string{lease}, f.id, f.releasedChannel(), key).Err()
	})
}

// releaseLease deletes a lease only if this copy still holds it, and
// announces its key.
var releaseLease = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then redis.call("del", KEYS[1]) end
redis.call("publish", ARGV[2], ARGV[3]) return 1`)

// onLimited registers what to do with the keys of limiter name that
// another copy announces run dry.
func (f *Fleet) onLimited(name string, fn func(lines string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limited == nil {
		f.limited = map[string]func(string){}
	}
	f.limited[name] = fn
}

// listen receives invalidations and rate-limit news from the other
// copies; go-redis resubscribes by itself after a lost connection.
func (f *Fleet) listen(ps *redis.PubSub) {
	defer f.wg.Done()
	defer ps.Close()
	// The subscription's health check notices a Redis that restarted
	// and subscribes again, within the probe interval.
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(max(f.probe, 100*time.Millisecond)))
	for {
		select {
		case <-f.stop:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if m.Channel == f.releasedChannel() {
				f.wake(m.Payload)
				continue
			}
			if m.Channel == f.limitedChannel() {
				name, lines, _ := strings.Cut(m.Payload, "\n")
				f.mu.Lock()
				fn := f.limited[name]
				f.mu.Unlock()
				if fn != nil {
					fn(lines)
				}
				continue
			}
			f.mu.Lock()
			fns := f.onForget
			f.mu.Unlock()
			for _, fn := range fns {
				fn(m.Payload)
			}
		}
	}
}

// publishForget tells every copy, this one included, to forget channel.
func (f *Fleet) publishForget(ctx context.Context, channel string) error {
	return f.do(ctx, func(ctx context.Context) error {
		return f.rdb.Publish(ctx, f.forgetChannel(), channel).Err()
	})
}

// subscribe registers what to do when a copy forgets a channel, when
// Redis is back after an outage (before the copy uses it again), and once
// it uses it again.
func (f *Fleet) subscribe(forget func(channel string), back, up func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onForget = append(f.onForget, forget)
	f.onBack = append(f.onBack, back)
	f.onUp = append(f.onUp, up)
}

// allow takes one from the GCRA bucket of key (rate per second, burst)
// shared by the copies. ok is false when Redis could not be asked.
func (f *Fleet) allow(ctx context.Context, key string, perSecond float64, burst int) (allowed bool, wait time.Duration, ok bool) {
	lim := redis_rate.Limit{Rate: 1, Burst: max(burst, 1), Period: time.Duration(float64(time.Second) / perSecond)}
	var res *redis_rate.Result
	err := f.do(ctx, func(ctx context.Context) error {
		var err error
		res, err = f.rate.Allow(ctx, f.prefix+key, lim)
		return err
	})
	if err != nil {
		return false, 0, false
	}
	return res.Allowed > 0, max(res.RetryAfter, 0), true
}
