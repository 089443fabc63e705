package awskvs

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Defaults for a [Resolver]'s calls. The backoff follows the KVS C SDK:
// from 100 ms, doubling, capped, with jitter.
const (
	DefaultCallTimeout = 5 * time.Second
	DefaultMaxAttempts = 4
	backoffBase        = 100 * time.Millisecond
	backoffCap         = 5 * time.Second
)

// callKind says which failures a call may retry.
type callKind int

const (
	// idempotent calls (reads) are retried on throttling, 5xx and no answer.
	idempotent callKind = iota
	// mutating calls are retried only on throttling, which means the
	// request was refused before it did anything.
	mutating
)

// backoff returns the pause before attempt n+1 (n ≥ 1): a random time in
// [d/2, d) where d doubles from backoffBase up to backoffCap.
func backoff(n int, rnd func() float64) time.Duration {
	d := backoffBase << min(n-1, 16)
	if d > backoffCap || d <= 0 {
		d = backoffCap
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs fn with a deadline per attempt, retrying transient failures
// with backoff and jitter, at most MaxAttempts times. Its error is an
// [*Error] naming op and resource.
func (r *Resolver) call(ctx context.Context, op, resource string, kind callKind, fn func(ctx context.Context) error) error {
	attempts := r.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	timeout := r.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	sleep := r.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	rnd := r.rand
	if rnd == nil {
		rnd = rand.Float64
	}
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		err := fn(actx)
		cancel()
		if err == nil {
			r.debug(ctx, "call", "op", op, "resource", resource, "attempt", n, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		f := classify(err)
		if ctx.Err() != nil {
			// The caller gave up: its own deadline, not the attempt's.
			f.transient = false
		}
		// A call refused for its signing time is tried once more: the SDK
		// learns its clock's skew from the answer's Date header and signs
		// the next attempt with it corrected.
		retry := n < attempts && !f.later && (f.transient && (kind == idempotent || f.kind == ErrThrottled) || f.skew && n == 1)
		r.debug(ctx, "call failed", "op", op, "resource", resource, "attempt", n, "status", f.status, "code", f.code, "retry", retry)
		if !retry {
			return &Error{Op: op, Resource: resource, Kind: f.kind, Code: f.code, Message: f.message,
				StatusCode: f.status, Attempts: n, Err: err, transient: f.transient}
		}
		if sleep(ctx, backoff(n, rnd)) != nil {
			return &Error{Op: op, Resource: resource, Kind: f.kind, Code: f.code, Message: f.message,
				StatusCode: f.status, Attempts: n, Err: err, transient: false}
		}
	}
}

func (r *Resolver) debug(ctx context.Context, msg string, args ...any) {
	if r.Logger != nil {
		r.Logger.Log(ctx, slog.LevelDebug, "awskvs: "+msg, args...)
	}
}
