package vend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/emulator"
)

// TestThrottleNotRetried: a call KVS throttles is not sent again by the
// resolver's retries within the throttle's second; the request is
// answered 503 with a Retry-After instead, and the device comes back
// later.
func TestThrottleNotRetried(t *testing.T) {
	f := startFleet(t, 1, baseConfig(), nil)
	err := f.emu.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle,
		Operations: []string{emulator.OpGetSignalingChannelEndpoint}, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := f.copies[0].ts.post(t, tokCamera, masterCam1)
	if got.status != 503 || got.header.Get("Retry-After") == "" {
		t.Errorf("after a throttle: %d, Retry-After %q; want 503 with Retry-After", got.status, got.header.Get("Retry-After"))
	}
	s := f.emu.Stats()
	if d := s.Calls[emulator.OpGetSignalingChannelEndpoint]; d != 1 {
		t.Errorf("GetSignalingChannelEndpoint calls = %d; want 1: the throttled call was retried", d)
	}
	time.Sleep(throttlePause)
	if got := f.copies[0].ts.post(t, tokCamera, masterCam1); got.status != 200 {
		t.Errorf("a second after the throttle: %d %s; want 200", got.status, got.body)
	}
}

// TestBudgetBurst: the budget lets out a tenth of a second's calls at
// once, not a second's, so that calls bunched on their way to KVS stay
// within its bucket.
func TestBudgetBurst(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		want      int
	}{{240, 24}, {40, 4}, {4, 1}, {0.2, 1}} {
		if got := burstOf(tc.perSecond); got != tc.want {
			t.Errorf("burstOf(%v) = %d; want %d", tc.perSecond, got, tc.want)
		}
	}
}

// clientFunc is an aws.HTTPClient in a function.
type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestBudgetInFlight: however slowly KVS answers, a copy has at most one
// second of an operation's budget under way, so that calls held up on
// their way cannot arrive at KVS together past its quota.
func TestBudgetInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, callers = 100, 150
		release := make(chan struct{})
		var inFlight, peak atomic.Int64
		next := clientFunc(func(r *http.Request) (*http.Response, error) {
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			inFlight.Add(-1)
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})
		cfg := Config{Budget: awsBudget{PerSecond: map[string]float64{"CreateSignalingChannel": rate}}}
		c, err := BudgetUpstream(prometheus.NewRegistry(), cfg, nil, next)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for {
					r, _ := http.NewRequest("POST", "http://127.0.0.1/createSignalingChannel", strings.NewReader("{}"))
					if _, err := c.Do(r); err == nil {
						return
					}
					time.Sleep(10 * time.Millisecond) // as the resolver's backoff would
				}
			})
		}
		time.Sleep(5 * time.Second) // KVS answers nothing for 5 s
		synctest.Wait()
		if got := peak.Load(); got != rate {
			t.Errorf("%d calls under way at most; want %d, one second of the budget", got, rate)
		}
		close(release)
		wg.Wait()
	})
}

// TestFleetBudgetHold: once the fleet's bucket refused it, a copy refuses
// on its own for its share of a token's time, without asking Redis (here
// paused, so that asking it would fall back to the copy's own bucket and
// allow the call).
func TestFleetBudgetHold(t *testing.T) {
	rs := startRedis(t)
	f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(100 * time.Millisecond)}, fleetOptions{probeEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := newBudget(awsBudget{PerSecond: map[string]float64{"CreateSignalingChannel": 0.5}}, f)
	ctx := context.Background()
	var got []bool
	for range 2 {
		ok, _ := b.Take(ctx, "CreateSignalingChannel", "")
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true false]" {
		t.Fatalf("a burst of 1 at 0.5/s: %v; want [true false]", got)
	}
	if err := rs.do("CLIENT", "PAUSE", "300", "ALL"); err != nil {
		t.Fatal(err)
	}
	if ok, wait := b.Take(ctx, "CreateSignalingChannel", ""); ok || wait <= 0 {
		t.Errorf("within the hold: ok %v, wait %v; want refused without asking Redis", ok, wait)
	}
}
