package demo

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Timeline prints events with the time since it started and who did what.
// It is safe for concurrent use.
type Timeline struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	lines int
	done  bool
}

// NewTimeline starts a timeline that writes to w.
func NewTimeline(w io.Writer) *Timeline {
	return &Timeline{w: w, start: time.Now()}
}

// Printf prints one line for who.
func (t *Timeline) Printf(who, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	el := time.Since(t.start)
	fmt.Fprintf(t.w, "%8.3fs  %-8s %s\n", el.Seconds(), who, fmt.Sprintf(format, args...))
	t.lines++
}

// Lines returns how many lines were printed.
func (t *Timeline) Lines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lines
}

// Stop drops what is printed from now on (pion reports state changes
// while peer connections close).
func (t *Timeline) Stop() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}
