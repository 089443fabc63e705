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
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

type connectFlags struct {
	outputFlags
	aws                          awsFlags
	ch                           channelFlags
	role, clientID, endpoint, su string
	expires, duration            time.Duration
	once, reconnect              bool
}

func newConnectCmd() *cobra.Command {
	var f connectFlags
	c := &cobra.Command{
		Use:   "connect (--channel NAME|ARN | --channel-arn ARN | --url SIGNED_URL) --role master|viewer [--once | --reconnect]",
		Short: "Open a signaling connection: check the handshake, or stay and relay messages",
		Long: `Open the signaling WebSocket of a channel, as master or viewer.

The channel's ARN and endpoint are resolved through AWS (or the emulator given
with --endpoint-url) unless --endpoint and a channel ARN are given, in which
case the URL is signed offline. --url connects with a URL signed elsewhere (by
a vending service, say).

With --once, kvssign checks the handshake and exits. Otherwise it stays
connected: each message received is printed on stdout as one JSON line with
its payload decoded from base64, and each JSON line read from stdin is sent,
e.g.
  {"action":"SDP_OFFER","recipientClientId":"viewer-1","messagePayload":{"type":"offer","sdp":"..."}}
A messagePayload given as a JSON object is encoded (base64) for you; a
string is sent as it is. It stays until interrupted, until --duration has
passed, or until the service closes the connection.

With --reconnect it is a long-lived bridge: it signs a fresh URL for every
connection and reconnects when the service sends GO_AWAY, closes an idle
connection (10 minutes) or one at its 1-hour limit, or the connection is
lost, and goes on relaying both ways. It prints one line on stderr per
reconnection (and, with --output json, one {"event":"RECONNECTED",...}
line on stdout). It needs a channel to sign for: not with --url.

When the handshake is refused, kvssign says the likely cause and the fix:
clock skew (with the --clock-offset that fixes it), expired or invalid
credentials, a region mismatch, a missing ConnectAsMaster/ConnectAsViewer
permission, the master endpoint used as viewer (or the reverse), an invalid
ClientId, too many viewers, an unknown channel.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.json(), runConnect(c.Context(), c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr(), &f))
		},
	}
	fs := c.Flags()
	f.ch.register(fs, true)
	fs.StringVar(&f.role, "role", "", "master or viewer")
	fs.StringVar(&f.clientID, "client-id", "", "the viewer's client id (default: a random one)")
	fs.StringVar(&f.endpoint, "endpoint", "", "the channel's WSS endpoint for the role; with a channel ARN, signs offline")
	fs.StringVar(&f.su, "url", "", "connect with this presigned URL instead of signing one")
	fs.DurationVar(&f.expires, "expires", kvs.DefaultExpires, "how long the signed URL stays valid (at most 300s)")
	fs.BoolVar(&f.once, "once", false, "check the handshake, then disconnect and exit")
	fs.BoolVar(&f.reconnect, "reconnect", false, "stay connected: reconnect with a freshly signed URL after GO_AWAY, the idle and 1-hour closes, or a lost connection (not with --url or --once)")
	fs.DurationVar(&f.duration, "duration", 0, "stay connected at most this long (default: until interrupted)")
	f.aws.register(fs, true, true)
	f.outputFlags.register(fs, true)
	registerCompletions(c)
	return c
}

// target is what connect dials.
type target struct {
	url      string
	role     kvs.Role
	arn      string
	clientID string
	endpoint string // without the query
	region   string // signed for
	signedAt time.Time
	// resign signs a fresh URL for the same channel, role and client id;
	// nil for a URL given with --url.
	resign func(context.Context) (string, error)
}

func runConnect(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, f *connectFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	if f.duration < 0 {
		return usagef("--duration %v: must not be negative", f.duration)
	}
	if f.reconnect {
		switch {
		case f.su != "":
			return usagef("--reconnect with --url: a URL signed elsewhere cannot be re-signed for the next connection, and it expires within 5 minutes; give --channel or --channel-arn instead of --url (kvssign then signs a fresh URL for every connection), or leave out --reconnect")
		case f.once:
			return usagef("--reconnect with --once: --once checks the handshake and disconnects, so there is nothing to reconnect; give one of them")
		}
	}
	if f.aws.timeout <= 0 {
		return usagef("--timeout %v: must be positive", f.aws.timeout)
	}
	dbg := newDebugLog(f.debug, stderr)
	t, err := connectTarget(ctx, f, dbg)
	if err != nil {
		return err
	}
	if f.su != "" && diagnose.EndpointRole(t.endpoint) == kvs.Master && t.clientID != "" {
		fmt.Fprintf(stderr, "kvssign: warning: the URL carries a ClientId, as a viewer's does, but its endpoint is the channel's MASTER endpoint; KVS refuses that (400), and a service that accepts it connects you as the master\n")
	}
	dbg.printf("connecting to %s as %s", redactedURL(t.url), t.role)
	errOut := &lockedWriter{w: stderr}
	cl, err := dialTarget(ctx, f, t, dbg, errOut)
	if err != nil {
		return dialFailure(ctx, stdout, f, t, err)
	}
	defer cl.Close()
	if f.once {
		cl.Close()
		info := connectedJSON{OK: true, Role: t.role, ChannelARN: t.arn, ClientID: t.clientID, Endpoint: t.endpoint}
		if f.json() {
			return writeJSON(stdout, info)
		}
		who := string(t.role)
		if t.clientID != "" {
			who += " " + printable(t.clientID)
		}
		_, err := fmt.Fprintf(stdout, "connected as %s to %s (%s)\n", who, printable(t.arn), redactedURL(t.endpoint))
		return err
	}
	how := ""
	if f.reconnect {
		how = "; reconnecting with a fresh URL when the connection ends"
	}
	fmt.Fprintf(errOut, "kvssign: connected as %s to %s; reading JSON messages from stdin, printing received ones%s\n", t.role, printable(t.arn), how)
	return bridge(ctx, cl, stdin, stdout, errOut, f, t, dbg)
}

// connectTarget signs (or takes) the URL to dial.
func connectTarget(ctx context.Context, f *connectFlags, dbg *debugLog) (target, error) {
	if f.su != "" {
		if f.ch.channel != "" || f.ch.channelARN != "" || f.endpoint != "" || f.clientID != "" {
			return target{}, usagef("--url: give it alone, without --channel, --channel-arn, --endpoint or --client-id")
		}
		return targetFromURL(f.su, f.role)
	}
	role, err := parseRole(f.role)
	if err != nil {
		return target{}, err
	}
	channel, err := f.ch.get()
	if err != nil {
		return target{}, err
	}
	clientID := f.clientID
	switch {
	case role == kvs.Viewer && clientID == "":
		clientID = kvs.NewClientID()
	case role == kvs.Viewer:
		if err := kvs.ValidateClientID(clientID); err != nil {
			return target{}, usagef("--client-id: %v", trimKVS(err))
		}
	case clientID != "":
		return target{}, usagef("--client-id: a master connects without a client id")
	}
	if f.expires < time.Second || f.expires > kvs.MaxExpires {
		return target{}, usagef("--expires %v: must be from 1s to %v (KVS refuses longer)", f.expires, kvs.MaxExpires)
	}
	var s kvs.SignedURL
	var resign func(context.Context) (kvs.SignedURL, error)
	if f.endpoint != "" {
		if !strings.HasPrefix(channel, "arn:") {
			return target{}, usagef("--endpoint: signing offline needs the channel's ARN (--channel-arn), not its name")
		}
		if er := diagnose.EndpointRole(f.endpoint); er != "" && er != role {
			return target{}, usagef("--endpoint %s is a %s endpoint but --role is %s: use the endpoint GetSignalingChannelEndpoint returns for %s, or leave out --endpoint to have it resolved",
				f.endpoint, er, strings.ToLower(string(role)), role)
		}
		creds, err := signingCredentials(ctx, &f.aws, dbg, arnRegion(channel))
		if err != nil {
			return target{}, err
		}
		p := &kvs.Presigner{Credentials: creds, Region: f.aws.region, Expires: f.expires, ClockOffset: f.aws.clockOffset}
		if dbg.enabled() {
			p.Trace = dbg.trace
		}
		if s, err = p.Presign(ctx, f.endpoint, channel, role, clientID); err != nil {
			if errors.Is(err, errNoCredentials) {
				return target{}, err
			}
			return target{}, usageError{err}
		}
		resign = func(ctx context.Context) (kvs.SignedURL, error) {
			return p.Presign(ctx, f.endpoint, channel, role, clientID)
		}
	} else {
		cfg, err := f.aws.config(ctx, dbg, arnRegion(channel))
		if err != nil {
			return target{}, err
		}
		r := f.aws.resolver(cfg, dbg)
		r.Expires = f.expires
		if s, err = r.Presign(ctx, channel, role, clientID); err != nil {
			return target{}, explainAWS(err, diagnose.Failure{Role: role, Channel: channel, Region: cfg.Region, ARNRegion: arnRegion(channel),
				ClientID: clientID, LocalNow: time.Now(), ClockOffset: f.aws.clockOffset})
		}
		// The resolver keeps the ARN and endpoint: re-signing asks the
		// control plane nothing until its cache expires.
		resign = func(ctx context.Context) (kvs.SignedURL, error) {
			return r.Presign(ctx, channel, role, clientID)
		}
	}
	t, err := targetFromURL(s.URL, string(role))
	if err != nil {
		return target{}, err
	}
	t.clientID = clientID
	t.resign = func(ctx context.Context) (string, error) {
		s, err := resign(ctx)
		return s.URL, err
	}
	return t, nil
}

// errNoCredentials marks missing environment credentials.
var errNoCredentials = errors.New("no credentials")

// signingCredentials returns the credentials to sign with offline: the
// environment's when it has them and nothing asks for more, otherwise the
// SDK's chain.
func signingCredentials(ctx context.Context, f *awsFlags, dbg *debugLog, regionHint string) (sigv4.CredentialsProvider, error) {
	if !f.usesChain() {
		c, err := envCredentials()
		if err != nil {
			return nil, err
		}
		dbg.printf("credentials: %s from the environment", c.AccessKeyID)
		return c, nil
	}
	cfg, err := f.config(ctx, dbg, regionHint)
	if err != nil {
		return nil, err
	}
	return awskvs.Credentials(cfg.Credentials, 0), nil
}

// targetFromURL reads a presigned signaling URL. role, if set, must agree
// with what the URL says.
func targetFromURL(raw, role string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return target{}, usagef("--url %s: must be a wss:// (or ws://) signaling URL", redactedURL(raw))
	}
	q, err := sigv4.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, usagef("--url: %v", err)
	}
	t := target{url: raw}
	hasSig := false
	for _, p := range q {
		switch p.Name {
		case kvs.ParamChannelARN:
			t.arn = p.Value
		case kvs.ParamClientID:
			t.clientID = p.Value
		case sigv4.ParamSignature:
			hasSig = true
		case sigv4.ParamDate:
			t.signedAt, _ = time.Parse("20060102T150405Z", p.Value)
		case sigv4.ParamCredential:
			if parts := strings.Split(p.Value, "/"); len(parts) == 5 {
				t.region = parts[2]
			}
		}
	}
	if !hasSig {
		return target{}, usagef("--url: has no X-Amz-Signature: sign it first (kvssign url)")
	}
	e := *u
	e.RawQuery = ""
	t.endpoint = e.String()
	switch {
	case diagnose.EndpointRole(t.endpoint) != "":
		t.role = diagnose.EndpointRole(t.endpoint)
	case t.clientID != "":
		t.role = kvs.Viewer
	default:
		t.role = kvs.Master
	}
	if role == "" {
		return t, nil
	}
	r, err := parseRole(role)
	if err != nil {
		return target{}, err
	}
	if why := roleConflict(t, r); why != "" {
		return target{}, usagef("--role %s, but --url %s: give a URL signed for %s, or leave out --role to connect as the URL says",
			strings.ToLower(string(r)), why, strings.ToLower(string(r)))
	}
	t.role = r
	return t, nil
}

// roleConflict says how a signed URL contradicts role, or returns "" if
// it does not: a viewer's URL carries a client id, a master's none, and an
// endpoint's shape may name its role.
func roleConflict(t target, role kvs.Role) string {
	switch er := diagnose.EndpointRole(t.endpoint); {
	case role == kvs.Master && t.clientID != "":
		return fmt.Sprintf("carries X-Amz-ClientId %q, as a viewer's does", t.clientID)
	case role == kvs.Viewer && t.clientID == "":
		return "carries no X-Amz-ClientId, as a master's does"
	case er != "" && er != role:
		return fmt.Sprintf("is for the channel's %s endpoint", er)
	}
	return ""
}

type connectedJSON struct {
	OK         bool     `json:"ok"`
	Role       kvs.Role `json:"role"`
	ChannelARN string   `json:"channelArn,omitempty"`
	ClientID   string   `json:"clientId,omitempty"`
	Endpoint   string   `json:"endpoint"`
}

// failureJSON is the --output json form of a refused handshake.
type failureJSON struct {
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	Status     int    `json:"status,omitempty"`
	ErrorType  string `json:"errorType,omitempty"`
	Message    string `json:"message,omitempty"`
	URL        string `json:"url,omitempty"`
	ServerDate string `json:"serverDate,omitempty"`
	diagnose.Diagnosis
}

// handshakeInput is what is known of a handshake before its answer.
func handshakeInput(f *connectFlags, t target) diagnose.Failure {
	return diagnose.Failure{Role: t.role, Endpoint: t.endpoint, Channel: t.arn,
		Region: t.region, ARNRegion: arnRegion(t.arn), ClientID: t.clientID, LocalNow: time.Now(),
		ClockOffset: f.aws.clockOffset, SignedAt: t.signedAt}
}

// explainHandshake turns a refused (in.Status set) or unanswered
// (in.NoAnswer) handshake into the command's error, with its diagnosis,
// printed as JSON too with --output json.
func explainHandshake(stdout io.Writer, f *connectFlags, t target, in diagnose.Failure) error {
	head := handshakeHead(in)
	d := diagnose.Explain(in)
	if f.json() {
		out := failureJSON{Status: in.Status, ErrorType: printable(in.Code), Message: printable(redactSecrets(in.Message)), URL: redactedURL(t.url), Diagnosis: printableDiagnosis(d)}
		if !in.ServerDate.IsZero() {
			out.ServerDate = in.ServerDate.UTC().Format(time.RFC3339)
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	}
	e := fmt.Errorf("connect %s: %s", redactedURL(t.endpoint), head)
	if d.Cause == "" {
		return e
	}
	return diagnosedError{err: e, d: d, printed: f.json()}
}

// handshakeHead says what became of a handshake: its status, error type
// and message, or why there was no answer.
func handshakeHead(in diagnose.Failure) string {
	if in.NoAnswer {
		return "no handshake: " + printable(in.Message)
	}
	head := fmt.Sprintf("handshake refused: HTTP %d", in.Status)
	if in.Code != "" {
		head += " " + printable(in.Code)
	}
	if in.Message != "" {
		head += ": " + printable(in.Message)
	}
	return head
}

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
		return m, errors.New(trimKVS(err))
	}
	return m, nil
}

// dialTarget makes the first connection with t.url, the URL connectTarget
// signed (so that a refusal is diagnosed whatever the mode). Without
// --reconnect the client keeps to that connection; with it, it signs a
// fresh URL for every later one.
func dialTarget(ctx context.Context, f *connectFlags, t target, dbg *debugLog, errOut io.Writer) (*signaling.Client, error) {
	var used atomic.Bool
	src := func(ctx context.Context) (string, error) {
		if used.CompareAndSwap(false, true) {
			return t.url, nil
		}
		u, err := t.resign(ctx)
		if err != nil {
			return "", scrub(err)
		}
		dbg.printf("signed a fresh URL: %s", redactedURL(u))
		return u, nil
	}
	logger := slog.New(warnHandler{w: errOut})
	if dbg.enabled() {
		logger = dbg.slogger()
	}
	opts := &signaling.Options{DialTimeout: f.aws.timeout, Logger: logger, NoReconnect: !f.reconnect}
	if bridgeOptions != nil {
		bridgeOptions(opts)
	}
	return signaling.Dial(ctx, src, opts)
}

// bridgeOptions, if set (by tests), adjusts the signaling client's
// options: its idle timeout and duration limit, say, to renew connections
// within a test's time.
var bridgeOptions func(*signaling.Options)

// dialFailure explains the signaling client's failed first connection: a
// *HandshakeError carries the status, the error type, the message and the
// Date header.
func dialFailure(ctx context.Context, stdout io.Writer, f *connectFlags, t target, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	in := handshakeInput(f, t)
	var he *signaling.HandshakeError
	if errors.As(err, &he) {
		in.Status, in.Code, in.Message, in.ServerDate = he.StatusCode, he.Type, he.Message, he.Date
	} else {
		in.NoAnswer = true
		in.Message = redactSecrets(err.Error())
	}
	return explainHandshake(stdout, f, t, in)
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
	j.Message = redactSecrets(why)
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
		return fmt.Errorf("connect %s: %s%s: %s", redactedURL(t.endpoint), head, how, printable(redactSecrets(err.Error())))
	}
	in := handshakeInput(f, t)
	in.Status, in.Code, in.Message, in.ServerDate = he.StatusCode, he.Type, he.Message, he.Date
	e := fmt.Errorf("connect %s: %s%s: %s", redactedURL(t.endpoint), head, how, handshakeHead(in))
	d := diagnose.Explain(in)
	if d.Cause == "" {
		return e
	}
	if f.json() {
		j := failureJSON{Error: redactSecrets(e.Error()), Status: in.Status, ErrorType: printable(in.Code), Message: printable(redactSecrets(in.Message)),
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
			fmt.Fprintf(errOut, "kvssign: stdin line %d: %s\n", n, printable(redactSecrets(err.Error())))
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
	_, err := io.WriteString(h.w, redactSecrets(b.String()))
	return err
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(h.attrs[:len(h.attrs):len(h.attrs)], as...)
	return h
}

func (h warnHandler) WithGroup(string) slog.Handler { return h }
