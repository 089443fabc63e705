package awskvs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// countingProvider issues new temporary credentials, each living life
// from the clock's now, and counts the calls.
type countingProvider struct {
	clock *fakeClock
	life  time.Duration
	n     atomic.Int64
}

func (p *countingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	n := p.n.Add(1)
	return aws.Credentials{
		AccessKeyID: fmt.Sprintf("ASIATEST%d", n), SecretAccessKey: "secret", SessionToken: "token",
		CanExpire: true, Expires: p.clock.Now().Add(p.life),
	}, nil
}

func newTestCredentials(p aws.CredentialsProvider, window time.Duration, clock *fakeClock) *credentials {
	c := Credentials(p, window).(*credentials)
	c.now = clock.Now
	return c
}

func TestCredentialsRenewAheadOfExpiry(t *testing.T) {
	clock := newFakeClock()
	p := &countingProvider{clock: clock, life: time.Hour}
	c := newTestCredentials(p, 10*time.Minute, clock)
	ctx := context.Background()
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 1},
		{49 * time.Minute, 1},       // 11 minutes left: kept
		{2 * time.Minute, 2},        // 9 minutes left: renewed
		{30 * time.Minute, 2},       // the new ones have 30 minutes left
		{21 * time.Minute, 3},       // 9 minutes left again
		{0, 3},                      // and cached
		{55 * time.Minute, 4},       // past the window (not yet expired for the SDK's cache)
		{time.Nanosecond * 1, 4},    // cached
		{50*time.Minute + 1, 4 + 1}, // 9m59s left: renewed
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		got, err := c.Retrieve(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n := p.n.Load(); n != s.wantCalls {
			t.Errorf("step %d: %d retrievals; want %d", i, n, s.wantCalls)
		}
		if got.ExpiresWithin(clock.Now(), 10*time.Minute) {
			t.Errorf("step %d: got credentials expiring at %v, within the window of %v", i, got.Expires, clock.Now())
		}
	}
}

func TestCredentialsConcurrentRenewal(t *testing.T) {
	clock := newFakeClock()
	p := &countingProvider{clock: clock, life: time.Hour}
	c := newTestCredentials(p, 10*time.Minute, clock)
	if _, err := c.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(55 * time.Minute)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.Retrieve(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := p.n.Load(); n != 2 {
		t.Errorf("50 concurrent callers needing renewal made %d retrievals in all; want 2", n)
	}
}

func TestCredentialsShortLivedAreNotRenewedEveryCall(t *testing.T) {
	clock := newFakeClock()
	p := &countingProvider{clock: clock, life: 5 * time.Minute}
	c := newTestCredentials(p, 10*time.Minute, clock)
	for i := range 10 {
		if _, err := c.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		_ = i
	}
	if n := p.n.Load(); n != 2 {
		t.Errorf("credentials shorter than the window: %d retrievals over 10 calls; want 2 (one renewal)", n)
	}
}

func TestCredentialsStatic(t *testing.T) {
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDSTATIC", SecretAccessKey: "secret"}, nil
	})
	got, err := Credentials(p, 0).Retrieve(context.Background())
	if err != nil || got.AccessKeyID != "AKIDSTATIC" || !got.Expires.IsZero() || got.SessionToken != "" {
		t.Errorf("Retrieve = %v, %v; want the static key with no expiry", got, err)
	}
	if s := fmt.Sprint(got); strings.Contains(s, "secret") {
		t.Errorf("printing credentials shows the secret: %s", s)
	}
}

func TestCredentialsError(t *testing.T) {
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, fmt.Errorf("no credentials anywhere")
	})
	_, err := Credentials(p, 0).Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "awskvs: retrieving credentials") || !strings.Contains(err.Error(), "no credentials anywhere") {
		t.Errorf("Retrieve = %v; want a wrapped error", err)
	}
}
