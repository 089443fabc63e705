package leakcheck

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the failure instead of
// ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

//go:noinline
func leakcheckMarkedGoroutine(stop <-chan struct{}) { <-stop }

func TestGone(t *testing.T) {
	const mark = "leakcheck.leakcheckMarkedGoroutine"
	tests := []struct {
		name     string
		endAfter time.Duration // when the marked goroutine ends; 0: only after Gone
		wantFail bool
	}{
		{"ends before the bound", 20 * time.Millisecond, false},
		{"outlives the bound", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop := make(chan struct{})
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				leakcheckMarkedGoroutine(stop)
			}()
			for len(Stacks(Mentioning(mark))) == 0 {
				time.Sleep(time.Millisecond)
			}
			if tt.endAfter > 0 {
				time.AfterFunc(tt.endAfter, func() { close(stop) })
			}
			r := &recorder{TB: t}
			Gone(r, 500*time.Millisecond, Mentioning(mark))
			if tt.endAfter == 0 {
				close(stop)
			}
			<-ended
			if got := r.failed != ""; got != tt.wantFail {
				t.Fatalf("failed = %v (%q); want %v", got, r.failed, tt.wantFail)
			}
			if tt.wantFail && !strings.Contains(r.failed, mark) {
				t.Errorf("the failure does not show the goroutine's stack:\n%s", r.failed)
			}
		})
	}
}

func TestMentioning(t *testing.T) {
	m := Mentioning("a/b.", "c/d.")
	for stack, want := range map[string]bool{"x a/b.F y": true, "c/d.(*T).M": true, "a/bc.F": false, "": false} {
		if got := m(stack); got != want {
			t.Errorf("Mentioning(%q) = %v; want %v", stack, got, want)
		}
	}
}
