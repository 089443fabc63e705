// The JSON of POST /v1/connections: a strict reader for the request
// (encoding/json, no unknown fields, one object) and a hand-written writer
// for the answer, which measured 2.5 times as fast as encoding/json's, with
// the ICE servers' JSON cached.

package vend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// connectionRequest is the body of POST /v1/connections.
type connectionRequest struct {
	Channel  string `json:"channel"`
	Role     string `json:"role"`
	ClientID string `json:"clientId"`
	Create   bool   `json:"create"`
	Refresh  bool   `json:"refresh"`
}

// connectionResponse is its answer.
type connectionResponse struct {
	URL        string      `json:"url"`
	ExpiresAt  time.Time   `json:"expiresAt"`
	Role       kvs.Role    `json:"role"`
	ClientID   string      `json:"clientId,omitempty"`
	ChannelARN string      `json:"channelArn"`
	Region     string      `json:"region"`
	Endpoint   string      `json:"endpoint"`
	ICEServers []ICEServer `json:"iceServers"`
}

// bodyBuffers hold request bodies while they are decoded.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// decode reads the request body. On failure it returns the status, code,
// message and field to answer with.
func (s *Server) decode(r *http.Request) (req connectionRequest, status int, code, msg, field string) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return req, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json", ""
		}
	}
	tooLarge := func() (connectionRequest, int, string, string, string) {
		return req, http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body must be at most %d bytes", s.maxBody), ""
	}
	if r.ContentLength > s.maxBody {
		return tooLarge()
	}
	bp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bp)
	b, err := readAtMost((*bp)[:0], r.Body, s.maxBody)
	*bp = b[:0]
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return tooLarge()
		}
		return req, http.StatusBadRequest, "invalid_json", "the body could not be read", ""
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return req, http.StatusBadRequest, "invalid_json", `the body must be a JSON object such as {"channel":"NAME","role":"VIEWER"}`, ""
	}
	status, code, msg, field = decodeStrict(b, &req)
	return req, status, code, msg, field
}

// decodeStrict decodes b into req: one JSON object whose keys are fields
// of connectionRequest (matched without regard to case, as encoding/json
// does), and nothing after it. On failure it returns the status, code,
// message and field to answer with.
//
// json.Unmarshal decodes, and unknownKey refuses keys it would ignore: the
// two take about half the time of a json.Decoder with
// DisallowUnknownFields, whose cost showed in the whole handler (20%,
// BENCHMARKS.md). FuzzDecode checks they accept what that decoder accepts.
func decodeStrict(b []byte, req *connectionRequest) (status int, code, msg, field string) {
	if decodeSimple(b, req) {
		return 0, "", "", ""
	}
	*req = connectionRequest{}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch err := json.Unmarshal(b, req); {
	case errors.As(err, &se):
		return http.StatusBadRequest, "invalid_json", fmt.Sprintf("the body is not one valid JSON object (at byte %d)", se.Offset), ""
	case errors.As(err, &te):
		if te.Field == "" {
			return http.StatusBadRequest, "invalid_json", "the body must be a JSON object", ""
		}
		return http.StatusBadRequest, "invalid_argument", fmt.Sprintf("%s: must be a %s", te.Field, te.Type), te.Field
	case err != nil:
		return http.StatusBadRequest, "invalid_json", "the body could not be read as JSON", ""
	}
	if k, ok := unknownKey(b); ok {
		return http.StatusBadRequest, "invalid_argument", fmt.Sprintf("%s: unknown field; the fields are channel, role, clientId, create and refresh", clip(k)), clip(k)
	}
	return 0, "", "", ""
}

// decodeSimple decodes the body every client sends: one flat object whose
// keys are the fields as spelled, with strings of printable ASCII without
// escapes and booleans. It reports false for anything else, which
// decodeStrict then reads with encoding/json. It is five times as fast
// as json.Unmarshal and the key check (BENCHMARKS.md); FuzzDecode checks
// that it decodes what they decode.
func decodeSimple(b []byte, req *connectionRequest) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := simpleString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		switch string(key) {
		case "channel", "role", "clientId":
			v, next, ok := simpleString(b, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "channel":
				req.Channel = string(v)
			case "role":
				req.Role = roleString(v)
			default:
				req.ClientID = string(v)
			}
			i = next
		case "create", "refresh":
			var v bool
			switch {
			case bytes.HasPrefix(b[i:], []byte("true")):
				v, i = true, i+4
			case bytes.HasPrefix(b[i:], []byte("false")):
				i += 5
			default:
				return false
			}
			if key[0] == 'c' {
				req.Create = v
			} else {
				req.Refresh = v
			}
		default:
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return skipSpace(b, i+1) == len(b)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
}

// roleString returns v as a string, without a copy for the two roles.
func roleString(v []byte) string {
	switch string(v) {
	case string(kvs.Master):
		return string(kvs.Master)
	case string(kvs.Viewer):
		return string(kvs.Viewer)
	}
	return string(v)
}

// simpleString returns the contents of the string at b[i] and the index
// after it, if it is printable ASCII without escapes.
func simpleString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// requestFields are the keys of connectionRequest; encoding/json matches
// them without regard to case, and so does unknownKey.
var requestFields = []string{"channel", "role", "clientId", "create", "refresh"}

// unknownKey returns the first top-level key of the JSON object b that is
// not a field of connectionRequest. b must be valid JSON (json.Unmarshal
// accepted it); anything else reports no unknown key.
func unknownKey(b []byte) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return "", false // '}' or not what valid JSON has
		}
		end := stringEnd(b, i)
		raw := b[i+1 : max(i+1, end-1)]
		known := false
		if bytes.IndexByte(raw, '\\') < 0 {
			for _, f := range requestFields {
				if bytes.EqualFold(raw, []byte(f)) {
					known = true
					break
				}
			}
		} else {
			var k string
			if json.Unmarshal(b[i:end], &k) == nil {
				for _, f := range requestFields {
					if bytes.EqualFold([]byte(k), []byte(f)) {
						known = true
						break
					}
				}
				raw = []byte(k)
			}
		}
		if !known {
			return string(raw), true
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipValue(b, skipSpace(b, i+1))
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return "", false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just after the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

var errTooLarge = errors.New("too large")

// readAtMost appends r's content to b, failing with errTooLarge beyond max
// bytes.
func readAtMost(b []byte, r io.Reader, max int64) ([]byte, error) {
	for {
		if int64(len(b)) > max {
			return b, errTooLarge
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), int(max)+1)])
		b = b[:len(b)+n]
		if err == io.EOF {
			if int64(len(b)) > max {
				return b, errTooLarge
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// iceJSON caches the JSON of ICE server lists by the identity of their
// backing array: a Backend hands out the same slice while it is cached.
type iceJSON struct {
	m sync.Map // *ICEServer → []byte
	n atomic.Int64
}

const iceJSONMax = 4096

func (c *iceJSON) get(ice []ICEServer) []byte {
	if len(ice) == 0 {
		return []byte("[]")
	}
	key := &ice[0]
	if v, ok := c.m.Load(key); ok {
		e := v.(iceEntry)
		if e.n == len(ice) {
			return e.json
		}
	}
	b, err := marshalNoEscape(ice)
	if err != nil {
		return []byte("[]")
	}
	if c.n.Add(1) > iceJSONMax {
		c.m.Clear()
		c.n.Store(0)
	}
	c.m.Store(key, iceEntry{n: len(ice), json: b})
	return b
}

type iceEntry struct {
	n    int
	json []byte
}

// marshalNoEscape returns the JSON of v, leaving & < > as they are.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeConnection writes a 200 answer.
func (s *Server) writeConnection(w http.ResponseWriter, c *connectionResponse) int {
	jb := jsonBuffers.Get().(*jsonBuffer)
	defer jsonBuffers.Put(jb)
	b := jb.out[:0]
	b = append(b, `{"url":`...)
	b = appendJSONString(b, c.URL)
	b = append(b, `,"expiresAt":"`...)
	b = c.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","role":`...)
	b = appendJSONString(b, string(c.Role))
	if c.ClientID != "" {
		b = append(b, `,"clientId":`...)
		b = appendJSONString(b, c.ClientID)
	}
	b = append(b, `,"channelArn":`...)
	b = appendJSONString(b, c.ChannelARN)
	b = append(b, `,"region":`...)
	b = appendJSONString(b, c.Region)
	b = append(b, `,"endpoint":`...)
	b = appendJSONString(b, c.Endpoint)
	b = append(b, `,"iceServers":`...)
	b = append(b, s.ice.get(c.ICEServers)...)
	b = append(b, "}\n"...)
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= 64<<10 {
		jb.out = b[:0]
	}
	return http.StatusOK
}

// appendJSONString appends s as a JSON string. It escapes what JSON
// requires (quote, backslash, control characters) and the line separators
// U+2028 and U+2029, and leaves the rest, & < > included, as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				b = append(b, s[start:i]...)
				b = append(b, `\u202`...)
				b = append(b, hex[s[i+2]&0xf])
				i += 2
				start = i + 1
			}
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
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
