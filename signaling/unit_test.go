package signaling

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSecretsOf(t *testing.T) {
	got := secretsOf("wss://h/?X-Amz-Security-Token=a%2Fb&X-Amz-Signature=sig&X-Amz-Date=1")
	if diff := cmp.Diff([]string{"a%2Fb", "a/b", "sig"}, got); diff != "" {
		t.Errorf("secretsOf (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 10 * time.Second
	cases := []struct {
		n        int
		rnd      float64
		want     time.Duration
		wantDesc string
	}{
		{0, 0, 0, "first attempt after a drop: at once at the earliest"},
		{0, 0.5, 50 * time.Millisecond, "first attempt: a random part of the minimum"},
		{1, 0, 100 * time.Millisecond, "half of 2·min"},
		{1, 0.999, 199900 * time.Microsecond, "almost all of 2·min"},
		{3, 0, 400 * time.Millisecond, "half of 8·min"},
		{7, 0, 5 * time.Second, "capped at max: half of it"},
		{7, 0.5, 7500 * time.Millisecond, "capped at max"},
		{1000, 0.5, 7500 * time.Millisecond, "no overflow"},
	}
	for _, tc := range cases {
		if got := backoff(tc.n, lo, hi, tc.rnd); got != tc.want {
			t.Errorf("backoff(%d, rnd %v) = %v; want %v (%s)", tc.n, tc.rnd, got, tc.want, tc.wantDesc)
		}
	}
}

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// 20/s: burst 10, then one every 1/18 s.
	p := newPacer(20)
	var waits []time.Duration
	for range 12 {
		waits = append(waits, p.reserve(t0).Round(time.Millisecond))
	}
	want := []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 56 * time.Millisecond, 111 * time.Millisecond}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits for 12 candidates at once (-want +got):\n%s", diff)
	}
	// A cancelled turn is given back.
	p.cancel()
	if got := p.reserve(t0).Round(time.Millisecond); got != 111*time.Millisecond {
		t.Errorf("after a cancel, wait %v; want 111ms", got)
	}
	// After a quiet second the bucket is full again.
	p = newPacer(5)
	for range 2 {
		p.reserve(t0)
	}
	if got := p.reserve(ms(0)); got <= 0 {
		t.Errorf("third SDP at once waits %v; want a wait (burst 2)", got)
	}
	if got := p.reserve(ms(5000)); got != 0 {
		t.Errorf("SDP after 5 s waits %v; want none", got)
	}
	// No pacing.
	p = newPacer(-1)
	for range 100 {
		if d := p.reserve(t0); d != 0 {
			t.Fatalf("unpaced wait %v", d)
		}
	}
}

func TestOptionsSettings(t *testing.T) {
	cases := []struct {
		name    string
		opts    *Options
		wantErr string
		check   func(t *testing.T, s settings)
	}{
		{name: "nil is the defaults", opts: nil, check: func(t *testing.T, s settings) {
			if s.DialTimeout != 10*time.Second || s.WriteTimeout != 5*time.Second || s.PingInterval != 10*time.Second ||
				s.MaxAttempts != 20 || s.SDPRate != 5 || s.ICERate != 20 || s.EventBuffer != 8 {
				t.Errorf("defaults %+v", s.Options)
			}
			if s.idleRenew != 9*time.Minute+30*time.Second || s.durationRenew != 58*time.Minute {
				t.Errorf("renewals at %v idle and %v age; want 9m30s and 58m", s.idleRenew, s.durationRenew)
			}
		}},
		{name: "short limits renew a tenth early", opts: &Options{IdleTimeout: 2 * time.Second, MaxConnectionDuration: 10 * time.Second}, check: func(t *testing.T, s settings) {
			if s.idleRenew != 1800*time.Millisecond || s.durationRenew != 9*time.Second {
				t.Errorf("renewals at %v and %v; want 1.8s and 9s", s.idleRenew, s.durationRenew)
			}
		}},
		{name: "negative limits disable renewal", opts: &Options{IdleTimeout: -1, MaxConnectionDuration: -1}, check: func(t *testing.T, s settings) {
			if s.idleRenew != 0 || s.durationRenew != 0 {
				t.Errorf("renewals at %v and %v; want none", s.idleRenew, s.durationRenew)
			}
		}},
		{name: "negative dial timeout", opts: &Options{DialTimeout: -time.Second}, wantErr: "signaling: option DialTimeout -1s: must not be negative"},
		{name: "backoff bounds crossed", opts: &Options{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, wantErr: "signaling: option MaxBackoff 1ms: must be at least MinBackoff 1s"},
		{name: "negative attempts", opts: &Options{MaxAttempts: -1}, wantErr: "signaling: option MaxAttempts -1: must not be negative"},
		{name: "negative buffer", opts: &Options{EventBuffer: -1}, wantErr: "signaling: option EventBuffer -1: must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.opts.settings()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestRenewalDue(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s, _ := (&Options{IdleTimeout: 10 * time.Second, MaxConnectionDuration: 100 * time.Second}).settings()
	c := &Client{opts: s}
	cn := &conn{start: t0}
	cn.lastSent.Store(t0.UnixNano())
	cases := []struct {
		name     string
		lastSent time.Duration // after t0
		now      time.Duration
		wait     time.Duration
		why      string
	}{
		{"fresh", 0, 0, 9 * time.Second, ""},
		{"idle, not yet", 0, 5 * time.Second, 4 * time.Second, ""},
		{"idle, due", 0, 9 * time.Second, 0, "nothing sent for 9s"},
		{"busy, age not yet", 88 * time.Second, 89 * time.Second, time.Second, ""},
		{"busy, age due", 88 * time.Second, 90 * time.Second, 0, "connected for 1m30s"},
	}
	for _, tc := range cases {
		cn.lastSent.Store(t0.Add(tc.lastSent).UnixNano())
		wait, why := c.renewalDue(cn, t0.Add(tc.now))
		if wait != tc.wait || (why == nil) != (tc.why == "") || why != nil && (!strings.Contains(why.Error(), tc.why) || !errors.Is(why, ErrRenewed)) {
			t.Errorf("%s: renewalDue = %v, %v; want %v, %q", tc.name, wait, why, tc.wait, tc.why)
		}
	}
}

func TestHandshakeErrorFromResponse(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   HandshakeError
	}{
		{"403 with lower-case message", 403,
			http.Header{"X-Amzn-Errortype": {"AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"}, "Date": {"Mon, 23 Nov 2026 10:00:00 GMT"}},
			`{"message":"Signature expired: 20261123T094000Z is now earlier than 20261123T095500Z (20261123T100000Z - 5 min.)"}`,
			HandshakeError{StatusCode: 403, Type: "AccessDeniedException", Message: "Signature expired: 20261123T094000Z is now earlier than 20261123T095500Z (20261123T100000Z - 5 min.)", Date: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}},
		{"400 with upper-case Message", 400, http.Header{}, `{"Message":"Maximum number of clients connected to the channel !"}`,
			HandshakeError{StatusCode: 400, Message: "Maximum number of clients connected to the channel !"}},
		{"text body", 502, http.Header{}, "  bad gateway\n", HandshakeError{StatusCode: 502, Message: "bad gateway"}},
		{"no body", 404, http.Header{}, "", HandshakeError{StatusCode: 404}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
			got := handshakeError(resp, "wss://h/?X-Amz-Signature=REDACTED")
			tc.want.URL = "wss://h/?X-Amz-Signature=REDACTED"
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandshakeErrorRetryable(t *testing.T) {
	cases := []struct {
		e    HandshakeError
		want bool
	}{
		{HandshakeError{StatusCode: 400, Type: "InvalidArgumentException", Message: "Invalid ClientId specified !"}, false},
		{HandshakeError{StatusCode: 400, Type: "ClientLimitExceededException"}, true},
		{HandshakeError{StatusCode: 400, Message: "Maximum number of clients connected to the channel !"}, true},
		{HandshakeError{StatusCode: 401}, true},
		{HandshakeError{StatusCode: 403}, true},
		{HandshakeError{StatusCode: 404}, false},
		{HandshakeError{StatusCode: 408}, true},
		{HandshakeError{StatusCode: 410}, false},
		{HandshakeError{StatusCode: 429}, true},
		{HandshakeError{StatusCode: 500}, true},
		{HandshakeError{StatusCode: 503}, true},
	}
	for _, tc := range cases {
		if got := tc.e.retryable(); got != tc.want {
			t.Errorf("%v: retryable() = %v; want %v", &tc.e, got, tc.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&HandshakeError{StatusCode: 404, Type: "ResourceNotFoundException", Message: "The requested channel is not found or not active.", URL: "wss://h/"},
			"signaling: handshake refused: HTTP 404 ResourceNotFoundException: The requested channel is not found or not active. (wss://h/)"},
		{&HandshakeError{StatusCode: 500}, "signaling: handshake refused: HTTP 500"},
		{&StatusError{Code: 400, Type: "InvalidArgumentException", Description: "bad", CorrelationID: "offer-1"},
			"signaling: message offer-1 refused: 400 InvalidArgumentException: bad"},
		{&GiveUpError{Attempts: 4, Last: &HandshakeError{StatusCode: 500}},
			"signaling: gave up after 4 attempts to reconnect: signaling: handshake refused: HTTP 500"},
		{&GiveUpError{Attempts: 1, Last: &HandshakeError{StatusCode: 404}},
			"signaling: gave up after 1 attempt to reconnect: signaling: handshake refused: HTTP 404"},
		{&CloseError{Code: 1001, Reason: "idle timeout"}, "signaling: closed by the service: 1001 idle timeout"},
		{&CloseError{Code: 1006}, "signaling: closed by the service: 1006"},
		{&RenewalError{Idle: true, Elapsed: 570 * time.Second, Limit: 10 * time.Minute},
			"signaling: connection renewed before the service's limit: nothing sent for 9m30s (service idle timeout 10m0s)"},
		{&RenewalError{Elapsed: 58 * time.Minute, Limit: time.Hour},
			"signaling: connection renewed before the service's limit: connected for 58m0s (service limit 1h0m0s)"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
	var he *HandshakeError
	if err := error(&GiveUpError{Attempts: 2, Last: &HandshakeError{StatusCode: 403}}); !errors.As(err, &he) || he.StatusCode != 403 {
		t.Errorf("errors.As(GiveUpError, *HandshakeError) = %v", he)
	}
	if err := error(&RenewalError{}); !errors.Is(err, ErrRenewed) || errors.Is(err, ErrGoAway) {
		t.Errorf("RenewalError: errors.Is ErrRenewed %v, ErrGoAway %v; want true, false", errors.Is(err, ErrRenewed), errors.Is(err, ErrGoAway))
	}
}

func TestCandidateBuffer(t *testing.T) {
	b := candidateBuffer{enabled: true}
	ev := func(from, c string) Event {
		e := Event{Type: EventCandidate, From: from}
		e.Candidate.Candidate = c
		return e
	}
	if !b.hold(ev("a", "1")) || !b.hold(ev("a", "2")) || !b.hold(ev("b", "3")) {
		t.Fatal("candidates before a description not held")
	}
	got := b.release("a")
	if len(got) != 2 || got[0].Candidate.Candidate != "1" || got[1].Candidate.Candidate != "2" {
		t.Errorf("release(a) = %v; want candidates 1 and 2 in order", got)
	}
	if b.hold(ev("a", "4")) {
		t.Error("candidate after the description held")
	}
	if got := b.release("b"); len(got) != 1 {
		t.Errorf("release(b) = %v; want candidate 3", got)
	}
	// Bounded: the oldest sender's candidates go first.
	b = candidateBuffer{enabled: true}
	for i := range maxHeldSenders + 1 {
		b.hold(ev(strings.Repeat("x", i+1), "c"))
	}
	if len(b.held) != maxHeldSenders || b.held["x"] != nil {
		t.Errorf("held %d senders, oldest kept %v; want %d, oldest dropped", len(b.held), b.held["x"] != nil, maxHeldSenders)
	}
	for range maxHeldPerSender + 5 {
		b.hold(ev("many", "c"))
	}
	if n := len(b.held["many"]); n != maxHeldPerSender {
		t.Errorf("held %d candidates of one sender; want %d", n, maxHeldPerSender)
	}
	// Disabled: nothing held.
	b = candidateBuffer{}
	if b.hold(ev("a", "1")) || b.release("a") != nil {
		t.Error("disabled buffer held a candidate")
	}
}

func TestEventTypeString(t *testing.T) {
	for typ, want := range map[EventType]string{
		EventOffer: "SDP_OFFER", EventCandidate: "ICE_CANDIDATE", EventGoAway: "GO_AWAY",
		EventReconnected: "RECONNECTED", 0: "EventType(0)", 99: "EventType(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("EventType(%d).String() = %q; want %q", int(typ), got, want)
		}
	}
}
