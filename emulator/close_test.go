package emulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/leakcheck"
)

// emulatorCode matches the stack of a goroutine running the emulator's own
// code (not a test's).
func emulatorCode(stack string) bool {
	return strings.Contains(stack, "kvssign/emulator.") && !strings.Contains(stack, "kvssign/emulator_test.")
}

// closeSettles bounds how long after Close an emulator goroutine that has
// finished its work may still be listed. It is well below the 5 s a close
// handshake that Close did not wait for would hold its goroutine.
const closeSettles = time.Second

// TestCloseWaitsForGoroutines checks that when Close returns, nothing the
// emulator started is left running but goroutines that have finished and
// are returning (closeSettles), even with peers that never answer the
// close frame (they do not read).
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
	if len(leakcheck.Stacks(emulatorCode)) == 0 {
		t.Fatal("no emulator goroutine while serving")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	leakcheck.Gone(t, closeSettles, emulatorCode)
}
