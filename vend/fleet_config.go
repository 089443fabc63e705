// The configuration of a fleet: the Redis the copies share and the budget
// of AWS calls they draw from.

package vend

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// redisConfig configures the Redis that copies of the server share.
type redisConfig struct {
	// URL is redis://[user@]host:port[/db], or rediss:// for TLS. If
	// empty, no Redis: each copy keeps its own cache and limits. A password may be given in the URL, but PasswordEnv keeps
	// it out of the file; the URL is never logged either way.
	URL string `json:"url"`
	// PasswordEnv names the environment variable that holds the AUTH
	// password. If empty, the URL's password, if any.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// CAFile is a PEM file of the certificate authorities a rediss://
	// server's certificate is checked against. If empty, the system's.
	CAFile string `json:"caFile,omitempty"`
	// Timeout is the least time a Redis command is given: past its
	// timeout the request falls back to the copy's own cache and limits,
	// and after two seconds of failed commands, the copy does until Redis
	// answers again. While Redis answers slower, the timeouts follow its
	// answer times, up to the heartbeat's bound (10 × Timeout, at least
	// 2s). If zero, 200ms.
	Timeout Duration `json:"timeout,omitempty"`
	// KeyPrefix starts every key the server writes, so that fleets (or
	// environments) can share one Redis. If empty, "kvssign:".
	KeyPrefix string `json:"keyPrefix,omitempty"`
	// LeaseWait bounds how long a copy waits for another copy that is
	// already resolving the same channel before it asks AWS itself. If
	// zero, 1s.
	LeaseWait Duration `json:"leaseWait,omitempty"`
	// Copies is how many copies share the Redis. While Redis is out of
	// reach, each copy spends at most 1/Copies of the AWS call budget, so
	// that the fleet stays under KVS's quotas. If zero, 1.
	Copies int `json:"copies,omitempty"`
}

// awsBudget caps the AWS calls per second that the server (the fleet, with
// Redis) makes. A call over the budget is not made: the request is
// answered from the cache if it can be, else with 503 and Retry-After.
type awsBudget struct {
	// PerSecond overrides the rate of an operation:
	// DescribeSignalingChannel, GetSignalingChannelEndpoint,
	// CreateSignalingChannel, ListSignalingChannels or GetIceServerConfig.
	// A negative rate means unlimited.
	PerSecond map[string]float64 `json:"perSecond,omitempty"`
	// DescribePerChannel overrides the DescribeSignalingChannel rate per
	// channel. A negative rate means unlimited.
	DescribePerChannel float64 `json:"describePerChannel,omitempty"`
	// Margin is the share of KVS's quotas the defaults use, above 0 and
	// at most 1. If zero, 0.8.
	Margin float64 `json:"margin,omitempty"`
}

// kvsQuotas are KVS's control-plane quotas per account, in calls per
// second. GetIceServerConfig has no account quota (-1: not budgeted unless
// configured); a channel's calls are few anyway, one per ICE TTL.
var kvsQuotas = map[string]float64{
	"DescribeSignalingChannel":    300,
	"GetSignalingChannelEndpoint": 300,
	"CreateSignalingChannel":      50,
	"ListSignalingChannels":       50,
	"GetIceServerConfig":          -1,
}

// kvsDescribePerChannel is KVS's DescribeSignalingChannel quota per
// channel.
const kvsDescribePerChannel = 5

// Fleet defaults.
const (
	defaultRedisTimeout = 200 * time.Millisecond
	defaultLeaseWait    = time.Second
	defaultKeyPrefix    = "kvssign:"
	defaultMargin       = 0.8
)

func (c *Config) validateFleet(fail failFunc) error {
	if r := c.Redis; r != (redisConfig{}) {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// Not the URL itself: it may hold a password.
			return fail("redis.url", "must be a redis:// or rediss:// URL with a host")
		}
		if r.PasswordEnv != "" && !validName(r.PasswordEnv, 128) {
			return fail("redis.passwordEnv", "%q must be an environment variable name", r.PasswordEnv)
		}
		if err := notNegative(fail, "redis.", namedDuration{"timeout", r.Timeout}, namedDuration{"leaseWait", r.LeaseWait}); err != nil {
			return err
		}
		if r.Copies < 0 {
			return fail("redis.copies", "%d must not be negative", r.Copies)
		}
		if strings.ContainsAny(r.KeyPrefix, " \r\n") {
			return fail("redis.keyPrefix", "%q must not hold spaces or line breaks", r.KeyPrefix)
		}
	}
	b := c.Budget
	if m := b.Margin; m < 0 || m > 1 || math.IsNaN(m) {
		return fail("budget.margin", "%v must be above 0 and at most 1", m)
	}
	for op, v := range b.PerSecond {
		if _, ok := kvsQuotas[op]; !ok {
			ops := make([]string, 0, len(kvsQuotas))
			for k := range kvsQuotas {
				ops = append(ops, k)
			}
			slices.Sort(ops)
			return fail("budget.perSecond", "%q must be one of %s", op, strings.Join(ops, ", "))
		}
		if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fail(fmt.Sprintf("budget.perSecond.%s", op), "must be a positive rate, or negative for unlimited")
		}
	}
	if math.IsNaN(b.DescribePerChannel) || math.IsInf(b.DescribePerChannel, 0) {
		return fail("budget.describePerChannel", "must be a number")
	}
	return nil
}

// rate returns the budget of op per second, and false when it is
// unlimited.
func (b awsBudget) rate(op string) (float64, bool) {
	if v, ok := b.PerSecond[op]; ok {
		return v, v > 0
	}
	q, ok := kvsQuotas[op]
	if !ok || q < 0 {
		return 0, false
	}
	return q * b.margin(), true
}

// perChannel returns the DescribeSignalingChannel budget per channel, and
// false when it is unlimited.
func (b awsBudget) perChannel() (float64, bool) {
	if v := b.DescribePerChannel; v != 0 {
		return v, v > 0
	}
	return kvsDescribePerChannel * b.margin(), true
}

func (b awsBudget) margin() float64 {
	if b.Margin == 0 {
		return defaultMargin
	}
	return b.Margin
}
