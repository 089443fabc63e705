package kvs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

func TestClockSkewObserve(t *testing.T) {
	local := time.Date(2026, 11, 23, 10, 0, 0, 250e6, time.UTC)
	var s kvs.ClockSkew
	if got := s.Offset(); got != 0 {
		t.Fatalf("zero value: offset %v; want 0", got)
	}
	if got := (*kvs.ClockSkew)(nil).Offset(); got != 0 {
		t.Fatalf("nil: offset %v; want 0", got)
	}
	steps := []struct {
		name        string
		server      time.Time
		wantOffset  time.Duration
		wantChanged bool
	}{
		{"no Date", time.Time{}, 0, false},
		{"server in step", local.Truncate(time.Second), 0, false},
		{"within the threshold", local.Add(1500 * time.Millisecond).Truncate(time.Second), 0, false},
		{"server ten minutes ahead", local.Add(10 * time.Minute).Truncate(time.Second), 10*time.Minute + 250*time.Millisecond, true},
		{"same again", local.Add(10*time.Minute + time.Second).Truncate(time.Second), 10*time.Minute + 250*time.Millisecond, false},
		{"server five minutes behind", local.Add(-5 * time.Minute).Truncate(time.Second), -5*time.Minute + 250*time.Millisecond, true},
		{"clock fixed", local.Add(time.Second).Truncate(time.Second), 0, true},
		{"still fixed", local.Truncate(time.Second), 0, false},
	}
	for _, st := range steps {
		off, changed := s.Observe(st.server, local)
		if off != st.wantOffset || changed != st.wantChanged || s.Offset() != st.wantOffset {
			t.Errorf("%s: Observe = %v, %v (Offset %v); want %v, %v", st.name, off, changed, s.Offset(), st.wantOffset, st.wantChanged)
		}
	}
}

func TestClockSkewConcurrent(t *testing.T) {
	var s kvs.ClockSkew
	local := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				s.Observe(local.Add(time.Duration(i*j)*time.Second), local)
				_ = s.Offset()
			}
		}()
	}
	wg.Wait()
	if off := s.Offset(); off != 0 && (off < 2*time.Second || off > 700*time.Second) {
		t.Errorf("offset %v: not one of the observations", off)
	}
}

// TestPresignerSkew checks that a Presigner with a learned Skew signs as
// one given the same offset with NewClockSkew, and that the Skew costs no
// allocation.
func TestPresignerSkew(t *testing.T) {
	in := benchInput()
	ctx := context.Background()
	skew := new(kvs.ClockSkew)
	skew.Observe(in.at.Add(7*time.Minute), in.at.Add(500*time.Millisecond)) // server 7 minutes ahead
	if got := skew.Offset(); got != 7*time.Minute {
		t.Fatalf("learned offset %v; want 7m", got)
	}
	withSkew := &kvs.Presigner{Credentials: in.creds, Clock: func() time.Time { return in.at }, Skew: skew}
	withOffset := &kvs.Presigner{Credentials: in.creds, Clock: func() time.Time { return in.at }, Skew: kvs.NewClockSkew(7 * time.Minute)}
	got, err := withSkew.Presign(ctx, in.endpoint, in.arn, in.role, in.clientID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := withOffset.Presign(ctx, in.endpoint, in.arn, in.role, in.clientID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("with a learned Skew:\n%+v\nwant, as with NewClockSkew(7m):\n%+v", got, want)
	}
	if !got.SignedAt.Equal(in.at.Add(7 * time.Minute)) {
		t.Errorf("SignedAt %v; want %v", got.SignedAt, in.at.Add(7*time.Minute))
	}

	if raceEnabled {
		return // the race detector makes sync.Pool drop items: counts vary
	}
	plain := &kvs.Presigner{Credentials: in.creds, Clock: func() time.Time { return in.at }}
	allocs := func(p *kvs.Presigner) float64 {
		return testing.AllocsPerRun(50, func() {
			if _, err := p.Presign(ctx, in.endpoint, in.arn, in.role, in.clientID); err != nil {
				t.Fatal(err)
			}
		})
	}
	if a, b := allocs(withSkew), allocs(plain); a != b {
		t.Errorf("Presign makes %v allocations with a Skew, %v without", a, b)
	}
}

// TestNewClockSkew: a known offset holds until an observation differs
// from it, which then replaces it rather than adding to it.
func TestNewClockSkew(t *testing.T) {
	local := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := kvs.NewClockSkew(-90 * time.Second)
	if got := s.Offset(); got != -90*time.Second {
		t.Fatalf("Offset() = %v; want -1m30s", got)
	}
	if off, changed := s.Observe(local.Add(-90*time.Second), local); changed || off != -90*time.Second {
		t.Errorf("Observe(in step) = %v, %v; want -1m30s, false", off, changed)
	}
	if off, changed := s.Observe(local.Add(3*time.Minute), local); !changed || off != 3*time.Minute+time.Second/2 {
		t.Errorf("Observe(3m ahead) = %v, %v; want 3m0.5s, true", off, changed)
	}
}
