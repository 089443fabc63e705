// KVS's control-plane quotas: calls per second per account and per
// channel, over which KVS answers ClientLimitExceededException.

package emulator

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Quotas sets the calls per second the control plane accepts, per
// account and per channel, by operation name (see [operations]). A rate
// that is absent or zero is KVS's ([DefaultAccountQuotas],
// [DefaultChannelQuotas]); a negative one means unlimited. Each limit
// allows a burst of its rate (at least one call), as a second's worth of
// calls arriving at once.
type Quotas struct {
	// Off disables every quota, so that load tests can call as fast as
	// they like.
	Off bool
	// Account overrides rates per account (the whole emulator).
	Account map[string]float64
	// Channel overrides rates per channel.
	Channel map[string]float64
}

// DefaultAccountQuotas are KVS's per-account rates, in calls per second.
var DefaultAccountQuotas = map[string]float64{
	OpCreateSignalingChannel:      50,
	OpDescribeSignalingChannel:    300,
	OpGetSignalingChannelEndpoint: 300,
	OpListSignalingChannels:       50,
	OpSendAlexaOfferToMaster:      100,

	OpUpdateMediaStorageConfiguration:   10,
	OpDescribeMediaStorageConfiguration: 50,
}

// DefaultChannelQuotas are KVS's per-channel rates, in calls per second.
// (The signaling handshakes' per-channel rate is [Config.ConnectRate].)
var DefaultChannelQuotas = map[string]float64{
	OpDescribeSignalingChannel: 5,
	OpSendAlexaOfferToMaster:   5,

	OpUpdateMediaStorageConfiguration:   5,
	OpDescribeMediaStorageConfiguration: 5,
}

// Set parses one override, OP=RATE for a per-account rate or
// OP/channel=RATE for a per-channel one, as `kvssign emulate --quota`
// takes it; RATE is calls per second, or "off" for unlimited.
func (q *Quotas) Set(spec string) error {
	key, val, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("emulator: quota %q: want OPERATION=RATE or OPERATION/channel=RATE", spec)
	}
	op, scope, perChannel := strings.Cut(key, "/")
	if perChannel && scope != "channel" {
		return fmt.Errorf("emulator: quota %q: the scope after / must be channel", spec)
	}
	if !slices.Contains(operations, op) {
		return fmt.Errorf("emulator: quota %q: operation %q: must be one of %s", spec, op, strings.Join(operations, ", "))
	}
	r := -1.0
	if val != "off" {
		var err error
		r, err = strconv.ParseFloat(val, 64)
		if err != nil || r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return fmt.Errorf("emulator: quota %q: rate must be a positive number of calls per second, or off", spec)
		}
	}
	m := &q.Account
	if perChannel {
		m = &q.Channel
	}
	if *m == nil {
		*m = map[string]float64{}
	}
	(*m)[op] = r
	return nil
}

func (q Quotas) validate() error {
	for _, m := range []map[string]float64{q.Account, q.Channel} {
		for op, r := range m {
			if !slices.Contains(operations, op) {
				return fmt.Errorf("emulator: quota for %q: not an operation; want one of %s", op, strings.Join(operations, ", "))
			}
			if math.IsNaN(r) || math.IsInf(r, 0) {
				return fmt.Errorf("emulator: quota for %s: %v is not a rate", op, r)
			}
		}
	}
	return nil
}

// maxChannelLimiters bounds the per-channel limiters kept; past it, those
// that have refilled (and so behave as new ones would) are dropped.
const maxChannelLimiters = 1 << 14

// quotaState enforces Quotas on the emulator's clock.
type quotaState struct {
	off     bool
	account map[string]*rate.Limiter // fixed after New
	channel map[string]float64       // rate per operation; absent: unlimited

	mu       sync.Mutex // guards perChan
	perChan  map[string]*rate.Limiter
	throttle func() // counts a refusal
}

func newLimiter(tps float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(tps), int(math.Max(1, math.Ceil(tps))))
}

func newQuotaState(q Quotas, throttle func()) *quotaState {
	s := &quotaState{off: q.Off, account: map[string]*rate.Limiter{}, channel: map[string]float64{},
		perChan: map[string]*rate.Limiter{}, throttle: throttle}
	pick := func(defaults, overrides map[string]float64, set func(op string, r float64)) {
		for _, op := range operations {
			r, ok := overrides[op]
			if !ok || r == 0 {
				r, ok = defaults[op]
			}
			if ok && r > 0 {
				set(op, r)
			}
		}
	}
	pick(DefaultAccountQuotas, q.Account, func(op string, r float64) { s.account[op] = newLimiter(r) })
	pick(DefaultChannelQuotas, q.Channel, func(op string, r float64) { s.channel[op] = r })
	return s
}

// errThrottled is KVS's answer to a call over a quota.
func errThrottled() *apiError {
	return errf(http.StatusBadRequest, "ClientLimitExceededException",
		"Kinesis Video Streams has throttled the request because you have exceeded the limit of allowed client calls. Try making the call later.")
}

// allowAccount takes one call of op from the account's quota.
func (s *quotaState) allowAccount(op string, now time.Time) *apiError {
	l := s.account[op]
	if s.off || l == nil || l.AllowN(now, 1) {
		return nil
	}
	s.throttle()
	return errThrottled()
}

// allowChannel takes one call of op on the channel arn from its quota.
func (s *quotaState) allowChannel(op, arn string, now time.Time) *apiError {
	r, ok := s.channel[op]
	if s.off || !ok {
		return nil
	}
	key := op + " " + arn
	s.mu.Lock()
	l := s.perChan[key]
	if l == nil {
		if len(s.perChan) >= maxChannelLimiters {
			for k, old := range s.perChan {
				if old.TokensAt(now) >= float64(old.Burst()) {
					delete(s.perChan, k)
				}
			}
		}
		l = newLimiter(r)
		s.perChan[key] = l
	}
	allowed := l.AllowN(now, 1)
	s.mu.Unlock()
	if allowed {
		return nil
	}
	s.throttle()
	return errThrottled()
}
