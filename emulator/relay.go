// Message routing: viewer → master, master → the named viewer, never
// viewer → viewer; messages for a peer that is offline are held for the
// channel's MessageTtlSeconds.

package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

const (
	// maxHeldPerRecipient bounds the messages held for one offline peer;
	// the oldest go first.
	maxHeldPerRecipient = 128
	// maxHeldRecipients bounds how many offline peers a channel holds
	// messages for (a master can name any ClientId).
	maxHeldRecipients = 1024
)

// handle processes one frame from c.
func (c *conn) handle(data []byte) {
	e := c.e
	m, err := kvs.DecodeClientMessage(data)
	if err != nil {
		// A well-formed frame with a field of the wrong type may still
		// carry a correlation id to answer to.
		var probe struct {
			CorrelationID string `json:"correlationId"`
		}
		json.Unmarshal(data, &probe)
		c.reject(probe.CorrelationID, http.StatusBadRequest, "InvalidArgumentException", err.Error())
		return
	}
	if err := m.Validate(); err != nil {
		c.reject(m.CorrelationID, http.StatusBadRequest, "InvalidArgumentException", err.Error())
		return
	}
	now := e.now()
	var ok bool
	switch m.Action {
	case kvs.ActionSDPOffer:
		ok = c.offers.take(now, e.cfg.SDPRate)
	case kvs.ActionSDPAnswer:
		ok = c.answers.take(now, e.cfg.SDPRate)
	default:
		ok = c.candidates.take(now, e.cfg.ICERate)
	}
	if !ok {
		c.reject(m.CorrelationID, http.StatusBadRequest, "ClientLimitExceededException",
			"Kinesis Video Streams has throttled the request because you have exceeded the limit of allowed client calls ("+m.Action+"). Try making the call later.")
		return
	}
	out := kvs.ServerMessage{MessageType: m.Action, MessagePayload: m.MessagePayload}
	key := "" // the recipient's key in ch.held: "" is the master
	if c.role == kvs.Viewer {
		// A viewer's messages always go to the master; a named recipient
		// is ignored, so viewer → viewer never happens.
		out.SenderClientID = c.clientID
	} else {
		if m.RecipientClientID == "" {
			c.reject(m.CorrelationID, http.StatusBadRequest, "InvalidArgumentException",
				"kvs: message field recipientClientId: is required in a message from the master")
			return
		}
		key = m.RecipientClientID
	}
	e.route(c.ch, key, out, now)
}

// route delivers out to the recipient key of ch, or holds it.
func (e *Emulator) route(ch *channel, key string, out kvs.ServerMessage, now time.Time) {
	if e.storageTake(ch, key, out) {
		e.stats.relayed.Add(1)
		return
	}
	ch.mu.Lock()
	if ch.deleted {
		ch.mu.Unlock()
		e.stats.rejected.Add(1)
		return
	}
	if key != "" && ch.takeAlexaAnswerLocked(key, out) {
		ch.mu.Unlock()
		e.stats.relayed.Add(1)
		return
	}
	var to *conn
	if key == "" {
		to = ch.master
	} else {
		to = ch.viewers[key]
	}
	if to != nil && to.draining {
		to.backlog = append(to.backlog, out)
		to = nil
		ch.mu.Unlock()
		return
	}
	if to == nil {
		e.holdLocked(ch, key, out, now)
		ch.mu.Unlock()
		return
	}
	ch.mu.Unlock()
	if err := to.send(out); err != nil {
		// The recipient's connection broke under the write: hold the
		// message for its reconnection.
		ch.mu.Lock()
		if !ch.deleted {
			e.holdLocked(ch, key, out, now)
		}
		ch.mu.Unlock()
		return
	}
	e.stats.relayed.Add(1)
}

// holdLocked keeps a message for an offline recipient. A newer SDP offer or
// answer from the same sender replaces an undelivered older one. The caller
// holds ch.mu.
func (e *Emulator) holdLocked(ch *channel, key string, m kvs.ServerMessage, now time.Time) {
	msgs, ok := ch.held[key]
	if !ok && len(ch.held) >= maxHeldRecipients {
		e.stats.rejected.Add(1)
		return
	}
	msgs = dropExpired(msgs, now, ch.messageTTL)
	if m.MessageType == kvs.ActionSDPOffer || m.MessageType == kvs.ActionSDPAnswer {
		kept := msgs[:0]
		for _, h := range msgs {
			if h.msg.SenderClientID == m.SenderClientID && h.msg.MessageType == m.MessageType {
				e.stats.expired.Add(1)
				continue
			}
			kept = append(kept, h)
		}
		msgs = kept
	}
	if len(msgs) >= maxHeldPerRecipient {
		e.stats.expired.Add(int64(len(msgs) - maxHeldPerRecipient + 1))
		msgs = append(msgs[:0], msgs[len(msgs)-maxHeldPerRecipient+1:]...)
	}
	ch.held[key] = append(msgs, heldMsg{msg: m, at: now})
	e.stats.held.Add(1)
}

// dropExpired returns msgs without those older than ttl, in place.
func dropExpired(msgs []heldMsg, now time.Time, ttl time.Duration) []heldMsg {
	kept := msgs[:0]
	for _, h := range msgs {
		if now.Sub(h.at) <= ttl {
			kept = append(kept, h)
		}
	}
	for i := len(kept); i < len(msgs); i++ {
		msgs[i] = heldMsg{}
	}
	return kept
}

// drain delivers what was held for c, then what arrived meanwhile, and ends
// c's draining so later messages go straight to it.
func (c *conn) drain() {
	e, ch := c.e, c.ch
	key := c.clientID
	ch.mu.Lock()
	held := ch.held[key]
	delete(ch.held, key)
	ttl := ch.messageTTL
	ch.mu.Unlock()
	now := e.now()
	var pending []kvs.ServerMessage
	for _, h := range held {
		if now.Sub(h.at) <= ttl {
			pending = append(pending, h.msg)
		} else {
			e.stats.expired.Add(1)
		}
	}
	for {
		for _, m := range pending {
			if c.send(m) != nil {
				return
			}
			switch m.MessageType {
			case kvs.ActionSDPOffer, kvs.ActionSDPAnswer, kvs.ActionICECandidate:
				e.stats.relayed.Add(1)
			}
		}
		ch.mu.Lock()
		pending, c.backlog = c.backlog, nil
		if len(pending) == 0 {
			c.draining = false
			ch.mu.Unlock()
			return
		}
		ch.mu.Unlock()
	}
}

// reject counts a message that was not relayed and, if it carried a valid
// correlation id, tells the sender why.
func (c *conn) reject(correlationID string, status int, code, description string) {
	c.e.stats.rejected.Add(1)
	c.e.log.Debug("signaling message rejected", "conn", c.id, "code", code, "reason", description)
	if correlationID == "" || (kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: "x", CorrelationID: correlationID}).Validate() != nil {
		return
	}
	c.send(kvs.ServerMessage{
		MessageType: kvs.TypeStatusResponse,
		StatusResponse: &kvs.StatusResponse{
			CorrelationID: correlationID,
			ErrorType:     code,
			StatusCode:    strconv.Itoa(status),
			Description:   description,
		},
	})
}
