package emulator

import "time"

// SetRequestTimeout shortens how long e waits for a request's body, so
// that a test of a slow client runs quickly.
func SetRequestTimeout(e *Emulator, d time.Duration) { e.reqTimeout = d }
