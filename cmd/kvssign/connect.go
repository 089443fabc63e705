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
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

func init() { subcommands = append(subcommands, newConnectCmd) }

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
		case f.aws.timeout <= 0:
			return usagef("--timeout %v: must be positive", f.aws.timeout)
		}
	}
	dbg := newDebugLog(f.debug, stderr)
	t, err := connectTarget(ctx, f, dbg)
	if err != nil {
		return err
	}
	if f.su != "" && endpointRole(t.endpoint) == kvs.Master && t.clientID != "" {
		fmt.Fprintf(stderr, "kvssign: warning: the URL carries a ClientId, as a viewer's does, but its endpoint is the channel's MASTER endpoint; KVS refuses that (400), and a service that accepts it connects you as the master\n")
	}
	dbg.printf("connecting to %s as %s", redactedURL(t.url), t.role)
	if f.reconnect {
		return runBridge(ctx, stdin, stdout, stderr, f, t, dbg)
	}
	dctx, cancel := context.WithTimeout(ctx, f.aws.timeout)
	ws, resp, err := websocket.Dial(dctx, t.url, nil)
	cancel()
	if err != nil {
		return handshakeFailure(ctx, stdout, f, t, resp, err)
	}
	ws.SetReadLimit(1 << 20)
	info := connectedJSON{OK: true, Role: t.role, ChannelARN: t.arn, ClientID: t.clientID, Endpoint: t.endpoint}
	if f.once {
		ws.Close(websocket.StatusNormalClosure, "")
		if f.json() {
			return writeJSON(stdout, info)
		}
		who := string(t.role)
		if t.clientID != "" {
			who += " " + t.clientID
		}
		_, err := fmt.Fprintf(stdout, "connected as %s to %s (%s)\n", who, t.arn, t.endpoint)
		return err
	}
	fmt.Fprintf(stderr, "kvssign: connected as %s to %s; reading JSON messages from stdin, printing received ones\n", t.role, t.arn)
	return relay(ctx, ws, stdin, stdout, stderr, f, dbg)
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
	if f.expires < time.Second || f.expires > kvs.UseWithin {
		return target{}, usagef("--expires %v: must be from 1s to %v (KVS refuses longer)", f.expires, kvs.UseWithin)
	}
	var s kvs.SignedURL
	var resign func(context.Context) (kvs.SignedURL, error)
	if f.endpoint != "" {
		if !strings.HasPrefix(channel, "arn:") {
			return target{}, usagef("--endpoint: signing offline needs the channel's ARN (--channel-arn), not its name")
		}
		if er := endpointRole(f.endpoint); er != "" && er != role {
			return target{}, usagef("--endpoint %s is a %s endpoint but --role is %s: use the endpoint GetSignalingChannelEndpoint returns for %s, or leave out --endpoint to have it resolved",
				f.endpoint, er, strings.ToLower(string(role)), role)
		}
		creds, err := signingCredentials(ctx, &f.aws, dbg, arnRegion(channel))
		if err != nil {
			return target{}, err
		}
		p := &kvs.Presigner{Credentials: creds, Region: f.aws.region, Expires: f.expires, Skew: kvs.NewClockSkew(f.aws.clockOffset)}
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
			return target{}, explainAWS(err, diagInput{role: role, channel: channel, region: cfg.Region, arnRegion: arnRegion(channel),
				clientID: clientID, localNow: time.Now(), clockOffset: f.aws.clockOffset})
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

// targetFromURL reads a presigned signaling URL. role, if set, overrides
// what the URL suggests.
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
	case role != "":
		r, err := parseRole(role)
		if err != nil {
			return target{}, err
		}
		t.role = r
	case endpointRole(t.endpoint) != "":
		t.role = endpointRole(t.endpoint)
	case t.clientID != "":
		t.role = kvs.Viewer
	default:
		t.role = kvs.Master
	}
	return t, nil
}

// endpointRole tells a master endpoint from a viewer one by its shape:
// AWS's hosts start with m- or v-, the emulator's paths hold /master/ or
// /viewer/. It returns "" when the shape says nothing.
func endpointRole(endpoint string) kvs.Role {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	switch {
	case strings.HasPrefix(host, "m-") && strings.Contains(host, ".kinesisvideo."):
		return kvs.Master
	case strings.HasPrefix(host, "v-") && strings.Contains(host, ".kinesisvideo."):
		return kvs.Viewer
	case strings.Contains(u.Path, "/master/"):
		return kvs.Master
	case strings.Contains(u.Path, "/viewer/"):
		return kvs.Viewer
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
	diagnosis
}

// handshakeFailure explains a refused or failed handshake.
func handshakeFailure(ctx context.Context, stdout io.Writer, f *connectFlags, t target, resp *http.Response, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	in := handshakeInput(f, t)
	if resp != nil {
		in.status = resp.StatusCode
		in.code, _, _ = strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
		in.serverDate, _ = parseHTTPDate(resp.Header.Get("Date"))
		var body []byte
		if resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		}
		in.message = bodyMessage(body)
	} else {
		in.noAnswer = true
		in.message = err.Error()
	}
	return explainHandshake(stdout, f, t, in)
}

// handshakeInput is what is known of a handshake before its answer.
func handshakeInput(f *connectFlags, t target) diagInput {
	return diagInput{op: "ConnectAs" + titleRole(t.role), role: t.role, endpoint: t.endpoint, channel: t.arn,
		region: t.region, arnRegion: arnRegion(t.arn), clientID: t.clientID, localNow: time.Now(),
		clockOffset: f.aws.clockOffset, signedAt: t.signedAt}
}

// explainHandshake turns a refused (in.status set) or unanswered
// (in.noAnswer) handshake into the command's error, with its diagnosis,
// printed as JSON too with --output json.
func explainHandshake(stdout io.Writer, f *connectFlags, t target, in diagInput) error {
	head := handshakeHead(in)
	d := diagnose(in)
	if f.json() {
		out := failureJSON{Status: in.status, ErrorType: in.code, Message: redactSecrets(in.message), URL: redactedURL(t.url), diagnosis: d}
		if !in.serverDate.IsZero() {
			out.ServerDate = in.serverDate.UTC().Format(time.RFC3339)
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
func handshakeHead(in diagInput) string {
	if in.noAnswer {
		return "no handshake: " + in.message
	}
	head := fmt.Sprintf("handshake refused: HTTP %d", in.status)
	if in.code != "" {
		head += " " + in.code
	}
	if in.message != "" {
		head += ": " + in.message
	}
	return head
}

func titleRole(r kvs.Role) string {
	if r == kvs.Viewer {
		return "Viewer"
	}
	return "Master"
}

// bodyMessage reads {"message"} or {"Message"} from an error body, or the
// body itself, shortened.
func bodyMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for k, v := range m {
			if s, ok := v.(string); ok && strings.EqualFold(k, "message") {
				return s
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// forDuration is ctx, ending after d if d is positive (--duration).
func forDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// relay prints received messages and sends those read from stdin until
// ctx ends, --duration passes, or the connection closes.
func relay(ctx context.Context, ws *websocket.Conn, stdin io.Reader, stdout, stderr io.Writer, f *connectFlags, dbg *debugLog) error {
	ctx, cancel := forDuration(ctx, f.duration)
	defer cancel()
	out := &lockedWriter{w: stdout}
	errOut := &lockedWriter{w: stderr}
	readErr := make(chan error, 1)
	go func() { readErr <- receive(ctx, ws, out, errOut) }()
	go send(ctx, ws, stdin, errOut, dbg)
	go keepalive(ctx, ws)

	var err error
	select {
	case err = <-readErr:
	case <-ctx.Done():
	}
	if ctx.Err() != nil && err == nil {
		// Interrupted, or --duration passed: a normal end.
		ws.Close(websocket.StatusNormalClosure, "")
		return nil
	}
	switch status := websocket.CloseStatus(err); status {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		fmt.Fprintf(errOut, "kvssign: the service closed the connection (%d %s)\n", int(status), status)
		return nil
	case -1:
		if ctx.Err() != nil {
			ws.Close(websocket.StatusNormalClosure, "")
			return nil
		}
		ws.CloseNow()
		return fmt.Errorf("connect: connection lost: %v", err)
	default:
		return fmt.Errorf("connect: the service closed the connection: %d %s", int(status), closeReason(err))
	}
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
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

func receive(ctx context.Context, ws *websocket.Conn, out, errOut io.Writer) error {
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			fmt.Fprintf(errOut, "kvssign: ignored a %d-byte binary frame\n", len(data))
			continue
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // the service's keep-alive
		}
		m, err := kvs.DecodeServerMessage(data)
		if err != nil {
			fmt.Fprintf(errOut, "kvssign: received a frame that is not a signaling message: %v\n", err)
			continue
		}
		if err := printReceived(out, m); err != nil {
			return err
		}
	}
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
	_, err := out.Write(append(b, '\n'))
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

// writeTimeout bounds each frame sent.
const writeTimeout = 5 * time.Second

func send(ctx context.Context, ws *websocket.Conn, stdin io.Reader, errOut io.Writer, dbg *debugLog) {
	readSent(ctx, stdin, errOut, func(n int, m kvs.ClientMessage) bool {
		b, _ := json.Marshal(m)
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err := ws.Write(wctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(errOut, "kvssign: stdin line %d: sending: %v\n", n, err)
			}
			return false
		}
		dbg.printf("sent %s to %q", m.Action, m.RecipientClientID)
		return true
	})
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
			fmt.Fprintf(errOut, "kvssign: stdin line %d: %v\n", n, err)
			continue
		}
		if !sendOne(n, m) {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(errOut, "kvssign: reading stdin: %v\n", err)
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

// keepalive pings every minute, so a dead connection is noticed; the
// service answers pings (they do not reset its idle timer).
func keepalive(ctx context.Context, ws *websocket.Conn) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ws.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				ws.CloseNow() // the reader reports the loss
				return
			}
		}
	}
}

// The --reconnect bridge: the same relay, over a signaling.Client that
// signs a fresh URL for every connection and reconnects by itself.

// runBridge makes the first connection with t.url, the URL connectTarget
// signed (so that a refusal is diagnosed as without --reconnect), and
// relays until ctx ends, --duration passes, or the client gives up.
func runBridge(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, f *connectFlags, t target, dbg *debugLog) error {
	if t.resign == nil {
		return usagef("--reconnect: needs a channel to sign for, not a URL signed elsewhere")
	}
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
	errOut := &lockedWriter{w: stderr}
	logger := slog.New(warnHandler{w: errOut})
	if dbg.enabled() {
		logger = dbg.slogger()
	}
	opts := &signaling.Options{DialTimeout: f.aws.timeout, Logger: logger}
	if bridgeOptions != nil {
		bridgeOptions(opts)
	}
	cl, err := signaling.Dial(ctx, src, opts)
	if err != nil {
		return dialFailure(ctx, stdout, f, t, err)
	}
	defer cl.Close()
	fmt.Fprintf(errOut, "kvssign: connected as %s to %s; reading JSON messages from stdin, printing received ones; reconnecting with a fresh URL when the connection ends\n", t.role, t.arn)
	return bridge(ctx, cl, stdin, stdout, errOut, f, t, dbg)
}

// bridgeOptions, if set (by tests), adjusts the signaling client's
// options: its idle timeout and duration limit, say, to renew connections
// within a test's time.
var bridgeOptions func(*signaling.Options)

// dialFailure explains the signaling client's failed first connection
// with the same diagnosis as handshakeFailure: a *HandshakeError carries
// the status, the error type, the message and the Date header.
func dialFailure(ctx context.Context, stdout io.Writer, f *connectFlags, t target, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	in := handshakeInput(f, t)
	var he *signaling.HandshakeError
	if errors.As(err, &he) {
		in.status, in.code, in.message, in.serverDate = he.StatusCode, he.Type, he.Message, he.Date
	} else {
		in.noAnswer = true
		in.message = redactSecrets(err.Error())
	}
	return explainHandshake(stdout, f, t, in)
}

// bridge relays between stdin/stdout and the client until ctx ends,
// --duration passes, or the client gives up reconnecting.
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
				if ctx.Err() != nil {
					return nil
				}
				return gaveUp(out, f, t, cl.Err())
			}
			if err := st.handle(ev, out, errOut, f.json(), dbg); err != nil {
				return fmt.Errorf("connect: writing to stdout: %v", err)
			}
		}
	}
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
	case signaling.EventOffer, signaling.EventAnswer, signaling.EventCandidate, signaling.EventStatus, signaling.EventReconnectICEServer:
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
	switch {
	case errors.Is(ev.Err, signaling.ErrGoAway):
		j.Reason, why = "go-away", "the service sent GO_AWAY"
	case errors.Is(ev.Err, signaling.ErrRenewed):
		j.Reason, why = "renewed", strings.TrimPrefix(ev.Err.Error(), "signaling: ")
	default:
		j.Reason, why = "disconnected", "the connection ended"
		if ev.Err != nil {
			why += ": " + strings.TrimPrefix(ev.Err.Error(), "signaling: ")
		}
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
	_, err := out.Write(append(b, '\n'))
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
	var he *signaling.HandshakeError
	if !errors.As(err, &he) {
		return fmt.Errorf("connect %s: %s: %s", redactedURL(t.endpoint), head, strings.TrimPrefix(err.Error(), "signaling: "))
	}
	in := handshakeInput(f, t)
	in.status, in.code, in.message, in.serverDate = he.StatusCode, he.Type, he.Message, he.Date
	// The client's error wraps the refusal, which names the URL: keep
	// what it says around the refusal (how many attempts), not the URL.
	how := ""
	if before, _, ok := strings.Cut(err.Error(), he.Error()); ok {
		how = strings.TrimSuffix(strings.TrimPrefix(before, "signaling: "), ": ")
		if how != "" {
			how = " (" + how + ")"
		}
	}
	e := fmt.Errorf("connect %s: %s%s: %s", redactedURL(t.endpoint), head, how, handshakeHead(in))
	d := diagnose(in)
	if d.Cause == "" {
		return e
	}
	if f.json() {
		j := failureJSON{Error: redactSecrets(e.Error()), Status: in.status, ErrorType: in.code, Message: redactSecrets(in.message),
			URL: redactedURL(he.URL), diagnosis: d}
		if !in.serverDate.IsZero() {
			j.ServerDate = in.serverDate.UTC().Format(time.RFC3339)
		}
		b, _ := json.Marshal(j)
		out.Write(append(b, '\n'))
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
			fmt.Fprintf(errOut, "kvssign: stdin line %d: %s\n", n, redactSecrets(strings.TrimPrefix(err.Error(), "signaling: ")))
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
	b.WriteString(r.Message)
	sep := " ("
	add := func(a slog.Attr) bool {
		b.WriteString(sep + a.Key + " " + a.Value.String())
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

// diagInput is what is known about a refused call or handshake.
type diagInput struct {
	op          string // e.g. ConnectAsViewer, DescribeSignalingChannel
	status      int    // HTTP status; 0 without an answer
	code        string // the service's error type
	message     string
	attempts    int
	noAnswer    bool
	serverDate  time.Time     // the answer's Date header
	localNow    time.Time     // this machine's clock when the answer came
	clockOffset time.Duration // what --clock-offset added when signing
	signedAt    time.Time
	role        kvs.Role
	endpoint    string
	channel     string
	region      string // signed for
	arnRegion   string
	clientID    string
}

// diagnosis is the likely cause of a failure and its fix.
type diagnosis struct {
	Cause                string `json:"cause,omitempty"` // a short id, e.g. clock-skew
	Explanation          string `json:"explanation,omitempty"`
	Fix                  string `json:"fix,omitempty"`
	SuggestedClockOffset string `json:"suggestedClockOffset,omitempty"`
}

// Causes, as in the JSON output and docs/cli.md.
const (
	causeClockSkew       = "clock-skew"
	causeURLExpired      = "url-expired"
	causeExpiredCreds    = "expired-credentials"
	causeInvalidCreds    = "invalid-credentials"
	causeSignature       = "signature-mismatch"
	causeRegion          = "region-mismatch"
	causePermission      = "missing-permission"
	causeWrongEndpoint   = "wrong-endpoint"
	causeClientID        = "invalid-client-id"
	causeTooManyViewers  = "too-many-viewers"
	causeThrottled       = "throttled"
	causeUnknownChannel  = "unknown-channel"
	causeExpiresTooLong  = "expires-too-long"
	causeNoCredentials   = "no-credentials"
	causeUnreachable     = "unreachable"
	causeServiceError    = "service-error"
	causeInvalidArgument = "invalid-argument"
)

// skewThreshold is how far the signing clock may be from the service's
// before skew is named as the cause (the service allows 5 minutes).
const skewThreshold = time.Minute

// diagnose names the likely cause of a failure from what the service said.
func diagnose(in diagInput) diagnosis {
	msg := strings.ToLower(in.message)
	has := func(phrases ...string) bool {
		for _, p := range phrases {
			if strings.Contains(msg, p) {
				return true
			}
		}
		return false
	}
	code := in.code
	action := "kinesisvideo:ConnectAs" + titleRole(in.role)
	if in.op != "" && !strings.HasPrefix(in.op, "ConnectAs") {
		action = "kinesisvideo:" + in.op
	}
	// The offset that makes the signing clock read the service's time.
	var skew time.Duration
	haveSkew := !in.serverDate.IsZero() && !in.localNow.IsZero()
	if haveSkew {
		// The Date header has whole seconds: compare whole seconds.
		skew = in.serverDate.Sub(in.localNow.Truncate(time.Second)).Round(time.Second)
		if skew > -2*time.Second && skew < 2*time.Second {
			skew = 0 // the Date header has whole seconds
		}
	}
	off := skew - in.clockOffset // > 0: the signing clock is behind
	skewed := haveSkew && (off > skewThreshold || off < -skewThreshold)
	timeWords := has("signature expired", "signature not yet current", "requesttimetooskewed", "request time too skewed")

	switch {
	case timeWords && skewed || in.status == 403 && skewed && off.Abs() > 4*time.Minute:
		dir := "behind"
		if off < 0 {
			dir = "ahead of"
		}
		return diagnosis{Cause: causeClockSkew,
			Explanation: fmt.Sprintf("clock skew: the signing clock (this machine's%s) is %v %s the service's (its Date header: %s), beyond the 5 minutes SigV4 allows",
				offsetNote(in.clockOffset), off.Abs(), dir, in.serverDate.UTC().Format(time.RFC1123)),
			Fix:                  fmt.Sprintf("rerun with --clock-offset=%v (it is added to the local clock), or set this machine's clock right (NTP)", skew),
			SuggestedClockOffset: skew.String()}
	case has("signature expired"):
		return diagnosis{Cause: causeURLExpired,
			Explanation: "the signed URL expired before it was used: signaling URLs live at most 300 s from X-Amz-Date",
			Fix:         "sign a fresh URL right before connecting (kvssign connect signs one itself)"}
	case timeWords:
		return diagnosis{Cause: causeClockSkew,
			Explanation: "the signing time is outside the 5 minutes the service allows: this machine's clock is probably off",
			Fix:         "set the clock right (NTP), or correct it with --clock-offset"}
	case has("security token included in the request is expired") || code == "ExpiredTokenException" || code == "ExpiredToken":
		return diagnosis{Cause: causeExpiredCreds,
			Explanation: "the temporary credentials (session token) have expired",
			Fix:         "renew them (aws sso login, or ask STS again); with --role-arn kvssign renews them itself"}
	case has("credential should be scoped to a valid region"):
		d := diagnosis{Cause: causeRegion,
			Explanation: fmt.Sprintf("region mismatch: the request was signed for %s, but the service or channel is in another region", orDefault(in.region, "one region")),
			Fix:         "set --region (or AWS_REGION) to the channel's region: the fourth field of its ARN"}
		if in.arnRegion != "" && in.arnRegion != in.region {
			d.Explanation += "; the channel ARN says " + in.arnRegion
			d.Fix = "use --region " + in.arnRegion + " (the channel ARN's region)"
		}
		return d
	case has("credential should be scoped to correct service"):
		return diagnosis{Cause: causeSignature, Explanation: "the request was signed for another service", Fix: "sign for kinesisvideo"}
	case has("security token included in the request is invalid") || code == "UnrecognizedClientException" || code == "InvalidClientTokenId":
		return diagnosis{Cause: causeInvalidCreds,
			Explanation: "the service does not know the access key id, or the session token does not belong to it (another account or partition, a deleted key, a token from another session)",
			Fix:         "check AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN, or --profile; temporary keys (ASIA…) need their own session token"}
	case has("signature we calculated does not match") || code == "SignatureDoesNotMatch":
		return diagnosis{Cause: causeSignature,
			Explanation: "the signature does not match: a wrong secret access key, or the URL was changed after signing (re-encoded, a parameter added or reordered by a tool)",
			Fix:         "check AWS_SECRET_ACCESS_KEY; pass the signed URL on unchanged"}
	case has("x-amz-expires must be at most"):
		return diagnosis{Cause: causeExpiresTooLong,
			Explanation: "X-Amz-Expires is over 300 seconds, which KVS refuses for signaling",
			Fix:         "sign with --expires 299s or less"}
	case has("not authorized to perform") || in.status == 403 && (code == "AccessDeniedException" || code == "AccessDenied") && !in.noAnswer:
		// Indexes come from the message itself: lower-casing may change
		// its length.
		if i := strings.Index(in.message, "perform: "); i >= 0 {
			rest := in.message[i+len("perform: "):]
			if j := strings.IndexAny(rest, " ,"); j > 0 {
				action = rest[:j]
			}
		}
		// The service names the resource it checked ("… on resource:
		// ARN"); that is what the policy must allow.
		on, resource := "on the channel", orDefault(in.channel, "the channel's ARN")
		if i := strings.Index(in.message, "on resource: "); i >= 0 {
			if f := strings.Fields(in.message[i+len("on resource: "):]); len(f) > 0 {
				if r := strings.TrimRight(f[0], ".,"); r != "" {
					on, resource = "on "+r, r
				}
			}
		}
		return diagnosis{Cause: causePermission,
			Explanation: fmt.Sprintf("access denied: the principal that signed lacks the %s permission %s (or a session policy or SCP removes it)", action, on),
			Fix:         fmt.Sprintf("allow %s on %s in the signer's IAM policy", action, resource)}
	case has("invalid clientid"):
		if in.role == kvs.Master || in.clientID == "" {
			if er := endpointRole(in.endpoint); er == kvs.Viewer || in.clientID == "" {
				return diagnosis{Cause: causeWrongEndpoint,
					Explanation: "the URL has no ClientId, as a master's, but the endpoint is the channel's VIEWER endpoint, which requires one",
					Fix:         "connect as master to the endpoint GetSignalingChannelEndpoint returns for Role MASTER (leave out --endpoint to have it resolved), or as viewer with a --client-id"}
			}
		}
		return diagnosis{Cause: causeClientID,
			Explanation: fmt.Sprintf("the ClientId %q is invalid: it must be 1 to 256 characters of a-z A-Z 0-9 _ . - and not start with AWS_", in.clientID),
			Fix:         "choose another --client-id (or leave it out for a random one)"}
	case has("maximum number of clients"):
		return diagnosis{Cause: causeTooManyViewers,
			Explanation: "the channel already has its maximum of viewers connected (10 by default)",
			Fix:         "disconnect a viewer, or reuse a ClientId: a viewer connecting with a ClientId already in use replaces that connection"}
	case code == "ClientLimitExceededException" || code == "ThrottlingException" || code == "Throttling" || in.status == 429:
		return diagnosis{Cause: causeThrottled,
			Explanation: "throttled: too many calls (KVS allows 3 ConnectAsMaster/ConnectAsViewer per second per channel, and a few TPS per channel on the control plane)",
			Fix:         "retry after a pause, with backoff; cache ARNs and endpoints rather than asking for them on every connection"}
	case in.status == 404 || code == "ResourceNotFoundException":
		where := ""
		if in.region != "" {
			where = " in " + in.region
		}
		return diagnosis{Cause: causeUnknownChannel,
			Explanation: fmt.Sprintf("the channel %s does not exist%s: a wrong name or region, or it was deleted", orDefault(in.channel, ""), where),
			Fix:         "check the name and --region, list channels with 'kvssign channel list', or create it with 'kvssign channel create NAME'"}
	case in.status == 400 && in.endpoint != "" && endpointRole(in.endpoint) != "" && endpointRole(in.endpoint) != in.role:
		return diagnosis{Cause: causeWrongEndpoint,
			Explanation: fmt.Sprintf("the endpoint is the channel's %s endpoint but the connection is as %s", endpointRole(in.endpoint), in.role),
			Fix:         fmt.Sprintf("use the endpoint GetSignalingChannelEndpoint returns for Role %s", in.role)}
	case in.status == 403:
		return diagnosis{Cause: causePermission,
			Explanation: fmt.Sprintf("access denied: the signer may lack %s on the channel", action),
			Fix:         fmt.Sprintf("allow %s in the signer's IAM policy; run with --debug to see what was signed", action)}
	case in.status == 400 && (code == "InvalidArgumentException" || code == "ValidationException"):
		return diagnosis{Cause: causeInvalidArgument, Explanation: "the service refused a parameter: " + in.message}
	case in.status >= 500:
		return diagnosis{Cause: causeServiceError,
			Explanation: fmt.Sprintf("the service failed (HTTP %d)%s", in.status, attemptsNote(in.attempts)),
			Fix:         "retry later"}
	case has("failed to retrieve credentials", "no valid providers", "failed to refresh cached credentials", "get credentials", "no credentials"):
		return diagnosis{Cause: causeNoCredentials,
			Explanation: "no usable AWS credentials: none in the environment, the profile, SSO, web identity, the container or the instance",
			Fix:         "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a --profile, or run aws sso login"}
	case in.noAnswer || in.status == 0 && has("dial", "connection refused", "no such host", "deadline", "timeout", "cannot reach"):
		return diagnosis{Cause: causeUnreachable,
			Explanation: "no answer from the service" + attemptsNote(in.attempts),
			Fix:         "check the endpoint (--endpoint, --endpoint-url, --region), the network, and any proxy"}
	}
	return diagnosis{}
}

func offsetNote(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf(" with --clock-offset=%v", d)
}

func attemptsNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(", after %d attempts", n)
	}
	return ""
}
