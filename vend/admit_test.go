package vend

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/kvs"
)

// TestMaxInFlight: past limits.maxInFlight a request waits for a slot;
// it is answered 503 with Retry-After when none frees within half the
// request timeout, and served when one does.
func TestMaxInFlight(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.MaxInFlight = 1
	cfg.Limits.RequestTimeout = Duration(2 * time.Second) // a second's wait for a slot
	gate := &gatedBackend{Backend: newFakeBackend("cam-1"), entered: make(chan struct{}, 3), release: make(chan struct{})}
	ts := startServer(t, cfg, Options{Backend: gate})
	var once sync.Once
	release := func() { once.Do(func() { close(gate.release) }) }
	t.Cleanup(release) // before the server's cleanup, which waits for requests

	first := postAsync(ts, tokAlice, viewerCam1)
	<-gate.entered // the one slot is taken until release

	start := time.Now()
	busy := ts.post(t, tokAlice, viewerCam1)
	if busy.status != http.StatusServiceUnavailable || busy.err.Code != "unavailable" {
		t.Fatalf("with the one slot taken: %d %s; want 503 unavailable", busy.status, busy.body)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("refused after %v; want after waiting a second for the slot", took)
	}
	if ra := busy.header.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Errorf("Retry-After = %q; want 1 or 2", ra)
	}
	if n := counterValue(ts.m.busy); n != 1 {
		t.Errorf("kvssign_vend_busy_total = %v; want 1", n)
	}

	waiting := postAsync(ts, tokAlice, viewerCam1)
	waitFor(t, func() bool { // a request waiting for the slot
		return len(leakcheck.Stacks(leakcheck.Mentioning("vend.(*admission).enter"))) == 1
	})
	release()
	for name, ch := range map[string]<-chan int{"the first request": first, "the one that waited": waiting} {
		if status := <-ch; status != http.StatusOK {
			t.Errorf("%s: %d; want 200", name, status)
		}
	}
}

// postAsync posts body with token from another goroutine, and sends the
// answer's status (0 if none came).
func postAsync(ts *testServer, token, body string) <-chan int {
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/connections", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	out := make(chan int, 1)
	go func() {
		status := 0
		if resp := <-sendAsync(ts.client, req); resp != nil {
			status = resp.StatusCode
		}
		out <- status
	}()
	return out
}

// TestNewAdmission checks the bound a configuration gives.
func TestNewAdmission(t *testing.T) {
	if a := newAdmission(-1, time.Second); a != nil {
		t.Errorf("maxInFlight -1: a bound of %d; want none", cap(a.slots))
	}
	if a := newAdmission(0, time.Second); a == nil || cap(a.slots) < inFlightPerCPU {
		t.Errorf("maxInFlight 0: %v; want %d per CPU", a, inFlightPerCPU)
	}
	if a := newAdmission(7, time.Second); a == nil || cap(a.slots) != 7 {
		t.Errorf("maxInFlight 7: %v; want 7 slots", a)
	}
	// No bound admits at once, even with ctx done.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !(*admission)(nil).enter(ctx) {
		t.Error("no bound refused a request")
	}
}

// gatedBackend holds every Connection until release is closed.
type gatedBackend struct {
	Backend
	entered chan struct{}
	release chan struct{}
}

func (g *gatedBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Backend.Connection(ctx, channel, role, create)
}
