package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

// signed runs kvssign url --output json and returns what it printed.
func signed(t *testing.T, args ...string) signedJSON {
	t.Helper()
	r := cli(t, nil, append([]string{"url", "--output", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("url %v: %v", args, r)
	}
	var s signedJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("url --output json: %v\n%s", err, r.stdout)
	}
	return s
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnectOnce(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	arn := v.channel(t, "cam")
	ep := "--endpoint-url=" + v.url

	r := cli(t, nil, "connect", "--channel", "cam", "--role", "master", "--once", ep)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "connected as MASTER to "+arn+" (ws://127.0.0.1:") || !strings.Contains(r.stdout, "/signaling/master/") {
		t.Errorf("connect master --once: %v", r)
	}
	r = cli(t, nil, "connect", "--channel-arn", arn, "--role", "viewer", "--client-id", "viewer-1", "--once", "--output", "json", ep)
	var got connectedJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || !got.OK || got.Role != kvs.Viewer || got.ClientID != "viewer-1" || got.ChannelARN != arn ||
		!strings.Contains(got.Endpoint, "/signaling/viewer/") || strings.Contains(got.Endpoint, "?") {
		t.Errorf("connect viewer --once --output json: %v", r)
	}

	// Offline: the endpoint and ARN given, credentials from the
	// environment, nothing asked of the control plane.
	viewer := signed(t, "--channel", "cam", "--role", "viewer", ep)
	before := v.e.Stats()
	r = cli(t, nil, "connect", "--channel-arn", arn, "--endpoint", viewer.Endpoint, "--role", "viewer", "--once")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "connected as VIEWER viewer-") {
		t.Errorf("connect offline: %v", r)
	}
	after := v.e.Stats()
	if after.Calls[emulator.OpDescribeSignalingChannel] != before.Calls[emulator.OpDescribeSignalingChannel] ||
		after.Calls[emulator.OpGetSignalingChannelEndpoint] != before.Calls[emulator.OpGetSignalingChannelEndpoint] {
		t.Errorf("connecting offline called the control plane")
	}

	// A URL signed elsewhere.
	master := signed(t, "--channel", "cam", "--role", "master", ep)
	if r := cli(t, nil, "connect", "--url", master.URL, "--once"); r.code != 0 || !strings.HasPrefix(r.stdout, "connected as MASTER") {
		t.Errorf("connect --url: %v", r)
	}
}

func TestConnectRelaysMessages(t *testing.T) {
	v := newEnv(t, emulator.Config{GoAwayGrace: 100 * time.Millisecond})
	v.channel(t, "cam")
	ep := "--endpoint-url=" + v.url
	type peer struct {
		in     *io.PipeWriter
		out    *syncBuffer
		errOut *syncBuffer
		cancel context.CancelFunc
		done   chan int
	}
	start := func(args ...string) *peer {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		p := &peer{in: pw, out: &syncBuffer{}, errOut: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
		go func() { p.done <- run(ctx, append([]string{"connect", ep}, args...), pr, p.out, p.errOut) }()
		t.Cleanup(func() { cancel(); pw.Close() })
		return p
	}
	master := start("--channel", "cam", "--role", "master")
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	viewer := start("--channel", "cam", "--role", "viewer", "--client-id", "viewer-1")
	waitFor(t, "the viewer", func() bool { return v.e.Stats().Connections.Viewer == 1 })

	fmt.Fprintln(viewer.in, `{"action":"SDP_OFFER","messagePayload":{"type":"offer","sdp":"v=0 offer"}}`)
	wantOffer := `{"messageType":"SDP_OFFER","senderClientId":"viewer-1","messagePayload":{"type":"offer","sdp":"v=0 offer"}}`
	waitFor(t, "the offer at the master", func() bool { return strings.Contains(master.out.String(), wantOffer) })

	fmt.Fprintln(master.in, `not json`)
	fmt.Fprintln(master.in, `{"action":"SDP_ANSWER","recipientClientId":"viewer-1","messagePayload":{"type":"answer","sdp":"v=0 answer"}}`)
	wantAnswer := `{"messageType":"SDP_ANSWER","messagePayload":{"type":"answer","sdp":"v=0 answer"}}`
	waitFor(t, "the answer at the viewer", func() bool { return strings.Contains(viewer.out.String(), wantAnswer) })
	if !strings.Contains(master.errOut.String(), "stdin line 1: not a JSON message") {
		t.Errorf("master stderr %q; want the bad line reported", master.errOut.String())
	}
	// A base64 payload is sent as it is.
	payload, _ := kvs.EncodePayload(kvs.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"})
	fmt.Fprintf(viewer.in, `{"action":"ICE_CANDIDATE","messagePayload":%q}`+"\n", payload)
	waitFor(t, "the candidate at the master", func() bool {
		return strings.Contains(master.out.String(), `"messageType":"ICE_CANDIDATE","senderClientId":"viewer-1","messagePayload":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}`)
	})

	// GO_AWAY is printed; when the service then closes, the viewer exits 0.
	v.e.GoAway(emulator.Target{Role: kvs.Viewer})
	waitFor(t, "GO_AWAY at the viewer", func() bool { return strings.Contains(viewer.out.String(), `{"messageType":"GO_AWAY"}`) })
	select {
	case code := <-viewer.done:
		if code != 0 || !strings.Contains(viewer.errOut.String(), "the service closed the connection") {
			t.Errorf("viewer after GO_AWAY: exit %d, stderr %q", code, viewer.errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Error("the viewer did not end after GO_AWAY and the close")
	}
	// Interrupting ends the master normally.
	master.cancel()
	if code := <-master.done; code != 0 {
		t.Errorf("master after interrupt: exit %d, stderr %q", code, master.errOut.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(master.out.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("master stdout line %q is not JSON", line)
		}
	}
}

func TestConnectDuration(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	start := time.Now()
	r := cli(t, nil, "connect", "--channel", "cam", "--role", "master", "--duration", "200ms", "--endpoint-url", v.url)
	if r.code != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("connect --duration 200ms: %v after %v", r, time.Since(start))
	}
}

// A connectDiagnosis is a failing connect and what kvssign must say of it.
type connectDiagnosis struct {
	name string
	cfg  emulator.Config
	// setup prepares the world and returns the connect arguments.
	setup func(t *testing.T, v *env, arn string) []string
	want  diagnosisCheck
}

// A diagnosisCheck is what a failing connect must print.
type diagnosisCheck struct {
	cause string   // the JSON cause
	text  []string // phrases of the text output (stderr)
}

func TestConnectDiagnoses(t *testing.T) {
	for _, tc := range append(signingDiagnoses(), handshakeDiagnoses()...) {
		t.Run(tc.name, func(t *testing.T) { checkConnectDiagnosis(t, tc) })
	}
}

// signingDiagnoses are failures of the clock, the credentials and the
// region a request is signed with.
func signingDiagnoses() []connectDiagnosis {
	return []connectDiagnosis{
		{"clock behind the service", emulator.Config{Clock: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "master"}
			}, diagnosisCheck{diagnose.CauseClockSkew, []string{"403", "Signature expired", "clock skew", "10m0s behind", "--clock-offset=10m0s"}}},
		{"clock offset the wrong way", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "viewer", "--clock-offset", "7m"}
			}, diagnosisCheck{diagnose.CauseClockSkew, []string{"Signature not yet current", "7m0s ahead of", "--clock-offset=0s"}}},
		{"URL expired", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				s := signed(t, "--channel", "cam", "--role", "master", "--endpoint-url", v.url, "--signing-time", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
				return []string{"--url", s.URL}
			}, diagnosisCheck{diagnose.CauseURLExpired, []string{"used too late", "sign a fresh URL"}}},
		{"expired session token", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				ep := endpointOf(t, v, kvs.Master)
				c := v.e.IssueCredentials(-time.Second) // expired already: no waiting
				t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
				t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
				t.Setenv("AWS_SESSION_TOKEN", c.SessionToken)
				return []string{"--channel-arn", arn, "--endpoint", ep, "--role", "master"}
			}, diagnosisCheck{diagnose.CauseExpiredCreds, []string{"security token included in the request is expired", "renew"}}},
		{"unknown access key", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				ep := endpointOf(t, v, kvs.Master)
				t.Setenv("AWS_ACCESS_KEY_ID", "AKIDUNKNOWNKEY")
				return []string{"--channel-arn", arn, "--endpoint", ep, "--role", "master"}
			}, diagnosisCheck{diagnose.CauseInvalidCreds, []string{"does not know the access key id"}}},
		{"wrong secret key", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				ep := endpointOf(t, v, kvs.Master)
				t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
				return []string{"--channel-arn", arn, "--endpoint", ep, "--role", "master"}
			}, diagnosisCheck{diagnose.CauseSignature, []string{"signature does not match", "AWS_SECRET_ACCESS_KEY"}}},
		{"region mismatch on the control plane", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "master", "--region", "eu-west-1"}
			}, diagnosisCheck{diagnose.CauseRegion, []string{"signed for eu-west-1", "--region"}}},
		{"region mismatch on the handshake", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				ep := endpointOf(t, v, kvs.Master)
				r := cli(t, nil, "presign", "--service", "kinesisvideo", "--region", "eu-west-1", "--expires", "60s",
					ep+"?X-Amz-ChannelARN="+arn)
				if r.code != 0 {
					t.Fatal(r)
				}
				return []string{"--url", strings.TrimSpace(r.stdout)}
			}, diagnosisCheck{diagnose.CauseRegion, []string{"signed for eu-west-1", "use --region us-west-2"}}},
		{"missing permission", emulator.Config{Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*",
			"Action":["kinesisvideo:Describe*","kinesisvideo:Get*","kinesisvideo:List*","kinesisvideo:ConnectAsMaster"]}]}`},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "viewer", "--client-id", "viewer-1"}
			}, diagnosisCheck{diagnose.CausePermission, []string{"403", "User: arn:aws:iam::123456789012:user/emulator is not authorized to perform: kinesisvideo:ConnectAsViewer on resource: arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam/",
				"lacks the kinesisvideo:ConnectAsViewer permission on arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam/",
				"allow kinesisvideo:ConnectAsViewer on arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam/"}}},
	}
}

// handshakeDiagnoses are failures of the endpoint, the URL's parameters and
// the channel.
func handshakeDiagnoses() []connectDiagnosis {
	return []connectDiagnosis{
		{"master URL at the viewer endpoint", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				s := signed(t, "--channel-arn", arn, "--endpoint", endpointOf(t, v, kvs.Viewer), "--role", "master")
				return []string{"--url", s.URL}
			}, diagnosisCheck{diagnose.CauseWrongEndpoint, []string{"Invalid ClientId", "VIEWER endpoint", "Role MASTER"}}},
		{"invalid ClientId", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				r := cli(t, nil, "presign", "--service", "kinesisvideo", "--region", "us-west-2", "--expires", "60s",
					endpointOf(t, v, kvs.Viewer)+"?X-Amz-ChannelARN="+arn+"&X-Amz-ClientId=AWS_viewer")
				return []string{"--url", strings.TrimSpace(r.stdout)}
			}, diagnosisCheck{diagnose.CauseClientID, []string{`ClientId "AWS_viewer" is invalid`, "not start with AWS_"}}},
		{"eleventh viewer", emulator.Config{ConnectRate: -1},
			func(t *testing.T, v *env, arn string) []string {
				ep := endpointOf(t, v, kvs.Viewer)
				p := &kvs.Presigner{Credentials: v.e.Credentials()}
				for i := range 10 {
					s, err := p.Presign(context.Background(), ep, arn, kvs.Viewer, fmt.Sprintf("viewer-%d", i))
					if err != nil {
						t.Fatal(err)
					}
					c, _, err := websocket.Dial(context.Background(), s.URL, nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.CloseNow() })
				}
				return []string{"--channel", "cam", "--role", "viewer", "--client-id", "viewer-10"}
			}, diagnosisCheck{diagnose.CauseTooManyViewers, []string{"Maximum number of clients", "maximum of viewers", "reuse a ClientId"}}},
		{"deleted channel", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				s := signed(t, "--channel", "cam", "--role", "master", "--endpoint-url", v.url)
				if r := cli(t, nil, "channel", "delete", "cam", "--endpoint-url", v.url); r.code != 0 {
					t.Fatal(r)
				}
				return []string{"--url", s.URL}
			}, diagnosisCheck{diagnose.CauseUnknownChannel, []string{"404", "does not exist", "kvssign channel create"}}},
		{"unknown channel name", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "no-such-cam", "--role", "master"}
			}, diagnosisCheck{diagnose.CauseUnknownChannel, []string{"ResourceNotFoundException", "does not exist in us-west-2"}}},
		{"expires over 7 days", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				// KVS takes X-Amz-Expires up to SigV4's 604800 s (the C SDK
				// signs with that much); one second more is refused before
				// the signature is checked.
				r := cli(t, nil, "presign", "--service", "kinesisvideo", "--region", "us-west-2", "--expires", "10m",
					endpointOf(t, v, kvs.Master)+"?X-Amz-ChannelARN="+arn)
				return []string{"--url", strings.Replace(strings.TrimSpace(r.stdout), "X-Amz-Expires=600", "X-Amz-Expires=604801", 1)}
			}, diagnosisCheck{diagnose.CauseExpiresTooLong, []string{"604800 seconds", "--expires 299s"}}},
		{"nothing listening", emulator.Config{},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel-arn", arn, "--endpoint", "ws://127.0.0.1:1/signaling/master/m-1", "--role", "master", "--timeout", "2s"}
			}, diagnosisCheck{diagnose.CauseUnreachable, []string{"no handshake", "check the endpoint"}}},
	}
}

// checkConnectDiagnosis runs the connect of tc and checks its text and JSON
// output.
func checkConnectDiagnosis(t *testing.T, tc connectDiagnosis) {
	v := newEnv(t, tc.cfg)
	arn := v.channel(t, "cam")
	args := append([]string{"connect", "--once", "--endpoint-url", v.url}, tc.setup(t, v, arn)...)
	r := cli(t, nil, args...)
	if r.code != 1 {
		t.Fatalf("exit %d; want 1\n%v", r.code, r)
	}
	for _, want := range tc.want.text {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// The same with --output json names the cause.
	if tc.name == "eleventh viewer" || tc.name == "deleted channel" {
		return // their setups were one-off
	}
	r = cli(t, nil, append(args, "--output", "json")...)
	var got failureJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 {
		t.Fatalf("--output json: %v\n%v", err, r)
	}
	if got.OK || got.Cause != tc.want.cause || got.Explanation == "" {
		t.Errorf("--output json: %+v; want cause %q", got, tc.want.cause)
	}
}

// endpointOf returns the emulator's WSS endpoint for role.
func endpointOf(t *testing.T, v *env, role kvs.Role) string {
	t.Helper()
	return signed(t, "--channel", "cam", "--role", strings.ToLower(string(role)), "--endpoint-url", v.url).Endpoint
}

func TestConnectClockSkewFixedByTheSuggestedOffset(t *testing.T) {
	v := newEnv(t, emulator.Config{Clock: func() time.Time { return time.Now().Add(-8 * time.Minute) }})
	v.channel(t, "cam")
	args := []string{"connect", "--channel", "cam", "--role", "viewer", "--once", "--endpoint-url", v.url, "--output", "json"}
	r := cli(t, nil, args...)
	var got failureJSON
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Cause != diagnose.CauseClockSkew || got.SuggestedClockOffset != "-8m0s" {
		t.Fatalf("skewed connect: %v; want clock-skew suggesting -8m0s", r)
	}
	r = cli(t, nil, append(args, "--clock-offset", got.SuggestedClockOffset)...)
	if r.code != 0 {
		t.Errorf("with --clock-offset %s: %v", got.SuggestedClockOffset, r)
	}
	// The control plane corrected itself: one refused Describe per run.
	if n := v.e.Stats().Calls[emulator.OpDescribeSignalingChannel]; n != 4 {
		t.Errorf("%d Describe calls over two runs; want 4 (each run: refused once, then corrected by the SDK)", n)
	}
}

func TestConnectUsageErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	arn := v.channel(t, "cam")
	master := endpointOf(t, v, kvs.Master)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"--channel", "cam"}, "--role is required"},
		{"no channel", []string{"--role", "master"}, "--channel NAME or --channel-arn ARN is required"},
		{"both channels", []string{"--channel", "cam", "--channel-arn", arn, "--role", "master"}, "give one, not both"},
		{"bad client id", []string{"--channel", "cam", "--role", "viewer", "--client-id", "AWS_x"}, "must not start with AWS_"},
		{"master with client id", []string{"--channel", "cam", "--role", "master", "--client-id", "x"}, "without a client id"},
		{"viewer at the master endpoint", []string{"--channel-arn", arn, "--endpoint", master, "--role", "viewer"}, "is a MASTER endpoint but --role is viewer"},
		{"endpoint with a name", []string{"--channel", "cam", "--endpoint", master, "--role", "master"}, "needs the channel's ARN"},
		{"expires too long", []string{"--channel", "cam", "--role", "master", "--expires", "169h"}, "from 1s to 168h0m0s"},
		{"url and channel", []string{"--url", "wss://x/?X-Amz-Signature=0", "--channel", "cam"}, "give it alone"},
		{"unsigned url", []string{"--url", "wss://x/?X-Amz-ChannelARN=" + arn}, "has no X-Amz-Signature"},
		{"http url", []string{"--url", "http://x/"}, "must be a wss://"},
		{"bad output", []string{"--channel", "cam", "--role", "master", "--output", "yaml"}, "must be text or json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, nil, append([]string{"connect", "--once", "--endpoint-url", v.url}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v; want exit 2 mentioning %q", r, tc.want)
			}
		})
	}
}

func TestParseSent(t *testing.T) {
	cases := []struct {
		in      string
		want    string // the frame sent
		wantErr string
	}{
		{`{"action":"SDP_OFFER","messagePayload":{"type":"offer","sdp":"x"}}`, `{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ4In0="}`, ""},
		{`{"Action":"ICE_CANDIDATE","RecipientClientId":"v1","MessagePayload":"e30=","CorrelationId":"c1"}`, `{"action":"ICE_CANDIDATE","correlationId":"c1","messagePayload":"e30=","recipientClientId":"v1"}`, ""},
		{`{"action":"SDP_OFFER","messagePayload":"not base64!"}`, "", "must be base64"},
		{`{"action":"HELLO","messagePayload":{}}`, "", "must be one of SDP_OFFER"},
		{`{"action":"SDP_OFFER"}`, "", "messagePayload is empty: must be the base64"},
		{`{"action":"SDP_OFFER","messagePayload":[1]}`, "", "JSON object or a base64 string"},
		{`{"action":"SDP_OFFER","recipientClientId":"a b","messagePayload":{}}`, "", "recipientClientId"},
		{`[`, "", "not a JSON message"},
	}
	for _, tc := range cases {
		m, err := parseSent([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseSent(%s) error %v; want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSent(%s): %v", tc.in, err)
			continue
		}
		if b, _ := json.Marshal(m); string(b) != tc.want {
			t.Errorf("parseSent(%s) sends %s; want %s", tc.in, b, tc.want)
		}
	}
}

// TestConnectURLRoleMismatch: --role must agree with the URL it comes
// with; a viewer's URL is not reported connected as the master.
func TestConnectURLRoleMismatch(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	arn := v.channel(t, "cam")
	viewer := signed(t, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-1", "--endpoint-url", v.url)
	master := signed(t, "--channel", "cam", "--role", "master", "--endpoint-url", v.url)
	// A viewer's URL at an endpoint whose shape says nothing of the role.
	p := &kvs.Presigner{Credentials: v.e.Credentials()}
	plain, err := p.Presign(context.Background(), strings.Replace(endpointOf(t, v, kvs.Viewer), "/viewer/", "/v/", 1), arn, kvs.Viewer, "viewer-2")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		url  string
		role string
		want []string
	}{
		{"viewer URL as master", viewer.URL, "master", []string{"--role master", "X-Amz-ClientId", "viewer"}},
		{"viewer URL at an unmarked endpoint as master", plain.URL, "master", []string{"--role master", "X-Amz-ClientId", "viewer"}},
		{"master URL as viewer", master.URL, "viewer", []string{"--role viewer", "master"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := v.e.Stats().Connections
			r := cli(t, nil, "connect", "--once", "--url", tc.url, "--role", tc.role)
			if r.code != 2 || strings.Contains(r.stdout, "connected as") {
				t.Fatalf("%v; want exit 2 and no connection", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if v.e.Stats().Connections != before {
				t.Errorf("connected")
			}
		})
	}
	// The URL's own role, given or not, connects.
	for _, args := range [][]string{{"--url", viewer.URL}, {"--url", viewer.URL, "--role", "viewer"}, {"--url", master.URL, "--role", "MASTER"}} {
		if r := cli(t, nil, append([]string{"connect", "--once"}, args...)...); r.code != 0 {
			t.Errorf("connect %q: %v", args, r)
		}
	}
}
