// End-to-end tests: the vending server in front of the awskvs resolver,
// talking to the in-process KVS emulator, all on loopback listeners.

package vend

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// shiftClock is the real clock plus an offset that tests move forward, to
// age caches without sleeping. Offsets stay under the five minutes of skew
// the emulator accepts on signatures.
type shiftClock struct{ off atomic.Int64 }

func (c *shiftClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *shiftClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// e2e is an emulator, a resolver on it, and a vending server in front.
type e2e struct {
	emu      *emulator.Emulator
	ts       *testServer
	clock    *shiftClock
	resolver *awskvs.Resolver
	awsCfg   aws.Config
	arn      string
}

// Cache settings of the end-to-end tests: ARNs and endpoints live 60 s,
// ICE servers 120 s less the 30 s margin, and both are served 60 s stale
// (ICE servers at most the 30 s margin).
const (
	e2eTTL      = 60 * time.Second
	e2eMaxStale = 60 * time.Second
	e2eICETTL   = 120 * time.Second
)

// emulatorAWS loads an aws.Config for the emulator, counting its calls in
// reg.
func emulatorAWS(tb testing.TB, emu *emulator.Emulator, reg prometheus.Registerer) aws.Config {
	tb.Helper()
	creds := emu.Credentials()
	noteSecret(creds.SecretAccessKey)
	awsCfg, err := awskvs.LoadConfig(context.Background(),
		awskvs.ConfigOptions{EndpointURL: emu.URL(), Region: emu.Region()},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")))
	if err != nil {
		tb.Fatal(err)
	}
	if awsCfg.HTTPClient, err = CountUpstream(reg, awsCfg.HTTPClient); err != nil {
		tb.Fatal(err)
	}
	return awsCfg
}

// newTestResolver returns a resolver on awsCfg with the end-to-end cache
// settings.
func newTestResolver(awsCfg aws.Config, clock func() time.Time, create bool) *awskvs.Resolver {
	r := awskvs.NewResolver(awsCfg)
	r.IncludeICEServers = true
	r.CreateIfMissing = create
	r.Clock = clock
	r.CacheTTL = e2eTTL
	r.MaxStale = e2eMaxStale
	r.MaxAttempts = 2
	r.Logger = testLogger()
	return r
}

func resolverForBench(b *testing.B, emu *emulator.Emulator) (Backend, sigv4.CredentialsProvider) {
	r := newTestResolver(emulatorAWS(b, emu, prometheus.NewRegistry()), time.Now, false)
	r.Logger = nil
	return NewResolverBackend(r, nil), r.Credentials
}

func startE2E(t *testing.T, cfg Config, scoped bool) *e2e {
	t.Helper()
	emu := emulatortest.New(t, emulator.Config{ConnectRate: -1, MaxViewers: -1, ICETTL: e2eICETTL})
	arn, err := emu.CreateChannel("cam-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	awsCfg := emulatorAWS(t, emu, reg)
	clock := &shiftClock{}
	r := newTestResolver(awsCfg, clock.Now, false)
	opts := Options{Backend: NewResolverBackend(r, newTestResolver(awsCfg, clock.Now, true)), Credentials: r.Credentials, Clock: clock.Now, Registry: reg}
	if scoped {
		opts.Scoper = NewSTSScoper(sts.NewFromConfig(awsCfg), ScopedCredentials{RoleARN: "arn:aws:iam::123456789012:role/kvssign-vend"}, cfg.urlExpires(), clock.Now)
	}
	ts := startServer(t, cfg, opts)
	return &e2e{emu: emu, ts: ts, clock: clock, resolver: r, awsCfg: awsCfg, arn: arn}
}

// dial connects to the emulator's signaling with a vended URL.
func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing the vended URL: HTTP %d: %s", status, strings.SplitN(err.Error(), "?", 2)[0])
	}
	return c
}

// TestE2EVendAndConnect: the must-show statuses over loopback, and a 200
// whose URL really connects to the emulator's signaling.
func TestE2EVendAndConnect(t *testing.T) {
	e := startE2E(t, baseConfig(), false)
	ts := e.ts
	cases := []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", `{"channel":"cam-1","role":"VIEWER"}`, 401},
		{"bad token", "kvst_wrong", `{"channel":"cam-1","role":"VIEWER"}`, 401},
		{"channel not allowed", tokAlice, `{"channel":"garage","role":"VIEWER"}`, 403},
		{"role not allowed", tokAlice, `{"channel":"cam-1","role":"MASTER"}`, 403},
		{"bad input", tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.a/b"}`, 400},
		{"missing channel", tokCamera, `{"channel":"cam-404","role":"MASTER"}`, 404},
	}
	for _, c := range cases {
		if a := ts.post(t, c.token, c.body); a.status != c.want {
			t.Errorf("%s: status %d; want %d (%s)", c.name, a.status, c.want, a.body)
		}
	}

	viewer := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.e2e"}`)
	master := ts.post(t, tokCamera, `{"channel":"cam-1","role":"MASTER"}`)
	if viewer.status != 200 || master.status != 200 {
		t.Fatalf("vending: viewer %d %s, master %d %s", viewer.status, viewer.body, master.status, master.body)
	}
	if viewer.conn.ChannelARN != e.arn || viewer.conn.Region != e.emu.Region() || len(viewer.conn.ICEServers) == 0 {
		t.Errorf("viewer answer: %+v", viewer.conn)
	}
	for _, s := range viewer.conn.ICEServers {
		for _, u := range s.URLs {
			if !strings.Contains(u, "127.0.0.1") {
				t.Errorf("ICE server %q is not on loopback", u)
			}
		}
	}
	mc := dial(t, master.conn.URL)
	defer mc.Close(websocket.StatusNormalClosure, "")
	vc := dial(t, viewer.conn.URL)
	defer vc.Close(websocket.StatusNormalClosure, "")

	// The viewer's message reaches the master, so both are really in.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := `{"action":"SDP_OFFER","recipientClientId":"MASTER","messagePayload":"eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ2PTAifQ=="}`
	if err := vc.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := mc.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"senderClientId":"token-alice.e2e"`) {
		t.Errorf("the master got %s; want the viewer's offer from token-alice.e2e", got)
	}
	var live []string
	for _, c := range e.emu.Connections() {
		live = append(live, string(c.Role)+"/"+c.ClientID)
	}
	if len(live) != 2 {
		t.Errorf("emulator connections = %v; want the master and token-alice.e2e", live)
	}
}

func TestE2ERateLimit(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.PerPrincipal = Rate{PerSecond: 1, Burst: 2}
	e := startE2E(t, cfg, false)
	var codes []int
	for range 4 {
		codes = append(codes, e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`).status)
	}
	if fmt.Sprint(codes) != "[200 200 429 429]" {
		t.Errorf("statuses = %v; want [200 200 429 429]", codes)
	}
	a := e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
	if a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// upstreamCalls counts the emulator's control-plane and ICE calls.
func upstreamCalls(s emulator.Stats) int64 {
	var n int64
	for _, op := range []string{emulator.OpDescribeSignalingChannel, emulator.OpGetSignalingChannelEndpoint, emulator.OpGetIceServerConfig,
		emulator.OpCreateSignalingChannel, emulator.OpListSignalingChannels, emulator.OpAssumeRole} {
		n += s.Calls[op]
	}
	return n
}

// hammer sends n requests from workers goroutines, alternating viewers and
// masters, and returns the count of each status.
func hammer(t *testing.T, ts *testServer, n, workers int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				tok, body := tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.load"}`
				if i%2 == 0 {
					tok, body = tokCamera, `{"channel":"cam-1","role":"MASTER"}`
				}
				a := ts.post(t, tok, body)
				mu.Lock()
				counts[a.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// TestE2ECaching proves with the emulator's counters that, once warm,
// thousands of requests make no AWS call at all.
func TestE2ECaching(t *testing.T) {
	e := startE2E(t, baseConfig(), false)
	// Warm up: one viewer and one master.
	hammer(t, e.ts, 2, 1)
	warm := e.emu.Stats()
	if warm.Calls[emulator.OpDescribeSignalingChannel] != 1 || warm.Calls[emulator.OpGetSignalingChannelEndpoint] != 2 || warm.Calls[emulator.OpGetIceServerConfig] != 1 {
		t.Errorf("warm-up calls: %v; want 1 Describe, 2 GetSignalingChannelEndpoint (one per role), 1 GetIceServerConfig", warm.Calls)
	}
	const n = 3000
	counts := hammer(t, e.ts, n, 8)
	if counts[200] != n {
		t.Fatalf("statuses %v; want %d × 200", counts, n)
	}
	after := e.emu.Stats()
	if d := upstreamCalls(after) - upstreamCalls(warm); d != 0 {
		t.Errorf("%d requests after warm-up made %d AWS calls (%v → %v); want 0", n, d, warm.Calls, after.Calls)
	}
	hits := counterValue(e.ts.m.hit)
	if hits < n {
		t.Errorf("cache hits metric = %v; want at least %d", hits, n)
	}
	t.Logf("%d requests after warm-up: 0 AWS calls; emulator calls %v", n, after.Calls)
}

// TestE2EFaults: with the emulator throttling, failing or gone, answers
// come from the cache within the stale bound, and are 503 with Retry-After
// beyond it: never a 500 or a 502.
func TestE2EFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults emulator.Faults
		down   bool
	}{
		{name: "throttled", faults: emulator.Faults{Share: 1, Kind: emulator.FaultThrottle}},
		{name: "5xx", faults: emulator.Faults{Share: 1, Kind: emulator.Fault5xx}},
		{name: "half failing", faults: emulator.Faults{Share: 0.5, Kind: emulator.Fault503}},
		{name: "emulator down", down: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startE2E(t, baseConfig(), false)
			hammer(t, e.ts, 2, 1) // warm
			if c.down {
				e.emu.Close()
			} else if err := e.emu.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			// Fresh cache: served without asking.
			if counts := hammer(t, e.ts, 100, 4); counts[200] != 100 {
				t.Errorf("fresh cache under faults: %v; want 100 × 200", counts)
			}
			// Expired but within the stale bound: served stale (or fresh,
			// when a call gets through).
			e.clock.Advance(100 * time.Second)
			counts := hammer(t, e.ts, 100, 4)
			if counts[200] != 100 {
				t.Errorf("stale cache under faults: %v; want 100 × 200", counts)
			}
			// Past the stale bound: 503 with Retry-After, or fresh answers
			// when calls get through; nothing else.
			e.clock.Advance(100 * time.Second)
			counts = hammer(t, e.ts, 60, 4)
			for code := range counts {
				if code != 200 && code != 503 {
					t.Errorf("past the stale bound: statuses %v; want only 200 and 503", counts)
				}
			}
			if c.faults.Share == 1 || c.down {
				if counts[503] != 60 {
					t.Errorf("past the stale bound with every call failing: %v; want 60 × 503", counts)
				}
				a := e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
				if a.status != 503 || a.err.Code != "unavailable" || a.header.Get("Retry-After") == "" {
					t.Errorf("past the stale bound: %d %s Retry-After %q", a.status, a.body, a.header.Get("Retry-After"))
				}
				for _, leak := range []string{"Exception", "awskvs", "127.0.0.1", "Injected"} {
					if strings.Contains(string(a.body), leak) {
						t.Errorf("the 503 shows internals (%q): %s", leak, a.body)
					}
				}
			}
			// A 503 means some AWS call failed; with half the calls failing at
			// random, a run may also see every call get through.
			if c.faults.Share == 1 || c.down || counts[503] > 0 {
				if m := e.ts.do(t, "GET", "/metrics", "", ""); !strings.Contains(string(m.body), `kvssign_vend_upstream_errors_total{operation=`) {
					t.Error("the failed AWS calls are not in kvssign_vend_upstream_errors_total")
				}
			}
			if !c.down {
				stale := counterValue(e.ts.m.cache.WithLabelValues("stale"))
				if stale == 0 && c.faults.Share == 1 {
					t.Error("no stale answers counted")
				}
				// Recovery: faults off, answers are fresh again.
				e.emu.SetFaults(emulator.Faults{})
				if a := e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`); a.status != 200 {
					t.Errorf("after recovery: %d %s", a.status, a.body)
				}
			}
		})
	}
}

func TestE2ECreateChannel(t *testing.T) {
	e := startE2E(t, baseConfig(), false)
	a := e.ts.post(t, tokCamera, `{"channel":"cam-new","role":"MASTER","create":true}`)
	if a.status != 200 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if n := e.emu.Stats().Calls[emulator.OpCreateSignalingChannel]; n != 1 {
		t.Errorf("CreateSignalingChannel calls = %d; want 1", n)
	}
	c := dial(t, a.conn.URL)
	c.Close(websocket.StatusNormalClosure, "")
	// Asking again finds it: no second creation.
	if a := e.ts.post(t, tokCamera, `{"channel":"cam-new","role":"MASTER","create":true}`); a.status != 200 {
		t.Errorf("again: %d", a.status)
	}
	if n := e.emu.Stats().Calls[emulator.OpCreateSignalingChannel]; n != 1 {
		t.Errorf("CreateSignalingChannel calls = %d; want 1", n)
	}
}

// TestE2EScopedCredentials signs with STS credentials assumed per channel
// and role, and proves that the session policy vend asks for (see
// STSScoper; its document is checked in TestSTSScoperPolicy) really
// limits them: the emulator enforces session policies, so the credentials
// behind a viewer URL for cam-1 connect as a viewer to cam-1 and are
// refused with 403 anywhere else.
func TestE2EScopedCredentials(t *testing.T) {
	e := startE2E(t, baseConfig(), true)
	a := e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if !strings.Contains(a.conn.URL, "X-Amz-Security-Token=") || !strings.Contains(a.conn.URL, "X-Amz-Credential=ASIA") {
		t.Error("the URL is not signed with temporary credentials")
	}
	c := dial(t, a.conn.URL)
	c.Close(websocket.StatusNormalClosure, "")
	for range 50 {
		if a := e.ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	m := e.ts.post(t, tokCamera, `{"channel":"cam-1","role":"MASTER"}`)
	if m.status != 200 {
		t.Fatalf("master: %d %s", m.status, m.body)
	}
	c = dial(t, m.conn.URL)
	c.Close(websocket.StatusNormalClosure, "")
	if n := e.emu.Stats().Calls[emulator.OpAssumeRole]; n != 2 {
		t.Errorf("AssumeRole calls = %d; want 2 (one per channel and role)", n)
	}
	// The scoped secrets join the ones the suite's log must not hold.
	sc := e.ts.scoper.(*STSScoper)
	sc.mu.Lock()
	for _, c := range sc.m {
		noteSecret(c.creds.SecretAccessKey, c.creds.SessionToken)
	}
	viewerCreds := sc.m[scopeKey{e.arn, kvs.Viewer}].creds
	sc.mu.Unlock()
	if !strings.Contains(a.conn.URL, "X-Amz-Credential="+viewerCreds.AccessKeyID+"%2F") {
		t.Fatalf("the viewer URL is not signed with the cached viewer credentials %s", viewerCreds.AccessKeyID)
	}

	// Had they leaked, the viewer URL's credentials could sign nothing
	// else that the emulator would accept, nor get other credentials.
	other, err := e.emu.CreateChannel("cam-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	const principal = "arn:aws:sts::123456789012:assumed-role/kvssign-vend/kvssign-vend"
	p := kvs.Presigner{Credentials: viewerCreds}
	cases := []struct {
		name     string
		endpoint string
		arn      string
		role     kvs.Role
		clientID string
		action   string
	}{
		{"a viewer of another channel", a.conn.Endpoint, other, kvs.Viewer, "alice-2", "ConnectAsViewer"},
		{"the master of the same channel", m.conn.Endpoint, e.arn, kvs.Master, "", "ConnectAsMaster"},
		{"the master of another channel", m.conn.Endpoint, other, kvs.Master, "", "ConnectAsMaster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := p.Presign(context.Background(), tc.endpoint, tc.arn, tc.role, tc.clientID)
			if err != nil {
				t.Fatal(err)
			}
			noteSigned(connectionResponse{URL: u.URL})
			status, errorType, msg := dialRefused(t, u.URL)
			want := "User: " + principal + " is not authorized to perform: kinesisvideo:" + tc.action + " on resource: " + tc.arn
			if status != 403 || errorType != "AccessDeniedException" || msg != want {
				t.Errorf("handshake = %d %s %q; want 403 AccessDeniedException %q", status, errorType, msg, want)
			}
		})
	}
	// Nor can they shed the session policy by assuming another role.
	leaked := e.awsCfg.Copy()
	leaked.Credentials = credentials.NewStaticCredentialsProvider(viewerCreds.AccessKeyID, viewerCreds.SecretAccessKey, viewerCreds.SessionToken)
	_, err = sts.NewFromConfig(leaked).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::123456789012:role/admin"), RoleSessionName: aws.String("escape")})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "sts:AssumeRole") {
		t.Errorf("AssumeRole with the vended viewer's credentials: %v; want 403 AccessDenied for sts:AssumeRole", err)
	}
	if n := e.emu.Stats().AccessDenied; n != int64(len(cases))+1 {
		t.Errorf("the emulator refused %d requests for lack of permission; want %d", n, len(cases)+1)
	}
}

// dialRefused dials url expecting a refused handshake, and returns its
// status, error type and message.
func dialRefused(t *testing.T, url string) (status int, errorType, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("the handshake succeeded; want it refused")
	}
	if resp == nil {
		t.Fatalf("no answer: %v", err)
	}
	var body struct{ Message string }
	if resp.Body != nil {
		json.NewDecoder(resp.Body).Decode(&body)
	}
	errorType, _, _ = strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	return resp.StatusCode, errorType, body.Message
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// recreate deletes cam-1 behind the server's back (with a resolver of its
// own, as an operator's console would) and creates it again, under a new
// ARN.
func (e *e2e) recreate(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if err := awskvs.NewResolver(e.awsCfg).DeleteChannel(ctx, "cam-1"); err != nil {
		t.Fatal(err)
	}
	for {
		arn, err := e.emu.CreateChannel("cam-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if arn != e.arn {
			e.arn = arn
			return arn
		}
		// Created in the same millisecond: the same ARN. Try again.
		if err := awskvs.NewResolver(e.awsCfg).DeleteChannel(ctx, arn); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestE2ERecreatedChannel: a channel deleted and created again under the
// same name. With ARNs cached for hours, the server finds the new ARN the
// first time AWS refuses the old one (here, when the ICE servers expire),
// and at once when a client that was refused at the handshake asks again
// with refresh. A channel that is gone costs a handful of AWS calls
// however often it is asked for.
func TestE2ERecreatedChannel(t *testing.T) {
	e := startE2E(t, baseConfig(), false)
	e.resolver.CacheTTL = 10 * time.Hour
	const viewer = `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.recreated"}`
	const master = `{"channel":"cam-1","role":"MASTER"}`
	for _, a := range []answer{e.ts.post(t, tokAlice, viewer), e.ts.post(t, tokCamera, master)} {
		if a.status != 200 || a.conn.ChannelARN != e.arn {
			t.Fatalf("warm-up: %d %s", a.status, a.body)
		}
	}
	old := e.arn
	newARN := e.recreate(t)

	// Found by the resolver: the ICE servers expire, GetIceServerConfig
	// says the old ARN is gone, and the name is looked up again.
	e.clock.Advance(e2eICETTL - time.Second)
	for _, c := range []struct{ token, body string }{{tokAlice, viewer}, {tokCamera, master}} {
		a := e.ts.post(t, c.token, c.body)
		if a.status != 200 || a.conn.ChannelARN != newARN {
			t.Fatalf("after re-creation and ICE expiry: %d %s; want 200 with %s (old %s)", a.status, a.body, newARN, old)
		}
		dial(t, a.conn.URL).Close(websocket.StatusNormalClosure, "")
	}

	// Found at a client's request: its URL was refused, and it asks again.
	old = e.arn
	newARN = e.recreate(t)
	a := e.ts.post(t, tokCamera, master)
	if a.status != 200 || a.conn.ChannelARN != old {
		t.Fatalf("cached answer: %d %s; want the old ARN %s", a.status, a.body, old)
	}
	if status, _, _ := dialRefused(t, a.conn.URL); status != 404 {
		t.Fatalf("the old ARN's URL: handshake %d; want 404", status)
	}
	a = e.ts.post(t, tokCamera, `{"channel":"cam-1","role":"MASTER","refresh":true}`)
	if a.status != 200 || a.conn.ChannelARN != newARN {
		t.Fatalf("asking again with refresh: %d %s; want 200 with %s", a.status, a.body, newARN)
	}
	dial(t, a.conn.URL).Close(websocket.StatusNormalClosure, "")

	// A channel that is gone, asked for 100 times, with and without
	// refresh, over a few seconds.
	before := upstreamCalls(e.emu.Stats())
	for i := range 100 {
		body := `{"channel":"cam-404","role":"MASTER"}`
		if i%2 == 1 {
			body = `{"channel":"cam-404","role":"MASTER","refresh":true}`
		}
		if a := e.ts.post(t, tokCamera, body); a.status != 404 || a.err.Code != "channel_not_found" {
			t.Fatalf("request %d for a missing channel: %d %s", i, a.status, a.body)
		}
		if i%10 == 9 {
			e.clock.Advance(time.Second)
		}
	}
	if d := upstreamCalls(e.emu.Stats()) - before; d > 4 {
		t.Errorf("100 requests for a missing channel made %d AWS calls; want at most 4", d)
	}
}

// TestE2EResolverInvalidated: the backend keeps answers until they expire
// without asking the resolver, but not past a drop the resolver made on
// its own, here DescribeChannel finding the old ARN gone.
func TestE2EResolverInvalidated(t *testing.T) {
	e := startE2E(t, baseConfig(), false)
	const master = `{"channel":"cam-1","role":"MASTER"}`
	if a := e.ts.post(t, tokCamera, master); a.status != 200 || a.conn.ChannelARN != e.arn {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	old := e.arn
	newARN := e.recreate(t)
	if _, err := e.resolver.DescribeChannel(context.Background(), old); err == nil {
		t.Fatalf("DescribeChannel(%s) after deletion: no error", old)
	}
	a := e.ts.post(t, tokCamera, master)
	if a.status != 200 || a.conn.ChannelARN != newARN {
		t.Fatalf("after the resolver dropped the old ARN: %d with %s; want 200 with %s (old %s)", a.status, a.conn.ChannelARN, newARN, old)
	}
}
