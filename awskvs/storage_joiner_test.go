package awskvs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/signaling"
)

// joinLog records a StorageJoiner's joins: the reason and when, in
// seconds since the start of the bubble.
type joinLog struct {
	mu    sync.Mutex
	start time.Time
	got   []string
	at    []time.Duration
}

func (l *joinLog) add(a awskvs.JoinAttempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, a.Reason)
	l.at = append(l.at, time.Since(l.start))
}

func (l *joinLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func (l *joinLog) times() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.at...)
}

// startJoiner runs j in the bubble with join as its Join and returns the
// log and a channel with Run's result.
func startJoiner(t *testing.T, j *awskvs.StorageJoiner, join func(n int) error) (*joinLog, context.CancelFunc, chan error) {
	t.Helper()
	l := &joinLog{start: time.Now()}
	calls := 0
	j.Join = func(context.Context) error {
		calls++
		return join(calls)
	}
	j.OnJoin = l.add
	// Fixed pauses: the jitter is [d/2, d), so MinBackoff = MaxBackoff = 2s
	// gives a pause from 1 to 2 seconds.
	j.MinBackoff, j.MaxBackoff = 2*time.Second, 2*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	synctest.Wait()
	return l, cancel, done
}

func TestStorageJoinerRejoins(t *testing.T) {
	tests := []struct {
		name string
		// drive acts on the joiner after the first join.
		drive func(j *awskvs.StorageJoiner)
		want  []string
	}{
		{"no offer", func(j *awskvs.StorageJoiner) {
			time.Sleep(6*time.Second + 2*time.Second + 6*time.Second + 2*time.Second + time.Millisecond)
		}, []string{awskvs.JoinStart, awskvs.JoinNoOffer, awskvs.JoinNoOffer}},
		{"offer but no connection", func(j *awskvs.StorageJoiner) {
			j.Observe(signaling.Event{Type: signaling.EventOffer})
			time.Sleep(30*time.Second + 2*time.Second + time.Millisecond)
		}, []string{awskvs.JoinStart, awskvs.JoinNotConnected}},
		{"connected for the hour", func(j *awskvs.StorageJoiner) {
			j.Offered()
			synctest.Wait()
			j.Connected()
			time.Sleep(58 * time.Minute)
			synctest.Wait()
			time.Sleep(time.Minute + time.Millisecond)
		}, []string{awskvs.JoinStart, awskvs.JoinSessionLimit}},
		{"signaling reconnects", func(j *awskvs.StorageJoiner) {
			j.Offered()
			j.Connected()
			synctest.Wait()
			j.Observe(signaling.Event{Type: signaling.EventDisconnected})
			time.Sleep(time.Hour) // no renewal while signaling is down
			j.Observe(signaling.Event{Type: signaling.EventReconnected})
		}, []string{awskvs.JoinStart, awskvs.JoinReconnected}},
		{"peer lost", func(j *awskvs.StorageJoiner) {
			j.Offered()
			j.Connected()
			synctest.Wait()
			time.Sleep(5 * time.Minute)
			j.Lost()
			time.Sleep(2*time.Second + time.Millisecond)
		}, []string{awskvs.JoinStart, awskvs.JoinPeerLost}},
		{"a late loss of an older peer is ignored", func(j *awskvs.StorageJoiner) {
			j.Lost()
			synctest.Wait()
			j.Offered()
			j.Connected()
			time.Sleep(time.Minute)
		}, []string{awskvs.JoinStart}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := &awskvs.StorageJoiner{}
				l, cancel, done := startJoiner(t, j, func(int) error { return nil })
				tt.drive(j)
				synctest.Wait()
				if diff := cmp.Diff(tt.want, l.reasons()); diff != "" {
					t.Errorf("joins (-want +got):\n%s\nat %v", diff, l.times())
				}
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Errorf("Run = %v; want context.Canceled", err)
				}
			})
		})
	}
}

func TestStorageJoinerTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &awskvs.StorageJoiner{SessionLimit: 10 * time.Minute}
		l, cancel, _ := startJoiner(t, j, func(int) error { return nil })
		defer cancel()
		j.Offered()
		j.Connected()
		synctest.Wait()
		time.Sleep(9*time.Minute + 55*time.Second)
		// A sixtieth of ten minutes, at most a minute, is ten seconds: the
		// session is renewed at 9m50s.
		want := []time.Duration{0, 9*time.Minute + 50*time.Second}
		if diff := cmp.Diff(want, l.times()); diff != "" {
			t.Errorf("join times (-want +got):\n%s", diff)
		}
	})
}

func TestStorageJoinerFailures(t *testing.T) {
	denied := &awskvs.Error{Op: "JoinStorageSession", Kind: awskvs.ErrAccessDenied, Code: "AccessDeniedException"}
	throttled := &awskvs.Error{Op: "JoinStorageSession", Kind: awskvs.ErrThrottled, Code: "ClientLimitExceededException"}
	tests := []struct {
		name      string
		fail      func(n int) error
		wantErr   error
		wantJoins int
	}{
		{"access denied ends at once", func(int) error { return denied }, awskvs.ErrAccessDenied, 1},
		{"failures end after MaxFailures", func(int) error { return throttled }, awskvs.ErrThrottled, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := &awskvs.StorageJoiner{MaxFailures: 3}
				l, cancel, done := startJoiner(t, j, tt.fail)
				defer cancel()
				time.Sleep(time.Minute)
				select {
				case err := <-done:
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("Run = %v; want %v", err, tt.wantErr)
					}
				default:
					t.Fatal("Run still runs")
				}
				if got := len(l.reasons()); got != tt.wantJoins {
					t.Errorf("%d joins; want %d", got, tt.wantJoins)
				}
			})
		})
	}
}

func TestStorageJoinerRecoversAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &awskvs.StorageJoiner{}
		l, cancel, _ := startJoiner(t, j, func(n int) error {
			if n == 1 {
				return errors.New("connection refused")
			}
			return nil
		})
		defer cancel()
		time.Sleep(2*time.Second + time.Millisecond)
		j.Offered()
		j.Connected()
		time.Sleep(time.Minute)
		if diff := cmp.Diff([]string{awskvs.JoinStart, awskvs.JoinRetry}, l.reasons()); diff != "" {
			t.Errorf("joins (-want +got):\n%s", diff)
		}
	})
}

func TestStorageJoinerNeedsJoin(t *testing.T) {
	if err := (&awskvs.StorageJoiner{}).Run(context.Background()); err == nil {
		t.Error("Run without Join succeeded")
	}
}

// TestStorageJoinerCancelledJoinUnreported: a join cut short by Run's
// context is not reported to OnJoin: the caller has stopped listening.
func TestStorageJoinerCancelledJoinUnreported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &awskvs.StorageJoiner{}
		ctx, cancel := context.WithCancel(context.Background())
		j.Join = func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}
		var reported []awskvs.JoinAttempt
		j.OnJoin = func(a awskvs.JoinAttempt) { reported = append(reported, a) }
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v; want context.Canceled", err)
		}
		if len(reported) != 0 {
			t.Errorf("OnJoin saw %+v; want nothing", reported)
		}
	})
}
