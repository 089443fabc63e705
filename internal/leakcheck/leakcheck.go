// Package leakcheck lets tests find goroutines that the code under test
// left running.
//
// A goroutine that has told its owner it is done (a WaitGroup's Done, a
// closed channel) still shows in the runtime's list until it has returned
// and been descheduled, which on a loaded machine can take a while. So
// Gone waits for matching goroutines to end within a bound rather than
// failing on the first look; pick a bound well below the time the leak
// being guarded against would take to end on its own.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Stacks returns the stacks of the running goroutines for which match
// reports true.
func Stacks(match func(stack string) bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if match(g) {
			out = append(out, g)
		}
	}
	return out
}

// Mentioning matches a stack that holds any of marks (a package path with
// its trailing dot, say "kvssign/signaling.").
func Mentioning(marks ...string) func(stack string) bool {
	return func(stack string) bool {
		for _, m := range marks {
			if strings.Contains(stack, m) {
				return true
			}
		}
		return false
	}
}

// Gone waits up to within for every goroutine that match selects to end,
// and fails t with their stacks if some are still running then.
func Gone(t testing.TB, within time.Duration, match func(stack string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := Stacks(match)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running after %v:\n%s", len(left), within, strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
