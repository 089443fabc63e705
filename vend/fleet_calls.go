// Shared calls: the copies of a fleet share the answers of KVS's read
// calls, one lease per resource, so that a channel's ARN, its endpoints
// per role and its ICE servers are each fetched once fleet-wide, whichever
// copies and roles ask for them.

package vend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/kvssign/kvssign/awskvs"
)

// sharedOps are the calls whose answers the fleet shares: reads whose
// answer depends only on the request.
var sharedOps = map[string]bool{
	"DescribeSignalingChannel":    true,
	"GetSignalingChannelEndpoint": true,
	"GetIceServerConfig":          true,
}

// sharedCalls shares the answers of sharedOps among the copies in Redis.
// The resolvers of the copies still cache what they get; Redis only saves
// a copy the call another copy already made. An ARN and endpoints are
// kept for keep (the cache TTL), ICE servers until their refresh time.
type sharedCalls struct {
	f      *Fleet
	keep   time.Duration
	counts *prometheus.CounterVec // by outcome
}

// callLeaseFor is how long a call's lease lasts unless given back: longer
// than one attempt of the call (awskvs.DefaultCallTimeout), so that
// another copy does not make the same call while a slow one is under way.
const callLeaseFor = awskvs.DefaultCallTimeout + time.Second

// storedCall is a 200 answer as kept in Redis.
type storedCall struct {
	Body []byte `json:"body"`
	Type string `json:"type,omitempty"`
	At   int64  `json:"at"` // Unix milliseconds
}

// callTarget is what a shared call's request names.
type callTarget struct {
	ChannelName, ChannelARN string
}

func (t callTarget) resource() string {
	if t.ChannelARN != "" {
		return t.ChannelARN
	}
	return t.ChannelName
}

// do answers r from Redis, or sends it with send under the call's lease
// and shares a 200 answer. A copy that finds the lease taken reads Redis
// when it is given back (or every pollEvery) and tries to take it, until
// the answer is there or r's deadline (the resolver's, per attempt). It
// never sends without the lease while Redis answers: under the budget a
// lease can pass from copy to copy for seconds before a call is allowed,
// and copies that stopped waiting after leaseWait made the same call
// twice or more (measured with the storm). A holder that died loses the
// lease after callLeaseFor. Redis failing sends the call at once.
func (s *sharedCalls) do(r *http.Request, op string, body []byte, in callTarget, send func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	ctx := r.Context()
	sum := sha256.Sum256([]byte(r.URL.Host + "\n" + string(body)))
	key := s.f.prefix + "call:" + op + ":" + hex.EncodeToString(sum[:16])
	lease := s.f.prefix + "lease:" + key[len(s.f.prefix):]
	for {
		released := s.f.released(key)
		resp, err := s.load(ctx, key, op, r)
		if resp != nil {
			s.counts.WithLabelValues("shared").Inc()
			return resp, nil
		}
		if !errors.Is(err, redis.Nil) {
			s.counts.WithLabelValues("alone").Inc()
			return send(r)
		}
		var won bool
		err = s.f.doFor(ctx, s.f.patientTimeout(), func(ctx context.Context) error {
			var err error
			won, err = s.f.pat.SetNX(ctx, lease, s.f.id, callLeaseFor).Result()
			return err
		})
		if err != nil {
			s.counts.WithLabelValues("alone").Inc()
			return send(r)
		}
		if won {
			// The copy that held the lease may have shared its answer
			// and given the lease back since the read above (measured:
			// the same call made twice when the cores were busy).
			if resp, _ := s.load(ctx, key, op, r); resp != nil {
				s.f.release(ctx, lease, key)
				s.counts.WithLabelValues("shared").Inc()
				return resp, nil
			}
			s.counts.WithLabelValues("leased").Inc()
			resp, err := send(r)
			var write func(context.Context, time.Duration) error
			if err == nil {
				resp, write, err = s.record(ctx, key, op, in, resp)
			}
			if write != nil {
				write(ctx, s.f.patientTimeout())
			}
			s.f.release(ctx, lease, key)
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-released:
		case <-time.After(pollEvery):
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
}

// load returns the shared answer to key as a response to r, or redis.Nil.
func (s *sharedCalls) load(ctx context.Context, key, op string, r *http.Request) (*http.Response, error) {
	var raw []byte
	err := s.f.doFor(ctx, s.f.patientTimeout(), func(ctx context.Context) error {
		var err error
		raw, err = s.f.pat.Get(ctx, key).Bytes()
		return err
	})
	if err != nil {
		return nil, err
	}
	var c storedCall
	if json.Unmarshal(raw, &c) != nil {
		return nil, redis.Nil
	}
	body := c.Body
	if op == "GetIceServerConfig" {
		// The answer's Ttl counts from when it was made.
		var ok bool
		if body, ok = iceAged(c.Body, s.f.now().Sub(time.UnixMilli(c.At))); !ok {
			return nil, redis.Nil
		}
	}
	h := http.Header{}
	if c.Type != "" {
		h.Set("Content-Type", c.Type)
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

// record reads a 200 answer and returns resp with its body restored, and
// how to share the answer with a timeout (nil: nothing to share). On a
// 404 for an ARN it forgets what the fleet shared about it (the channel
// was deleted, perhaps created again).
func (s *sharedCalls) record(ctx context.Context, key, op string, in callTarget, resp *http.Response) (*http.Response, func(context.Context, time.Duration) error, error) {
	switch resp.StatusCode {
	case http.StatusNotFound:
		if strings.HasPrefix(in.ChannelARN, "arn:") {
			forgetCalls(ctx, s.f, in.ChannelARN)
		}
		return resp, nil, nil
	case http.StatusOK:
	default:
		return resp, nil, nil
	}
	// KVS's answers are small; GetIceServerConfig's the largest, a few KiB.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	keep := s.keep
	resources := []string{in.resource()}
	switch op {
	case "GetIceServerConfig":
		keep = iceKeep(body)
	case "DescribeSignalingChannel":
		var out struct{ ChannelInfo struct{ ChannelARN string } }
		if json.Unmarshal(body, &out) == nil && out.ChannelInfo.ChannelARN != "" {
			resources = append(resources, out.ChannelInfo.ChannelARN)
		}
	}
	if keep <= 0 {
		return resp, nil, nil
	}
	raw, _ := json.Marshal(storedCall{Body: body, Type: resp.Header.Get("Content-Type"), At: s.f.now().UnixMilli()})
	write := func(ctx context.Context, d time.Duration) error {
		return s.f.doFor(ctx, d, func(ctx context.Context) error {
			_, err := s.f.pat.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, raw, keep)
				for _, res := range resources {
					p.SAdd(ctx, s.f.prefix+"calls:"+res, key)
					p.Expire(ctx, s.f.prefix+"calls:"+res, keep)
				}
				return nil
			})
			return err
		})
	}
	return resp, write, nil
}

// forgetCalls drops the shared answers about resources (names or ARNs),
// an ARN's including the answers that named the channel by name.
func forgetCalls(ctx context.Context, f *Fleet, resources ...string) {
	for _, res := range resources {
		set := f.prefix + "calls:" + res
		f.do(ctx, func(ctx context.Context) error {
			keys, err := f.rdb.SMembers(ctx, set).Result()
			if err != nil {
				return err
			}
			return f.rdb.Del(ctx, append(keys, set)...).Err()
		})
	}
}

// iceAnswer is GetIceServerConfig's answer, as far as the Ttl goes.
type iceAnswer struct {
	IceServerList []map[string]json.RawMessage
}

// ttls returns the Ttl of each server, in seconds.
func (a iceAnswer) ttls() ([]int64, bool) {
	out := make([]int64, len(a.IceServerList))
	for i, s := range a.IceServerList {
		if json.Unmarshal(s["Ttl"], &out[i]) != nil {
			return nil, false
		}
	}
	return out, true
}

// iceKeep is how long a GetIceServerConfig answer is shared: until the
// resolvers would refresh it (its soonest Ttl less awskvs.ICEMargin), less
// a margin so that a copy that reads it late still gets a useful one.
func iceKeep(body []byte) time.Duration {
	var a iceAnswer
	if json.Unmarshal(body, &a) != nil {
		return 0
	}
	ttls, ok := a.ttls()
	if !ok || len(ttls) == 0 {
		return 0
	}
	soonest := int64(math.MaxInt64)
	for _, t := range ttls {
		soonest = min(soonest, t)
	}
	return time.Duration(soonest)*time.Second - awskvs.ICEMargin - iceShareMargin
}

// iceShareMargin is how much of an ICE answer's life is not shared: a copy
// that gets it from Redis keeps it at least this long.
const iceShareMargin = 30 * time.Second

// iceAged returns a GetIceServerConfig answer aged by d: each Ttl less d,
// rounded up to whole seconds. ok is false when nothing useful is left.
func iceAged(body []byte, d time.Duration) ([]byte, bool) {
	var a iceAnswer
	if json.Unmarshal(body, &a) != nil {
		return nil, false
	}
	ttls, ok := a.ttls()
	if !ok {
		return nil, false
	}
	aged := int64((d + time.Second - 1) / time.Second)
	for i, t := range ttls {
		left := t - aged
		if time.Duration(left)*time.Second <= awskvs.ICEMargin {
			return nil, false
		}
		a.IceServerList[i]["Ttl"] = json.RawMessage(strconv.FormatInt(left, 10))
	}
	out, err := json.Marshal(a)
	return out, err == nil
}
