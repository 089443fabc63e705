package vend

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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

	first := make(chan answer)
	go func() { first <- ts.post(t, tokAlice, viewerCam1) }()
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

	waiting := make(chan answer)
	go func() { waiting <- ts.post(t, tokAlice, viewerCam1) }()
	for gaugeValue(ts.m.inFlight) != 2 {
		time.Sleep(time.Millisecond) // until it waits for the slot
	}
	close(gate.release)
	for name, ch := range map[string]chan answer{"the first request": first, "the one that waited": waiting} {
		if a := <-ch; a.status != http.StatusOK {
			t.Errorf("%s: %d %s; want 200", name, a.status, a.body)
		}
	}
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
	if _, ok := (*admission)(nil).enter(ctx); !ok {
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

// gaugeValue reads a gauge.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
