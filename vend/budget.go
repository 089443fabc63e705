// The AWS call budget: every call to the KVS control plane draws from a
// rate per operation (and per channel for DescribeSignalingChannel), kept
// by this copy alone or by the fleet in Redis, so that the calls stay
// under KVS's quotas however many copies run.

package vend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/awskvs"
)

// A budget rations AWS calls.
type budget interface {
	// Take spends one call of operation op on channel (a name or an ARN,
	// empty when the call names none). When the budget is spent it
	// returns false and how long until it is not.
	Take(ctx context.Context, op, channel string) (ok bool, wait time.Duration)
}

// newBudget returns the budget of cfg. With a fleet, the copies share it
// in Redis; while Redis is out of reach, each copy spends its own
// 1/copies of it. Without a fleet, it is this copy's.
func newBudget(cfg awsBudget, f *Fleet) budget {
	copies := 1
	if f != nil {
		copies = f.copies
	}
	local := &localBudget{ops: map[string]*limiter[string]{}}
	share := 1 / float64(copies)
	for op := range kvsQuotas {
		r, ok := cfg.rate(op)
		local.ops[op] = newLimiter[string](budgetRate(r*share, ok), 0, 0)
	}
	r, ok := cfg.perChannel()
	local.describe = newLimiter[string](channelRate(r*share, ok), 0, 0)
	if f == nil {
		return local
	}
	return &fleetBudget{f: f, cfg: cfg, local: local}
}

// budgetBurst is how many seconds of calls the budget lets out at once.
// KVS's own buckets hold a second of calls, but a call takes its token
// when it leaves the copy and counts at KVS when it arrives: on busy
// cores or a slow network the arrivals bunch. Measured with the storm
// (BENCHMARKS.md), a burst of a full second let 3–4 % of the calls
// through as throttles; a tenth of a second leaves nine tenths of KVS's
// bucket for that bunching.
const budgetBurst = 0.1

// burstOf is the burst of a budget of perSecond calls.
func burstOf(perSecond float64) int { return max(1, int(perSecond*budgetBurst)) }

// budgetRate is a rate with the budget's burst, or unlimited.
func budgetRate(perSecond float64, limited bool) Rate {
	if !limited {
		return Rate{PerSecond: -1}
	}
	return Rate{PerSecond: perSecond, Burst: burstOf(perSecond)}
}

// channelRate is the rate of a channel's DescribeSignalingChannel budget,
// with a burst of one second's calls: a handful per channel, which
// bunched still fit KVS's bucket of 5.
func channelRate(perSecond float64, limited bool) Rate {
	if !limited {
		return Rate{PerSecond: -1}
	}
	return Rate{PerSecond: perSecond, Burst: max(1, int(perSecond))}
}

// localBudget is one copy's budget: a token bucket per operation, and per
// channel for DescribeSignalingChannel.
type localBudget struct {
	ops      map[string]*limiter[string]
	describe *limiter[string]
}

func (b *localBudget) Take(_ context.Context, op, channel string) (bool, time.Duration) {
	now := time.Now()
	if op == "DescribeSignalingChannel" && channel != "" {
		if ok, wait := b.describe.allow(channel, now); !ok {
			return false, wait
		}
	}
	if l := b.ops[op]; l != nil {
		return l.allow(op, now)
	}
	return true, 0
}

// fleetBudget is the budget the copies share in Redis, and the local one
// while Redis is out of reach.
type fleetBudget struct {
	f     *Fleet
	cfg   awsBudget
	local *localBudget

	mu sync.Mutex
	// held holds, per bucket, until when this copy refuses without
	// asking Redis: in a storm most asks are refused, and asking Redis
	// for each (the resolver retries each refusal too) made the budget
	// most of Redis's work.
	held map[string]time.Time
}

// allow asks the fleet's bucket key of perSecond, unless it refused this
// copy less than its share of a token's time ago.
func (b *fleetBudget) allow(ctx context.Context, key string, perSecond float64, burst int) (ok bool, wait time.Duration, asked bool) {
	now := time.Now()
	b.mu.Lock()
	until, held := b.held[key]
	b.mu.Unlock()
	if held && now.Before(until) {
		return false, until.Sub(now), true
	}
	ok, wait, asked = b.f.allow(ctx, key, perSecond, burst)
	if asked && !ok {
		// Each copy asks again after its share of the rate at most,
		// so that the copies together still take every token.
		hold := max(wait, time.Duration(float64(b.f.copies)/perSecond*float64(time.Second)))
		b.mu.Lock()
		if b.held == nil || len(b.held) >= 4096 {
			b.held = map[string]time.Time{}
		}
		b.held[key] = now.Add(hold)
		b.mu.Unlock()
		wait = hold
	}
	return ok, wait, asked
}

func (b *fleetBudget) Take(ctx context.Context, op, channel string) (bool, time.Duration) {
	if !b.f.Up() {
		return b.local.Take(ctx, op, channel)
	}
	if op == "DescribeSignalingChannel" && channel != "" {
		if r, limited := b.cfg.perChannel(); limited {
			ok, wait, asked := b.allow(ctx, "budget:describe:"+channel, r, max(1, int(r)))
			if !asked {
				return b.local.Take(ctx, op, channel)
			}
			if !ok {
				return false, wait
			}
		}
	}
	r, limited := b.cfg.rate(op)
	if !limited {
		return true, 0
	}
	ok, wait, asked := b.allow(ctx, "budget:"+op, r, burstOf(r))
	if !asked {
		return b.local.Take(ctx, op, channel)
	}
	return ok, wait
}

// BudgetUpstream wraps next so that every KVS control-plane call draws
// from the AWS call budget of cfg first: the fleet's in Redis when f is
// not nil (while Redis is out of reach, 1/copies of it), else this copy's.
// A call over budget is not sent and fails with an error that the server
// answers with 503 and a jittered Retry-After (a cached answer, even a
// stale one, is served instead when there is one). With a fleet, the
// copies also share the answers of the read calls, so that each is made
// once fleet-wide. Calls refused are counted in reg as
// kvssign_vend_budget_refused_total. Put it outside [CountUpstream], so
// that refused and shared calls are not counted as made.
func BudgetUpstream(reg prometheus.Registerer, cfg Config, f *Fleet, next aws.HTTPClient) (aws.HTTPClient, error) {
	c, err := budgetUpstream(reg, newBudget(cfg.Budget, f), next)
	if err != nil {
		return nil, err
	}
	copies := 1
	if f != nil {
		copies = f.copies
	}
	c.inFlight = inFlightSlots(cfg.Budget, copies)
	if f != nil {
		c.shared = &sharedCalls{f: f, keep: orDuration(cfg.Cache.TTL, awskvs.DefaultCacheTTL), counts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_shared_calls_total",
			Help: "KVS read calls by how the fleet answered them: shared (another copy's answer), leased (sent under the call's lease, if the budget allows) or alone (sent without it: Redis failed).",
		}, []string{"outcome"})}
		if err := reg.Register(c.shared.counts); err != nil {
			return nil, err
		}
	}
	return c, err
}

func budgetUpstream(reg prometheus.Registerer, b budget, next aws.HTTPClient) (*budgetClient, error) {
	if next == nil {
		next = http.DefaultClient
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvssign_vend_budget_refused_total", Help: "AWS calls not made because the AWS call budget was spent, by operation.",
	}, []string{"operation"})
	if err := reg.Register(refused); err != nil {
		return nil, err
	}
	return &budgetClient{next: next, b: b, refused: refused, now: time.Now, paused: map[string]time.Time{}}, nil
}

type budgetClient struct {
	next    aws.HTTPClient
	b       budget
	refused *prometheus.CounterVec
	now     func() time.Time
	shared  *sharedCalls // nil without a fleet
	// inFlight bounds the calls of each budgeted operation under way.
	inFlight map[string]chan struct{}

	mu sync.Mutex
	// paused holds, per operation, until when no call is sent because
	// KVS throttled one: the resolver retries a throttled call within
	// a second, and sent, each retry would be throttled too.
	paused map[string]time.Time
}

// throttlePause is how long an operation's calls are refused after KVS
// throttled one: its quotas are per second.
const throttlePause = time.Second

func (c *budgetClient) Do(r *http.Request) (*http.Response, error) {
	op := upstreamOperation(r)
	if _, ok := kvsQuotas[op]; !ok {
		return c.next.Do(r)
	}
	if op != "DescribeSignalingChannel" && (c.shared == nil || !sharedOps[op]) {
		return c.send(r, op, "")
	}
	body, in, err := readCall(r, op)
	if err != nil {
		return nil, err
	}
	channel := ""
	if op == "DescribeSignalingChannel" {
		channel = in.resource()
	}
	if c.shared == nil || !sharedOps[op] {
		return c.send(r, op, channel)
	}
	return c.shared.do(r, op, body, in, func(r *http.Request) (*http.Response, error) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return c.send(r, op, channel)
	})
}

// inFlightSlots returns, per budgeted operation, a semaphore of this
// copy's share of one second of the operation's budget.
//
// A call takes its budget token when it leaves, and KVS counts it when it
// arrives, which on a busy host or network can be much later: calls sent
// over a while can arrive together, over KVS's quota (measured with the
// storm, BENCHMARKS.md). The calls arriving at KVS within any span were
// either under way at its start, or sent within it; bounding the first
// by one second of budget (split among the copies) keeps every span
// within a second of budget + burst + rate × span: 264 + 240/s × span
// with the defaults, which KVS's bucket of 300 at 300/s admits.
func inFlightSlots(cfg awsBudget, copies int) map[string]chan struct{} {
	out := map[string]chan struct{}{}
	for op := range kvsQuotas {
		if r, ok := cfg.rate(op); ok {
			out[op] = make(chan struct{}, max(1, int(r)/copies))
		}
	}
	return out
}

// send makes the call if the budget allows it.
func (c *budgetClient) send(r *http.Request, op, channel string) (*http.Response, error) {
	if sem := c.inFlight[op]; sem != nil {
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		defer func() { <-sem }()
	}
	if wait := c.pausedFor(op); wait > 0 {
		c.refused.WithLabelValues(op).Inc()
		return nil, newBudgetError(op, wait)
	}
	if ok, wait := c.b.Take(r.Context(), op, channel); !ok {
		c.refused.WithLabelValues(op).Inc()
		return nil, newBudgetError(op, wait)
	}
	resp, err := c.next.Do(r)
	if err == nil && throttled(resp) {
		c.mu.Lock()
		c.paused[op] = c.now().Add(throttlePause)
		c.mu.Unlock()
	}
	return resp, err
}

// pausedFor returns how long op's calls stay refused after a throttle.
func (c *budgetClient) pausedFor(op string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.paused[op]
	if !ok {
		return 0
	}
	wait := until.Sub(c.now())
	if wait <= 0 {
		delete(c.paused, op)
	}
	return wait
}

// throttled reports whether KVS refused a call for its rate: a 429, or
// a ClientLimitExceededException (400), which the control plane and
// GetIceServerConfig answer over a quota.
func throttled(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "ClientLimitExceededException")
}

// readCall reads the body of a call, puts it back for sending, and
// returns the channel it names.
func readCall(r *http.Request, op string) ([]byte, callTarget, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, callTarget{}, nil
	}
	// The SDK's own request, of a few hundred bytes: read it whole.
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, callTarget{}, fmt.Errorf("vend: reading the %s request: %w", op, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in callTarget
	json.Unmarshal(body, &in) // not JSON: names no channel
	return body, in, nil
}

// budgetError is a call the budget did not allow. It is a net.Error, so
// that the resolver treats it as no answer: it serves what it has cached,
// even stale, and otherwise the server answers 503.
type budgetError struct {
	op   string
	wait time.Duration // with jitter, so that refused clients spread out
}

func newBudgetError(op string, wait time.Duration) *budgetError {
	// Up to a second more, at random: clients told the same Retry-After
	// would otherwise come back together and spend the budget at once.
	return &budgetError{op: op, wait: wait + time.Duration(rand.Int64N(int64(time.Second)))}
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("vend: the budget of %s calls is spent; retry in %v", e.op, e.wait.Round(time.Millisecond))
}

// Timeout is false: the call was refused at once.
func (e *budgetError) Timeout() bool { return false }

// Temporary is true: the budget refills.
func (e *budgetError) Temporary() bool { return true }

// RetryAfter is when to retry, with jitter.
func (e *budgetError) RetryAfter() time.Duration { return e.wait }
