// The connection cap (limits.maxConnections): past it, the listener takes
// no new connection until one closes. The connections not taken wait in
// the kernel's accept queue, where no timer of the server runs; taken all
// at once on busy cores, their goroutines can wait longer for a core than
// readHeaderTimeout, and net/http closes them unanswered (measured in the
// reconnect storm, BENCHMARKS.md "Admission"). To make room while a new
// connection waits, answers ask their clients to close the connection
// (Connection: close) and the connection idle the longest between two
// requests is closed, as idleTimeout would.

package vend

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connCap counts a Server's open connections.
type connCap struct {
	slots chan struct{}
	// waiters counts the Accepts waiting for a slot.
	waiters atomic.Int32

	mu sync.Mutex
	// idle are the connections between two requests (http.StateIdle),
	// with when they became idle.
	idle map[net.Conn]time.Time
}

func newConnCap(max int) *connCap {
	if max <= 0 {
		return nil
	}
	return &connCap{slots: make(chan struct{}, max), idle: map[net.Conn]time.Time{}}
}

// full reports whether a new connection waits for a slot: answers should
// then close their connections.
func (c *connCap) full() bool { return c.waiters.Load() > 0 }

// take waits for a slot until done is closed, closing the connection idle
// the longest to make room; it reports whether it got one.
func (c *connCap) take(done <-chan struct{}) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	c.mu.Lock()
	c.waiters.Add(1)
	var victim net.Conn
	var since time.Time
	for conn, t := range c.idle {
		if victim == nil || t.Before(since) {
			victim, since = conn, t
		}
	}
	delete(c.idle, victim)
	c.mu.Unlock()
	defer c.waiters.Add(-1)
	if victim != nil {
		victim.Close()
	}
	select {
	case c.slots <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

func (c *connCap) give() { <-c.slots }

// state follows the connections' states (http.Server.ConnState). A
// connection that turns idle while a new one waits is closed at once.
func (c *connCap) state(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	if st != http.StateIdle {
		delete(c.idle, conn)
		c.mu.Unlock()
		return
	}
	if !c.full() {
		c.idle[conn] = time.Now()
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	conn.Close()
}
