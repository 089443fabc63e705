package awskvs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func TestResolveCachesARNAndEndpoints(t *testing.T) {
	api := newFakeAPI("cam")
	clock := newFakeClock()
	r, _ := newTestResolver(api, clock)
	ctx := context.Background()
	var first Connection
	for i := range 1000 {
		c, err := r.Resolve(ctx, "cam", kvs.Viewer)
		if err != nil {
			t.Fatalf("Resolve #%d: %v", i, err)
		}
		if c.FromCache != (i > 0) {
			t.Fatalf("Resolve #%d: FromCache = %v; want %v", i, c.FromCache, i > 0)
		}
		c.FromCache = false
		if i == 0 {
			first = c
		} else if diff := cmp.Diff(first, c); diff != "" {
			t.Fatalf("Resolve #%d differs from the first (-first +now):\n%s", i, diff)
		}
	}
	want := Connection{
		ChannelARN:      api.channels["cam"],
		Role:            kvs.Viewer,
		WSSEndpoint:     "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com",
		HTTPSEndpoint:   "https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com",
		ARNExpires:      clock.Now().Add(DefaultCacheTTL),
		EndpointsExpire: clock.Now().Add(DefaultCacheTTL),
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 1 || e != 1 {
		t.Errorf("1000 resolutions made %d Describe and %d GetEndpoint calls; want 1 and 1", d, e)
	}

	// The master's endpoints are another entry; the ARN is shared.
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil {
		t.Fatal(err)
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 1 || e != 2 {
		t.Errorf("after a master resolution: %d Describe, %d GetEndpoint; want 1 and 2", d, e)
	}

	// Past the TTL, both are fetched again.
	clock.Advance(DefaultCacheTTL + time.Second)
	if _, err := r.Resolve(ctx, "cam", kvs.Viewer); err != nil {
		t.Fatal(err)
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 2 || e != 3 {
		t.Errorf("after expiry: %d Describe, %d GetEndpoint; want 2 and 3", d, e)
	}
}

func TestResolveByARNSkipsDescribe(t *testing.T) {
	api := newFakeAPI("cam")
	r, _ := newTestResolver(api, newFakeClock())
	c, err := r.Resolve(context.Background(), api.channels["cam"], kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ARNExpires.IsZero() || api.count("Describe") != 0 {
		t.Errorf("Resolve(ARN): ARNExpires %v, %d Describe calls; want zero and 0", c.ARNExpires, api.count("Describe"))
	}
}

func TestConcurrentMissesMakeOneCall(t *testing.T) {
	api := newFakeAPI("cam")
	api.block = make(chan struct{})
	r, _ := newTestResolver(api, newFakeClock())
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := r.Resolve(context.Background(), "cam", kvs.Master)
			errs <- err
		})
	}
	// Let every goroutine reach the flight, then release the one call.
	for api.count("Describe") == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	api.mu.Lock()
	close(api.block)
	api.block = nil
	api.mu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 1 || e != 1 {
		t.Errorf("%d concurrent misses made %d Describe and %d GetEndpoint calls; want 1 and 1", n, d, e)
	}
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	api := newFakeAPI("cam")
	api.block = make(chan struct{})
	r, _ := newTestResolver(api, newFakeClock())
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { _, err := r.Resolve(ctx1, "cam", kvs.Master); done1 <- err }()
	for api.count("Describe") == 0 {
		time.Sleep(time.Millisecond)
	}
	done2 := make(chan error, 1)
	go func() { _, err := r.Resolve(context.Background(), "cam", kvs.Master); done2 <- err }()
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v; want context.Canceled", err)
	}
	api.mu.Lock()
	close(api.block)
	api.block = nil
	api.mu.Unlock()
	if err := <-done2; err != nil {
		t.Errorf("the other caller got %v; want success", err)
	}
	if n := api.count("Describe"); n != 1 {
		t.Errorf("%d Describe calls; want 1", n)
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name      string
		errs      []error
		wantCalls int64
		wantKind  error // nil: success
		wantCode  string
	}{
		{"throttled twice", []error{errThrottle, errThrottle}, 3, nil, ""},
		{"5xx then ok", []error{err500}, 2, nil, ""},
		{"503 every time", []error{err503, err503, err503, err503, err503}, 4, nil, "ServiceUnavailableException"},
		{"throttled every time", []error{errThrottle, errThrottle, errThrottle, errThrottle}, 4, ErrThrottled, "ClientLimitExceededException"},
		{"not found", []error{errNotFound}, 1, ErrNotFound, "ResourceNotFoundException"},
		{"access denied", []error{errDenied}, 1, ErrAccessDenied, "AccessDeniedException"},
		{"invalid argument", []error{errInvalid}, 1, ErrInvalidArgument, "InvalidArgumentException"},
		{"deadline per attempt", []error{context.DeadlineExceeded, context.DeadlineExceeded}, 3, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI("cam")
			api.failNext("Describe", tc.errs...)
			r, sleeps := newTestResolver(api, newFakeClock())
			_, err := r.Resolve(context.Background(), "cam", kvs.Master)
			if got := api.count("Describe"); got != tc.wantCalls {
				t.Errorf("%d Describe calls; want %d", got, tc.wantCalls)
			}
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Resolve: %v; want success", err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Resolve: %v (%T); want *Error", err, err)
				}
				if tc.wantKind != nil && !errors.Is(err, tc.wantKind) {
					t.Errorf("errors.Is(%v, %v) = false", err, tc.wantKind)
				}
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode {
					t.Errorf("errors.As(smithy.APIError) on %v: code %v; want %s", err, ae, tc.wantCode)
				}
				if e.Attempts != int(tc.wantCalls) || e.Op != "DescribeSignalingChannel" || e.Resource != "cam" {
					t.Errorf("Error = %+v; want Op DescribeSignalingChannel, Resource cam, Attempts %d", e, tc.wantCalls)
				}
			}
			// Each pause is in [d/2, d) for d = 100 ms doubling; with
			// rand 0.5 it is 3d/4.
			for i, d := range sleeps.all() {
				if want := 3 * (backoffBase << i) / 4; d != want {
					t.Errorf("pause %d = %v; want %v", i+1, d, want)
				}
			}
		})
	}
}

// laterError is a failure that says when to try again, as vend's AWS
// call budget refuses a call: a net.Error with a RetryAfter.
type laterError struct{}

func (laterError) Error() string             { return "budget spent" }
func (laterError) Timeout() bool             { return false }
func (laterError) Temporary() bool           { return true }
func (laterError) RetryAfter() time.Duration { return 2 * time.Second }

// TestNoRetryOfErrorsThatSayWhen: a failure that names its own retry time
// is returned at once, not retried with back-off, and still counts as
// transient, so that a cached answer is served over it.
func TestNoRetryOfErrorsThatSayWhen(t *testing.T) {
	api := newFakeAPI("cam")
	api.failNext("Describe", laterError{}, laterError{}, laterError{}, laterError{})
	r, sleeps := newTestResolver(api, newFakeClock())
	_, err := r.Resolve(context.Background(), "cam", kvs.Master)
	if got := api.count("Describe"); got != 1 || len(sleeps.all()) != 0 {
		t.Errorf("%d Describe calls, %d pauses; want 1 call and none", got, len(sleeps.all()))
	}
	var le laterError
	if !errors.As(err, &le) || !transient(err) {
		t.Errorf("Resolve: %v; want the laterError, transient", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for _, x := range []float64{0, 0.5, 0.999} {
			d := backoff(n, func() float64 { return x })
			hi := min(backoffBase<<min(n-1, 16), backoffCap)
			if d < hi/2 || d >= hi {
				t.Errorf("backoff(%d, %v) = %v; want in [%v, %v)", n, x, d, hi/2, hi)
			}
		}
	}
}

func TestMutatingCallsRetryOnlyThrottling(t *testing.T) {
	api := newFakeAPI()
	r, _ := newTestResolver(api, newFakeClock())
	api.failNext("Create", err500)
	if _, err := r.CreateChannel(context.Background(), "a", 0, nil); err == nil || api.count("Create") != 1 {
		t.Errorf("CreateChannel after a 500: err %v, %d calls; want an error after 1 call", err, api.count("Create"))
	}
	api.failNext("Create", errThrottle)
	if _, err := r.CreateChannel(context.Background(), "a", 0, nil); err != nil || api.count("Create") != 3 {
		t.Errorf("CreateChannel after throttling: err %v, %d calls in all; want success after 3", err, api.count("Create"))
	}
}

func TestPerAttemptDeadline(t *testing.T) {
	api := newFakeAPI("cam")
	api.block = make(chan struct{}) // never released: every attempt times out
	r, _ := newTestResolver(api, newFakeClock())
	r.CallTimeout = 10 * time.Millisecond
	r.MaxAttempts = 3
	start := time.Now()
	_, err := r.Resolve(context.Background(), "cam", kvs.Master)
	if !errors.Is(err, context.DeadlineExceeded) || api.count("Describe") != 3 {
		t.Errorf("Resolve with a hung API: %v after %d calls; want DeadlineExceeded after 3", err, api.count("Describe"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; want about 30 ms", d)
	}
}

func TestStaleOnError(t *testing.T) {
	api := newFakeAPI("cam")
	clock := newFakeClock()
	r, _ := newTestResolver(api, clock)
	r.CacheTTL = time.Hour
	r.MaxStale = 10 * time.Minute
	ctx := context.Background()
	fresh, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil {
		t.Fatal(err)
	}

	// The service fails: the old values are served, marked stale.
	clock.Advance(time.Hour + time.Second)
	api.failNext("Describe", err503, err503, err503, err503)
	c, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil {
		t.Fatalf("Resolve during an outage: %v; want the stale value", err)
	}
	if !c.Stale || c.ChannelARN != fresh.ChannelARN || c.WSSEndpoint != fresh.WSSEndpoint {
		t.Errorf("Resolve during an outage = %+v; want the old values, Stale", c)
	}
	// Right after, the stale value is served without asking again.
	calls := api.count("Describe")
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil || api.count("Describe") != calls {
		t.Errorf("second Resolve during the outage: err %v, %d more calls; want none", err, api.count("Describe")-calls)
	}

	// Past MaxStale the error comes through.
	clock.Advance(10 * time.Minute)
	api.failNext("Describe", err503, err503, err503, err503)
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err == nil {
		t.Error("Resolve past MaxStale succeeded; want the 503")
	}

	// A definite answer (not found) is never papered over.
	r2, _ := newTestResolver(api, clock)
	if _, err := r2.Resolve(ctx, "cam", kvs.Master); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultCacheTTL + time.Second)
	api.failNext("Describe", errNotFound)
	if _, err := r2.Resolve(ctx, "cam", kvs.Master); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a deleted channel: %v; want ErrNotFound", err)
	}
}

func TestCreateIfMissing(t *testing.T) {
	api := newFakeAPI()
	r, _ := newTestResolver(api, newFakeClock())
	// The test changes CreateIfMissing between calls, so "not found" must
	// not be remembered.
	r.NotFoundTTL = -1
	if _, err := r.Resolve(context.Background(), "new", kvs.Master); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of a missing channel: %v; want ErrNotFound", err)
	}
	r.CreateIfMissing = true
	c, err := r.Resolve(context.Background(), "new", kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	if c.ChannelARN != api.channels["new"] || api.count("Create") != 1 {
		t.Errorf("Resolve with CreateIfMissing: ARN %q, %d creations; want %q, 1", c.ChannelARN, api.count("Create"), api.channels["new"])
	}
}

func TestInvalidInput(t *testing.T) {
	api := newFakeAPI("cam")
	r, _ := newTestResolver(api, newFakeClock())
	r.Credentials = sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"empty name", func() error { _, err := r.Resolve(ctx, "", kvs.Master); return err }, "channel name is empty"},
		{"bad name", func() error { _, err := r.Resolve(ctx, "a b", kvs.Master); return err }, "must contain only"},
		{"bad ARN", func() error {
			_, err := r.Resolve(ctx, "arn:aws:kinesisvideo:us-west-2:1:stream/x/1", kvs.Master)
			return err
		}, "must start with channel/"},
		{"bad role", func() error { _, err := r.Resolve(ctx, "cam", "BOSS"); return err }, `role "BOSS"`},
		{"viewer without id", func() error { _, err := r.Presign(ctx, "cam", kvs.Viewer, ""); return err }, "client id is empty"},
		{"viewer AWS_ id", func() error { _, err := r.Presign(ctx, "cam", kvs.Viewer, "AWS_x"); return err }, "must not start with AWS_"},
		{"master with id", func() error { _, err := r.Presign(ctx, "cam", kvs.Master, "x"); return err }, "without a client id"},
		{"ice bad id", func() error { _, err := r.ICEServers(ctx, "cam", "a/b"); return err }, "must contain only"},
		{"ttl", func() error { _, err := r.CreateChannel(ctx, "x", time.Second, nil); return err }, "message TTL 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want ErrInvalidArgument mentioning %q", err, tc.want)
			}
		})
	}
	if n := api.count("Describe") + api.count("GetEndpoint") + api.count("Create"); n != 0 {
		t.Errorf("bad input made %d calls; want 0", n)
	}
}

func TestChannelAPI(t *testing.T) {
	api := newFakeAPI()
	r, _ := newTestResolver(api, newFakeClock())
	ctx := context.Background()
	arn, err := r.CreateChannel(ctx, "door", 30*time.Second, map[string]string{"site": "home"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.DescribeChannel(ctx, "door")
	if err != nil {
		t.Fatal(err)
	}
	if c.ARN != arn || c.Name != "door" || c.Status != "ACTIVE" {
		t.Errorf("DescribeChannel = %+v; want ARN %s, ACTIVE", c, arn)
	}
	list, err := r.ListChannels(ctx, "")
	if err != nil || len(list) != 1 || list[0].ARN != arn {
		t.Errorf("ListChannels = %+v, %v; want the one channel", list, err)
	}
	if _, err := r.Resolve(ctx, "door", kvs.Master); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteChannel(ctx, "door"); err != nil {
		t.Fatal(err)
	}
	// The cache forgot the channel: the next Resolve asks, and fails.
	if _, err := r.Resolve(ctx, "door", kvs.Master); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve after DeleteChannel: %v; want ErrNotFound", err)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Op: "DescribeSignalingChannel", Resource: "cam", Kind: ErrNotFound, Code: "ResourceNotFoundException",
		Message: "The requested channel is not found or not active.", StatusCode: 404, Attempts: 1}
	want := `awskvs: DescribeSignalingChannel "cam": ResourceNotFoundException: The requested channel is not found or not active. (HTTP 404)`
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestInvalidate(t *testing.T) {
	api := newFakeAPI("cam")
	r, _ := newTestResolver(api, newFakeClock())
	ctx := context.Background()
	c, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	gen := r.Generation()
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil || r.Generation() != gen {
		t.Fatalf("a cached Resolve: err %v, Generation %d → %d; want it unchanged", err, gen, r.Generation())
	}
	r.Invalidate("cam")
	if r.Generation() == gen {
		t.Errorf("Generation after Invalidate(name) = %d, as before", gen)
	}
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil {
		t.Fatal(err)
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 2 || e != 2 {
		t.Errorf("after Invalidate(name): %d Describe, %d GetEndpoint; want 2 and 2", d, e)
	}
	gen = r.Generation()
	r.Invalidate(c.ChannelARN)
	if r.Generation() == gen {
		t.Errorf("Generation after Invalidate(ARN) = %d, as before", gen)
	}
	if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil {
		t.Fatal(err)
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 3 || e != 3 {
		t.Errorf("after Invalidate(ARN): %d Describe, %d GetEndpoint; want 3 and 3", d, e)
	}
}

// TestRecreatedChannel: a channel deleted and created again under the same
// name gets a new ARN; the first call that AWS answers with "not found" for
// the cached ARN drops it, and the name is looked up again at once.
func TestRecreatedChannel(t *testing.T) {
	api := newFakeAPI("cam")
	clock := newFakeClock()
	r, _ := newTestResolver(api, clock)
	ctx := context.Background()
	old, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	// Deleted and created again behind the Resolver's back.
	if _, err := api.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(old.ChannelARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("cam")}); err != nil {
		t.Fatal(err)
	}
	// The viewer's endpoints are not cached: asking for them with the old
	// ARN is refused, and the Resolver finds the new one.
	c, err := r.Resolve(ctx, "cam", kvs.Viewer)
	if err != nil {
		t.Fatalf("Resolve after re-creation: %v", err)
	}
	if c.ChannelARN != api.channels["cam"] || c.ChannelARN == old.ChannelARN {
		t.Errorf("ARN after re-creation = %s; want the new %s (old %s)", c.ChannelARN, api.channels["cam"], old.ChannelARN)
	}
	// The master's endpoints of the old ARN are gone too.
	if c, err := r.Resolve(ctx, "cam", kvs.Master); err != nil || c.ChannelARN != api.channels["cam"] {
		t.Errorf("master after re-creation: %s, %v; want %s", c.ChannelARN, err, api.channels["cam"])
	}
	if d := api.count("Describe"); d != 2 {
		t.Errorf("Describe calls = %d; want 2 (the first lookup and one after the refusal)", d)
	}
}

// TestNotFoundCachedBriefly: a channel that does not exist is remembered
// as missing for NotFoundTTL, so that asking for it over and over does
// not spend the account's quota.
func TestNotFoundCachedBriefly(t *testing.T) {
	api := newFakeAPI("cam")
	clock := newFakeClock()
	r, _ := newTestResolver(api, clock)
	r.NotFoundTTL = 5 * time.Second
	ctx := context.Background()
	missingARN := "arn:aws:kinesisvideo:us-west-2:123456789012:channel/gone/1600000000000"
	for range 100 {
		if _, err := r.Resolve(ctx, "nope", kvs.Viewer); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve(nope): %v; want ErrNotFound", err)
		}
		if _, err := r.Resolve(ctx, missingARN, kvs.Viewer); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve(missing ARN): %v; want ErrNotFound", err)
		}
	}
	if d, e := api.count("Describe"), api.count("GetEndpoint"); d != 1 || e != 1 {
		t.Errorf("200 lookups of missing channels made %d Describe and %d GetEndpoint calls; want 1 and 1", d, e)
	}
	clock.Advance(6 * time.Second)
	if _, err := api.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("nope")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, "nope", kvs.Viewer); err != nil {
		t.Errorf("Resolve(nope) after NotFoundTTL, once created: %v", err)
	}
}

func TestDurationSetting(t *testing.T) {
	cases := []struct {
		name   string
		d, def time.Duration
		want   time.Duration
	}{
		{"zero takes the default", 0, time.Hour, time.Hour},
		{"negative turns it off", -time.Second, time.Hour, 0},
		{"positive is kept", time.Minute, time.Hour, time.Minute},
	}
	for _, tc := range cases {
		if got := durationSetting(tc.d, tc.def); got != tc.want {
			t.Errorf("%s: durationSetting(%v, %v) = %v; want %v", tc.name, tc.d, tc.def, got, tc.want)
		}
	}
}
