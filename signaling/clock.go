package signaling

import "time"

// A Clock tells a [Client] the time and makes its timers; [Options] says
// which waits use it. Its methods must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer, reporting whether it had not fired.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
	// AfterFunc calls f in its own goroutine once d has passed, and
	// returns a function that stops the timer, reporting whether it had
	// not fired. The client's keepalive and renewals use it, so that an
	// idle client needs no goroutine to wait for them.
	AfterFunc(d time.Duration, f func()) func() bool
}

// systemClock is the system's clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
