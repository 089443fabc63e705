package vend

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

type ctxKey struct{}

func TestLazyTimeout(t *testing.T) {
	past := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	later := time.Now().Add(time.Hour)
	background := func(*testing.T) context.Context { return context.Background() }
	tests := []struct {
		name     string
		parent   func(*testing.T) context.Context
		deadline time.Time
		stop     bool // stop before asking
		wantErr  error
		wantDl   time.Time
	}{
		{"deadline passed", background, past, false, context.DeadlineExceeded, past},
		{"stopped unarmed", background, later, true, context.Canceled, later},
		{"parent canceled", func(*testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, later, false, context.Canceled, later},
		{"deadline passed, live cancellable parent", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx
		}, past, false, context.DeadlineExceeded, past},
		{"parent deadline first", func(t *testing.T) context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), past)
			t.Cleanup(cancel)
			return ctx
		}, later, false, context.DeadlineExceeded, past},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := context.WithValue(tc.parent(t), ctxKey{}, "v")
			c := newLazyTimeout(parent, tc.deadline)
			defer c.stop()
			if got := c.Value(ctxKey{}); got != "v" {
				t.Errorf("Value = %v; want the parent's", got)
			}
			if dl, ok := c.Deadline(); !ok || !dl.Equal(tc.wantDl) {
				t.Errorf("Deadline = %v, %v; want %v", dl, ok, tc.wantDl)
			}
			if tc.stop {
				c.stop()
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed")
			}
			if err := c.Err(); !errors.Is(err, tc.wantErr) {
				t.Errorf("Err = %v; want %v", err, tc.wantErr)
			}
			if err := context.Cause(c); !errors.Is(err, tc.wantErr) {
				t.Errorf("context.Cause = %v; want %v", err, tc.wantErr)
			}
			if got := c.Value(ctxKey{}); got != "v" {
				t.Errorf("Value once done = %v; want the parent's", got)
			}
		})
	}
}

func TestLazyTimeoutStopAfterArming(t *testing.T) {
	c := newLazyTimeout(context.Background(), time.Now().Add(time.Hour))
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	c.stop()
	<-child.Done()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after stop = %v; want context.Canceled", err)
	}
}

// TestLazyTimeoutDerivedNeedNoGoroutine: a context derived from an armed
// lazyTimeout finds its cancellation, as one derived from WithDeadline's
// does, instead of a goroutine watching it.
func TestLazyTimeoutDerivedNeedNoGoroutine(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	c := newLazyTimeout(parent, time.Now().Add(time.Hour))
	defer c.stop()
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	before := runtime.NumGoroutine()
	var cancels []context.CancelFunc
	for range 100 {
		_, cancel := context.WithCancel(c)
		cancels = append(cancels, cancel)
	}
	if grew := runtime.NumGoroutine() - before; grew >= 100 {
		t.Errorf("100 derived contexts started %d goroutines; want none", grew)
	}
	for _, cancel := range cancels {
		cancel()
	}
}
