package vend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
)

// fakeSTS issues credentials that live for the requested duration, and
// records what it was asked.
type fakeSTS struct {
	clock *fakeClock
	mu    sync.Mutex
	ins   []*sts.AssumeRoleInput
	calls atomic.Int64
	err   error
	delay time.Duration
}

func (f *fakeSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	n := f.calls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	f.ins = append(f.ins, in)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	exp := f.clock.Now().Add(time.Duration(*in.DurationSeconds) * time.Second)
	secret := fmt.Sprintf("scoped-secret-%d-0123456789", n)
	token := fmt.Sprintf("scoped-token-%d-0123456789", n)
	noteSecret(secret, token)
	return &sts.AssumeRoleOutput{Credentials: &types.Credentials{
		AccessKeyId: aws.String(fmt.Sprintf("ASIASCOPED%06d", n)), SecretAccessKey: aws.String(secret),
		SessionToken: aws.String(token), Expiration: &exp,
	}}, nil
}

func TestSTSScoperPolicy(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	f := &fakeSTS{clock: clock}
	s := NewSTSScoper(f, ScopedCredentials{RoleARN: "arn:aws:iam::123456789012:role/connect", ExternalID: "ext-1"}, 0, clock.Now)
	arn := testARN("cam-1")
	c, err := s.ScopedCredentials(context.Background(), arn, kvs.Viewer)
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionToken == "" || !c.Expires.Equal(clock.Now().Add(15*time.Minute)) {
		t.Errorf("credentials %v", c)
	}
	in := f.ins[0]
	if aws.ToString(in.RoleArn) != "arn:aws:iam::123456789012:role/connect" || aws.ToString(in.RoleSessionName) != "kvssign-vend" ||
		aws.ToInt32(in.DurationSeconds) != 900 || aws.ToString(in.ExternalId) != "ext-1" {
		t.Errorf("AssumeRole input: %+v", in)
	}
	var policy map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(in.Policy)), &policy); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Version":   "2012-10-17",
		"Statement": []any{map[string]any{"Effect": "Allow", "Action": "kinesisvideo:ConnectAsViewer", "Resource": arn}},
	}
	if diff := cmp.Diff(want, policy); diff != "" {
		t.Errorf("session policy (-want +got):\n%s", diff)
	}
	if _, err := s.ScopedCredentials(context.Background(), arn, kvs.Master); err != nil {
		t.Fatal(err)
	}
	if p := aws.ToString(f.ins[1].Policy); !strings.Contains(p, "kinesisvideo:ConnectAsMaster") || strings.Contains(p, "ConnectAsViewer") {
		t.Errorf("master policy %s", p)
	}
}

func TestSTSScoperCaching(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	f := &fakeSTS{clock: clock, delay: 20 * time.Millisecond}
	s := NewSTSScoper(f, ScopedCredentials{RoleARN: "arn:aws:iam::123456789012:role/connect"}, 299*time.Second, clock.Now)
	arn := testARN("cam-1")
	ctx := context.Background()

	// Concurrent first requests share one call.
	var wg sync.WaitGroup
	keys := make(chan string, 50)
	for range 50 {
		wg.Go(func() {
			c, err := s.ScopedCredentials(ctx, arn, kvs.Viewer)
			if err != nil {
				t.Error(err)
			}
			keys <- c.AccessKeyID
		})
	}
	wg.Wait()
	close(keys)
	for k := range keys {
		if k != "ASIASCOPED000001" {
			t.Errorf("got %s; want everyone to share the first credentials", k)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d AssumeRole calls for 50 concurrent requests; want 1", n)
	}
	// Within their life: cached.
	clock.Advance(5 * time.Minute)
	c, _ := s.ScopedCredentials(ctx, arn, kvs.Viewer)
	if c.AccessKeyID != "ASIASCOPED000001" || f.calls.Load() != 1 {
		t.Errorf("at 5m: %s after %d calls; want the cached ones", c.AccessKeyID, f.calls.Load())
	}
	// Renewal due (less than a URL's life and five minutes left), still
	// usable: the old ones are returned while new ones are fetched.
	clock.Advance(3 * time.Minute)
	c, _ = s.ScopedCredentials(ctx, arn, kvs.Viewer)
	if c.AccessKeyID != "ASIASCOPED000001" {
		t.Errorf("at 8m: %s; want the still-usable old credentials", c.AccessKeyID)
	}
	waitFor(t, func() bool {
		c, _ := s.ScopedCredentials(ctx, arn, kvs.Viewer)
		return c.AccessKeyID == "ASIASCOPED000002"
	})
	// STS fails and nothing usable is left: ErrUnavailable, and the
	// failure is remembered briefly instead of retried per request.
	f.mu.Lock()
	f.err = &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
	f.mu.Unlock()
	clock.Advance(time.Hour)
	before := f.calls.Load()
	for range 5 {
		if _, err := s.ScopedCredentials(ctx, arn, kvs.Viewer); !errors.Is(err, ErrUnavailable) {
			t.Errorf("STS throttling: %v; want ErrUnavailable", err)
		}
	}
	if n := f.calls.Load() - before; n != 1 {
		t.Errorf("5 requests during an STS failure made %d calls; want 1", n)
	}
	// A refusal is not "unavailable": the server answers 502.
	f.mu.Lock()
	f.err = &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}
	f.mu.Unlock()
	clock.Advance(2 * time.Second)
	if _, err := s.ScopedCredentials(ctx, arn, kvs.Viewer); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("STS AccessDenied: %v; want a plain error", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClassifyAWSError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"throttling", &smithy.GenericAPIError{Code: "Throttling"}, true},
		{"KVS throttling", &smithy.GenericAPIError{Code: "ClientLimitExceededException"}, true},
		{"5xx", statusErr{500}, true},
		{"429", statusErr{429}, true},
		{"403", statusErr{403}, false},
		{"no answer", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{"denied", &smithy.GenericAPIError{Code: "AccessDenied"}, false},
		{"canceled", context.Canceled, false},
	}
	for _, c := range cases {
		if got := errors.Is(classifyAWSError(c.err), ErrUnavailable); got != c.want {
			t.Errorf("%s: unavailable = %v; want %v", c.name, got, c.want)
		}
	}
}

type statusErr struct{ code int }

func (e statusErr) Error() string       { return http.StatusText(e.code) }
func (e statusErr) HTTPStatusCode() int { return e.code }

// blockingSTS answers only when its context ends.
type blockingSTS struct{ started chan struct{} }

func (b blockingSTS) AssumeRole(ctx context.Context, _ *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	close(b.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestSTSScoperClose: Close ends the STS call under way, and no call
// starts after it.
func TestSTSScoperClose(t *testing.T) {
	b := blockingSTS{started: make(chan struct{})}
	s := NewSTSScoper(b, ScopedCredentials{RoleARN: "arn:aws:iam::123456789012:role/connect"}, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller gives up at once; the fetch goes on
	if _, err := s.ScopedCredentials(ctx, testARN("cam-1"), kvs.Viewer); !errors.Is(err, context.Canceled) {
		t.Fatalf("ScopedCredentials with a cancelled context: %v", err)
	}
	<-b.started
	s.Close() // returns once the fetch has ended
	if _, err := s.ScopedCredentials(context.Background(), testARN("cam-2"), kvs.Viewer); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("ScopedCredentials after Close: %v; want an error saying the scoper is closed", err)
	}
}
