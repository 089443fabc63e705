package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// TestOfferAnswerCandidates runs a whole negotiation's worth of messages
// through the emulator and checks what each side receives.
func TestOfferAnswerCandidates(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	master := dial(t, v.source(kvs.Master, ""), nil)
	viewer := dial(t, v.source(kvs.Viewer, "viewer-1"), nil)
	ctx := testContext(t)
	if n := len(leakcheck.Stacks(ourCode)); n == 0 {
		t.Error("the leak check sees no goroutine of two live clients")
	}

	offer := kvs.SessionDescription{Type: "offer", SDP: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
	if err := viewer.SendOffer(ctx, "", offer); err != nil {
		t.Fatal(err)
	}
	got, _ := await(t, master, 5*time.Second, "offer", isType(EventOffer))
	payload, err := kvs.EncodePayload(offer)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Type: EventOffer, From: "viewer-1", SDP: offer, Conn: 1,
		Message: kvs.ServerMessage{SenderClientID: "viewer-1", MessageType: kvs.ActionSDPOffer, MessagePayload: payload}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".At"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("master received (-want +got):\n%s", diff)
	}

	answer := kvs.SessionDescription{SDP: "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"} // Type filled in
	if err := master.SendAnswer(ctx, got.From, answer); err != nil {
		t.Fatal(err)
	}
	got, _ = await(t, viewer, 5*time.Second, "answer", isType(EventAnswer))
	answer.Type = "answer"
	if got.From != "" || got.SDP != answer {
		t.Errorf("viewer received %+v; want the answer %+v from the master (no sender)", got, answer)
	}
	exchange(t, master, viewer, "viewer-1", 1, 5)
}

func TestSendValidation(t *testing.T) {
	v := newEnv(t, fastConfig())
	c := dial(t, v.source(kvs.Viewer, "viewer-1"), nil)
	ctx := testContext(t)
	cases := []struct {
		name string
		send func() error
		want string
	}{
		{"offer typed as answer", func() error {
			return c.SendOffer(ctx, "", kvs.SessionDescription{Type: "answer", SDP: "v=0"})
		}, `signaling: SDP_OFFER: description type "answer": must be "offer"`},
		{"empty sdp", func() error {
			return c.SendAnswer(ctx, "", kvs.SessionDescription{})
		}, "signaling: SDP_ANSWER: description sdp: is empty"},
		{"bad recipient", func() error {
			return c.SendCandidate(ctx, "no spaces", candidate(1))
		}, "recipientClientId"},
		{"payload too large", func() error {
			return c.SendOffer(ctx, "", kvs.SessionDescription{SDP: strings.Repeat("a", 9000)})
		}, "more than the limit of 10240"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.send()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
}

// A reconnectCase is one way a connection ends, and what the clients
// must report of it.
type reconnectCase struct {
	name    string
	cfg     func(*emulator.Config)
	opts    Options
	trigger func(*emulator.Emulator)
	// advance, if set, runs the clients on a fake clock, moved on by
	// advance in place of a trigger.
	advance time.Duration
	// reasons lists what must come before the first EventReconnected,
	// and the reason it must carry.
	before []EventType
	reason func(error) bool
}

// TestReconnect forces each way a connection ends and checks that the
// client reconnects with a freshly signed URL and that messages sent after
// reconnecting all arrive, both ways.
func TestReconnect(t *testing.T) {
	cases := []reconnectCase{
		{
			name:    "GO_AWAY",
			cfg:     func(c *emulator.Config) { c.GoAwayGrace = 3 * time.Second },
			trigger: func(e *emulator.Emulator) { e.GoAway(emulator.Target{}) },
			before:  []EventType{EventGoAway},
			reason:  func(err error) bool { return errors.Is(err, ErrGoAway) },
		},
		{
			name:    "dropped connection",
			trigger: func(e *emulator.Emulator) { e.Drop(emulator.Target{}) },
			before:  []EventType{EventDisconnected},
			reason:  func(err error) bool { return strings.Contains(err.Error(), "connection lost") },
		},
		{
			name:    "closed by the service",
			trigger: func(e *emulator.Emulator) { e.Disconnect(emulator.Target{}, 1011, "internal error") },
			before:  []EventType{EventDisconnected},
			reason:  func(err error) bool { return strings.Contains(err.Error(), "1011 internal error") },
		},
		{
			name:   "idle timeout, closed by the service",
			cfg:    func(c *emulator.Config) { c.IdleTimeout = 1200 * time.Millisecond },
			opts:   Options{IdleTimeout: -1},
			before: []EventType{EventDisconnected},
			reason: func(err error) bool { return strings.Contains(err.Error(), "idle timeout") },
		},
		{
			name:    "idle timeout, renewed by the client",
			cfg:     func(c *emulator.Config) { c.IdleTimeout = 10 * time.Second },
			opts:    Options{IdleTimeout: time.Second},
			advance: time.Second,
			reason: func(err error) bool {
				return errors.Is(err, ErrRenewed) && strings.Contains(err.Error(), "nothing sent")
			},
		},
		{
			name: "maximum duration, GO_AWAY",
			cfg: func(c *emulator.Config) {
				c.MaxConnectionDuration = 2 * time.Second
				c.GoAwayGrace = time.Second
			},
			opts:   Options{MaxConnectionDuration: -1},
			before: []EventType{EventGoAway},
			reason: func(err error) bool { return errors.Is(err, ErrGoAway) },
		},
		{
			name:    "maximum duration, renewed by the client",
			cfg:     func(c *emulator.Config) { c.MaxConnectionDuration = time.Minute },
			opts:    Options{MaxConnectionDuration: time.Second},
			advance: time.Second,
			reason: func(err error) bool {
				return errors.Is(err, ErrRenewed) && strings.Contains(err.Error(), "connected for")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runReconnectCase(t, tc) })
	}
}

// runReconnectCase connects a master and a viewer, ends their connections
// as tc says, and checks that both reconnect and exchange messages again.
func runReconnectCase(t *testing.T, tc reconnectCase) {
	t.Cleanup(func() { checkNoLeak(t) })
	cfg := fastConfig()
	if tc.cfg != nil {
		tc.cfg(&cfg)
	}
	v := newEnv(t, cfg)
	msrc, vsrc := v.source(kvs.Master, ""), v.source(kvs.Viewer, "viewer-1")
	opts := tc.opts
	var clock *fakeClock
	if tc.advance > 0 {
		clock = newFakeClock(time.Now())
		// Pacing would wait on the fake clock: it is not under test.
		opts.Clock, opts.SDPRate, opts.ICERate = clock, -1, -1
	}
	master, viewer := dial(t, msrc, &opts), dial(t, vsrc, &opts)
	exchange(t, master, viewer, "viewer-1", 1, 3)
	if tc.trigger != nil {
		tc.trigger(v.e)
	}
	if clock != nil {
		clock.Advance(tc.advance)
	}
	checkReconnected(t, tc, "master", master)
	checkReconnected(t, tc, "viewer", viewer)
	exchange(t, master, viewer, "viewer-1", 2, 5)

	// Every handshake the emulator saw used a URL of its own, signed
	// for that attempt.
	st := v.e.Stats()
	for _, s := range []struct {
		op  string
		src *source
	}{{emulator.OpConnectAsMaster, msrc}, {emulator.OpConnectAsViewer, vsrc}} {
		if got, want := st.Calls[s.op], int64(s.src.calls()); got != want || want < 2 {
			t.Errorf("%s: %d handshakes, %d URLs signed; want equal and at least 2", s.op, got, want)
		}
	}
	master.Close()
	viewer.Close()
}

// checkReconnected checks who's EventReconnected: its reason, the events
// before it, and that it is on a new connection.
func checkReconnected(t *testing.T, tc reconnectCase, who string, client *Client) {
	t.Helper()
	ev, skipped := await(t, client, 10*time.Second, who+" reconnected", isType(EventReconnected))
	if !tc.reason(ev.Err) {
		t.Errorf("%s: reconnected because %v; not the expected reason", who, ev.Err)
	}
	var types []EventType
	for _, s := range skipped {
		types = append(types, s.Type)
	}
	for _, want := range tc.before {
		if !containsType(types, want) {
			t.Errorf("%s: events before reconnecting %s; want %v among them", who, describe(skipped), want)
		}
	}
	if ev.Conn < 2 {
		t.Errorf("%s: reconnected on connection %d; want a new one", who, ev.Conn)
	}
}

func containsType(types []EventType, t EventType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// renewing hands out temporary credentials from the emulator, renewing
// them when they are about to expire, as an STS-backed provider would.
type renewing struct {
	mu     sync.Mutex
	now    func() time.Time
	e      *emulator.Emulator
	life   time.Duration
	margin time.Duration
	cur    sigv4.Credentials
	issued int
}

func (r *renewing) Retrieve(context.Context) (sigv4.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.AccessKeyID == "" || r.cur.Expires.Sub(r.now()) < r.margin {
		r.cur = r.e.IssueCredentials(r.life)
		r.issued++
	}
	return r.cur, nil
}

// TestReconnectAfterCredentialsExpire lets the credentials of the first
// connection expire, drops it, and checks that the client reconnects with a
// URL signed by renewed credentials.
func TestReconnectAfterCredentialsExpire(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	// The emulator and the signer share a clock that the test moves on
	// rather than sleeping until the credentials expire.
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fastConfig()
	cfg.Clock = now
	v := newEnv(t, cfg)
	// URLs live two seconds, at least one after X-Amz-Date drops the
	// fraction of a second; credentials are renewed when they would not
	// outlive a URL.
	creds := &renewing{now: now, e: v.e, life: 5 * time.Second, margin: 2500 * time.Millisecond}
	v.signer = &kvs.Presigner{Credentials: creds, Expires: 2 * time.Second, Clock: now}
	msrc, vsrc := v.source(kvs.Master, ""), v.source(kvs.Viewer, "viewer-1")
	master, viewer := dial(t, msrc, nil), dial(t, vsrc, nil)
	exchange(t, master, viewer, "viewer-1", 1, 2)

	creds.mu.Lock()
	first := creds.cur
	creds.mu.Unlock()
	ahead.Add(int64(first.Expires.Sub(now()) + 200*time.Millisecond))
	// The URL and the credentials it was signed with are both dead now:
	// only a fresh signature with new credentials gets back in.
	v.e.Drop(emulator.Target{})
	for _, c := range []*Client{master, viewer} {
		await(t, c, 10*time.Second, "reconnected", isType(EventReconnected))
	}
	exchange(t, master, viewer, "viewer-1", 2, 3)

	for _, src := range []*source{msrc, vsrc} {
		urls := src.all()
		if len(urls) < 2 {
			t.Fatalf("URLs signed: %q; want at least 2", urls)
		}
		a, b := credentialOf(urls[0]), credentialOf(urls[len(urls)-1])
		if a == b || !strings.Contains(a, first.AccessKeyID) {
			t.Errorf("first URL signed with %q, last with %q; want the first credentials, then new ones", a, b)
		}
		for _, u := range urls {
			if shown := sigv4.Redact(u); strings.Contains(shown, first.SessionToken) || strings.Contains(shown, first.SecretAccessKey) {
				t.Errorf("redacted URL %q holds a secret", shown)
			}
		}
	}
	if creds.issued < 2 {
		t.Errorf("credentials issued %d times; want renewal", creds.issued)
	}
}

func credentialOf(u string) string {
	for _, p := range strings.Split(u[strings.IndexByte(u, '?')+1:], "&") {
		if v, ok := strings.CutPrefix(p, "X-Amz-Credential="); ok {
			return v
		}
	}
	return ""
}

// TestHandshakeErrors checks that a refused upgrade is reported with the
// service's status, error type, message and date, and without the
// signature.
func TestHandshakeErrors(t *testing.T) {
	v := newEnv(t, fastConfig())
	region := v.e.Region()
	good := v.creds.(sigv4.Credentials)
	bad := good
	bad.SecretAccessKey = "not-the-secret"
	unknownARN := "arn:aws:kinesisvideo:" + region + ":" + v.e.Account() + ":channel/nope/1"
	// signWith signs a viewer URL by hand, so that rules the presigner
	// enforces (a client id not starting with AWS_) can be broken.
	signWith := func(creds sigv4.Credentials, arn, clientID string) URLSource {
		return func(ctx context.Context) (string, error) {
			s := sigv4.Signer{Service: kvs.Service, Region: region}
			ep, err := kvs.ParseEndpoint(v.viewerEP)
			if err != nil {
				return "", err
			}
			return s.Presign(ctx, creds, &sigv4.PresignRequest{
				Scheme: ep.Scheme, Host: ep.Host, Path: ep.Path, Expires: time.Minute,
				Query: []sigv4.Param{{Name: kvs.ParamChannelARN, Value: arn}, {Name: kvs.ParamClientID, Value: clientID}},
			})
		}
	}
	cases := []struct {
		name     string
		src      URLSource
		status   int
		typ      string
		message  string
		retrying bool
	}{
		{"invalid client id", signWith(good, v.arn, "AWS_viewer"), 400, "InvalidArgumentException", "Invalid ClientId specified !", false},
		{"bad signature", signWith(bad, v.arn, "viewer-1"), 403, "AccessDeniedException", "signature", true},
		{"unknown channel", signWith(good, unknownARN, "viewer-1"), 404, "ResourceNotFoundException", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := tc.src(context.Background())
			_, err := Dial(testContext(t), tc.src, nil)
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("Dial error %v (%T); want a *HandshakeError", err, err)
			}
			if he.StatusCode != tc.status || he.Type != tc.typ || !strings.Contains(he.Message, tc.message) {
				t.Errorf("got %d %q %q; want %d %q and a message containing %q", he.StatusCode, he.Type, he.Message, tc.status, tc.typ, tc.message)
			}
			if he.Date.IsZero() || time.Since(he.Date).Abs() > time.Minute {
				t.Errorf("Date %v; want the emulator's time", he.Date)
			}
			if got := he.retryable(); got != tc.retrying {
				t.Errorf("retryable() = %v; want %v", got, tc.retrying)
			}
			for _, secret := range secretsOf(u) {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the signature", err)
				}
			}
			if !strings.Contains(err.Error(), "X-Amz-Signature="+sigv4.Redacted) {
				t.Errorf("error %q does not show the redacted URL", err)
			}
		})
	}
}

// TestReconnectPolicy checks which refusals after a drop end the client and
// which are retried, and how often.
func TestReconnectPolicy(t *testing.T) {
	cases := []struct {
		name string
		// setup changes what the next connection attempts meet.
		setup     func(t *testing.T, v *env, src *source)
		opts      Options
		wantCalls int // URLs signed in all, the first connection's included
		wantErr   func(error) bool
	}{
		{
			name: "404 ends the client at once",
			setup: func(t *testing.T, v *env, src *source) {
				arn := "arn:aws:kinesisvideo:" + v.e.Region() + ":" + v.e.Account() + ":channel/gone/1"
				src.set(Presigned(v.signer, v.viewerEP, arn, kvs.Viewer, "viewer-1"))
			},
			wantCalls: 2,
			wantErr:   func(err error) bool { return statusOf(err) == 404 && attemptsOf(err) == 1 },
		},
		{
			name: "403 is retried three times with fresh URLs",
			setup: func(t *testing.T, v *env, src *source) {
				bad := v.creds.(sigv4.Credentials)
				bad.SecretAccessKey = "wrong"
				src.set(Presigned(&kvs.Presigner{Credentials: bad}, v.viewerEP, v.arn, kvs.Viewer, "viewer-1"))
			},
			opts:      Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
			wantCalls: 1 + maxAuthRetries,
			wantErr: func(err error) bool {
				return statusOf(err) == 403 && attemptsOf(err) == maxAuthRetries
			},
		},
		{
			name: "throttling is retried until it passes",
			setup: func(t *testing.T, v *env, src *source) {
				if err := v.e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle, Operations: []string{emulator.OpConnectAsViewer}, Count: 2}); err != nil {
					t.Fatal(err)
				}
			},
			opts:      Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
			wantCalls: 1 + 3,
		},
		{
			name: "5xx is retried at most MaxAttempts times",
			setup: func(t *testing.T, v *env, src *source) {
				if err := v.e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.Fault5xx, Operations: []string{emulator.OpConnectAsViewer}}); err != nil {
					t.Fatal(err)
				}
			},
			opts:      Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 4},
			wantCalls: 1 + 4,
			wantErr: func(err error) bool {
				return statusOf(err) == 500 && attemptsOf(err) == 4 && strings.Contains(err.Error(), "gave up after 4 attempts")
			},
		},
		{
			name: "a failing URL source is retried",
			setup: func(t *testing.T, v *env, src *source) {
				n := 0
				ok := Presigned(v.signer, v.viewerEP, v.arn, kvs.Viewer, "viewer-1")
				src.set(func(ctx context.Context) (string, error) {
					if n++; n <= 2 {
						return "", errors.New("credentials unavailable")
					}
					return ok(ctx)
				})
			},
			opts:      Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
			wantCalls: 2, // failures are not counted by the source
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { checkNoLeak(t) })
			v := newEnv(t, fastConfig())
			src := v.source(kvs.Viewer, "viewer-1")
			opts := tc.opts
			c := dial(t, src, &opts)
			waitConns(t, v.e, 1)
			tc.setup(t, v, src)
			v.e.Drop(emulator.Target{})
			if tc.wantErr == nil {
				await(t, c, 10*time.Second, "reconnected", isType(EventReconnected))
			} else {
				checkEnded(t, c, tc.wantErr)
			}
			if got := src.calls(); got != tc.wantCalls {
				t.Errorf("URLs signed: %d; want %d", got, tc.wantCalls)
			}
		})
	}
}

// checkEnded waits for c to end, and checks that its error is the one
// wanted and that sending and closing afterwards return that same error.
func checkEnded(t *testing.T, c *Client, wantErr func(error) bool) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client still running")
	}
	for range c.Events() {
		// Drain what was delivered before the end.
	}
	if err := c.Err(); !wantErr(err) {
		t.Errorf("Err() = %v; not the expected error", err)
	}
	if err := c.SendCandidate(testContext(t), "", candidate(1)); err != c.Err() {
		t.Errorf("SendCandidate after the end = %v; want %v", err, c.Err())
	}
	if err := c.Close(); err != c.Err() {
		t.Errorf("Close() = %v; want %v", err, c.Err())
	}
}

// attemptsOf returns the attempts of a *GiveUpError, or 0.
func attemptsOf(err error) int {
	var ge *GiveUpError
	if errors.As(err, &ge) {
		return ge.Attempts
	}
	return 0
}

func statusOf(err error) int {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// TestPacing sends a burst of candidates and offers, more than the
// service's per-second limits allow, and checks that pacing gets every
// one delivered, and that without pacing the service refuses some with a
// STATUS_RESPONSE the client reports as a *StatusError.
func TestPacing(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	cfg := fastConfig()
	cfg.SDPRate, cfg.ICERate = 5, 20 // the KVS limits
	v := newEnv(t, cfg)
	master := dial(t, v.source(kvs.Master, ""), nil)
	viewer := dial(t, v.source(kvs.Viewer, "paced"), nil)
	ctx := testContext(t)

	const n = 30
	start := time.Now()
	for i := range n {
		if err := viewer.SendCandidate(ctx, "", candidate(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 8 {
		if err := viewer.SendOffer(ctx, "", kvs.SessionDescription{SDP: "v=0 " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < n+8; {
		ev, _ := await(t, master, 10*time.Second, "paced messages", func(ev Event) bool {
			return ev.Type == EventCandidate || ev.Type == EventOffer
		})
		_ = ev
		got++
	}
	if el := time.Since(start); el < 800*time.Millisecond {
		t.Errorf("%d candidates and 8 offers sent in %v; pacing should have spread them over a second or more", n, el)
	}
	select {
	case ev := <-viewer.Events():
		t.Errorf("viewer received %v %v; want nothing", ev.Type, ev.Err)
	default:
	}

	// Without pacing the service refuses the excess.
	unpaced := dial(t, v.source(kvs.Viewer, "unpaced"), &Options{ICERate: -1})
	for i := range n {
		if err := unpaced.SendCandidate(ctx, "", candidate(i)); err != nil {
			t.Fatal(err)
		}
	}
	ev, _ := await(t, unpaced, 5*time.Second, "a STATUS_RESPONSE", isType(EventStatus))
	var se *StatusError
	if !errors.As(ev.Err, &se) || se.Code != 400 || se.Type != "ClientLimitExceededException" || !strings.HasPrefix(se.CorrelationID, "candidate-") {
		t.Errorf("status event error %#v; want a 400 ClientLimitExceededException for a candidate", ev.Err)
	}
}

func TestBufferCandidates(t *testing.T) {
	for _, buffer := range []bool{false, true} {
		name := "delivered as they come"
		if buffer {
			name = "held until the offer"
		}
		t.Run(name, func(t *testing.T) {
			v := newEnv(t, fastConfig())
			master := dial(t, v.source(kvs.Master, ""), &Options{BufferCandidates: buffer})
			viewer := dial(t, v.source(kvs.Viewer, "early"), nil)
			ctx := testContext(t)
			for i := range 3 {
				if err := viewer.SendCandidate(ctx, "", candidate(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := viewer.SendOffer(ctx, "", kvs.SessionDescription{SDP: "v=0"}); err != nil {
				t.Fatal(err)
			}
			if err := viewer.SendCandidate(ctx, "", candidate(3)); err != nil {
				t.Fatal(err)
			}
			var got []EventType
			for len(got) < 5 {
				ev, _ := await(t, master, 5*time.Second, "messages", func(Event) bool { return true })
				got = append(got, ev.Type)
			}
			want := []EventType{EventCandidate, EventCandidate, EventCandidate, EventOffer, EventCandidate}
			if buffer {
				want = []EventType{EventOffer, EventCandidate, EventCandidate, EventCandidate, EventCandidate}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("master received (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReconnectICEServer(t *testing.T) {
	v := newEnv(t, fastConfig())
	c := dial(t, v.source(kvs.Viewer, "viewer-1"), nil)
	waitConns(t, v.e, 1)
	if n := v.e.ReconnectICEServer(emulator.Target{}); n != 1 {
		t.Fatalf("ReconnectICEServer told %d connections; want 1", n)
	}
	await(t, c, 5*time.Second, "RECONNECT_ICE_SERVER", isType(EventReconnectICEServer))
}

// proxy forwards TCP connections to target until frozen: then it stops
// forwarding on the connections it has (without closing them), as a dead
// network path would, while new connections work.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen []chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		freeze := make(chan struct{})
		p.mu.Lock()
		p.frozen = append(p.frozen, freeze)
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				select {
				case <-freeze:
					return // swallow and stop, leaving both open
				default:
				}
				if n > 0 {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					dst.Close()
					return
				}
			}
		}
		p.wg.Add(2)
		go pipe(out, in)
		go pipe(in, out)
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	for _, f := range p.frozen {
		close(f)
	}
	p.frozen = nil
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestDeadConnection freezes the network path under a connection: no close,
// no error, just silence. The client must notice by its ping going
// unanswered and reconnect.
func TestDeadConnection(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	p := newProxy(t, strings.TrimPrefix(v.e.URL(), "http://"))
	ep := strings.Replace(v.viewerEP, strings.TrimPrefix(v.e.URL(), "http://"), p.ln.Addr().String(), 1)
	src := &source{next: Presigned(v.signer, ep, v.arn, kvs.Viewer, "viewer-1")}
	master := dial(t, v.source(kvs.Master, ""), nil)
	viewer := dial(t, src, &Options{PingInterval: 300 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	exchange(t, master, viewer, "viewer-1", 1, 2)

	p.freeze()
	ev, _ := await(t, viewer, 10*time.Second, "disconnected", isType(EventDisconnected))
	if !strings.Contains(ev.Err.Error(), "no pong within 300ms") {
		t.Errorf("disconnected because %v; want the unanswered ping", ev.Err)
	}
	await(t, viewer, 10*time.Second, "reconnected", isType(EventReconnected))
	exchange(t, master, viewer, "viewer-1", 2, 3)
}

// hangingServer accepts connections and never answers.
func hangingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestDialDeadlines checks that Dial gives up on a server that never answers
// when its timeout passes or its context ends, without leaking the URL's
// signature or a goroutine.
func TestDialDeadlines(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	addr := hangingServer(t)
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	src := func(context.Context) (string, error) {
		return "ws://" + addr + "/?X-Amz-ChannelARN=x&X-Amz-Security-Token=SECRETTOKEN&X-Amz-Signature=" + sig, nil
	}
	cases := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		opts Options
		want error
	}{
		{"dial timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			Options{DialTimeout: 200 * time.Millisecond}, context.DeadlineExceeded},
		{"context cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, Options{}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := Dial(ctx, src, &tc.opts)
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("Dial took %v", el)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Dial error %v; want %v", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "SECRETTOKEN")) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

// TestConcurrentUse sends from many goroutines while the connection is
// replaced under them; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	cfg := fastConfig()
	cfg.GoAwayGrace = 500 * time.Millisecond
	cfg.Logger = testLogger(t)
	v := newEnv(t, cfg)
	master := dial(t, v.source(kvs.Master, ""), &Options{Logger: testLogger(t)})
	viewer := dial(t, v.source(kvs.Viewer, "viewer-1"), &Options{ICERate: -1, Logger: testLogger(t)})
	ctx := testContext(t)
	const senders, each = 4, 15
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := viewer.SendCandidate(ctx, "", candidate(g*100+i)); err != nil {
					t.Error(err)
					return
				}
				if i == each/2 && g == 0 {
					v.e.GoAway(emulator.Target{Role: kvs.Viewer})
				}
				_ = viewer.Err()
			}
		}()
	}
	got := map[string]bool{}
	t.Cleanup(func() { t.Logf("stats %+v; got %d", v.e.Stats(), len(got)) })
	for len(got) < senders*each {
		ev, _ := await(t, master, 10*time.Second, "candidates", isType(EventCandidate))
		got[ev.Candidate.Candidate] = true
	}
	wg.Wait()
	// Close from several goroutines at once.
	var cwg sync.WaitGroup
	for range 3 {
		cwg.Add(1)
		go func() { defer cwg.Done(); viewer.Close() }()
	}
	cwg.Wait()
	if err := viewer.SendCandidate(ctx, "", candidate(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("SendCandidate after Close = %v; want ErrClosed", err)
	}
	if _, ok := <-viewer.Events(); ok {
		// Events may still hold what came before Close; drain it.
		for range viewer.Events() {
		}
	}
}

// TestSendWaitsForReconnection sends while the client is disconnected: the
// send waits for the new connection, or for its context.
func TestSendWaitsForReconnection(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	src := v.source(kvs.Viewer, "viewer-1")
	master := dial(t, v.source(kvs.Master, ""), nil)
	viewer := dial(t, src, &Options{MinBackoff: 500 * time.Millisecond, MaxBackoff: time.Second})
	good := src.next
	block := make(chan struct{})
	src.set(func(ctx context.Context) (string, error) {
		select {
		case <-block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return good(ctx)
	})
	waitConns(t, v.e, 2)
	v.e.Drop(emulator.Target{Role: kvs.Viewer})
	await(t, viewer, 5*time.Second, "disconnected", isType(EventDisconnected))

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := viewer.SendCandidate(short, "", candidate(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendCandidate while disconnected with a short deadline = %v; want DeadlineExceeded", err)
	}
	sent := make(chan error, 1)
	go func() { sent <- viewer.SendCandidate(testContext(t), "", candidate(2)) }()
	waitWaiting(t, "(*Client).current")
	close(block)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	ev, _ := await(t, master, 5*time.Second, "the candidate", isType(EventCandidate))
	if ev.Candidate.Candidate != candidate(2).Candidate {
		t.Errorf("master received %q; want %q", ev.Candidate.Candidate, candidate(2).Candidate)
	}
}

// TestCloseLeavesNothing counts every goroutine of the process, not only
// this package's: after the clients and the emulator are closed, the count
// returns to where it was.
func TestCloseLeavesNothing(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtimeGoroutines()
	func() {
		v := newEnv(t, fastConfig())
		master, err := Dial(testContext(t), v.source(kvs.Master, "").get, nil)
		if err != nil {
			t.Fatal(err)
		}
		viewer, err := Dial(testContext(t), v.source(kvs.Viewer, "viewer-1").get, nil)
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, master, viewer, "viewer-1", 1, 3)
		v.e.GoAway(emulator.Target{Role: kvs.Master})
		v.e.Drop(emulator.Target{Role: kvs.Viewer})
		await(t, master, 5*time.Second, "master reconnected", isType(EventReconnected))
		await(t, viewer, 5*time.Second, "viewer reconnected", isType(EventReconnected))
		master.Close()
		viewer.Close()
		v.e.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		after := runtimeGoroutines()
		if after <= before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after closing everything", before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoReconnect: with NoReconnect the client keeps the connection Dial
// made: GO_AWAY is delivered and not followed, idle renewal is off, and
// when the connection ends Events closes and Err says why, after one
// handshake in all.
func TestNoReconnect(t *testing.T) {
	cases := []struct {
		name    string
		cfg     func(*emulator.Config)
		trigger func(*emulator.Emulator)
		before  []EventType
		want    func(error) bool
	}{
		{
			name:    "GO_AWAY, then the service's close",
			cfg:     func(c *emulator.Config) { c.GoAwayGrace = 200 * time.Millisecond },
			trigger: func(e *emulator.Emulator) { e.GoAway(emulator.Target{}) },
			before:  []EventType{EventGoAway},
			want: func(err error) bool {
				var ce *CloseError
				return errors.As(err, &ce) && (ce.Code == 1000 || ce.Code == 1001)
			},
		},
		{
			name:    "closed by the service",
			trigger: func(e *emulator.Emulator) { e.Disconnect(emulator.Target{}, 1011, "internal error") },
			want: func(err error) bool {
				var ce *CloseError
				return errors.As(err, &ce) && ce.Code == 1011 && ce.Reason == "internal error"
			},
		},
		{
			name:    "dropped connection",
			trigger: func(e *emulator.Emulator) { e.Drop(emulator.Target{}) },
			want:    func(err error) bool { return err != nil && strings.Contains(err.Error(), "connection lost") },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { checkNoLeak(t) })
			cfg := fastConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			v := newEnv(t, cfg)
			src := v.source(kvs.Master, "")
			c := dial(t, src, &Options{NoReconnect: true, IdleTimeout: 50 * time.Millisecond})
			waitConns(t, v.e, 1)
			tc.trigger(v.e)
			var got []EventType
			for ev := range c.Events() {
				got = append(got, ev.Type)
			}
			for _, want := range tc.before {
				if !containsType(got, want) {
					t.Errorf("events %v; want %v among them", got, want)
				}
			}
			if containsType(got, EventReconnected) || containsType(got, EventDisconnected) {
				t.Errorf("events %v; want no reconnection", got)
			}
			if err := c.Err(); !tc.want(err) {
				t.Errorf("Err() = %v (%T); not the expected end", err, err)
			}
			if n := src.calls(); n != 1 {
				t.Errorf("%d URLs signed; want 1", n)
			}
			if err := c.Close(); !tc.want(err) {
				t.Errorf("Close() = %v; want the error that ended the client", err)
			}
		})
	}
}

// TestNoReconnectDialOnce: with NoReconnect a URL refused for clock skew
// is not retried, though the skew is learned for the next Dial.
func TestNoReconnectDialOnce(t *testing.T) {
	v := newEnv(t, fastConfig())
	skew := new(kvs.ClockSkew)
	v.signer = &kvs.Presigner{Credentials: v.creds, Skew: skew, Clock: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	src := v.source(kvs.Viewer, "viewer-1")
	_, err := Dial(testContext(t), src.get, &Options{NoReconnect: true})
	if statusOf(err) != 403 || src.calls() != 1 {
		t.Fatalf("Dial: %v after %d URLs; want a 403 after 1", err, src.calls())
	}
	if skew.Offset() < 9*time.Minute {
		t.Errorf("learned offset %v; want about 10m", skew.Offset())
	}
	c := dial(t, src, &Options{NoReconnect: true})
	c.Close()
}

// TestCloseDuringPing: Close does not wait for the pong of a ping in
// flight on a dead path.
func TestCloseDuringPing(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	p := newProxy(t, strings.TrimPrefix(v.e.URL(), "http://"))
	ep := strings.Replace(v.masterEP, strings.TrimPrefix(v.e.URL(), "http://"), p.ln.Addr().String(), 1)
	c, err := Dial(testContext(t), Presigned(v.signer, ep, v.arn, kvs.Master, ""), &Options{PingInterval: 50 * time.Millisecond, PongTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.freeze()
	waitWaiting(t, "(*conn).ping")
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v; want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for the pong")
	}
}

// TestOneGoroutinePerClient: a connected client runs one goroutine, which
// reads the connection, and holds no more after reconnections, graceful
// (GO_AWAY) or not (a drop): the work of a replacement ends with it. With
// OnEvent, that goroutine also delivers the events.
func TestOneGoroutinePerClient(t *testing.T) {
	for _, callback := range []bool{false, true} {
		t.Run(fmt.Sprintf("OnEvent=%v", callback), func(t *testing.T) {
			t.Cleanup(func() { checkNoLeak(t) })
			cfg := fastConfig()
			cfg.GoAwayGrace = time.Minute // the client leaves first
			v := newEnv(t, cfg)
			reconnected := make(chan Event, 1)
			var closed atomic.Bool
			opts := &Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
			if callback {
				opts.OnEvent = func(ev Event) {
					if closed.Load() {
						t.Errorf("OnEvent(%v) after Close returned", ev.Type)
					}
					if ev.Type == EventReconnected {
						reconnected <- ev
					}
				}
			}
			c := dial(t, v.source(kvs.Master, ""), opts)
			if callback {
				if _, ok := <-c.Events(); ok {
					t.Fatal("Events delivered an event to a client with OnEvent")
				}
			}
			one := func(when string) {
				t.Helper()
				waitFor(t, when+": one goroutine", func() bool { return len(leakcheck.Stacks(ourCode)) == 1 })
			}
			one("connected")
			var fds int
			for i := range 6 {
				if i%2 == 0 {
					v.e.GoAway(emulator.Target{})
				} else {
					v.e.Drop(emulator.Target{})
				}
				var ev Event
				if callback {
					select {
					case ev = <-reconnected:
					case <-time.After(5 * time.Second):
						t.Fatal("no EventReconnected")
					}
				} else {
					ev, _ = await(t, c, 5*time.Second, "reconnected", isType(EventReconnected))
				}
				if ev.Conn != i+2 {
					t.Fatalf("reconnected on connection %d; want %d", ev.Conn, i+2)
				}
				one(fmt.Sprintf("after reconnection %d", i+1))
				// A connection left behind holds its socket (and its
				// buffers): the count of open files must settle back.
				if i == 1 {
					fds = openFiles(t)
				} else if i > 1 {
					waitFor(t, fmt.Sprintf("after reconnection %d: %d open files", i+1, fds), func() bool { return openFiles(t) <= fds })
				}
			}
			v.e.GoAway(emulator.Target{}) // events under way while closing
			c.Close()
			closed.Store(true)
		})
	}
}

// openFiles returns how many files the process has open.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("counting open files: %v", err)
	}
	return len(fds)
}
