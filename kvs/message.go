// The signaling wire messages: what a client sends over the WebSocket, what
// the service sends back, and the base64(JSON) payloads they carry.
//
// The decoders are hand-written rather than built on encoding/json because
// the service's rules differ from a struct decode (keys match in any case,
// unknown fields are skipped, every value must be a string) and because a
// relay decodes every frame: one allocation per field instead of a reflect
// walk keeps it cheap.

package kvs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
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

// ClientMessage is one frame a client sends to the signaling service.
type ClientMessage struct {
	Action            string // SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE
	RecipientClientID string // required from a master; ignored from a viewer
	MessagePayload    string // base64 of the JSON payload; see [EncodePayload]
	CorrelationID     string // if set, an error is reported in a STATUS_RESPONSE
}

// ServerMessage is one frame the signaling service sends to a client.
type ServerMessage struct {
	SenderClientID string // the sending viewer's ClientId; empty for the master
	MessageType    string // an action, GO_AWAY, RECONNECT_ICE_SERVER or STATUS_RESPONSE
	MessagePayload string // base64 of the JSON payload, for relayed messages
	StatusResponse *StatusResponse
}

// StatusResponse reports why a message that carried a correlation id was
// not delivered.
type StatusResponse struct {
	CorrelationID string
	ErrorType     string // e.g. InvalidArgumentException
	StatusCode    string // an HTTP status code as text, e.g. "400"
	Description   string
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
		return errors.New("kvs: message field action: is required")
	default:
		return fmt.Errorf("kvs: message field action: %q is not one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE", msgClip(m.Action))
	}
	if m.MessagePayload == "" {
		return errors.New("kvs: message field messagePayload: is required")
	}
	if len(m.MessagePayload) > MaxPayloadSize {
		return fmt.Errorf("kvs: message field messagePayload: %d bytes is more than the limit of %d", len(m.MessagePayload), MaxPayloadSize)
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
		return fmt.Errorf("kvs: message field %s: %d characters is more than the limit of %d", field, len(s), maxMessageIDLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("kvs: message field %s: %q must contain only [a-zA-Z0-9_.-]", field, msgClip(s))
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

// MarshalJSON encodes m with the keys action, correlationId,
// messagePayload, recipientClientId, leaving out empty fields.
func (m ClientMessage) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 64+len(m.MessagePayload))), nil
}

// AppendJSON appends the JSON form of m (see [ClientMessage.MarshalJSON]) to b.
func (m ClientMessage) AppendJSON(b []byte) []byte {
	w := msgObject{b: b}
	w.field("action", m.Action)
	w.field("correlationId", m.CorrelationID)
	w.field("messagePayload", m.MessagePayload)
	w.field("recipientClientId", m.RecipientClientID)
	return w.close()
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

// MarshalJSON encodes m as the service does: keys in alphabetical order
// (messagePayload, messageType, senderClientId, statusResponse), empty
// fields left out.
func (m ServerMessage) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 64+len(m.MessagePayload))), nil
}

// AppendJSON appends the JSON form of m (see [ServerMessage.MarshalJSON]) to b.
func (m ServerMessage) AppendJSON(b []byte) []byte {
	w := msgObject{b: b}
	w.field("messagePayload", m.MessagePayload)
	w.field("messageType", m.MessageType)
	w.field("senderClientId", m.SenderClientID)
	if s := m.StatusResponse; s != nil {
		w.key("statusResponse")
		w.b = s.appendJSON(w.b)
	}
	return w.close()
}

// UnmarshalJSON decodes data with the rules of [DecodeServerMessage].
func (m *ServerMessage) UnmarshalJSON(data []byte) error {
	v, err := DecodeServerMessage(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalJSON encodes s with its keys in alphabetical order, empty fields
// left out.
func (s StatusResponse) MarshalJSON() ([]byte, error) {
	return s.appendJSON(nil), nil
}

func (s *StatusResponse) appendJSON(b []byte) []byte {
	w := msgObject{b: b}
	w.field("correlationId", s.CorrelationID)
	w.field("description", s.Description)
	w.field("errorType", s.ErrorType)
	w.field("statusCode", s.StatusCode)
	return w.close()
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
	d := msgDecoder{data: data}
	err := d.topObject(func(key []byte) error {
		switch {
		case msgKeyIs(key, "senderClientId"):
			return d.stringInto(&m.SenderClientID, "senderClientId")
		case msgKeyIs(key, "messageType"):
			return d.stringInto(&m.MessageType, "messageType")
		case msgKeyIs(key, "messagePayload"):
			return d.stringInto(&m.MessagePayload, "messagePayload")
		case msgKeyIs(key, "statusResponse"):
			if d.literal("null") {
				m.StatusResponse = nil
				return nil
			}
			s := new(StatusResponse)
			err := d.object(1, func(key []byte) error {
				switch {
				case msgKeyIs(key, "correlationId"):
					return d.stringInto(&s.CorrelationID, "statusResponse.correlationId")
				case msgKeyIs(key, "errorType"):
					return d.stringInto(&s.ErrorType, "statusResponse.errorType")
				case msgKeyIs(key, "statusCode"):
					if d.pos < len(d.data) && (d.data[d.pos] == '-' || '0' <= d.data[d.pos] && d.data[d.pos] <= '9') {
						start := d.pos
						if err := d.number(); err != nil {
							return err
						}
						s.StatusCode = string(d.data[start:d.pos])
						return nil
					}
					return d.stringInto(&s.StatusCode, "statusResponse.statusCode")
				case msgKeyIs(key, "description"):
					return d.stringInto(&s.Description, "statusResponse.description")
				}
				return d.skipValue(1)
			})
			if err != nil {
				return err
			}
			m.StatusResponse = s
			return nil
		}
		return d.skipValue(0)
	})
	if err != nil {
		return ServerMessage{}, err
	}
	return m, nil
}

// msgKeyIs reports whether key equals name ignoring ASCII case; name is
// ASCII. (encoding/json also folds a few non-ASCII letters such as the
// Kelvin sign into k; the service has no reason to, and neither do we.)
func msgKeyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// msgMaxDepth bounds nesting in skipped values, so hostile input cannot
// exhaust the stack.
const msgMaxDepth = 64

// msgDecoder is a small strict JSON reader (RFC 8259) over one frame.
type msgDecoder struct {
	data []byte
	pos  int
	key  []byte // scratch for keys with escapes
}

func (d *msgDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("kvs: message: invalid JSON at offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *msgDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// topObject reads the whole input as one object, calling fn for each key
// with the position at the value.
func (d *msgDecoder) topObject(fn func(key []byte) error) error {
	d.ws()
	if d.pos >= len(d.data) {
		return errors.New("kvs: message: empty; want a JSON object")
	}
	if d.data[d.pos] != '{' {
		return errors.New("kvs: message: not a JSON object")
	}
	if err := d.object(0, fn); err != nil {
		return err
	}
	d.ws()
	if d.pos != len(d.data) {
		return d.errorf("unexpected data after the object")
	}
	return nil
}

func (d *msgDecoder) object(depth int, fn func(key []byte) error) error {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return d.errorf("want an object")
	}
	d.pos++
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		d.ws()
		key, err := d.rawString(true)
		if err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.errorf("want ':' after an object key")
		}
		d.pos++
		d.ws()
		if err := fn(key); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) {
			return d.errorf("unterminated object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errorf("want ',' or '}' in an object")
		}
	}
}

// stringInto reads a string or null into *dst.
func (d *msgDecoder) stringInto(dst *string, field string) error {
	if d.literal("null") {
		*dst = ""
		return nil
	}
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		if d.pos < len(d.data) {
			if err := d.skipValue(0); err != nil {
				return err
			}
		}
		return fmt.Errorf("kvs: message field %s: must be a string", field)
	}
	start := d.pos
	raw, err := d.rawString(false)
	if err != nil {
		return err
	}
	if raw != nil {
		*dst = string(raw)
	} else {
		// Has escapes: decode into a fresh string.
		*dst = string(msgUnquote(nil, d.data[start+1:d.pos-1]))
	}
	return nil
}

// rawString reads a string at d.pos. It returns the contents without the
// quotes when there were no escapes or invalid UTF-8; otherwise it returns
// nil, unless wantDecoded is set, in which case it returns the decoded text
// in d.key (valid until the next call).
func (d *msgDecoder) rawString(wantDecoded bool) ([]byte, error) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, d.errorf("want a string")
	}
	d.pos++
	start := d.pos
	simple := true
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			body := d.data[start:d.pos]
			d.pos++
			if simple {
				return body, nil
			}
			if !wantDecoded {
				return nil, nil
			}
			d.key = msgUnquote(d.key[:0], body)
			return d.key, nil
		case c == '\\':
			simple = false
			d.pos++
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated string")
			}
			switch d.data[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				if d.pos+5 > len(d.data) {
					return nil, d.errorf("short \\u escape")
				}
				for _, h := range d.data[d.pos+1 : d.pos+5] {
					if msgUnhex(h) < 0 {
						return nil, d.errorf("bad \\u escape")
					}
				}
				d.pos += 5
			default:
				return nil, d.errorf("bad escape \\%c", d.data[d.pos])
			}
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && n == 1 {
				simple = false // replaced by U+FFFD, as encoding/json does
			}
			d.pos += n
		}
	}
	return nil, d.errorf("unterminated string")
}

func msgUnhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func msgHex4(b []byte) rune {
	return msgUnhex(b[0])<<12 | msgUnhex(b[1])<<8 | msgUnhex(b[2])<<4 | msgUnhex(b[3])
}

// msgUnquote appends the decoded form of a string body already checked by
// rawString: escapes resolved, lone surrogates and invalid UTF-8 replaced
// by U+FFFD (as encoding/json does).
func msgUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := msgHex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, msgHex4(s[i+2:])); r2 != utf8.RuneError {
							dst = utf8.AppendRune(dst, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // " \ /
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

func (d *msgDecoder) literal(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

func (d *msgDecoder) number() error {
	p := d.pos
	if p < len(d.data) && d.data[p] == '-' {
		p++
	}
	digits := func() int {
		n := 0
		for p < len(d.data) && '0' <= d.data[p] && d.data[p] <= '9' {
			p++
			n++
		}
		return n
	}
	if p < len(d.data) && d.data[p] == '0' {
		p++
	} else if digits() == 0 {
		return d.errorf("bad number")
	}
	if p < len(d.data) && d.data[p] == '.' {
		p++
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	if p < len(d.data) && (d.data[p] == 'e' || d.data[p] == 'E') {
		p++
		if p < len(d.data) && (d.data[p] == '+' || d.data[p] == '-') {
			p++
		}
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	d.pos = p
	return nil
}

// skipValue checks and skips one value of any kind.
func (d *msgDecoder) skipValue(depth int) error {
	if depth > msgMaxDepth {
		return d.errorf("nested more than %d deep", msgMaxDepth)
	}
	d.ws()
	if d.pos >= len(d.data) {
		return d.errorf("want a value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, err := d.rawString(false)
		return err
	case c == '{':
		return d.object(depth+1, func([]byte) error { return d.skipValue(depth + 1) })
	case c == '[':
		d.pos++
		d.ws()
		if d.pos < len(d.data) && d.data[d.pos] == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.pos >= len(d.data) {
				return d.errorf("unterminated array")
			}
			switch d.data[d.pos] {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.errorf("want ',' or ']' in an array")
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return d.errorf("unexpected character %s", strconv.QuoteRune(rune(d.data[d.pos])))
}

// msgObject writes a JSON object one string field at a time.
type msgObject struct {
	b    []byte
	open bool
}

func (w *msgObject) key(k string) {
	if w.open {
		w.b = append(w.b, ',')
	} else {
		w.b = append(w.b, '{')
		w.open = true
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *msgObject) field(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = msgAppendString(w.b, v)
}

func (w *msgObject) close() []byte {
	if !w.open {
		return append(w.b, '{', '}')
	}
	return append(w.b, '}')
}

const msgHexDigits = "0123456789abcdef"

// msgAppendString appends s as a JSON string, escaped exactly as
// encoding/json escapes it (HTML characters and U+2028/U+2029 included,
// invalid UTF-8 replaced by U+FFFD), so that either encoder's output can
// be compared byte for byte.
func msgAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', msgHexDigits[c>>4], msgHexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', msgHexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
