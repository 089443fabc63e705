package emulator

import (
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
)

func statusCode(code int) websocket.StatusCode { return websocket.StatusCode(code) }

// Stats is a snapshot of the emulator's counters since it started.
type Stats struct {
	// Calls counts requests per operation (the Op… constants), whatever
	// their outcome; the signaling handshakes count as ConnectAsMaster and
	// ConnectAsViewer.
	Calls map[string]int64 `json:"calls"`
	// Errors counts the calls per operation that were answered with an
	// error (injected faults included).
	Errors map[string]int64 `json:"errors"`
	// Faults counts injected failures.
	Faults int64 `json:"faults"`
	// AccessDenied counts requests refused by a policy ([Config.Policy] or
	// a session policy) with AccessDeniedException: control plane,
	// GetIceServerConfig and signaling handshakes. They are also counted
	// in Errors, and handshakes in HandshakesRejected.
	AccessDenied int64 `json:"accessDenied"`
	// Throttled counts calls refused by a quota ([Config.Quotas]) with
	// ClientLimitExceededException; they are also counted in Errors.
	Throttled int64 `json:"throttled"`
	// Connections counts live signaling connections by role.
	Connections LiveConnections `json:"connections"`
	// HandshakesAccepted and HandshakesRejected count signaling upgrades.
	HandshakesAccepted int64 `json:"handshakesAccepted"`
	HandshakesRejected int64 `json:"handshakesRejected"`
	// OverBudget counts handshakes refused because the connection budget
	// ([Config.MaxConnections]) was spent; they are also counted in
	// HandshakesRejected.
	OverBudget int64 `json:"overBudget"`
	// AcceptErrors counts failures to accept a TCP connection (such as
	// running out of file descriptors).
	AcceptErrors int64 `json:"acceptErrors"`
	// MessagesRelayed counts messages delivered to a peer, held ones
	// included.
	MessagesRelayed int64 `json:"messagesRelayed"`
	// MessagesRejected counts client messages that were not accepted
	// (bad JSON, a broken rule, a rate limit, a deleted channel).
	MessagesRejected int64 `json:"messagesRejected"`
	// MessagesHeld counts messages held for a peer that was offline.
	MessagesHeld int64 `json:"messagesHeld"`
	// MessagesExpired counts held messages dropped undelivered: past the
	// channel's MessageTtlSeconds, or replaced by a newer offer or answer.
	MessagesExpired int64 `json:"messagesExpired"`
	// Storage counts the storage peer's sessions, viewers and refusals.
	Storage StorageStats `json:"storage"`
}

// LiveConnections counts live signaling connections.
type LiveConnections struct {
	Master int64 `json:"master"`
	Viewer int64 `json:"viewer"`
}

type counters struct {
	calls, errors                          map[string]*atomic.Int64 // fixed keys: operations
	faults, denied, throttled              atomic.Int64
	overBudget, acceptErrors               atomic.Int64
	masters, viewers                       atomic.Int64
	handshakesAccepted, handshakesRejected atomic.Int64
	relayed, rejected, held, expired       atomic.Int64
}

func (c *counters) init() {
	c.calls = make(map[string]*atomic.Int64, len(operations))
	c.errors = make(map[string]*atomic.Int64, len(operations))
	for _, op := range operations {
		c.calls[op] = new(atomic.Int64)
		c.errors[op] = new(atomic.Int64)
	}
}

func (c *counters) call(op string) { c.calls[op].Add(1) }
func (c *counters) fail(op string) { c.errors[op].Add(1) }

func (c *counters) live(role kvs.Role, d int64) {
	if role == kvs.Master {
		c.masters.Add(d)
	} else {
		c.viewers.Add(d)
	}
}

// Stats returns a snapshot of the counters. Every operation (an Op…
// constant) has an entry in Calls and Errors.
func (e *Emulator) Stats() Stats {
	c := &e.stats
	s := Stats{
		Calls:              make(map[string]int64, len(operations)),
		Errors:             make(map[string]int64, len(operations)),
		Faults:             c.faults.Load(),
		AccessDenied:       c.denied.Load(),
		Throttled:          c.throttled.Load(),
		Connections:        LiveConnections{Master: c.masters.Load(), Viewer: c.viewers.Load()},
		HandshakesAccepted: c.handshakesAccepted.Load(),
		HandshakesRejected: c.handshakesRejected.Load(),
		OverBudget:         c.overBudget.Load(),
		AcceptErrors:       c.acceptErrors.Load(),
		MessagesRelayed:    c.relayed.Load(),
		MessagesRejected:   c.rejected.Load(),
		MessagesHeld:       c.held.Load(),
		MessagesExpired:    c.expired.Load(),
		Storage:            e.storageStats(),
	}
	for op, n := range c.calls {
		s.Calls[op] = n.Load()
	}
	for op, n := range c.errors {
		s.Errors[op] = n.Load()
	}
	return s
}
