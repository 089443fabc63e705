package vend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

// TestFleetSlowCommand: against a real redis-server that CLIENT PAUSE
// makes slow, a command past its timeout fails only its own request; the
// copy leaves the fleet after three failures in a row that span downSpan
// (on an injected clock), logged once. No heartbeat runs, so the
// timeouts stay at redis.timeout (see TestFleetSlowRedis).
func TestFleetSlowCommand(t *testing.T) {
	rs := startRedis(t)
	clk := newFakeClock(time.Unix(1_800_000_000, 0))
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	// No heartbeat during the test: only the commands' failures count.
	f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(100 * time.Millisecond)},
		fleetOptions{logger: testLogger(logs), registry: reg, probeEvery: time.Hour, clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	get := func() error {
		return f.do(ctx, func(ctx context.Context) error { return f.rdb.Get(ctx, "k").Err() })
	}
	// Each slow step pauses Redis a little longer than the timeout, and
	// waits for the pause to end.
	pause := func() {
		t.Helper()
		if err := rs.do("CLIENT", "PAUSE", "150", "ALL"); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		pause   bool
		advance time.Duration
		wantErr bool
		wantUp  bool
	}{
		{"one slow command", true, 0, true, true},
		{"a second at once", true, 0, true, true},
		{"a third at once: the streak spans no time", true, 0, true, true},
		{"an answer ends the streak", false, 0, false, true},
		{"a new streak", true, 0, true, true},
		{"half the span later", true, downSpan / 2, true, true},
		{"the span after the first", true, downSpan / 2, true, false},
		{"down: no command sent", false, 0, true, false},
	}
	for _, s := range steps {
		if s.pause {
			pause()
		}
		clk.Advance(s.advance)
		err := get()
		time.Sleep(80 * time.Millisecond)
		if (err != nil && !errors.Is(err, redis.Nil)) != s.wantErr {
			t.Errorf("%s: err %v; want an error: %v", s.name, err, s.wantErr)
		}
		if f.Up() != s.wantUp {
			t.Errorf("%s: Up() = %v; want %v", s.name, f.Up(), s.wantUp)
		}
	}
	if n := strings.Count(logs.String(), "redis out of reach"); n != 1 {
		t.Errorf("logged the outage %d times; want once", n)
	}
	if v := metricSum(t, reg, "kvssign_vend_redis_fallbacks_total"); v != 1 {
		t.Errorf("kvssign_vend_redis_fallbacks_total = %v; want 1", v)
	}
}

// TestFleetSlowRedis: while Redis is busy (a script that runs 150 ms,
// again and again), commands wait 0–150 ms for it, and with a fixed
// timeout of 100 ms a third of them ran out of time, and each closed its
// connection, whose replacement waited for the script again: most failed.
// In the reconnect storm each such failure sent an AWS call another copy
// was making. The heartbeat's pings see the answer times too, and once
// they have, the timeouts follow them: few commands fail (0–4 of 20 seen;
// a command can wait for two runs of the script).
func TestFleetSlowRedis(t *testing.T) {
	rs := startRedis(t)
	clk := newFakeClock(time.Unix(1_800_000_000, 0))
	f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(100 * time.Millisecond)},
		fleetOptions{logger: testLogger(&syncBuffer{}), probeEvery: 20 * time.Millisecond, clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitUp(t, f, true)
	busy := rs.client()
	defer busy.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			busy.Eval(context.Background(), busyScript, nil, 150_000)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(500 * time.Millisecond) // the heartbeat sees how slow Redis is
	ctx := context.Background()
	failed := 0
	for range 20 {
		err := f.do(ctx, func(ctx context.Context) error { return f.rdb.Get(ctx, "k").Err() })
		if err != nil && !errors.Is(err, redis.Nil) {
			failed++
		}
		time.Sleep(37 * time.Millisecond) // not in step with the script
	}
	if failed > 6 {
		t.Errorf("%d of 20 commands failed against a busy Redis; want at most 6 (timeout now %v)", failed, f.requestTimeout())
	}
}

// busyScript keeps Redis busy for ARGV[1] microseconds.
const busyScript = `local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat
  t = redis.call('TIME')
until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
return 1`

// TestAnswerTime: the timeout follows the answer times, within its bounds,
// and comes back to the least once Redis answers fast again.
func TestAnswerTime(t *testing.T) {
	ms := time.Millisecond
	answered := func(d time.Duration, n int) func(*answerTime) {
		return func(a *answerTime) {
			for range n {
				a.observe(d)
			}
		}
	}
	tests := []struct {
		name     string
		seen     []func(*answerTime)
		min, max time.Duration
	}{
		{"nothing seen", nil, 200 * ms, 200 * ms},
		{"fast answers", []func(*answerTime){answered(ms, 50)}, 200 * ms, 200 * ms},
		{"slow answers", []func(*answerTime){answered(300*ms, 50)}, 300 * ms, 310 * ms},
		{"answers past the most", []func(*answerTime){answered(2*time.Second, 5)}, time.Second, time.Second},
		{"one slow answer among fast ones", []func(*answerTime){answered(ms, 50), answered(400*ms, 1)}, 400 * ms, 500 * ms},
		{"slow, then fast again", []func(*answerTime){answered(300*ms, 10), answered(ms, 100)}, 200 * ms, 200 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a answerTime
			for _, fn := range tt.seen {
				fn(&a)
			}
			if got := a.timeout(200*ms, time.Second); got < tt.min || got > tt.max {
				t.Errorf("timeout = %v; want %v–%v", got, tt.min, tt.max)
			}
		})
	}
}

// TestFleetWriteBack: what a copy resolves on its own while Redis is out
// of reach is written to Redis once it is back, so that another copy
// serves it without asking AWS.
func TestFleetWriteBack(t *testing.T) {
	rs := startRedis(t)
	newCopy := func() (*fleetBackend, *fakeBackend, *Fleet) {
		f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(time.Second)}, fleetOptions{probeEvery: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		inner := newFakeBackend("cam-1")
		return newFleetBackend(f, inner, Cache{}, nil), inner, f
	}
	a, _, fa := newCopy()
	rs.stop()
	waitUp(t, fa, false)
	ctx := context.Background()
	if _, err := a.Connection(ctx, "cam-1", kvs.Viewer, false); err != nil {
		t.Fatal(err)
	}
	rs.start()
	waitUp(t, fa, true)
	c := rs.client()
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := c.Exists(ctx, "kvssign:conn:cam-1|VIEWER").Result()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the answer resolved while Redis was out of reach was not written back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, innerB, _ := newCopy()
	got, err := b.Connection(ctx, "cam-1", kvs.Viewer, false)
	if err != nil || got.ChannelARN != testARN("cam-1") {
		t.Fatalf("copy B: %+v %v", got, err)
	}
	if innerB.calls != 0 {
		t.Errorf("copy B resolved cam-1 itself %d times; want 0", innerB.calls)
	}
}

// waitUp waits until f.Up() is up.
func waitUp(t *testing.T, f *Fleet, up bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.Up() != up {
		if time.Now().After(deadline) {
			t.Fatalf("Up() stays %v", !up)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFleetSharedResources: masters of one channel asking two copies and
// viewers asking two others, all at once, make one call per resource
// fleet-wide: one
// DescribeSignalingChannel and one GetIceServerConfig for the channel,
// one GetSignalingChannelEndpoint per role.
func TestFleetSharedResources(t *testing.T) {
	const copies, perCopy = 4, 6
	f := startFleet(t, copies, baseConfig(), startRedis(t))
	f.askAtOnce(t, perCopy, func(n int) (string, string) {
		if n < copies/2 {
			return tokCamera, masterCam1
		}
		return tokAlice, viewerCam1
	})
	s := f.emu.Stats()
	got := map[string]int64{}
	for _, op := range []string{emulator.OpDescribeSignalingChannel, emulator.OpGetSignalingChannelEndpoint, emulator.OpGetIceServerConfig} {
		got[op] = s.Calls[op]
	}
	want := map[string]int64{emulator.OpDescribeSignalingChannel: 1, emulator.OpGetSignalingChannelEndpoint: 2, emulator.OpGetIceServerConfig: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AWS calls (-want +got):\n%s", diff)
	}
}

// TestFleetCallLeaseTakenLate: a copy that finds no shared answer, then
// takes the call's lease after another copy has shared its answer and
// given the lease back, uses that answer instead of making the call
// again. The window between the read and the lease is wide on busy cores;
// here a hook on the second copy's Redis client holds it open until the
// first copy is done.
func TestFleetCallLeaseTakenLate(t *testing.T) {
	f := startFleet(t, 2, baseConfig(), startRedis(t))
	held, firstDone := make(chan struct{}), make(chan struct{})
	f.copies[1].fleet.pat.AddHook(holdLease{prefix: "kvssign:lease:call:", held: held, until: firstDone, once: &sync.Once{}})
	second := make(chan answer)
	go func() { second <- f.copies[1].ts.post(t, tokCamera, masterCam1) }()
	<-held
	if got := f.copies[0].ts.post(t, tokAlice, viewerCam1); got.status != 200 {
		t.Fatalf("first copy: %d %s", got.status, got.body)
	}
	close(firstDone)
	if got := <-second; got.status != 200 {
		t.Fatalf("second copy: %d %s", got.status, got.body)
	}
	if n := f.emu.Stats().Calls[emulator.OpDescribeSignalingChannel]; n != 1 {
		t.Errorf("DescribeSignalingChannel made %d times; want 1", n)
	}
}

// holdLease holds the first SET of a key under prefix, closing held,
// until until is closed.
type holdLease struct {
	prefix string
	held   chan<- struct{}
	until  <-chan struct{}
	once   *sync.Once
}

func (h holdLease) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h holdLease) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h holdLease) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "set" && len(args) > 1 && strings.HasPrefix(fmt.Sprint(args[1]), h.prefix) {
			h.once.Do(func() {
				close(h.held)
				<-h.until
			})
		}
		return next(ctx, cmd)
	}
}

// TestICERefreshOneCopy: without a fleet too, an answer asked for just
// after its ICE servers are due for refresh is served at once, with
// credentials still valid, while the refresh runs in the background.
func TestICERefreshOneCopy(t *testing.T) {
	f := startFleet(t, 0, baseConfig(), nil)
	var slow atomic.Bool
	const delay = time.Second
	f.wrap = func(next aws.HTTPClient) aws.HTTPClient { return slowICE{next: next, on: &slow, delay: delay} }
	f.cacheTTL = 10 * time.Hour // the ICE servers expire first
	c := f.startCopy(t, baseConfig(), 1)
	first := c.ts.post(t, tokAlice, viewerCam1)
	if first.status != 200 {
		t.Fatalf("warm-up: %d %s", first.status, first.body)
	}
	oldICE, _ := json.Marshal(first.conn.ICEServers)
	iceCalls := func() int64 { return f.emu.Stats().Calls[emulator.OpGetIceServerConfig] }
	before := iceCalls()

	f.clock.Advance(e2eICETTL - 30*time.Second + time.Second)
	slow.Store(true)
	start := time.Now()
	got := c.ts.post(t, tokAlice, viewerCam1)
	if took := time.Since(start); got.status != 200 || took >= delay/2 {
		t.Fatalf("in the refresh grace: %d after %v; want 200 at once, not after the %v ICE call", got.status, took, delay)
	}
	if ice, _ := json.Marshal(got.conn.ICEServers); string(ice) != string(oldICE) {
		t.Errorf("in the refresh grace: ICE servers changed before the refresh ended")
	}
	waitICEChanged(t, c.ts, oldICE, time.Now().Add(10*time.Second))
	if d := iceCalls() - before; d != 1 {
		t.Errorf("the refresh made %d GetIceServerConfig calls; want 1", d)
	}
}

// TestICERefreshEndsOnClose: a refresh of the ICE servers running in the
// background when the server closes is ended, and Close returns only
// once it has. Before, it ran on for up to 15 s after Close.
func TestICERefreshEndsOnClose(t *testing.T) {
	f := startFleet(t, 0, baseConfig(), nil)
	stuck := &stuckICE{entered: make(chan struct{})}
	f.wrap = func(next aws.HTTPClient) aws.HTTPClient { stuck.next = next; return stuck }
	f.cacheTTL = 10 * time.Hour // the ICE servers expire first
	c := f.startCopy(t, baseConfig(), 1)
	if got := c.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
		t.Fatalf("warm-up: %d %s", got.status, got.body)
	}
	f.clock.Advance(e2eICETTL - 30*time.Second + time.Second)
	stuck.on.Store(true)
	if got := c.ts.post(t, tokAlice, viewerCam1); got.status != 200 {
		t.Fatalf("in the refresh grace: %d %s", got.status, got.body)
	}
	<-stuck.entered
	if err := c.ts.Server.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The AWS call itself belongs to the resolver, which bounds it with
	// its own timeout; what the backend started has ended.
	rb := c.ts.Server.backend.(*resolverBackend)
	rb.refreshing.mu.Lock()
	n := len(rb.refreshing.running)
	rb.refreshing.mu.Unlock()
	if n != 0 {
		t.Errorf("%d ICE refreshes still running after Close", n)
	}
}

// stuckICE holds a GetIceServerConfig call, once on is set, until its
// request's context ends.
type stuckICE struct {
	next    aws.HTTPClient
	on      atomic.Bool
	entered chan struct{}
	once    sync.Once
}

func (s *stuckICE) Do(r *http.Request) (*http.Response, error) {
	if !s.on.Load() || upstreamOperation(r) != "GetIceServerConfig" {
		return s.next.Do(r)
	}
	s.once.Do(func() { close(s.entered) })
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// TestFleetCloseWaits: a lookup that outlives its request (so that its
// answer is shared) ends when the fleet closes, and Close returns only
// once it has. Before, it ran on for up to 15 s after Close.
func TestFleetCloseWaits(t *testing.T) {
	rs := startRedis(t)
	f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(time.Second)}, fleetOptions{logger: testLogger(&syncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, f, true)
	inner := &blockingBackend{entered: make(chan struct{})}
	b := newFleetBackend(f, inner, Cache{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := b.Connection(ctx, "cam-1", kvs.Viewer, false)
		done <- err
	}()
	<-inner.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Connection = %v; want the request's cancellation", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := inner.running.Load(); n != 0 {
		t.Errorf("%d lookups still running after Close", n)
	}
}

// blockingBackend's Connection waits for its context to end.
type blockingBackend struct {
	running atomic.Int64
	entered chan struct{}
	once    sync.Once
}

func (b *blockingBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error) {
	b.running.Add(1)
	defer b.running.Add(-1)
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	return Target{}, ctx.Err()
}

func (b *blockingBackend) Forget(string) {}

// TestConsumeToDry: a key the fleet reports with less than one token is
// dry in this copy too, whatever the fraction; a key with tokens left is
// lowered by whole tokens. Before, a full bucket of 3 told 0.99998 kept
// 1.00002 and allowed a request (TestFleetLimits failed 2 times in 20 on
// a busy machine).
func TestConsumeToDry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		fleet    float64
		min, max float64 // this copy's tokens after
	}{
		{0.99998, 0, 0.99998},
		{0.5, 0, 0.5},
		{0, 0, 0},
		{-2, 0, 0}, // lowered by at most the burst
		{1.99998, 1.99998, 2.99998},
		{3, 3, 3},
	}
	for _, tt := range tests {
		l := newLimiter[string](Rate{PerSecond: 0.01, Burst: 3}, 0, 0)
		l.consumeTo("alice", tt.fleet, now)
		s := &l.shards[maphash.Comparable(l.seed, "alice")%limiterShards]
		if got := s.m["alice"].lim.TokensAt(now); got < tt.min-1e-9 || got > tt.max+1e-9 {
			t.Errorf("fleet %v: this copy has %v tokens; want %v–%v", tt.fleet, got, tt.min, tt.max)
		}
	}
}
