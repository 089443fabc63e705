package emulator_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/kvssign/kvssign/emulator"
)

// emulatorGoroutines returns the stacks of goroutines running the
// emulator's own code.
func emulatorGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kvssign/emulator.") && !strings.Contains(g, "kvssign/emulator_test.") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseWaitsForGoroutines checks that when Close returns, nothing the
// emulator started is left running, even with peers that never answer
// the close frame (they do not read).
func TestCloseWaitsForGoroutines(t *testing.T) {
	e, err := emulator.New(fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	arn := mustCreate(t, e, "closing")
	connectMaster(t, e, arn)
	connectViewer(t, e, arn, "v1")
	connectViewer(t, e, arn, "v2")
	waitFor(t, "three connections", func() bool { return len(e.Connections()) == 3 })
	if len(emulatorGoroutines()) == 0 {
		t.Fatal("no emulator goroutine while serving")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if gs := emulatorGoroutines(); len(gs) > 0 {
		t.Fatalf("%d emulator goroutines left when Close returned:\n%s", len(gs), strings.Join(gs, "\n\n"))
	}
}
