package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// bridgeRun is a kvssign connect running in-process until stop.
type bridgeRun struct {
	in          *io.PipeWriter // nil when stdin was given
	out, errOut *syncBuffer
	done        chan int
	stop        func() int // cancels, returns the exit code, closes stdin
}

// startBridge runs kvssign connect ARGS --endpoint-url v.url. stdin, if
// nil, is a pipe that send writes to.
func startBridge(t *testing.T, v *env, stdin io.Reader, args ...string) *bridgeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridgeRun{out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan int, 1)}
	var pr *io.PipeReader
	if stdin == nil {
		pr, b.in = io.Pipe()
		stdin = pr
	}
	go func() {
		b.done <- run(ctx, append([]string{"connect", "--endpoint-url", v.url}, args...), stdin, b.out, b.errOut)
	}()
	code, stopped := -1, false
	b.stop = func() int {
		if stopped {
			return code
		}
		stopped = true
		cancel()
		select {
		case code = <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("connect %v did not end within 10s of the interrupt", args)
		}
		if b.in != nil {
			b.in.Close() // ends the reader of stdin, blocked on its next line
		}
		return code
	}
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *bridgeRun) send(t *testing.T, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(b.in, line); err != nil {
		t.Fatalf("writing to stdin: %v", err)
	}
}

// reconnects counts the reconnection lines on stderr.
func (b *bridgeRun) reconnects() int {
	return strings.Count(b.errOut.String(), "kvssign: reconnected (")
}

// running fails the test if the command has ended.
func (b *bridgeRun) running(t *testing.T) {
	t.Helper()
	select {
	case code := <-b.done:
		b.done <- code
		t.Fatalf("connect ended with %d:\nstdout:\n%s\nstderr:\n%s", code, b.out, b.errOut)
	default:
	}
}

// waitLong is waitFor with room for a reconnection or two under -race.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// useTemporaryCredentials signs with credentials that have a session
// token, so that the scan for secrets has a token to look for.
func useTemporaryCredentials(t *testing.T, v *env) (secret, token string) {
	c := v.e.IssueCredentials(time.Hour)
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", c.SessionToken)
	return c.SecretAccessKey, c.SessionToken
}

var signatureValueRE = regexp.MustCompile(`(?i)X-Amz-Signature(=|%3D)[0-9a-f]{8}`)

// checkNoSecrets fails if any output holds the secret key, the session
// token (plain or URL-encoded) or a signature.
func checkNoSecrets(t *testing.T, secret, token string, outputs ...string) {
	t.Helper()
	for _, s := range outputs {
		for _, bad := range []string{secret, token, url.QueryEscape(token)} {
			if bad != "" && strings.Contains(s, bad) {
				t.Errorf("output holds a secret (%.6s…):\n%s", bad, s)
			}
		}
		if m := signatureValueRE.FindString(s); m != "" {
			t.Errorf("output holds a signature (%s…):\n%s", m, s)
		}
	}
}

// bridgeCode matches the stack of a goroutine of the signaling client or
// of the bridge.
var bridgeCode = leakcheck.Mentioning("kvssign/signaling.", "main.sendThrough", "main.bridge", "main.runBridge")

// checkNoBridgeLeak fails if goroutines of a bridge are still running a
// moment after every command returned and its stdin was closed.
func checkNoBridgeLeak(t *testing.T) {
	t.Helper()
	leakcheck.Gone(t, 5*time.Second, bridgeCode)
}

const (
	offerLine   = `{"action":"SDP_OFFER","messagePayload":{"type":"offer","sdp":"v=0 offer %s"}}`
	answerLine  = `{"action":"SDP_ANSWER","recipientClientId":"viewer-1","messagePayload":{"type":"answer","sdp":"v=0 answer %s"}}`
	candLine    = `{"action":"ICE_CANDIDATE","messagePayload":{"candidate":"candidate:%s 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}}`
	offerOut    = `{"messageType":"SDP_OFFER","senderClientId":"viewer-1","messagePayload":{"type":"offer","sdp":"v=0 offer %s"}}`
	answerOut   = `{"messageType":"SDP_ANSWER","messagePayload":{"type":"answer","sdp":"v=0 answer %s"}}`
	candOut     = `{"messageType":"ICE_CANDIDATE","senderClientId":"viewer-1","messagePayload":{"candidate":"candidate:%s 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}}`
	goAwayOut   = `{"messageType":"GO_AWAY"}`
	connectedAs = "kvssign: connected as "
)

// startReconnectingPair starts a master bridge, with masterFlags besides
// the usual ones, and the viewer viewer-1, both with --reconnect on
// channel cam, and waits until both are connected.
func startReconnectingPair(t *testing.T, v *env, masterFlags ...string) (master, viewer *bridgeRun) {
	t.Helper()
	master = startBridge(t, v, nil, append([]string{"--channel", "cam", "--role", "master", "--reconnect"}, masterFlags...)...)
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	viewer = startBridge(t, v, nil, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-1", "--reconnect")
	waitFor(t, "the viewer", func() bool { return v.e.Stats().Connections.Viewer == 1 })
	return master, viewer
}

// relayOfferAnswer sends offer n from the viewer and answer n from the
// master, and waits for each to arrive.
func relayOfferAnswer(t *testing.T, master, viewer *bridgeRun, n string) {
	t.Helper()
	viewer.send(t, fmt.Sprintf(offerLine, n))
	waitFor(t, "offer "+n+" at the master", func() bool { return strings.Contains(master.out.String(), fmt.Sprintf(offerOut, n)) })
	master.send(t, fmt.Sprintf(answerLine, n))
	waitFor(t, "answer "+n+" at the viewer", func() bool { return strings.Contains(viewer.out.String(), fmt.Sprintf(answerOut, n)) })
}

// TestConnectReconnectGoAway: a viewer bridge told GO_AWAY reconnects with
// a fresh URL and goes on relaying both ways; its reconnection line says
// why and holds no secret; an interrupt ends both bridges with exit 0 and
// leaves no goroutine.
func TestConnectReconnectGoAway(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1, GoAwayGrace: 200 * time.Millisecond})
	v.channel(t, "cam")
	secret, token := useTemporaryCredentials(t, v)

	master, viewer := startReconnectingPair(t, v, "--debug")

	// Before GO_AWAY.
	relayOfferAnswer(t, master, viewer, "1")

	if n := v.e.GoAway(emulator.Target{Role: kvs.Viewer}); n != 1 {
		t.Fatalf("GO_AWAY told %d connections; want 1", n)
	}
	waitFor(t, "the viewer's reconnection", func() bool { return viewer.reconnects() == 1 })
	if !strings.Contains(viewer.out.String(), goAwayOut) {
		t.Errorf("viewer stdout lacks %s:\n%s", goAwayOut, viewer.out)
	}

	// After: both ways, on the new connection.
	master.send(t, fmt.Sprintf(answerLine, "2"))
	waitFor(t, "answer 2 at the viewer", func() bool { return strings.Contains(viewer.out.String(), fmt.Sprintf(answerOut, "2")) })
	// Sent as it is, as without --reconnect: an offer whose payload says
	// "answer" is the peer's business; a line kvs would refuse is not sent.
	viewer.send(t, `{"action":"SDP_OFFER","messagePayload":{"type":"answer","sdp":"x"}}`)
	viewer.send(t, `{"action":"ICE_CANDIDATE","correlationId":"no spaces","messagePayload":{"candidate":"c"}}`)
	viewer.send(t, fmt.Sprintf(candLine, "2"))
	waitFor(t, "candidate 2 at the master", func() bool { return strings.Contains(master.out.String(), fmt.Sprintf(candOut, "2")) })
	if want := `{"messageType":"SDP_OFFER","senderClientId":"viewer-1","messagePayload":{"type":"answer","sdp":"x"}}`; !strings.Contains(master.out.String(), want) {
		t.Errorf("master stdout lacks the offer sent as it was, %s:\n%s", want, master.out)
	}
	viewer.running(t)
	master.running(t)

	waitFor(t, "the old viewer connection's close", func() bool { return v.e.Stats().Connections.Viewer == 1 })
	line := ""
	for l := range strings.Lines(viewer.errOut.String()) {
		if strings.HasPrefix(l, "kvssign: reconnected") {
			line = l
		}
	}
	if !regexp.MustCompile(`^kvssign: reconnected \(connection 2\): the service sent GO_AWAY; connection 1 had lasted [0-9.]+m?s; reconnecting took [0-9.]+m?s\n$`).MatchString(line) {
		t.Errorf("reconnection line %q", line)
	}
	if !strings.Contains(viewer.errOut.String(), `stdin line 3: message field correlationId "no spaces": must contain only [a-zA-Z0-9_.-]`) {
		t.Errorf("viewer stderr lacks the refused line 3:\n%s", viewer.errOut)
	}
	if strings.Contains(master.out.String(), `"candidate":"c"`) {
		t.Errorf("the refused line 3 reached the master:\n%s", master.out)
	}
	if master.reconnects() != 0 {
		t.Errorf("the master reconnected:\n%s", master.errOut)
	}

	if code := viewer.stop(); code != 0 {
		t.Errorf("viewer after interrupt: exit %d\n%s", code, viewer.errOut)
	}
	if code := master.stop(); code != 0 {
		t.Errorf("master after interrupt: exit %d\n%s", code, master.errOut)
	}
	// The master ran with --debug: its stderr shows redacted URLs.
	if !strings.Contains(master.errOut.String(), "X-Amz-Signature=REDACTED") {
		t.Errorf("master --debug stderr shows no redacted URL:\n%s", master.errOut)
	}
	checkNoSecrets(t, secret, token, viewer.out.String(), viewer.errOut.String(), master.out.String(), master.errOut.String())
	checkNoBridgeLeak(t)
}

// TestConnectReconnectRelaysUnchanged: a bridge sends stdin lines as they
// are (their correlationId, and payload fields a description or a
// candidate does not hold) and prints received messages as they came, line
// for line as connect without --reconnect prints them.
func TestConnectReconnectRelaysUnchanged(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	v.channel(t, "cam")

	master := startBridge(t, v, nil, "--channel", "cam", "--role", "master", "--reconnect")
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	viewer := startBridge(t, v, nil, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-1", "--reconnect")
	plain := startBridge(t, v, nil, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-2")
	waitFor(t, "the viewers", func() bool { return v.e.Stats().Connections.Viewer == 2 })

	// A base64 payload as a string is sent as it is; the peer prints it
	// decoded and compacted, as connect does.
	spaced := base64.StdEncoding.EncodeToString([]byte(`{ "candidate": "candidate:9 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "x-hint": [1, 2] }`))
	cases := []struct {
		name     string
		from     *bridgeRun
		line     string
		at       []*bridgeRun // where it is printed
		received string
	}{
		{"viewer's offer with a correlationId and extra fields", viewer,
			`{"action":"SDP_OFFER","correlationId":"v1.offer-9","messagePayload":{"sdp":"v=0 x","type":"offer","x-app":{"n":1}}}`,
			[]*bridgeRun{master},
			`{"messageType":"SDP_OFFER","senderClientId":"viewer-1","messagePayload":{"sdp":"v=0 x","type":"offer","x-app":{"n":1}}}`},
		{"viewer's candidate as a base64 string", viewer,
			`{"action":"ICE_CANDIDATE","messagePayload":"` + spaced + `"}`,
			[]*bridgeRun{master},
			`{"messageType":"ICE_CANDIDATE","senderClientId":"viewer-1","messagePayload":{"candidate":"candidate:9 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","x-hint":[1,2]}}`},
		{"master's answer to the bridge", master,
			`{"action":"SDP_ANSWER","recipientClientId":"viewer-1","correlationId":"m-1","messagePayload":{"type":"answer","sdp":"v=0 y","x-app":"z"}}`,
			[]*bridgeRun{viewer},
			`{"messageType":"SDP_ANSWER","messagePayload":{"type":"answer","sdp":"v=0 y","x-app":"z"}}`},
		{"master's answer to connect without --reconnect", master,
			`{"action":"SDP_ANSWER","recipientClientId":"viewer-2","correlationId":"m-2","messagePayload":{"type":"answer","sdp":"v=0 y","x-app":"z"}}`,
			[]*bridgeRun{plain},
			`{"messageType":"SDP_ANSWER","messagePayload":{"type":"answer","sdp":"v=0 y","x-app":"z"}}`},
		{"master's message without a recipient: the service names its correlationId", master,
			`{"action":"SDP_ANSWER","correlationId":"stdin-7","messagePayload":{"type":"answer","sdp":"v=0"}}`,
			[]*bridgeRun{master},
			`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"stdin-7","description":"kvs: message field recipientClientId: is required in a message from the master","errorType":"InvalidArgumentException","statusCode":"400"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.from.send(t, tc.line)
			for _, b := range tc.at {
				waitFor(t, tc.name, func() bool { return strings.Contains(b.out.String(), tc.received+"\n") })
			}
		})
	}
	// The bridge and connect without --reconnect printed the same line.
	if viewer.out.String() != plain.out.String() {
		t.Errorf("stdout differs:\nwith --reconnect:\n%s\nwithout:\n%s", viewer.out, plain.out)
	}
	for _, b := range []*bridgeRun{master, viewer} {
		if strings.Contains(b.errOut.String(), "correlationId") {
			t.Errorf("stderr speaks of the correlationId:\n%s", b.errOut)
		}
		b.running(t)
	}
	for _, b := range []*bridgeRun{viewer, plain, master} {
		if code := b.stop(); code != 0 {
			t.Errorf("exit %d after interrupt\n%s", code, b.errOut)
		}
	}
	checkNoBridgeLeak(t)
}

// TestConnectReconnectIdle: the emulator closes connections that send
// nothing for a second; both bridges reconnect, and a message sent after a
// reconnection arrives.
func TestConnectReconnectIdle(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1, IdleTimeout: time.Second})
	v.channel(t, "cam")
	secret, token := useTemporaryCredentials(t, v)

	master, viewer := startReconnectingPair(t, v)
	relayOfferAnswer(t, master, viewer, "1")

	// A message goes right after its sender reconnected, on a connection a
	// second away from its idle close; the recipient may be between
	// connections, and the service holds the message for it.
	waitLong(t, "the viewer's idle close and reconnection", func() bool { return viewer.reconnects() >= 1 })
	viewer.send(t, fmt.Sprintf(candLine, "2"))
	waitLong(t, "candidate 2 at the master", func() bool { return strings.Contains(master.out.String(), fmt.Sprintf(candOut, "2")) })

	n := master.reconnects()
	waitLong(t, "the master's next reconnection", func() bool { return master.reconnects() > n })
	master.send(t, fmt.Sprintf(answerLine, "2"))
	waitLong(t, "answer 2 at the viewer", func() bool { return strings.Contains(viewer.out.String(), fmt.Sprintf(answerOut, "2")) })
	viewer.running(t)
	master.running(t)

	for _, b := range []*bridgeRun{viewer, master} {
		if !strings.Contains(b.errOut.String(), "): the connection ended: closed by the service: 1001 idle timeout; connection 1 had lasted ") {
			t.Errorf("stderr lacks the idle reconnection:\n%s", b.errOut)
		}
	}
	if viewer.stop() != 0 || master.stop() != 0 {
		t.Errorf("exit codes after interrupt: want 0\n%s\n%s", viewer.errOut, master.errOut)
	}
	checkNoSecrets(t, secret, token, viewer.out.String(), viewer.errOut.String(), master.out.String(), master.errOut.String())
	checkNoBridgeLeak(t)
}

// TestConnectReconnectMaxDuration: connections are capped (at 800 ms
// here; an hour in KVS) with GO_AWAY before the cap. With --output json the
// viewer prints a RECONNECTED line per reconnection among the messages; the
// master, whose stdin ends at once, stays connected and goes on receiving.
func TestConnectReconnectMaxDuration(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1, MaxConnectionDuration: 800 * time.Millisecond, GoAwayGrace: 200 * time.Millisecond})
	v.channel(t, "cam")

	master := startBridge(t, v, strings.NewReader(""), "--channel", "cam", "--role", "master", "--reconnect")
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	viewer := startBridge(t, v, nil, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-1", "--reconnect", "--output", "json")
	waitLong(t, "two reconnections of each", func() bool { return viewer.reconnects() >= 2 && master.reconnects() >= 2 })
	viewer.send(t, fmt.Sprintf(offerLine, "late"))
	waitLong(t, "the offer at the master", func() bool { return strings.Contains(master.out.String(), fmt.Sprintf(offerOut, "late")) })
	master.running(t)
	if code := viewer.stop(); code != 0 {
		t.Errorf("viewer: exit %d", code)
	}

	var events []reconnectedJSON
	for l := range strings.Lines(viewer.out.String()) {
		if !json.Valid([]byte(l)) {
			t.Errorf("stdout line %q is not JSON", l)
			continue
		}
		if !strings.HasPrefix(l, `{"event":`) {
			if l != goAwayOut+"\n" {
				t.Errorf("unexpected stdout line %q", l)
			}
			continue
		}
		var e reconnectedJSON
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{e.PreviousLasted, e.Took} {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("line %q: duration %q: %v", l, d, err)
			}
		}
		e.PreviousLasted, e.Took = "", ""
		events = append(events, e)
	}
	if len(events) < 2 || len(events) != viewer.reconnects() {
		t.Fatalf("%d RECONNECTED lines for %d reconnections:\n%s", len(events), viewer.reconnects(), viewer.out)
	}
	for i, got := range events {
		want := reconnectedJSON{Event: "RECONNECTED", Reason: "go-away", Message: "the service sent GO_AWAY", Connection: i + 2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RECONNECTED line %d (-want +got):\n%s", i, diff)
		}
	}
	if code := master.stop(); code != 0 {
		t.Errorf("master: exit %d", code)
	}
	checkNoBridgeLeak(t)
}

// TestConnectReconnectGivesUpDiagnosed: when the channel is deleted under
// a bridge, the reconnection is refused (404); the bridge ends with exit 1
// and the diagnosis of a refused handshake.
func TestConnectReconnectGivesUpDiagnosed(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	v.channel(t, "cam")
	b := startBridge(t, v, strings.NewReader(""), "--channel", "cam", "--role", "master", "--reconnect", "--output", "json")
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	if r := cli(t, nil, "channel", "delete", "cam", "--endpoint-url", v.url); r.code != 0 {
		t.Fatal(r)
	}
	var code int
	select {
	case code = <-b.done:
		b.done <- code
	case <-time.After(15 * time.Second):
		t.Fatal("the bridge did not end after its channel was deleted")
	}
	if code != 1 || !strings.Contains(b.errOut.String(), "reconnecting failed: handshake refused: HTTP 404 ResourceNotFoundException: ") ||
		!strings.Contains(b.errOut.String(), "likely cause: the channel") {
		t.Errorf("exit %d; want 1 with the diagnosis\n%s", code, b.errOut)
	}
	// With --output json the failure is the stream's last line.
	lines := strings.Split(strings.TrimSpace(b.out.String()), "\n")
	var got failureJSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil || got.OK || got.Cause != diagnose.CauseUnknownChannel || got.Status != 404 || got.Fix == "" {
		t.Errorf("stdout %q: %v; want a last line with cause %s", b.out, err, diagnose.CauseUnknownChannel)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("stdout line %q is not JSON", l)
		}
	}
	checkNoBridgeLeak(t)
}

// TestConnectReconnectUsage: --reconnect needs a URL it can sign again.
func TestConnectReconnectUsage(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	s := signed(t, "--channel", "cam", "--role", "master", "--endpoint-url", v.url)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--url", s.URL}, []string{"--reconnect", "--url", "cannot be re-signed", "--channel"}},
		{[]string{"--channel", "cam", "--role", "master", "--once"}, []string{"--reconnect", "--once"}},
		{[]string{"--channel", "cam", "--role", "master", "--timeout", "0s"}, []string{"--timeout 0s: must be positive"}},
	}
	for _, tc := range cases {
		before := v.e.Stats().Connections.Master
		r := cli(t, nil, append([]string{"connect", "--reconnect", "--endpoint-url", v.url}, tc.args...)...)
		if r.code != 2 {
			t.Errorf("%v: %v; want exit 2", tc.args, r)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, r.stderr, w)
			}
		}
		if strings.Contains(r.stderr, "X-Amz-Signature=") && !strings.Contains(r.stderr, "X-Amz-Signature=REDACTED") {
			t.Errorf("%v: stderr shows the signature: %s", tc.args, r.stderr)
		}
		if v.e.Stats().Connections.Master != before {
			t.Errorf("%v: connected", tc.args)
		}
	}
}

// dateRE and stampRE match the Date header quoted in a clock-skew
// explanation and the times in the service's message, which two runs may
// see a second apart.
var (
	dateRE  = regexp.MustCompile(`its Date header: [^)]*`)
	stampRE = regexp.MustCompile(`[0-9]{8}T[0-9]{6}Z`)
)

// TestConnectReconnectSameDiagnosis: a first handshake refused with
// --reconnect is diagnosed exactly as without it, in text and JSON.
func TestConnectReconnectSameDiagnosis(t *testing.T) {
	cases := []struct {
		name  string
		cfg   emulator.Config
		setup func(t *testing.T, v *env, arn string) []string
		cause string
		// headDiffers: the error's first line quotes the dialler's own
		// message, which differs between the two paths.
		headDiffers bool
	}{
		{"wrong secret key", emulator.Config{}, func(t *testing.T, v *env, arn string) []string {
			ep := endpointOf(t, v, kvs.Master)
			t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
			return []string{"--channel-arn", arn, "--endpoint", ep, "--role", "master"}
		}, diagnose.CauseSignature, false},
		{"missing permission", emulator.Config{Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*",
			"Action":["kinesisvideo:Describe*","kinesisvideo:Get*","kinesisvideo:ConnectAsMaster"]}]}`},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "viewer", "--client-id", "viewer-1"}
			}, diagnose.CausePermission, false},
		{"clock behind the service", emulator.Config{Clock: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			func(t *testing.T, v *env, arn string) []string {
				return []string{"--channel", "cam", "--role", "master"}
			}, diagnose.CauseClockSkew, false},
		{"nothing listening", emulator.Config{}, func(t *testing.T, v *env, arn string) []string {
			return []string{"--channel-arn", arn, "--endpoint", "ws://127.0.0.1:1/signaling/master/m-1", "--role", "master", "--timeout", "2s"}
		}, diagnose.CauseUnreachable, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, tc.cfg)
			arn := v.channel(t, "cam")
			args := append([]string{"connect", "--endpoint-url", v.url}, tc.setup(t, v, arn)...)
			norm := func(s string) string {
				s = stampRE.ReplaceAllString(dateRE.ReplaceAllString(s, "its Date header: …"), "…")
				if tc.headDiffers {
					s = s[strings.Index(s, "\n")+1:]
				}
				return s
			}
			for _, out := range []string{"text", "json"} {
				args := append(args, "--output", out)
				plain := cli(t, nil, args...)
				rec := cli(t, nil, append(args, "--reconnect")...)
				if plain.code != 1 || rec.code != 1 {
					t.Fatalf("--output %s: exit %d without --reconnect, %d with; want 1\n%v\n%v", out, plain.code, rec.code, plain, rec)
				}
				if !strings.Contains(plain.stderr, "likely cause:") {
					t.Fatalf("no diagnosis without --reconnect:\n%v", plain)
				}
				if diff := cmp.Diff(norm(plain.stderr), norm(rec.stderr)); diff != "" {
					t.Errorf("--output %s: stderr differs with --reconnect (-without +with):\n%s", out, diff)
				}
				if out != "json" {
					continue
				}
				var a, b failureJSON
				if err := json.Unmarshal([]byte(plain.stdout), &a); err != nil {
					t.Fatalf("without --reconnect: %v\n%s", err, plain.stdout)
				}
				if err := json.Unmarshal([]byte(rec.stdout), &b); err != nil {
					t.Fatalf("with --reconnect: %v\n%s", err, rec.stdout)
				}
				if a.Cause != tc.cause {
					t.Errorf("cause %q; want %q", a.Cause, tc.cause)
				}
				for _, f := range []*failureJSON{&a, &b} {
					f.URL, f.ServerDate = "", "" // signed and answered a second apart, maybe
					f.Explanation = dateRE.ReplaceAllString(f.Explanation, "")
					f.Message = stampRE.ReplaceAllString(f.Message, "")
					if tc.headDiffers {
						f.Message = ""
					}
				}
				if diff := cmp.Diff(a, b, cmp.AllowUnexported(failureJSON{})); diff != "" {
					t.Errorf("JSON differs with --reconnect (-without +with):\n%s", diff)
				}
			}
		})
	}
}

// TestConnectReconnectRenews: the client renews a connection on which
// nothing was sent a little before the service's idle timeout (here 600
// ms, as if the service's were; KVS's is 10 minutes), without waiting for
// the close, and messages keep flowing.
func TestConnectReconnectRenews(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	v.channel(t, "cam")
	bridgeOptions = func(o *signaling.Options) { o.IdleTimeout = 600 * time.Millisecond }
	t.Cleanup(func() { bridgeOptions = nil }) // after the bridges' own cleanups

	master := startBridge(t, v, nil, "--channel", "cam", "--role", "master", "--reconnect", "--output", "json")
	waitFor(t, "the master", func() bool { return v.e.Stats().Connections.Master == 1 })
	waitLong(t, "the master's renewal", func() bool { return master.reconnects() >= 1 })
	viewer := startBridge(t, v, nil, "--channel", "cam", "--role", "viewer", "--client-id", "viewer-1", "--reconnect")
	waitFor(t, "the viewer", func() bool { return v.e.Stats().Connections.Viewer == 1 })
	viewer.send(t, fmt.Sprintf(offerLine, "1"))
	waitFor(t, "offer 1 at the master", func() bool { return strings.Contains(master.out.String(), fmt.Sprintf(offerOut, "1")) })
	master.running(t)

	if !regexp.MustCompile(`kvssign: reconnected \(connection 2\): connection renewed before the service's limit: nothing sent for [0-9.]+m?s \(service idle timeout 600ms\); connection 1 had lasted [0-9.]+m?s\n`).MatchString(master.errOut.String()) {
		t.Errorf("no renewal line:\n%s", master.errOut)
	}
	var first reconnectedJSON
	if err := json.Unmarshal([]byte(strings.SplitN(master.out.String(), "\n", 2)[0]), &first); err != nil || first.Reason != "renewed" || first.Took != "" {
		t.Errorf("first stdout line %q: %v; want a RECONNECTED line with reason renewed and no reconnectTook", master.out, err)
	}
	// A renewal registers the new connection, then closes the old one.
	waitFor(t, "one master connection", func() bool { return v.e.Stats().Connections.Master == 1 })
	if viewer.stop() != 0 || master.stop() != 0 {
		t.Errorf("exit codes after interrupt: want 0\n%s\n%s", viewer.errOut, master.errOut)
	}
	checkNoBridgeLeak(t)
}

// TestConnectReconnectDuration: --duration ends a bridge normally.
func TestConnectReconnectDuration(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	start := time.Now()
	r := cli(t, nil, "connect", "--channel", "cam", "--role", "master", "--reconnect", "--duration", "200ms", "--endpoint-url", v.url)
	if r.code != 0 || time.Since(start) > 5*time.Second || !strings.Contains(r.stderr, connectedAs+"MASTER") {
		t.Errorf("connect --reconnect --duration 200ms: %v after %v", r, time.Since(start))
	}
	checkNoBridgeLeak(t)
}
