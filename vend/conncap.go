// The connection cap (limits.maxConnections): past it, the listener takes
// no new connection until one closes. The connections not taken wait in
// the kernel's accept queue, where no timer of the server runs; taken all
// at once on busy cores, their goroutines can wait longer for a core than
// readHeaderTimeout, and net/http closes them unanswered (measured in the
// reconnect storm, BENCHMARKS.md "Admission"). To make room, keep-alive
// connections idle between requests are closed, as idleTimeout would.

package vend

import (
	"net"
	"net/http"
	"sync"
)

// connCap counts a Server's open connections.
type connCap struct {
	slots chan struct{}

	mu sync.Mutex
	// idle are the connections between two requests (http.StateIdle).
	idle map[net.Conn]struct{}
	// waiting counts the Accepts waiting for a slot: while one is, a
	// connection that turns idle is closed at once.
	waiting int
}

func newConnCap(max int) *connCap {
	if max <= 0 {
		return nil
	}
	return &connCap{slots: make(chan struct{}, max), idle: map[net.Conn]struct{}{}}
}

// take waits for a slot until done is closed, closing idle connections to
// make room; it reports whether it got one.
func (c *connCap) take(done <-chan struct{}) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	c.mu.Lock()
	c.waiting++
	var victim net.Conn
	for conn := range c.idle {
		victim = conn
		delete(c.idle, conn)
		break
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiting--
		c.mu.Unlock()
	}()
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

// state follows the connections' states (http.Server.ConnState).
func (c *connCap) state(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	if st != http.StateIdle {
		delete(c.idle, conn)
		c.mu.Unlock()
		return
	}
	if c.waiting == 0 {
		c.idle[conn] = struct{}{}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	conn.Close() // an Accept is waiting for its slot
}
