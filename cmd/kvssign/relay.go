// The relay of kvssign connect: JSON lines from stdin sent through the
// signaling client, what it receives printed on stdout, one line per
// reconnection, and how it ends.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

// forDuration is ctx, ending after d if d is positive (--duration).
func forDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// lockedWriter serialises writes of whole lines from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// receivedJSON is a received message as printed: the payload decoded.
type receivedJSON struct {
	MessageType    string              `json:"messageType"`
	SenderClientID string              `json:"senderClientId,omitempty"`
	MessagePayload json.RawMessage     `json:"messagePayload,omitempty"`
	StatusResponse *kvs.StatusResponse `json:"statusResponse,omitempty"`
	PayloadError   string              `json:"payloadError,omitempty"`
}

// printReceived prints a received message as one JSON line: its payload
// decoded from base64 (compacted, otherwise as sent), or, if it is not
// base64 JSON, the text as received with a payloadError.
func printReceived(out io.Writer, m kvs.ServerMessage) error {
	line := receivedJSON{MessageType: m.MessageType, SenderClientID: m.SenderClientID, StatusResponse: m.StatusResponse}
	if m.MessagePayload != "" {
		var raw json.RawMessage
		if err := kvs.DecodePayload(m.MessagePayload, &raw); err != nil {
			line.MessagePayload, _ = json.Marshal(m.MessagePayload)
			line.PayloadError = err.Error()
		} else {
			var buf bytes.Buffer
			if json.Compact(&buf, raw) == nil {
				raw = buf.Bytes()
			}
			line.MessagePayload = raw
		}
	}
	b, _ := json.Marshal(line)
	_, err := out.Write(append(printableJSON(b), '\n'))
	return err
}

// sentJSON is a line read from stdin: messagePayload may be a JSON object
// (encoded for you) or a base64 string.
type sentJSON struct {
	Action            string          `json:"action"`
	RecipientClientID string          `json:"recipientClientId"`
	MessagePayload    json.RawMessage `json:"messagePayload"`
	CorrelationID     string          `json:"correlationId"`
}

// readSent reads stdin's JSON lines, skipping blank ones and # comments,
// and hands each message to sendOne until it returns false or ctx ends. A
// line that is not a message is reported with its number and skipped.
func readSent(ctx context.Context, stdin io.Reader, errOut io.Writer, sendOne func(n int, m kvs.ClientMessage) bool) {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if ctx.Err() != nil {
			return
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		m, err := parseSent(line)
		if err != nil {
			fmt.Fprintf(errOut, "kvssign: stdin line %d: %s\n", n, printable(err.Error()))
			continue
		}
		if !sendOne(n, m) {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(errOut, "kvssign: reading stdin: %s\n", printable(err.Error()))
	}
}

func parseSent(line []byte) (kvs.ClientMessage, error) {
	var s sentJSON
	if err := json.Unmarshal(line, &s); err != nil {
		return kvs.ClientMessage{}, fmt.Errorf("not a JSON message: %v", err)
	}
	m := kvs.ClientMessage{Action: s.Action, RecipientClientID: s.RecipientClientID, CorrelationID: s.CorrelationID}
	p := bytes.TrimSpace(s.MessagePayload)
	switch {
	case len(p) == 0 || string(p) == "null":
	case p[0] == '"':
		if err := json.Unmarshal(p, &m.MessagePayload); err != nil {
			return m, fmt.Errorf("messagePayload: %v", err)
		}
		if _, err := base64.StdEncoding.DecodeString(m.MessagePayload); err != nil {
			return m, errors.New("messagePayload: a string must be base64; give the payload as a JSON object to have it encoded")
		}
	case p[0] == '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, p); err != nil {
			return m, fmt.Errorf("messagePayload: %v", err)
		}
		m.MessagePayload = base64.StdEncoding.EncodeToString(buf.Bytes())
	default:
		return m, errors.New("messagePayload: must be a JSON object or a base64 string")
	}
	if err := m.Validate(); err != nil {
		return m, errors.New(withoutPackage(err))
	}
	return m, nil
}

// bridge relays between stdin/stdout and the client until ctx ends,
// --duration passes, or the client ends: without --reconnect when its
// connection ends, with it when it gives up reconnecting.
func bridge(ctx context.Context, cl *signaling.Client, stdin io.Reader, stdout io.Writer, errOut *lockedWriter, f *connectFlags, t target, dbg *debugLog) error {
	ctx, cancel := forDuration(ctx, f.duration)
	defer cancel()
	out := &lockedWriter{w: stdout}
	// The reader of stdin ends at stdin's end (the connection stays, as
	// without --reconnect), or at its next line once ctx has ended.
	go sendThrough(ctx, cl, stdin, errOut, dbg)
	st := bridgeState{conn: 1, since: time.Now()}
	for {
		select {
		case <-ctx.Done():
			// Interrupted, or --duration passed: a normal end.
			cl.Close()
			return nil
		case ev, ok := <-cl.Events():
			if !ok {
				switch {
				case ctx.Err() != nil:
					return nil
				case f.reconnect:
					return gaveUp(out, f, t, cl.Err())
				}
				return ended(errOut, cl.Err())
			}
			if err := st.handle(ev, out, errOut, f.json(), dbg); err != nil {
				return fmt.Errorf("connect: writing to stdout: %v", err)
			}
		}
	}
}

// ended is the result of a connection that ended without --reconnect: a
// normal or going-away close by the service (as after GO_AWAY) is a normal
// end.
func ended(errOut io.Writer, err error) error {
	var ce *signaling.CloseError
	if !errors.As(err, &ce) {
		return errors.New("connect: " + printable(err.Error()))
	}
	switch status := websocket.StatusCode(ce.Code); status {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		fmt.Fprintf(errOut, "kvssign: the service closed the connection (%d %s)\n", ce.Code, status)
		return nil
	}
	return fmt.Errorf("connect: the service closed the connection: %d %s", ce.Code, printable(ce.Reason))
}

// bridgeState follows the connections, to say how long each lasted.
type bridgeState struct {
	conn     int       // the live connection's number
	since    time.Time // when it connected
	lostAt   time.Time // when it was lost; zero if it was not
	goAwayAt time.Time // when GO_AWAY came on it; zero if it did not
}

// reconnectedJSON is the --output json line printed on stdout for each
// reconnection.
type reconnectedJSON struct {
	Event      string `json:"event"`  // RECONNECTED
	Reason     string `json:"reason"` // go-away, renewed or disconnected
	Message    string `json:"message"`
	Connection int    `json:"connection"` // the new connection's number, from 1
	// PreviousLasted is how long the previous connection served, and
	// Took how long the switch took from GO_AWAY or the loss (absent for
	// a renewal the client planned).
	PreviousLasted string `json:"previousConnectionLasted"`
	Took           string `json:"reconnectTook,omitempty"`
}

// handle prints one event: the service's messages as received, as the
// relay without --reconnect prints them, and one line per reconnection.
func (st *bridgeState) handle(ev signaling.Event, out, errOut io.Writer, jsonOut bool, dbg *debugLog) error {
	switch ev.Type {
	case signaling.EventOffer, signaling.EventAnswer, signaling.EventCandidate, signaling.EventStatus, signaling.EventReconnectICEServer,
		signaling.EventOther:
	case signaling.EventGoAway:
		if st.goAwayAt.IsZero() {
			st.goAwayAt = ev.At
		}
	case signaling.EventDisconnected:
		st.lostAt = ev.At
		dbg.printf("connection %d lost: %v; reconnecting", ev.Conn, ev.Err)
		return nil
	case signaling.EventReconnected:
		return st.reconnected(ev, out, errOut, jsonOut)
	case signaling.EventClockSkew:
		fmt.Fprintf(errOut, "kvssign: the service refused a URL for clock skew; signing with an offset of %v from now on\n", ev.Skew)
		return nil
	default:
		return nil
	}
	return printReceived(out, ev.Message)
}

// reconnected prints the line (and, with --output json, the JSON line) of
// a reconnection.
func (st *bridgeState) reconnected(ev signaling.Event, out, errOut io.Writer, jsonOut bool) error {
	end := ev.At
	var took time.Duration
	switch {
	case !st.lostAt.IsZero():
		end, took = st.lostAt, ev.At.Sub(st.lostAt)
	case !st.goAwayAt.IsZero():
		took = ev.At.Sub(st.goAwayAt)
	}
	j := reconnectedJSON{Event: "RECONNECTED", Connection: ev.Conn, PreviousLasted: roundDuration(end.Sub(st.since))}
	var why string
	var renewal *signaling.RenewalError
	var closed *signaling.CloseError
	switch {
	case errors.Is(ev.Err, signaling.ErrGoAway):
		j.Reason, why = "go-away", "the service sent GO_AWAY"
	case errors.As(ev.Err, &renewal) && renewal.Idle:
		j.Reason, why = "renewed", fmt.Sprintf("connection renewed before the service's limit: nothing sent for %v (service idle timeout %v)", renewal.Elapsed, renewal.Limit)
	case errors.As(ev.Err, &renewal):
		j.Reason, why = "renewed", fmt.Sprintf("connection renewed before the service's limit: connected for %v (service limit %v)", renewal.Elapsed, renewal.Limit)
	case errors.As(ev.Err, &closed):
		j.Reason, why = "disconnected", fmt.Sprintf("the connection ended: closed by the service: %d %s", closed.Code, printable(closed.Reason))
		why = strings.TrimSuffix(why, " ")
	case ev.Err != nil:
		j.Reason, why = "disconnected", "the connection ended: "+printable(ev.Err.Error())
	default:
		j.Reason, why = "disconnected", "the connection ended"
	}
	j.Message = sigv4.Redact(why)
	msg := fmt.Sprintf("kvssign: reconnected (connection %d): %s; connection %d had lasted %s", ev.Conn, j.Message, st.conn, j.PreviousLasted)
	if took > 0 {
		j.Took = roundDuration(took)
		msg += "; reconnecting took " + j.Took
	}
	fmt.Fprintln(errOut, msg)
	*st = bridgeState{conn: ev.Conn, since: ev.At}
	if !jsonOut {
		return nil
	}
	b, _ := json.Marshal(j)
	_, err := out.Write(append(printableJSON(b), '\n'))
	return err
}

// roundDuration shows a duration to the millisecond under a minute, to
// the second above.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d < time.Minute:
		d = d.Round(time.Millisecond)
	default:
		d = d.Round(time.Second)
	}
	return d.String()
}

// gaveUp is the error of a client that could not reconnect: diagnosed as a
// first handshake would be when the service refused it. With --output json
// the failure is one more line of the stream on stdout.
func gaveUp(out io.Writer, f *connectFlags, t target, err error) error {
	if err == nil {
		err = signaling.ErrClosed
	}
	const head = "the connection ended and reconnecting failed"
	how := ""
	var ge *signaling.GiveUpError
	if errors.As(err, &ge) {
		err = ge.Last
		if ge.Attempts > 1 {
			how = fmt.Sprintf(" (after %d attempts)", ge.Attempts)
		}
	}
	var he *signaling.HandshakeError
	if !errors.As(err, &he) {
		return fmt.Errorf("connect %s: %s%s: %s", redactedURL(t.endpoint), head, how, printable(sigv4.Redact(err.Error())))
	}
	in := handshakeInput(f, t)
	in.Status, in.Code, in.Message, in.ServerDate = he.StatusCode, he.Type, he.Message, he.Date
	e := fmt.Errorf("connect %s: %s%s: %s", redactedURL(t.endpoint), head, how, handshakeHead(in))
	d := diagnose.Explain(in)
	if d.Cause == "" {
		return e
	}
	if f.json() {
		j := failureJSON{Error: sigv4.Redact(e.Error()), Status: in.Status, ErrorType: printable(in.Code), Message: printable(sigv4.Redact(in.Message)),
			URL: redactedURL(he.URL), Diagnosis: d}
		if !in.ServerDate.IsZero() {
			j.ServerDate = in.ServerDate.UTC().Format(time.RFC3339)
		}
		b, _ := json.Marshal(j)
		out.Write(append(printableJSON(b), '\n'))
	}
	return diagnosedError{err: e, d: d, printed: f.json()}
}

// sendThrough sends each JSON line of stdin through the client, as it is
// (as without --reconnect): while it reconnects, a line waits for the new
// connection.
func sendThrough(ctx context.Context, cl *signaling.Client, stdin io.Reader, errOut io.Writer, dbg *debugLog) {
	readSent(ctx, stdin, errOut, func(n int, m kvs.ClientMessage) bool {
		if err := cl.Send(ctx, m); err != nil {
			if ctx.Err() != nil || cl.Err() != nil {
				return false // the bridge is ending and says why
			}
			fmt.Fprintf(errOut, "kvssign: stdin line %d: %s\n", n, printable(sigv4.Redact(err.Error())))
			return true
		}
		dbg.printf("sent %s to %q", m.Action, m.RecipientClientID)
		return true
	})
}

// warnHandler prints the signaling client's warnings (a frame it could
// not read) on stderr, one line each, redacted. Refusals are left out: the
// command diagnoses the first one, and the one that makes the client give
// up (which the client logs at info and returns from Err). The client's
// other records go to --debug.
type warnHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h warnHandler) Handle(_ context.Context, r slog.Record) error {
	refusal := false
	r.Attrs(func(a slog.Attr) bool {
		var he *signaling.HandshakeError
		if err, ok := a.Value.Any().(error); ok && errors.As(err, &he) {
			refusal = true
		}
		return !refusal
	})
	if refusal {
		return nil
	}
	var b strings.Builder
	b.WriteString("kvssign: ")
	b.WriteString(printable(r.Message))
	sep := " ("
	add := func(a slog.Attr) bool {
		b.WriteString(sep + printable(a.Key) + " " + printable(a.Value.String()))
		sep = ", "
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if sep == ", " {
		b.WriteString(")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(h.w, sigv4.Redact(b.String()))
	return err
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(h.attrs[:len(h.attrs):len(h.attrs)], as...)
	return h
}

func (h warnHandler) WithGroup(string) slog.Handler { return h }
