package vend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// suiteLog receives the log lines of every server, resolver and scoper the
// suite starts; TestMain scans it for secrets when the suite ends.
var suiteLog syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testLogger logs at debug level, into w as well as the suite's log.
func testLogger(w ...io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.MultiWriter(append(w, &suiteLog)...), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// secrets are values that must never appear in a log line: keys, session
// tokens, bearer tokens, signatures, TURN passwords.
var (
	secretsMu sync.Mutex
	secrets   = map[string]bool{}
)

func noteSecret(ss ...string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, s := range ss {
		if len(s) >= 8 {
			secrets[s] = true
		}
	}
}

// secretShapes are secrets recognised by their shape.
var secretShapes = regexp.MustCompile(`(?i)X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Bearer [A-Za-z0-9]|IQoJb3JpZ2lu|"credential"|"password"|wss?://[^"]*\?`)

// TestMain keeps the suite on loopback (no name resolution, no instance
// metadata, no shared AWS config) and, when the tests pass, fails the run
// if any log line holds a secret.
func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("tests resolve no names: use 127.0.0.1")
	}}
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	if code == 0 {
		code = checkSuiteLog()
	}
	os.Exit(code)
}

func checkSuiteLog() int {
	logs := suiteLog.String()
	if auditTestRan.Load() && !strings.Contains(logs, `"msg":"vended"`) {
		fmt.Fprintln(os.Stderr, "log check: the suite logged no audit line; the scan proves nothing")
		return 1
	}
	secretsMu.Lock()
	known := make([]string, 0, len(secrets))
	for s := range secrets {
		known = append(known, s)
	}
	secretsMu.Unlock()
	if leaks := scanLogs(logs, known); len(leaks) > 0 {
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "log check:", l)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "log check: %d log lines, %d known secrets, none leaked\n", strings.Count(logs, "\n"), len(known))
	return 0
}

// scanLogs returns a description of each secret found in logs: a known
// secret, or a value shaped like one.
func scanLogs(logs string, known []string) []string {
	var leaks []string
	for _, line := range strings.Split(logs, "\n") {
		if loc := secretShapes.FindStringIndex(line); loc != nil {
			leaks = append(leaks, fmt.Sprintf("a log line holds a secret-shaped value (%q): %.200s", line[loc[0]:loc[1]], line))
		}
	}
	for _, s := range known {
		if strings.Contains(logs, s) {
			leaks = append(leaks, fmt.Sprintf("a log line holds a secret (%.6s…)", s))
		}
	}
	return leaks
}

// auditTestRan is set by TestAuditLine: then the suite's log must hold
// audit lines, or the scan for secrets proves nothing.
var auditTestRan atomic.Bool

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Static tokens of the unit tests.
const (
	tokCamera  = "kvst_camera1-secret-token-0123456789"
	tokAlice   = "kvst_alice-secret-token-0123456789ab"
	tokBackend = "kvst_backend-secret-token-0123456789"
	tokNobody  = "kvst_nobody-secret-token-0123456789a"
)

// Credentials the unit tests sign with.
var testCreds = sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE0000TEST", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYTESTSECRET"}

func init() {
	noteSecret(tokCamera, tokAlice, tokBackend, tokNobody, testCreds.SecretAccessKey)
}

// baseConfig allows camera1 to be the master of cam-* channels (and create
// them), alice (group family) to view them, and backend anything with any
// client id. Rate limits are off.
func baseConfig() Config {
	return Config{
		Auth: Auth{Tokens: []Token{
			{Name: "camera1", SHA256: HashToken(tokCamera)},
			{Name: "alice", SHA256: HashToken(tokAlice), Groups: []string{"family"}},
			{Name: "backend", SHA256: HashToken(tokBackend)},
			{Name: "nobody", SHA256: HashToken(tokNobody)},
		}},
		Rules: []Rule{
			{Principals: []string{"token:camera*"}, Channels: []string{"cam-*"}, Roles: []string{"MASTER"}, CreateChannel: true},
			{Groups: []string{"family"}, Channels: []string{"cam-*"}, Roles: []string{"VIEWER"}},
			{Principals: []string{"token:backend"}, Channels: []string{"*"}, Roles: []string{"MASTER", "VIEWER"}, AnyClientID: true},
		},
		Limits: Limits{PerIP: Rate{PerSecond: -1}, PerPrincipal: Rate{PerSecond: -1}},
	}
}

// fakeBackend knows some channels and answers from memory.
type fakeBackend struct {
	mu       sync.Mutex
	channels map[string]string // name → ARN
	err      error
	calls    int
	creates  int
	forgets  int
}

const testRegion = "us-west-2"

func testARN(name string) string {
	return "arn:aws:kinesisvideo:" + testRegion + ":123456789012:channel/" + name + "/1700000000000"
}

var testICE = []ICEServer{
	{URLs: []string{"stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"}},
	{URLs: []string{"turn:1-2-3-4.t-1234.kinesisvideo.us-west-2.amazonaws.com:443?transport=udp"}, Username: "1700000300:djE6YXJu", Credential: "turn-password-secret-1"},
}

func init() { noteSecret(testICE[1].Credential) }

func newFakeBackend(names ...string) *fakeBackend {
	f := &fakeBackend{channels: map[string]string{}}
	for _, n := range names {
		f.channels[n] = testARN(n)
	}
	return f
}

func (f *fakeBackend) Forget(channel string) {
	f.mu.Lock()
	f.forgets++
	f.mu.Unlock()
}

func (f *fakeBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return Target{}, f.err
	}
	name := channel
	if strings.HasPrefix(channel, "arn:") {
		a, err := kvs.ParseChannelARN(channel)
		if err != nil {
			return Target{}, err
		}
		name = a.Name
	}
	arn, ok := f.channels[name]
	if !ok {
		if !create {
			return Target{}, fmt.Errorf("describe %q: %w", name, ErrChannelNotFound)
		}
		arn = testARN(name)
		f.channels[name] = arn
		f.creates++
	}
	ep := "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"
	if role == kvs.Master {
		ep = "wss://m-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"
	}
	return Target{ChannelARN: arn, Region: testRegion, Endpoint: ep, ICEServers: testICE, FromCache: true}, nil
}

// testServer is a Server on a loopback listener.
type testServer struct {
	*Server
	URL    string
	client *http.Client
	logs   *syncBuffer
	reg    *prometheus.Registry
}

// startServer starts a server for cfg on 127.0.0.1. opts.Backend defaults
// to a fake backend with channels cam-1 and cam-2, opts.Credentials to
// testCreds, opts.Logger to one into the returned server's logs.
func startServer(t testing.TB, cfg Config, opts Options) *testServer {
	t.Helper()
	if opts.Backend == nil {
		opts.Backend = newFakeBackend("cam-1", "cam-2")
	}
	if opts.Credentials == nil && opts.Scoper == nil {
		opts.Credentials = testCreds
	}
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = testLogger(logs)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.HTTPServer(ln.Addr().String())
	go hs.Serve(s.Listener(ln))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		s.Close()
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &testServer{Server: s, URL: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, logs: logs, reg: opts.Registry}
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   []byte
	conn   connectionResponse
	err    errorBody
}

// do sends a request; hdr are header name and value pairs.
func (ts *testServer) do(t testing.TB, method, path, token, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode == http.StatusOK && path == "/v1/connections" {
		if err := json.Unmarshal(b, &a.conn); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		noteSigned(a.conn)
	} else if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var e apiError
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("decoding error body %s: %v", b, err)
		}
		a.err = e.Error
	}
	return a
}

// post asks for a connection.
func (ts *testServer) post(t testing.TB, token, body string, hdr ...string) answer {
	t.Helper()
	return ts.do(t, http.MethodPost, "/v1/connections", token, body, hdr...)
}

// noteSigned records the secrets of a vended answer: the URL, its
// signature and session token (raw and as encoded in the URL), and the TURN
// credentials.
func noteSigned(c connectionResponse) {
	noteSecret(c.URL)
	if u, err := url.Parse(c.URL); err == nil {
		for _, k := range []string{"X-Amz-Signature", "X-Amz-Security-Token"} {
			if v := u.Query().Get(k); v != "" {
				noteSecret(v, url.QueryEscape(v))
			}
		}
	}
	for _, s := range c.ICEServers {
		noteSecret(s.Credential)
	}
}

func TestLogScanner(t *testing.T) {
	known := []string{"session-token-0123456789", tokAlice}
	cases := []struct {
		line string
		bad  bool
	}{
		{`{"msg":"vended","principal":"token:alice","clientId":"token-alice.x"}`, false},
		{`{"msg":"x","url":"wss://v-1.example/?X-Amz-Signature=abc"}`, true},
		{`{"msg":"x","err":"403 for ws://127.0.0.1:1/signaling?X-Amz-ChannelARN=a"}`, true},
		{`{"msg":"x","auth":"Bearer abc"}`, true},
		{`{"msg":"x","token":"IQoJb3JpZ2luX2VtdWxhdG9yABC"}`, true},
		{`{"msg":"x","ice":{"credential":"p"}}`, true},
		{`{"msg":"x","detail":"session-token-0123456789"}`, true},
		{`{"msg":"x","detail":"` + tokAlice + `"}`, true},
	}
	for _, c := range cases {
		if got := len(scanLogs(c.line, known)) > 0; got != c.bad {
			t.Errorf("scanLogs(%s) found a leak: %v; want %v", c.line, got, c.bad)
		}
	}
}
