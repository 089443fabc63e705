package signaling

import (
	"strconv"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// EventType says what an Event reports.
type EventType int

// The kinds of Event. The first six, and EventOther, come from the service;
// the others from the client itself.
const (
	// EventOffer is an SDP offer from a peer: a viewer's, for a master.
	EventOffer EventType = iota + 1
	// EventAnswer is an SDP answer from a peer: the master's, for a viewer.
	EventAnswer
	// EventCandidate is an ICE candidate from a peer.
	EventCandidate
	// EventStatus reports a message the service did not deliver; Err is a
	// *StatusError.
	EventStatus
	// EventGoAway says the service is about to close the connection. The
	// client is already reconnecting; an EventReconnected follows.
	EventGoAway
	// EventReconnectICEServer asks the peer to fetch ICE servers again.
	EventReconnectICEServer
	// EventDisconnected says the connection ended unexpectedly (Err says
	// how) and the client is reconnecting. Sends wait meanwhile.
	EventDisconnected
	// EventReconnected says a new connection replaced the old one; Err
	// says why the old one was left: ErrGoAway, ErrRenewed, or what ended
	// it.
	EventReconnected
	// EventClockSkew says the service refused a URL because the clock it
	// was signed with is off, and that the client learned the service's
	// time from the refusal's Date header: Skew is the offset now added to
	// the signing clock, and Err the *HandshakeError. The client tries
	// again at once with a corrected URL. It comes only with a URLSource
	// that corrects for skew, such as Presigned's.
	EventClockSkew
	// EventOther is a message the client does not model: of a type it
	// does not know, or an offer, answer or candidate whose payload is
	// not base64 of a description or a candidate (Err says why). Message
	// holds it as received, for a relay to pass on; a client that only
	// negotiates can ignore it.
	EventOther
)

var eventNames = [...]string{
	EventOffer:              "SDP_OFFER",
	EventAnswer:             "SDP_ANSWER",
	EventCandidate:          "ICE_CANDIDATE",
	EventStatus:             "STATUS_RESPONSE",
	EventGoAway:             "GO_AWAY",
	EventReconnectICEServer: "RECONNECT_ICE_SERVER",
	EventDisconnected:       "DISCONNECTED",
	EventReconnected:        "RECONNECTED",
	EventClockSkew:          "CLOCK_SKEW",
	EventOther:              "OTHER",
}

// String returns the service's name for the message type (SDP_OFFER,
// GO_AWAY, …), or DISCONNECTED, RECONNECTED, CLOCK_SKEW and OTHER.
func (t EventType) String() string {
	if t > 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// An Event is something the service sent, or a change of connection.
type Event struct {
	Type EventType
	// From is the sender's client id for offers, answers and candidates
	// from a viewer. It is empty for messages from the master, which the
	// service sends without a sender.
	From string
	// SDP is the description of an EventOffer or EventAnswer.
	SDP kvs.SessionDescription
	// Candidate is the candidate of an EventCandidate.
	Candidate kvs.ICECandidate
	// Message is the message the event came from, for the events the
	// service sends (EventOffer to EventReconnectICEServer, and
	// EventOther), as decoded
	// from its frame: MessagePayload is the base64 text as received, with
	// any fields that SDP and Candidate do not hold, and StatusResponse
	// is the service's, statusCode as it sent it. A relay passes it on
	// unchanged. It is zero for the client's own events
	// (EventDisconnected, EventReconnected, EventClockSkew).
	Message kvs.ServerMessage
	// Err is a *StatusError for EventStatus, the reason for
	// EventDisconnected and EventReconnected, the *HandshakeError that
	// revealed the skew for EventClockSkew, and for EventOther why the
	// payload could not be read (nil for an unknown type).
	Err error
	// Skew is, for EventClockSkew, the learned offset of the service's
	// clock from the signing clock (positive when the local clock is
	// behind), which URLs are now signed with.
	Skew time.Duration
	// Conn numbers the connection the event came on or concerns, from 1
	// for the connection Dial made; 0 for EventClockSkew, which concerns a
	// refused attempt.
	Conn int
	// At is when the client received the event.
	At time.Time
}
