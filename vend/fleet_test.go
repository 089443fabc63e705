// Fleet tests: copies of the vending server sharing a real redis-server,
// in front of one emulator with KVS's quotas, all on loopback.

package vend

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
)

// fleetCopy is one copy of the server in a fleet test.
type fleetCopy struct {
	ts    *testServer
	fleet *Fleet // nil without Redis
	logs  *syncBuffer
}

// fleetE2E is an emulator and the copies in front of it.
type fleetE2E struct {
	*e2e
	redis  *redisServer
	copies []*fleetCopy
	// wrap, if set, wraps each new copy's HTTP client to AWS.
	wrap func(aws.HTTPClient) aws.HTTPClient
	// cacheTTL, if set, is the ARN and endpoint TTL of new copies.
	cacheTTL time.Duration
	// redisTimeout, if set, is the Redis timeout of new copies.
	redisTimeout time.Duration
}

// startFleet starts an emulator with channel cam-1 and n copies of the
// server on it, sharing redis when it is not nil.
func startFleet(t *testing.T, n int, cfg Config, redis *redisServer) *fleetE2E {
	t.Helper()
	emu := emulatortest.New(t, emulator.Config{ConnectRate: -1, MaxViewers: -1, ICETTL: e2eICETTL})
	arn, err := emu.CreateChannel("cam-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fleetE2E{e2e: &e2e{emu: emu, clock: &shiftClock{}, arn: arn}, redis: redis}
	for range n {
		f.copies = append(f.copies, f.startCopy(t, cfg, n))
	}
	f.awsCfg = emulatorAWS(t, emu, prometheus.NewRegistry())
	return f
}

func (f *fleetE2E) startCopy(t *testing.T, cfg Config, n int) *fleetCopy {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	awsCfg := emulatorAWS(t, f.emu, reg)
	c := &fleetCopy{logs: logs}
	if f.wrap != nil {
		awsCfg.HTTPClient = f.wrap(awsCfg.HTTPClient)
	}
	if f.redis != nil {
		var err error
		timeout := f.redisTimeout
		if timeout == 0 {
			// Generous, for a busy machine: a timeout puts a copy on its
			// own, which only the outage tests want.
			timeout = 2 * time.Second
		}
		c.fleet, err = newFleet(redisConfig{URL: f.redis.URL(), Copies: n, Timeout: Duration(timeout)},
			fleetOptions{logger: testLogger(logs), registry: reg, probeEvery: 50 * time.Millisecond, clock: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.fleet.Close() })
	}
	var err error
	if awsCfg.HTTPClient, err = BudgetUpstream(reg, cfg, c.fleet, awsCfg.HTTPClient); err != nil {
		t.Fatal(err)
	}
	r := newTestResolver(awsCfg, f.clock.Now, false)
	if f.cacheTTL != 0 {
		r.CacheTTL = f.cacheTTL
	}
	var backend Backend = NewResolverBackend(r, newTestResolver(awsCfg, f.clock.Now, true))
	if c.fleet != nil {
		backend = newFleetBackend(c.fleet, backend, cfg.Cache, f.clock.Now)
	}
	c.ts = startServer(t, cfg, Options{Backend: backend, Credentials: r.Credentials, Clock: f.clock.Now, Registry: reg, Fleet: c.fleet, Logger: testLogger(logs)})
	return c
}

// statuses sends body with token to every copy in turn, rounds times, and
// returns the statuses in order.
func (f *fleetE2E) statuses(t *testing.T, rounds int, token, body string) []int {
	t.Helper()
	var out []int
	for range rounds {
		for _, c := range f.copies {
			out = append(out, c.ts.post(t, token, body).status)
		}
	}
	return out
}

const (
	viewerCam1 = `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.fleet"}`
	masterCam1 = `{"channel":"cam-1","role":"MASTER"}`
)

// TestFleetSharedCache: what one copy resolved, the other serves without
// a single AWS call, and its URL connects.
func TestFleetSharedCache(t *testing.T) {
	f := startFleet(t, 2, baseConfig(), startRedis(t))
	a, b := f.copies[0], f.copies[1]
	if got := a.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
		t.Fatalf("copy A: %d %s", got.status, got.body)
	}
	warm := upstreamCalls(f.emu.Stats())
	got := b.ts.post(t, tokAlice, viewerCam1)
	if got.status != 200 || got.conn.ChannelARN != f.arn || len(got.conn.ICEServers) == 0 {
		t.Fatalf("copy B: %d %s", got.status, got.body)
	}
	if d := upstreamCalls(f.emu.Stats()) - warm; d != 0 {
		t.Errorf("copy B made %d AWS calls for what copy A resolved; want 0 (%v)", d, f.emu.Stats().Calls)
	}
	m := dial(t, b.ts.post(t, tokCamera, masterCam1).conn.URL)
	defer m.Close(websocket.StatusNormalClosure, "")
	v := dial(t, got.conn.URL)
	v.Close(websocket.StatusNormalClosure, "")

	// Steady state: no AWS call per request on either copy.
	before := upstreamCalls(f.emu.Stats())
	for _, c := range f.copies {
		if counts := hammer(t, c.ts, 200, 4); counts[200] != 200 {
			t.Fatalf("steady state: %v", counts)
		}
	}
	if d := upstreamCalls(f.emu.Stats()) - before; d != 0 {
		t.Errorf("400 requests over 2 warm copies made %d AWS calls; want 0", d)
	}
}

// TestFleetStampede: many requests on every copy at once for a channel
// nobody has resolved make one set of AWS calls fleet-wide with Redis, and
// one per copy without.
func TestFleetStampede(t *testing.T) {
	const copies, perCopy = 4, 25
	cases := []struct {
		name  string
		redis bool
		want  int64 // Describe, GetSignalingChannelEndpoint and GetIceServerConfig calls
	}{
		{"with redis", true, 3},
		{"without redis", false, 3 * copies},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs *redisServer
			if c.redis {
				rs = startRedis(t)
			}
			f := startFleet(t, copies, baseConfig(), rs)
			f.askAtOnce(t, perCopy, func(int) (string, string) { return tokAlice, viewerCam1 })
			s := f.emu.Stats()
			got := s.Calls[emulator.OpDescribeSignalingChannel] + s.Calls[emulator.OpGetSignalingChannelEndpoint] + s.Calls[emulator.OpGetIceServerConfig]
			if got != c.want {
				t.Errorf("%d requests on %d copies at once made %d AWS calls %v; want %d", copies*perCopy, copies, got, s.Calls, c.want)
			}
			if s.Throttled != 0 {
				t.Errorf("the emulator throttled %d calls; want 0", s.Throttled)
			}
		})
	}
}

// TestFleetInvalidation: a channel deleted and created again. One copy
// is told by a refused client (refresh); every copy then vends the new
// ARN.
func TestFleetInvalidation(t *testing.T) {
	f := startFleet(t, 2, baseConfig(), startRedis(t))
	for _, c := range f.copies {
		if got := c.ts.post(t, tokCamera, masterCam1); got.status != 200 || got.conn.ChannelARN != f.arn {
			t.Fatalf("warm-up: %d %s", got.status, got.body)
		}
	}
	old := f.arn
	newARN := f.recreate(t)
	if got := f.copies[1].ts.post(t, tokCamera, masterCam1); got.conn.ChannelARN != old {
		t.Fatalf("before refresh: %s; want the cached %s", got.conn.ChannelARN, old)
	}
	got := f.copies[0].ts.post(t, tokCamera, `{"channel":"cam-1","role":"MASTER","refresh":true}`)
	if got.status != 200 || got.conn.ChannelARN != newARN {
		t.Fatalf("refresh on copy A: %d %s; want %s", got.status, got.body, newARN)
	}
	// Copy B hears of it by pub/sub, at once but not synchronously.
	deadline := time.Now().Add(2 * time.Second)
	for {
		got = f.copies[1].ts.post(t, tokCamera, masterCam1)
		if got.status == 200 && got.conn.ChannelARN == newARN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy B still vends %s after copy A's refresh; want %s", got.conn.ChannelARN, newARN)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dial(t, got.conn.URL).Close(websocket.StatusNormalClosure, "")
	// Copy B's own resolver forgot the old ARN too: without Redis it
	// resolves the new one.
	f.redis.stop()
	got = f.copies[1].ts.post(t, tokCamera, masterCam1)
	if got.status != 200 || got.conn.ChannelARN != newARN {
		t.Errorf("copy B without Redis: %d %s; want %s", got.status, got.conn.ChannelARN, newARN)
	}
}

// TestFleetLimits: a caller's limit is counted across the copies: what
// one copy allowed, the others learn within a sync, and refuse.
func TestFleetLimits(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.PerPrincipal = Rate{PerSecond: 0.01, Burst: 3}
	f := startFleet(t, 2, cfg, startRedis(t))
	a, b := f.copies[0], f.copies[1]
	var got []int
	for range 4 {
		got = append(got, a.ts.post(t, tokAlice, viewerCam1).status)
	}
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Fatalf("copy A: %v; want [200 200 200 429]", got)
	}
	waitDry(t, b.ts.prLimit, "token:alice")
	r := b.ts.post(t, tokAlice, viewerCam1)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("copy B after copy A spent alice's burst: %d, Retry-After %q; want 429 with one", r.status, r.header.Get("Retry-After"))
	}
	// Another caller has a limit of its own.
	if got := b.ts.post(t, tokCamera, masterCam1); got.status != 200 {
		t.Errorf("another caller: %d", got.status)
	}
}

// TestFleetLimitsFirstContact: copies that allow a caller at the same time
// each spend their own burst once (the bound of the error), and the fleet's
// debt then refuses the caller on every copy.
func TestFleetLimitsFirstContact(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.PerPrincipal = Rate{PerSecond: 0.01, Burst: 3}
	f := startFleet(t, 2, cfg, startRedis(t))
	for _, c := range f.copies {
		for range 2 {
			if s := c.ts.post(t, tokAlice, viewerCam1).status; s != 200 {
				t.Fatalf("within each copy's burst: %d", s)
			}
		}
	}
	for _, c := range f.copies {
		waitDry(t, c.ts.prLimit, "token:alice")
		if s := c.ts.post(t, tokAlice, viewerCam1).status; s != 429 {
			t.Errorf("after 4 requests over 2 copies with a fleet burst of 3: %d; want 429", s)
		}
	}
}

// waitDry waits until key's bucket in l has less than one token.
func waitDry[K comparable](t *testing.T, l *limiter[K], key K) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s := &l.shards[maphash.Comparable(l.seed, key)%limiterShards]
		s.mu.Lock()
		b := s.m[key]
		s.mu.Unlock()
		if b != nil && b.lim.Tokens() < 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fleet's count of %v never reached this copy", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFleetBudget: with the budget of DescribeSignalingChannel spent (the
// fleet's with Redis, the one copy's without), requests for new channels
// get 503 with a jittered Retry-After, requests served from the cache get
// 200, and the emulator throttles nothing.
func TestFleetBudget(t *testing.T) {
	t.Run("two copies with redis", func(t *testing.T) { testBudget(t, 2, startRedis(t)) })
	t.Run("one copy without redis", func(t *testing.T) { testBudget(t, 1, nil) })
}

func testBudget(t *testing.T, copies int, rs *redisServer) {
	cfg := baseConfig()
	cfg.Budget.PerSecond = map[string]float64{"DescribeSignalingChannel": 0.2}
	f := startFleet(t, copies, cfg, rs)
	for i := 2; i <= 5; i++ {
		if _, err := f.emu.CreateChannel(fmt.Sprintf("cam-%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.copies[0].ts.post(t, tokCamera, masterCam1); got.status != 200 {
		t.Fatalf("the first lookup: %d %s", got.status, got.body)
	}
	retryAfter := map[string]bool{}
	for i := 2; i <= 5; i++ {
		c := f.copies[i%copies]
		got := c.ts.post(t, tokCamera, fmt.Sprintf(`{"channel":"cam-%d","role":"MASTER"}`, i))
		if got.status != 503 || got.err.Code != "unavailable" {
			t.Fatalf("cam-%d with the budget spent: %d %s; want 503", i, got.status, got.body)
		}
		ra := got.header.Get("Retry-After")
		if ra == "" {
			t.Fatalf("503 without Retry-After")
		}
		retryAfter[ra] = true
		if strings.Contains(string(got.body), "budget") {
			t.Errorf("the 503 tells the caller about internals: %s", got.body)
		}
	}
	for _, c := range f.copies {
		if got := c.ts.post(t, tokCamera, masterCam1); got.status != 200 {
			t.Errorf("cached cam-1 with the budget spent: %d; want 200", got.status)
		}
	}
	s := f.emu.Stats()
	if d := s.Calls[emulator.OpDescribeSignalingChannel]; d != 1 {
		t.Errorf("DescribeSignalingChannel calls = %d; want 1 (the budget for 5 s)", d)
	}
	if s.Throttled != 0 {
		t.Errorf("the emulator throttled %d calls; want 0", s.Throttled)
	}
	refused := 0.0
	for _, c := range f.copies {
		refused += metricSum(t, c.ts.reg, "kvssign_vend_budget_refused_total")
	}
	if refused == 0 {
		t.Error("kvssign_vend_budget_refused_total = 0")
	}
	t.Logf("Retry-After values seen: %v", retryAfter)
}

// TestFleetRedisOutage: Redis killed mid-run, then started again (empty,
// as after a flush): every request is answered, the copies say so once in
// their logs, in /readyz and in a metric, and share again once it is back.
func TestFleetRedisOutage(t *testing.T) {
	cfg := baseConfig()
	// A burst that refills slowly: 30 per caller, fleet-wide with Redis.
	cfg.Limits.PerPrincipal = Rate{PerSecond: 0.01, Burst: 30}
	rs := startRedis(t)
	f := startFleet(t, 2, cfg, rs)
	if got := f.statuses(t, 2, tokAlice, viewerCam1); fmt.Sprint(got) != "[200 200 200 200]" {
		t.Fatalf("warm-up: %v", got)
	}
	rs.stop()
	// Requests before the copies notice, and after.
	for range 5 {
		for _, c := range f.copies {
			if got := c.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
				t.Fatalf("with Redis just killed: %d %s", got.status, got.body)
			}
		}
	}
	for i, c := range f.copies {
		deadline := time.Now().Add(5 * time.Second)
		for c.fleet.Up() {
			if time.Now().After(deadline) {
				t.Fatalf("copy %d does not notice that Redis is gone", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 15 {
		for _, c := range f.copies {
			if got := c.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
				t.Fatalf("request %d with Redis down: %d %s", i, got.status, got.body)
			}
		}
	}
	for i, c := range f.copies {
		if c.fleet.Up() {
			t.Errorf("copy %d: Up() with Redis down", i)
		}
		r := c.ts.do(t, "GET", "/readyz", "", "")
		if r.status != 200 || !strings.Contains(string(r.body), "unreachable") {
			t.Errorf("copy %d /readyz with Redis down: %d %s", i, r.status, r.body)
		}
		if n := strings.Count(c.logs.String(), "redis out of reach"); n != 1 {
			t.Errorf("copy %d logged the outage %d times; want once", i, n)
		}
		if v := metricSum(t, c.ts.reg, "kvssign_vend_redis_up"); v != 0 {
			t.Errorf("copy %d kvssign_vend_redis_up = %v; want 0", i, v)
		}
	}

	rs.start()
	for i, c := range f.copies {
		deadline := time.Now().Add(5 * time.Second)
		for !c.fleet.Up() {
			if time.Now().After(deadline) {
				t.Fatalf("copy %d: Redis is back but the copy does not use it", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(c.logs.String(), "redis is back") {
			t.Errorf("copy %d did not log the recovery", i)
		}
	}
	if got := f.statuses(t, 2, tokAlice, viewerCam1); fmt.Sprint(got) != "[200 200 200 200]" {
		t.Fatalf("after recovery: %v", got)
	}
	// Shared again: what copy A allowed, copy B counts.
	for range 30 {
		if s := f.copies[0].ts.post(t, tokBackend, masterCam1).status; s != 200 {
			t.Fatalf("after recovery, within the burst on copy A: %d", s)
		}
	}
	// Copy B hears of it by pub/sub, or, if its subscription is still
	// coming back, from its own first request's sync: at most that one
	// request is allowed.
	if s := f.copies[1].ts.post(t, tokBackend, masterCam1).status; s == 200 {
		waitDry(t, f.copies[1].ts.prLimit, "token:backend")
		if s := f.copies[1].ts.post(t, tokBackend, masterCam1).status; s != 429 {
			t.Errorf("after recovery, copy B once the fleet spent the burst: %d; want 429", s)
		}
	}
}

// TestFleetRedisSlowOrFlushed: a Redis that stops answering for a while
// costs a request at most its timeout; one flushed is filled again.
func TestFleetRedisSlowOrFlushed(t *testing.T) {
	rs := startRedis(t)
	f := startFleet(t, 0, baseConfig(), rs)
	f.redisTimeout = 200 * time.Millisecond
	for range 2 {
		f.copies = append(f.copies, f.startCopy(t, baseConfig(), 2))
	}
	if got := f.statuses(t, 1, tokAlice, viewerCam1); fmt.Sprint(got) != "[200 200]" {
		t.Fatalf("warm-up: %v", got)
	}
	// Paused: Redis takes connections but answers nothing for 4 s.
	const pause = 4 * time.Second
	if err := rs.do("CLIENT", "PAUSE", strconv.Itoa(int(pause/time.Millisecond)), "ALL"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(memoFor) // past the copies' own memory of Redis
	start := time.Now()
	for _, c := range f.copies {
		if got := c.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
			t.Fatalf("with Redis paused: %d %s", got.status, got.body)
		}
	}
	if d := time.Since(start); d >= pause/2 {
		t.Errorf("two requests with Redis paused took %v; want each bounded by the 200ms timeout, not the %v pause", d, pause)
	}
	time.Sleep(pause - time.Since(start) + 100*time.Millisecond)
	for _, c := range f.copies {
		deadline := time.Now().Add(5 * time.Second)
		for !c.fleet.Up() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}

	if err := rs.do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(memoFor)
	if got := f.statuses(t, 2, tokAlice, viewerCam1); fmt.Sprint(got) != "[200 200 200 200]" {
		t.Fatalf("after FLUSHALL: %v", got)
	}
	c := rs.client()
	defer c.Close()
	n, err := c.Exists(context.Background(), "kvssign:conn:cam-1|VIEWER").Result()
	if err != nil || n != 1 {
		t.Errorf("after FLUSHALL the shared entry was not written again: %d %v", n, err)
	}
}

// askAtOnce has every copy answer perCopy requests, all released at
// once, the request of copy n (its token and body) from ask, and fails
// the test unless every one is answered 200.
func (f *fleetE2E) askAtOnce(t *testing.T, perCopy int, ask func(n int) (token, body string)) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for n, cp := range f.copies {
		tok, body := ask(n)
		for range perCopy {
			wg.Go(func() {
				<-start
				s := cp.ts.post(t, tok, body).status
				mu.Lock()
				codes[s]++
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	if want := len(f.copies) * perCopy; codes[200] != want {
		t.Fatalf("statuses %v; want %d × 200", codes, want)
	}
}

// metricSum adds up every sample of the named metric in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// slowICE delays GetIceServerConfig calls by delay while on is set.
type slowICE struct {
	next  aws.HTTPClient
	on    *atomic.Bool
	delay time.Duration
}

func (c slowICE) Do(r *http.Request) (*http.Response, error) {
	if c.on.Load() && upstreamOperation(r) == "GetIceServerConfig" {
		time.Sleep(c.delay)
	}
	return c.next.Do(r)
}

// TestFleetICERefresh: an answer asked for just after its ICE servers
// expire is served at once, with credentials still valid, while one copy
// of the fleet fetches new ones in the background; then every copy serves
// the new ones.
func TestFleetICERefresh(t *testing.T) {
	f := startFleet(t, 0, baseConfig(), startRedis(t))
	var slow atomic.Bool
	const delay = time.Second
	f.wrap = func(next aws.HTTPClient) aws.HTTPClient { return slowICE{next: next, on: &slow, delay: delay} }
	f.cacheTTL = 10 * time.Hour // the ICE servers expire first
	for range 2 {
		f.copies = append(f.copies, f.startCopy(t, baseConfig(), 2))
	}
	first := f.copies[0].ts.post(t, tokAlice, viewerCam1)
	if first.status != 200 {
		t.Fatalf("warm-up: %d %s", first.status, first.body)
	}
	oldICE, _ := json.Marshal(first.conn.ICEServers)
	iceCalls := func() int64 { return f.emu.Stats().Calls[emulator.OpGetIceServerConfig] }
	before := iceCalls()

	// Just past the refresh time (the ICE TTL less the 30 s margin).
	f.clock.Advance(e2eICETTL - 30*time.Second + time.Second)
	slow.Store(true)
	for _, c := range f.copies {
		start := time.Now()
		got := c.ts.post(t, tokAlice, viewerCam1)
		if took := time.Since(start); got.status != 200 || took >= delay/2 {
			t.Fatalf("in the refresh grace: %d after %v; want 200 at once, not after the %v ICE call", got.status, took, delay)
		}
		if ice, _ := json.Marshal(got.conn.ICEServers); string(ice) != string(oldICE) {
			t.Errorf("in the refresh grace: ICE servers changed before the refresh ended")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range f.copies {
		waitICEChanged(t, c.ts, oldICE, deadline)
	}
	if d := iceCalls() - before; d != 1 {
		t.Errorf("the refresh made %d GetIceServerConfig calls over 2 copies; want 1", d)
	}
}

// TestBudgetFallbackShare: while Redis is out of reach, each copy spends
// 1/copies of the budget, so that the fleet stays under the quota.
func TestBudgetFallbackShare(t *testing.T) {
	f, err := newFleet(redisConfig{URL: "redis://127.0.0.1:1", Copies: 4}, fleetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := newBudget(awsBudget{PerSecond: map[string]float64{"CreateSignalingChannel": 8}}, f)
	ctx := context.Background()
	var got []bool
	for range 3 {
		ok, _ := b.Take(ctx, "CreateSignalingChannel", "")
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true false false]" {
		t.Errorf("8/s over 4 copies, Redis down: %v; want a burst of 1 then none", got)
	}
	if ok, wait := b.Take(ctx, "CreateSignalingChannel", ""); ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Errorf("over the share: ok %v, wait %v; want refused for up to 0.5 s", ok, wait)
	}
	if ok, _ := b.Take(ctx, "GetIceServerConfig", "c"); !ok {
		t.Error("GetIceServerConfig refused; want it unbudgeted by default (no account quota)")
	}
}

// TestFleetNotFound: a channel one copy found missing is missing for every
// copy for cache.notFoundFor, without another call; once created, it is
// found after that.
func TestFleetNotFound(t *testing.T) {
	f := startFleet(t, 2, baseConfig(), startRedis(t))
	const body = `{"channel":"cam-new","role":"MASTER"}`
	if got := f.copies[0].ts.post(t, tokCamera, body); got.status != 404 {
		t.Fatalf("copy A: %d %s; want 404", got.status, got.body)
	}
	before := upstreamCalls(f.emu.Stats())
	if got := f.copies[1].ts.post(t, tokCamera, body); got.status != 404 || got.err.Code != "channel_not_found" {
		t.Fatalf("copy B: %d %s; want 404", got.status, got.body)
	}
	if d := upstreamCalls(f.emu.Stats()) - before; d != 0 {
		t.Errorf("copy B made %d AWS calls for a channel copy A found missing; want 0", d)
	}
	if _, err := f.emu.CreateChannel("cam-new", 0); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(6 * time.Second) // past the 5 s default
	if got := f.copies[1].ts.post(t, tokCamera, body); got.status != 200 {
		t.Errorf("after the not-found time, created: %d %s; want 200", got.status, got.body)
	}
}

// TestFleetCloseAtOnce: Close may be called from several goroutines at
// once, and what fails after it (the clients are closed) is not taken for
// Redis going out of reach.
func TestFleetCloseAtOnce(t *testing.T) {
	rs := startRedis(t)
	logs := &syncBuffer{}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	f, err := newFleet(redisConfig{URL: rs.URL(), Copies: 1, Timeout: Duration(2 * time.Second)},
		fleetOptions{logger: testLogger(logs), registry: prometheus.NewRegistry(), probeEvery: time.Hour, clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { f.Close() })
	}
	wg.Wait()
	ctx := context.Background()
	// Commands failing in a row over more than downSpan would take a
	// copy off the fleet.
	for range downAfter + 1 {
		if err := f.do(ctx, func(ctx context.Context) error { return f.rdb.Ping(ctx).Err() }); err == nil {
			t.Error("a command after Close succeeded")
		}
		now.Add(int64(downSpan))
	}
	if strings.Contains(logs.String(), "out of reach") {
		t.Errorf("Close was logged as an outage:\n%s", logs)
	}
}

// waitICEChanged asks ts for alice's viewer connection until its ICE
// servers are other than old, failing the test at deadline.
func waitICEChanged(t *testing.T, ts *testServer, old []byte, deadline time.Time) {
	t.Helper()
	for {
		got := ts.post(t, tokAlice, viewerCam1)
		if ice, _ := json.Marshal(got.conn.ICEServers); got.status == 200 && string(ice) != string(old) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the ICE servers were not refreshed in the background")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
