// The relay's own reading and writing of signaling frames: the common
// frame, plain ASCII with the canonical keys, is scanned and written by
// hand; anything else goes through package kvs and encoding/json, which
// give the same result more slowly.

package emulator

import (
	"encoding/json"

	"github.com/kvssign/kvssign/kvs"
)

// decodeClientFrame decodes one client frame as kvs.DecodeClientMessage
// does.
func decodeClientFrame(data []byte) (kvs.ClientMessage, error) {
	if m, ok := scanClientFrame(data); ok {
		return m, nil
	}
	return kvs.DecodeClientMessage(data)
}

// scanClientFrame decodes a frame that is a JSON object of the four client
// keys, spelt as the service documents them, each at most once, with
// string values of printable ASCII and no escapes. It reports false for
// any other frame, which it leaves to the general decoder rather than
// judge.
func scanClientFrame(data []byte) (kvs.ClientMessage, bool) {
	var m kvs.ClientMessage
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return m, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return m, skipSpace(data, i+1) == len(data)
	}
	var seen uint8
	for {
		key, j, ok := scanPlainString(data, i)
		if !ok {
			return m, false
		}
		i = skipSpace(data, j)
		if i == len(data) || data[i] != ':' {
			return m, false
		}
		val, j, ok := scanPlainString(data, skipSpace(data, i+1))
		if !ok {
			return m, false
		}
		var bit uint8
		switch string(key) {
		case "action":
			bit, m.Action = 1, internAction(val)
		case "messagePayload":
			bit, m.MessagePayload = 2, string(val)
		case "recipientClientId":
			bit, m.RecipientClientID = 4, string(val)
		case "correlationId":
			bit, m.CorrelationID = 8, string(val)
		default:
			return m, false
		}
		if seen&bit != 0 {
			return m, false
		}
		seen |= bit
		i = skipSpace(data, j)
		if i == len(data) {
			return m, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return m, skipSpace(data, i+1) == len(data)
		default:
			return m, false
		}
	}
}

// internAction returns the action's constant, sparing an allocation.
func internAction(b []byte) string {
	switch string(b) {
	case kvs.ActionICECandidate:
		return kvs.ActionICECandidate
	case kvs.ActionSDPOffer:
		return kvs.ActionSDPOffer
	case kvs.ActionSDPAnswer:
		return kvs.ActionSDPAnswer
	}
	return string(b)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString reads the JSON string at data[i] if it holds printable
// ASCII only and no escape, returning its contents and the index after it.
func scanPlainString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// appendServerMessage appends m's frame to b, byte for byte as
// json.Marshal writes it.
func appendServerMessage(b []byte, m kvs.ServerMessage) ([]byte, error) {
	if m.StatusResponse != nil || !verbatim(m.MessagePayload) || !verbatim(m.MessageType) || !verbatim(m.SenderClientID) {
		out, err := json.Marshal(m)
		return append(b, out...), err
	}
	b = append(b, '{')
	b = appendField(b, "messagePayload", m.MessagePayload)
	b = appendField(b, "messageType", m.MessageType)
	b = appendField(b, "senderClientId", m.SenderClientID)
	return append(b, '}'), nil
}

// appendField appends "key":"v" to an object begun in b, unless v is empty
// (the fields are omitempty).
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, v...)
	return append(b, '"')
}

// verbatim reports whether encoding/json writes s as it is between quotes:
// printable ASCII without the characters it escapes.
func verbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
