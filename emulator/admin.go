// Faults on demand and the admin endpoints under /_emulator/.

package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// Fault kinds.
const (
	FaultThrottle = "throttle" // 400 ClientLimitExceededException (STS: 400 Throttling)
	Fault5xx      = "5xx"      // 500 InternalFailure
	Fault503      = "503"      // 503 ServiceUnavailableException (STS: ServiceUnavailable)
)

// Faults makes a share of calls fail. The zero value injects nothing.
type Faults struct {
	// Share is the probability, 0 to 1, that a matching call fails.
	Share float64 `json:"share"`
	// Kind is FaultThrottle, Fault5xx or Fault503. If empty, FaultThrottle.
	Kind string `json:"kind,omitempty"`
	// Operations lists the operations that fail (the Op… constants).
	// If empty, every operation, the signaling handshakes included.
	Operations []string `json:"operations,omitempty"`
	// Count, if positive, stops injecting after that many failures.
	Count int `json:"count,omitempty"`
}

func (f Faults) validate() error {
	if f.Share < 0 || f.Share > 1 {
		return fmt.Errorf("emulator: faults share %v: must be from 0 to 1", f.Share)
	}
	switch f.Kind {
	case "", FaultThrottle, Fault5xx, Fault503:
	default:
		return fmt.Errorf("emulator: faults kind %q: must be throttle, 5xx or 503", f.Kind)
	}
	for _, op := range f.Operations {
		if !slices.Contains(operations, op) {
			return fmt.Errorf("emulator: faults operation %q: must be one of %s", op, strings.Join(operations, ", "))
		}
	}
	if f.Count < 0 {
		return fmt.Errorf("emulator: faults count %d: must not be negative", f.Count)
	}
	return nil
}

type faultState struct {
	mu   sync.Mutex
	f    Faults
	left int // failures left when f.Count > 0
}

// inject returns the error to fail op with, or nil.
func (s *faultState) inject(op string, sts bool) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.f
	if f.Share <= 0 || (len(f.Operations) > 0 && !slices.Contains(f.Operations, op)) {
		return nil
	}
	if f.Count > 0 && s.left <= 0 {
		return nil
	}
	if f.Share < 1 && rand.Float64() >= f.Share {
		return nil
	}
	s.left--
	switch {
	case f.Kind == Fault5xx:
		return errf(http.StatusInternalServerError, "InternalFailure", "Injected fault: the service encountered an internal error.")
	case f.Kind == Fault503 && sts:
		return errf(http.StatusServiceUnavailable, "ServiceUnavailable", "Injected fault: the service is unavailable.")
	case f.Kind == Fault503:
		return errf(http.StatusServiceUnavailable, "ServiceUnavailableException", "Injected fault: the service is unavailable.")
	case sts:
		return errf(http.StatusBadRequest, "Throttling", "Injected fault: Rate exceeded")
	}
	return errf(http.StatusBadRequest, "ClientLimitExceededException", "Injected fault: Kinesis Video Streams has throttled the request because you have exceeded the limit of allowed client calls. Try making the call later.")
}

// SetFaults replaces the faults injected into later calls; Faults{}
// stops injecting.
func (e *Emulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	f.Operations = slices.Clone(f.Operations)
	e.faults.mu.Lock()
	e.faults.f, e.faults.left = f, f.Count
	e.faults.mu.Unlock()
	e.log.Info("faults set", "share", f.Share, "kind", f.Kind, "operations", f.Operations, "count", f.Count)
	return nil
}

// CurrentFaults returns the faults in force.
func (e *Emulator) CurrentFaults() Faults {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	f := e.faults.f
	f.Operations = slices.Clone(f.Operations)
	return f
}

// Target selects signaling connections. Empty fields match anything.
type Target struct {
	Channel  string   // channel name or ARN
	Role     kvs.Role // MASTER or VIEWER
	ClientID string   // a viewer's ClientId
}

func (t Target) matches(c *conn) bool {
	return (t.Channel == "" || t.Channel == c.ch.name || t.Channel == c.ch.arn) &&
		(t.Role == "" || t.Role == c.role) &&
		(t.ClientID == "" || t.ClientID == c.clientID)
}

func (e *Emulator) liveConns() []*conn {
	e.connMu.Lock()
	out := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		out = append(out, c)
	}
	e.connMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (e *Emulator) each(t Target, fn func(*conn) bool) int {
	return forEachConn(e.liveConns(), func(c *conn) bool { return t.matches(c) && fn(c) })
}

// GoAway sends GO_AWAY to the matching connections and closes each after
// [Config.GoAwayGrace]. It returns how many were told.
func (e *Emulator) GoAway(t Target) int {
	return e.each(t, func(c *conn) bool { return c.goAway(true) })
}

// ReconnectICEServer sends RECONNECT_ICE_SERVER to the matching
// connections and returns how many were told.
func (e *Emulator) ReconnectICEServer(t Target) int {
	return e.each(t, func(c *conn) bool {
		return c.deliver(kvs.ServerMessage{MessageType: kvs.TypeReconnectICEServer}) == nil
	})
}

// Drop closes the matching connections' sockets without a close frame, as
// a network failure would, and returns how many it dropped.
func (e *Emulator) Drop(t Target) int {
	return e.each(t, func(c *conn) bool { c.drop(); return true })
}

// Disconnect closes the matching connections with a close frame of the
// given code and reason, and returns how many it closed.
func (e *Emulator) Disconnect(t Target, code int, reason string) int {
	return e.each(t, func(c *conn) bool { c.close(statusCode(code), reason); return true })
}

// Connection describes a live signaling connection.
type Connection struct {
	ID          uint64    `json:"id"`
	ChannelName string    `json:"channelName"`
	ChannelARN  string    `json:"channelArn"`
	Role        kvs.Role  `json:"role"`
	ClientID    string    `json:"clientId,omitempty"`
	ConnectedAt time.Time `json:"connectedAt"`
}

// Connections lists the live signaling connections, oldest first.
func (e *Emulator) Connections() []Connection {
	var out []Connection
	for _, c := range e.liveConns() {
		out = append(out, Connection{ID: c.id, ChannelName: c.ch.name, ChannelARN: c.ch.arn, Role: c.role, ClientID: c.clientID, ConnectedAt: c.since})
	}
	return out
}

// isLoopback reports whether a request comes from this machine.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func adminError(w http.ResponseWriter, status int, format string, args ...any) {
	adminJSON(w, status, map[string]string{"message": fmt.Sprintf(format, args...)})
}

// serveAdmin serves /_emulator/: no SigV4, loopback clients only, and
// no cross-site requests (see adminRefusal).
//
//	GET  /_emulator/stats                     counters (see Stats)
//	GET  /_emulator/connections               live signaling connections
//	GET  /_emulator/faults                    faults in force
//	PUT|POST /_emulator/faults                set faults: {"share":0.5,"kind":"throttle","operations":[…],"count":0}
//	DELETE /_emulator/faults                  stop injecting
//	POST /_emulator/goaway?channel=&role=&client=             GO_AWAY, close after the grace period
//	POST /_emulator/reconnect-ice-server?channel=&role=&client=
//	POST /_emulator/drop?channel=&role=&client=               close sockets without a close frame
//	POST /_emulator/disconnect?channel=&role=&client=&code=&reason=
//	POST /_emulator/channels {"name":…,"messageTtlSeconds":…}  create a channel without signing
//	POST /_emulator/iot/revoke?certificate=ID|thing=NAME      revoke IoT device certificates
//	GET  /_emulator/storage                   storage sessions (see StorageSession)
//	GET  /_emulator/recordings                storage sessions' recordings (see Recording)
//	GET  /_emulator/recordings/NAME           one recording's file (video/x-matroska)
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	e.setCommonHeaders(w)
	if !isLoopback(r) {
		adminError(w, http.StatusForbidden, "the admin endpoints answer loopback clients only")
		return
	}
	if msg := e.adminRefusal(r); msg != "" {
		e.log.Warn("admin request refused", "path", clipValue(r.URL.Path), "reason", msg)
		adminError(w, http.StatusForbidden, "%s", msg)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/_emulator/")
	method := func(ms ...string) bool {
		if slices.Contains(ms, r.Method) {
			return true
		}
		w.Header().Set("Allow", strings.Join(ms, ", "))
		adminError(w, http.StatusMethodNotAllowed, "%s /_emulator/%s: use %s", r.Method, path, strings.Join(ms, " or "))
		return false
	}
	switch path {
	case "stats":
		if method(http.MethodGet) {
			adminJSON(w, http.StatusOK, e.Stats())
		}
	case "connections":
		if method(http.MethodGet) {
			cs := e.Connections()
			if cs == nil {
				cs = []Connection{}
			}
			adminJSON(w, http.StatusOK, cs)
		}
	case "faults":
		if !method(http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete) {
			return
		}
		switch r.Method {
		case http.MethodGet:
			adminJSON(w, http.StatusOK, e.CurrentFaults())
		case http.MethodDelete:
			e.SetFaults(Faults{})
			adminJSON(w, http.StatusOK, Faults{})
		default:
			var f Faults
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				adminError(w, http.StatusBadRequest, "faults: the body must be JSON like {\"share\":0.5,\"kind\":\"throttle\",\"operations\":[\"DescribeSignalingChannel\"]}: %v", err)
				return
			}
			if err := e.SetFaults(f); err != nil {
				adminError(w, http.StatusBadRequest, "%v", err)
				return
			}
			adminJSON(w, http.StatusOK, e.CurrentFaults())
		}
	case "goaway", "reconnect-ice-server", "drop", "disconnect":
		if !method(http.MethodPost) {
			return
		}
		e.adminConnections(w, r, path)
	case "channels":
		if !method(http.MethodPost) {
			return
		}
		e.adminCreateChannel(w, r)
	case "iot/revoke":
		if method(http.MethodPost) {
			e.adminIoTRevoke(w, r)
		}
	case "storage":
		if method(http.MethodGet) {
			adminJSON(w, http.StatusOK, e.StorageSessions())
		}
	case "recordings":
		if method(http.MethodGet) {
			adminJSON(w, http.StatusOK, e.Recordings())
		}
	case "recordings/" + strings.TrimPrefix(path, "recordings/"):
		if method(http.MethodGet) {
			e.adminRecording(w, r, strings.TrimPrefix(path, "recordings/"))
		}
	default:
		adminError(w, http.StatusNotFound, "no admin endpoint /_emulator/%s; see docs/emulator.md", path)
	}
}

// adminConnections acts on the signaling connections a query selects:
// /_emulator/goaway, reconnect-ice-server, drop and disconnect.
func (e *Emulator) adminConnections(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	t := Target{Channel: q.Get("channel"), ClientID: q.Get("client")}
	if s := q.Get("role"); s != "" {
		role, err := kvs.ParseRole(s)
		if err != nil {
			adminError(w, http.StatusBadRequest, "role %q: must be MASTER or VIEWER", s)
			return
		}
		t.Role = role
	}
	var n int
	switch path {
	case "goaway":
		n = e.GoAway(t)
	case "reconnect-ice-server":
		n = e.ReconnectICEServer(t)
	case "drop":
		n = e.Drop(t)
	default:
		code := 1000
		if s := q.Get("code"); s != "" {
			if _, err := fmt.Sscanf(s, "%d", &code); err != nil || code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015 {
				adminError(w, http.StatusBadRequest, "code %q: must be a WebSocket close code from 1000 to 4999 (not 1005, 1006 or 1015)", s)
				return
			}
		}
		reason := q.Get("reason")
		if len(reason) > 123 {
			adminError(w, http.StatusBadRequest, "reason: must be at most 123 bytes")
			return
		}
		n = e.Disconnect(t, code, reason)
	}
	adminJSON(w, http.StatusOK, map[string]int{"connections": n})
}

// adminCreateChannel serves POST /_emulator/channels.
func (e *Emulator) adminCreateChannel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name              string `json:"name"`
		MessageTTLSeconds int64  `json:"messageTtlSeconds"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		adminError(w, http.StatusBadRequest, "channels: the body must be JSON like {\"name\":\"my-channel\"}: %v", err)
		return
	}
	ci := createInput{ChannelName: &in.Name}
	if in.MessageTTLSeconds != 0 {
		ci.SingleMasterConfiguration = &struct{ MessageTtlSeconds *int64 }{&in.MessageTTLSeconds}
	}
	out, err := e.createChannel(ci, nil)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			adminError(w, ae.Status, "%s: %s", ae.Code, ae.Message)
			return
		}
		adminError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]string{"channelArn": out.ChannelARN})
}

// ErrChannelExists is returned by [Emulator.CreateChannel] for a name in use.
var ErrChannelExists = errors.New("emulator: channel exists")

// CreateChannel creates a signaling channel directly (no signature, not
// counted as a CreateSignalingChannel call) and returns its ARN. ttl is the
// MessageTtlSeconds, 5 to 120 seconds; zero means 60 seconds.
func (e *Emulator) CreateChannel(name string, ttl time.Duration) (string, error) {
	in := createInput{ChannelName: &name}
	if ttl != 0 {
		s := int64(ttl / time.Second)
		in.SingleMasterConfiguration = &struct{ MessageTtlSeconds *int64 }{&s}
	}
	out, err := e.createChannel(in, nil)
	var ae *apiError
	switch {
	case err == nil:
		return out.ChannelARN, nil
	case errors.As(err, &ae) && ae.Code == "ResourceInUseException":
		return "", fmt.Errorf("emulator: channel %q: %w", name, ErrChannelExists)
	case errors.As(err, &ae):
		return "", fmt.Errorf("emulator: channel %q: %s: %s", name, ae.Code, ae.Message)
	}
	return "", err
}
