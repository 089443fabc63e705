package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// env is an emulator with one channel and what it takes to connect to it.
type env struct {
	e        *emulator.Emulator
	arn      string
	creds    sigv4.CredentialsProvider
	signer   *kvs.Presigner
	masterEP string
	viewerEP string
}

// fastConfig lifts the per-second limits that would slow most tests.
func fastConfig() emulator.Config {
	return emulator.Config{ConnectRate: -1, SDPRate: -1, ICERate: -1}
}

func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	e := emulatortest.New(t, cfg)
	creds := e.Credentials()
	if creds.AccessKeyID == "" {
		creds = sigv4.Credentials{AccessKeyID: emulator.ExampleAccessKeyID, SecretAccessKey: emulator.ExampleSecretAccessKey}
	}
	v := &env{e: e, creds: creds}
	ctx := testContext(t)
	api := &kvsapi.Client{BaseURL: e.URL(), Region: e.Region(), Credentials: v.creds}
	var err error
	if v.arn, err = api.CreateChannel(ctx, channelName(t.Name())); err != nil {
		t.Fatal(err)
	}
	if v.masterEP, err = api.Endpoint(ctx, v.arn, kvs.Master); err != nil {
		t.Fatal(err)
	}
	if v.viewerEP, err = api.Endpoint(ctx, v.arn, kvs.Viewer); err != nil {
		t.Fatal(err)
	}
	v.signer = &kvs.Presigner{Credentials: v.creds}
	return v
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// source is a URLSource that counts its calls and remembers the URLs it
// gave (in memory only; tests redact before showing one).
type source struct {
	mu   sync.Mutex
	next URLSource
	urls []string
}

func (s *source) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	u, err := next(ctx)
	if err == nil {
		s.mu.Lock()
		s.urls = append(s.urls, u)
		s.mu.Unlock()
	}
	return u, err
}

func (s *source) set(next URLSource) {
	s.mu.Lock()
	s.next = next
	s.mu.Unlock()
}

func (s *source) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.urls)
}

func (s *source) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.urls...)
}

func (v *env) source(role kvs.Role, clientID string) *source {
	ep := v.masterEP
	if role == kvs.Viewer {
		ep = v.viewerEP
	}
	return &source{next: Presigned(v.signer, ep, v.arn, role, clientID)}
}

// dial connects with src and closes the client when the test ends.
func dial(t *testing.T, src *source, opts *Options) *Client {
	t.Helper()
	c, err := Dial(testContext(t), src.get, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// await reads events until one satisfies want, and returns it with the
// events skipped on the way.
func await(t *testing.T, c *Client, timeout time.Duration, what string, want func(Event) bool) (Event, []Event) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var skipped []Event
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("waiting for %s: events closed (Err %v); skipped %s", what, c.Err(), describe(skipped))
			}
			if want(ev) {
				return ev, skipped
			}
			skipped = append(skipped, ev)
		case <-timer.C:
			t.Fatalf("waiting for %s: nothing after %v; skipped %s", what, timeout, describe(skipped))
		}
	}
}

func isType(typ EventType) func(Event) bool {
	return func(ev Event) bool { return ev.Type == typ }
}

func describe(evs []Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, ev := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v#%d", ev.Type, ev.Conn)
		if ev.Err != nil {
			fmt.Fprintf(&b, "(%v)", ev.Err)
		}
	}
	b.WriteString("]")
	return b.String()
}

func candidate(n int) kvs.ICECandidate {
	mid, idx := "0", uint16(0)
	return kvs.ICECandidate{
		Candidate:     fmt.Sprintf("candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host", n, 40000+n),
		SDPMid:        &mid,
		SDPMLineIndex: &idx,
	}
}

// exchange sends n candidates each way, tagged with tag, and checks that
// every one arrives.
func exchange(t *testing.T, master, viewer *Client, viewerID string, tag, n int) {
	t.Helper()
	ctx := testContext(t)
	errs := make(chan error, 2)
	go func() {
		for i := range n {
			if err := viewer.SendCandidate(ctx, "", candidate(tag*1000+i)); err != nil {
				errs <- fmt.Errorf("viewer SendCandidate: %w", err)
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := range n {
			if err := master.SendCandidate(ctx, viewerID, candidate(tag*1000+500+i)); err != nil {
				errs <- fmt.Errorf("master SendCandidate: %w", err)
				return
			}
		}
		errs <- nil
	}()
	expect := func(c *Client, who string, base int, wantFrom string) {
		t.Helper()
		missing := map[string]bool{}
		for i := range n {
			missing[candidate(base+i).Candidate] = true
		}
		for len(missing) > 0 {
			ev, _ := await(t, c, 15*time.Second, fmt.Sprintf("%s: %d candidates of round %d", who, len(missing), tag), func(ev Event) bool {
				return ev.Type == EventCandidate || ev.Type == EventStatus
			})
			if ev.Type == EventStatus {
				t.Fatalf("%s: %v", who, ev.Err)
			}
			if ev.From != wantFrom {
				t.Errorf("%s: candidate from %q; want %q", who, ev.From, wantFrom)
			}
			delete(missing, ev.Candidate.Candidate)
		}
	}
	expect(master, "master", tag*1000, viewerID)
	expect(viewer, "viewer", tag*1000+500, "")
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// ourCode matches the stack of a goroutine running this package's code
// (not a test's).
var ourCode = leakcheck.Mentioning("kvssign/signaling.(*")

// checkNoLeak fails if goroutines of this package are still running a
// moment after every client was closed.
func checkNoLeak(t *testing.T) {
	t.Helper()
	leakcheck.Gone(t, 5*time.Second, ourCode)
}

func runtimeGoroutines() int { return runtime.NumGoroutine() }

// waitConns waits until the emulator has registered n live connections: a
// client's Dial returns on the 101 answer, which may come before the
// emulator has registered the connection.
func waitConns(t *testing.T, e *emulator.Emulator, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Connections()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("emulator has %d connections; want %d", len(e.Connections()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// channelName turns a test name into a valid channel name.
func channelName(test string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, test)
}

// testLogger sends a client's log to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitWaiting waits until a goroutine of this package is in fn (a send
// waiting for a connection, say).
func waitWaiting(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, g := range leakcheck.Stacks(ourCode) {
			if strings.Contains(g, "kvssign/signaling."+fn) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s", fn)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time // or
	f  func()         // called in a goroutine of its own
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, timers: make(map[*fakeTimer]bool)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t.c, func() bool { return false }
	}
	f.timers[t] = true
	return t.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		pending := f.timers[t]
		delete(f.timers, t)
		return pending
	}
}

func (f *fakeClock) AfterFunc(d time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		go fn()
		return func() bool { return false }
	}
	t := &fakeTimer{at: f.now.Add(d), f: fn}
	f.timers[t] = true
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		pending := f.timers[t]
		delete(f.timers, t)
		return pending
	}
}

// Advance moves the clock on by d and fires the timers due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for t := range f.timers {
		if !t.at.After(f.now) {
			if t.f != nil {
				go t.f()
			} else {
				t.c <- f.now
			}
			delete(f.timers, t)
		}
	}
}

// pending returns how many timers wait.
func (f *fakeClock) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}
