package vend

import (
	"context"
	"encoding/json"
	"errors"
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
// (on an injected clock), logged once.
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
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for n, cp := range f.copies {
		for range perCopy {
			wg.Go(func() {
				<-start
				var got answer
				if n < copies/2 {
					got = cp.ts.post(t, tokCamera, masterCam1)
				} else {
					got = cp.ts.post(t, tokAlice, viewerCam1)
				}
				mu.Lock()
				codes[got.status]++
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	if codes[200] != copies*perCopy {
		t.Fatalf("statuses %v; want %d × 200", codes, copies*perCopy)
	}
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
