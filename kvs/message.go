// The signaling wire messages: what a client sends over the WebSocket, what
// the service sends back, and the base64(JSON) payloads they carry. They
// are encoded and decoded with encoding/json (whose keys match in any case,
// as the C SDK's capitalised keys need), except client frames: see
// msgjson.go.

package kvs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Actions a client sends, and the message types it receives. A client also
// receives the three actions as message types, relayed from its peer.
const (
	ActionSDPOffer     = "SDP_OFFER"
	ActionSDPAnswer    = "SDP_ANSWER"
	ActionICECandidate = "ICE_CANDIDATE"

	TypeGoAway             = "GO_AWAY"
	TypeReconnectICEServer = "RECONNECT_ICE_SERVER"
	TypeStatusResponse     = "STATUS_RESPONSE"
)

// MaxPayloadSize is the largest messagePayload (the base64 text, in bytes)
// the service relays.
const MaxPayloadSize = 10 * 1024

// maxMessageIDLength bounds recipientClientId and correlationId.
const maxMessageIDLength = 256

// The wire types list their fields in alphabetical order of their JSON
// keys, so that they encode as the service does: keys sorted, empty fields
// left out.

// ClientMessage is one frame a client sends to the signaling service.
type ClientMessage struct {
	Action            string `json:"action,omitempty"`            // SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE
	CorrelationID     string `json:"correlationId,omitempty"`     // if set, an error is reported in a STATUS_RESPONSE
	MessagePayload    string `json:"messagePayload,omitempty"`    // base64 of the JSON payload; see [EncodePayload]
	RecipientClientID string `json:"recipientClientId,omitempty"` // required from a master; ignored from a viewer
}

// ServerMessage is one frame the signaling service sends to a client.
type ServerMessage struct {
	MessagePayload string          `json:"messagePayload,omitempty"` // base64 of the JSON payload, for relayed messages
	MessageType    string          `json:"messageType,omitempty"`    // an action, GO_AWAY, RECONNECT_ICE_SERVER or STATUS_RESPONSE
	SenderClientID string          `json:"senderClientId,omitempty"` // the sending viewer's ClientId; empty for the master
	StatusResponse *StatusResponse `json:"statusResponse,omitempty"`
}

// StatusResponse reports why a message that carried a correlation id was
// not delivered.
type StatusResponse struct {
	CorrelationID string `json:"correlationId,omitempty"`
	Description   string `json:"description,omitempty"`
	ErrorType     string `json:"errorType,omitempty"`  // e.g. InvalidArgumentException
	StatusCode    string `json:"statusCode,omitempty"` // an HTTP status code as text, e.g. "400"
}

// SessionDescription is the payload of SDP_OFFER and SDP_ANSWER; its JSON is
// that of a browser's RTCSessionDescriptionInit.
type SessionDescription struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// ICECandidate is the payload of ICE_CANDIDATE; its JSON is that of a
// browser's RTCIceCandidateInit (and pion's ICECandidateInit).
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// EncodePayload returns base64(JSON(v)), the form of messagePayload.
func EncodePayload(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("kvs: message payload: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodePayload decodes a messagePayload (base64 of JSON, padded or not)
// into v.
func DecodePayload(payload string, v any) error {
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		var err2 error
		if b, err2 = base64.RawStdEncoding.DecodeString(payload); err2 != nil {
			return fmt.Errorf("kvs: message payload: not base64: %w", err)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("kvs: message payload: not JSON: %w", err)
	}
	return nil
}

// Validate checks m against the service's rules for a client message: a
// known action, a payload of 1 to [MaxPayloadSize] bytes, and recipient and
// correlation ids of 1 to 256 characters of [a-zA-Z0-9_.-] when present.
// Whether a recipient is required depends on the sender's role and is not
// checked here.
func (m ClientMessage) Validate() error {
	switch m.Action {
	case ActionSDPOffer, ActionSDPAnswer, ActionICECandidate:
	case "":
		return fieldError("message field action", "", "must be SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE")
	default:
		return fieldError("message field action", m.Action, "must be one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE")
	}
	if m.MessagePayload == "" {
		return fieldError("message field messagePayload", "", "must be the base64 of a JSON object")
	}
	if len(m.MessagePayload) > MaxPayloadSize {
		return fieldError("message field messagePayload", m.MessagePayload, fmt.Sprintf("%d bytes is more than the limit of %d", len(m.MessagePayload), MaxPayloadSize))
	}
	if err := msgCheckID("recipientClientId", m.RecipientClientID); err != nil {
		return err
	}
	return msgCheckID("correlationId", m.CorrelationID)
}

func msgCheckID(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxMessageIDLength {
		return fieldError("message field "+field, s, fmt.Sprintf("%d characters is more than the limit of %d", len(s), maxMessageIDLength))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fieldError("message field "+field, s, "must contain only [a-zA-Z0-9_.-]")
		}
	}
	return nil
}

// msgClip shortens s for an error message.
func msgClip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// UnmarshalJSON decodes data with the rules of [DecodeClientMessage].
func (m *ClientMessage) UnmarshalJSON(data []byte) error {
	v, err := DecodeClientMessage(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// DecodeClientMessage decodes one client frame. Keys match in any case
// (the C SDK sends "Action", "MessagePayload"…), unknown keys are skipped,
// the known ones must hold strings (or null). It checks the JSON only; see
// [ClientMessage.Validate] for the service's rules.
func DecodeClientMessage(data []byte) (ClientMessage, error) {
	var m ClientMessage
	d := msgDecoder{data: data}
	err := d.topObject(func(key []byte) error {
		switch {
		case msgKeyIs(key, "action"):
			return d.stringInto(&m.Action, "action")
		case msgKeyIs(key, "recipientClientId"):
			return d.stringInto(&m.RecipientClientID, "recipientClientId")
		case msgKeyIs(key, "messagePayload"):
			return d.stringInto(&m.MessagePayload, "messagePayload")
		case msgKeyIs(key, "correlationId"):
			return d.stringInto(&m.CorrelationID, "correlationId")
		}
		return d.skipValue(0)
	})
	if err != nil {
		return ClientMessage{}, err
	}
	return m, nil
}

// DecodeServerMessage decodes one frame from the signaling service, with
// the same leniency as [DecodeClientMessage]. A statusCode sent as a
// number is kept as its text.
func DecodeServerMessage(data []byte) (ServerMessage, error) {
	var m ServerMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return ServerMessage{}, messageError(data, "", err)
	}
	return m, nil
}

// UnmarshalJSON decodes a status response, whose statusCode may be a
// number or a string.
func (s *StatusResponse) UnmarshalJSON(data []byte) error {
	var w struct {
		CorrelationID string          `json:"correlationId"`
		Description   string          `json:"description"`
		ErrorType     string          `json:"errorType"`
		StatusCode    json.RawMessage `json:"statusCode"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return messageError(data, "statusResponse", err)
	}
	code := string(w.StatusCode)
	switch {
	case code == "" || code == "null":
		code = ""
	case code[0] == '"':
		if err := json.Unmarshal(w.StatusCode, &code); err != nil {
			return messageError(data, "statusResponse", err)
		}
	case code[0] != '-' && (code[0] < '0' || code[0] > '9'):
		return wordedError("kvs: message field statusResponse.statusCode: must be a string or a number")
	}
	*s = StatusResponse{CorrelationID: w.CorrelationID, Description: w.Description, ErrorType: w.ErrorType, StatusCode: code}
	return nil
}

// messageError words an encoding/json error about data, an object at path
// ("" for the frame itself), as the hand-written decoder does.
func messageError(data []byte, path string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	field := func(f string) string {
		return strings.TrimPrefix(path+"."+f, ".")
	}
	switch {
	case path == "" && len(bytes.TrimLeft(data, " \t\r\n")) == 0:
		return wordedError("kvs: message: empty; want a JSON object")
	case errors.As(err, &te) && te.Field == "" && path == "":
		return wordedError("kvs: message: not a JSON object")
	case errors.As(err, &te) && te.Field == "":
		return wordedError(fmt.Sprintf("kvs: message field %s: must be an object", path))
	case errors.As(err, &te):
		return wordedError(fmt.Sprintf("kvs: message field %s: must be a string", field(te.Field)))
	case errors.As(err, &se):
		return wordedError(fmt.Sprintf("kvs: message: invalid JSON at offset %d: %s", se.Offset, se.Error()))
	case errors.As(err, new(wordedError)):
		return err // from a nested decoder, worded already
	}
	return fmt.Errorf("kvs: message: %w", err)
}

// wordedError is a decoding error this package has worded for people, so
// that a decoder of an enclosing object passes it on unchanged.
type wordedError string

func (e wordedError) Error() string { return string(e) }
