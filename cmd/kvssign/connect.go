package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

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
			return target{}, flagError("--client-id", err)
		}
	case clientID != "":
		return target{}, usagef("--client-id: a master connects without a client id")
	}
	if f.expires < time.Second || f.expires > kvs.MaxExpires {
		return target{}, usagef("--expires %v: must be from 1s to %v (SigV4's limit; KVS takes a URL only within %v of signing whatever it says)", f.expires, kvs.MaxExpires, kvs.UseWithin)
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
		out := failureJSON{Status: in.Status, ErrorType: printable(in.Code), Message: printable(sigv4.Redact(in.Message)), URL: redactedURL(t.url), Diagnosis: printableDiagnosis(d)}
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
		in.Message = sigv4.Redact(err.Error())
	}
	return explainHandshake(stdout, f, t, in)
}
