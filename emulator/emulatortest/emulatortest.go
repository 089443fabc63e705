// Package emulatortest starts a KVS emulator for a test, the way
// net/http/httptest starts a server.
package emulatortest

import (
	"testing"

	"github.com/kvssign/kvssign/emulator"
)

// New starts an emulator configured by cfg on a free loopback port and
// stops it when the test ends. It fails the test if the emulator cannot
// start.
func New(tb testing.TB, cfg emulator.Config) *emulator.Emulator {
	tb.Helper()
	e, err := emulator.New(cfg)
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	if err := e.Start(); err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}
