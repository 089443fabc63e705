package awskvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// API is the part of the Kinesis Video Streams control plane a [Resolver]
// calls. *kinesisvideo.Client implements it.
type API interface {
	CreateSignalingChannel(context.Context, *kinesisvideo.CreateSignalingChannelInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.CreateSignalingChannelOutput, error)
	DescribeSignalingChannel(context.Context, *kinesisvideo.DescribeSignalingChannelInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.DescribeSignalingChannelOutput, error)
	GetSignalingChannelEndpoint(context.Context, *kinesisvideo.GetSignalingChannelEndpointInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.GetSignalingChannelEndpointOutput, error)
	ListSignalingChannels(context.Context, *kinesisvideo.ListSignalingChannelsInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.ListSignalingChannelsOutput, error)
	DeleteSignalingChannel(context.Context, *kinesisvideo.DeleteSignalingChannelInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.DeleteSignalingChannelOutput, error)
}

// Cache defaults. ARNs and endpoints are stable (the KVS C SDK keeps them
// 10 hours); ICE servers are kept until their Ttl less ICEMargin; a
// channel found missing is remembered as such for DefaultNotFoundTTL.
const (
	DefaultCacheTTL    = 10 * time.Hour
	DefaultMaxStale    = 5 * time.Minute
	DefaultNotFoundTTL = 5 * time.Second
	ICEMargin          = 30 * time.Second
)

// A Connection is what a client needs to connect to a signaling channel in
// a role, and when each cached part of it expires.
type Connection struct {
	ChannelARN string
	Role       kvs.Role
	// WSSEndpoint is the signaling endpoint for Role (wss://, or ws:// for
	// a local emulator), to presign with [kvs.Presigner].
	WSSEndpoint string
	// HTTPSEndpoint is where GetIceServerConfig is sent.
	HTTPSEndpoint string
	// ICEServers is set when the Resolver's IncludeICEServers is.
	ICEServers []ICEServer

	// ARNExpires is when the cached name-to-ARN mapping expires; zero
	// when the caller gave the ARN.
	ARNExpires time.Time
	// EndpointsExpire is when the cached endpoints expire.
	EndpointsExpire time.Time
	// ICEServersExpire is when the cached ICE servers expire.
	ICEServersExpire time.Time
	// Stale is true when some part was served past its expiry because
	// the service was throttling, failing or out of reach.
	Stale bool
	// FromCache is true when no call was made for this answer.
	FromCache bool
}

// A Resolver turns a channel name or ARN into what connecting to it needs
// (ARN, endpoints per role, ICE servers), signs URLs, and manages
// channels. It caches what it learns, collapses concurrent misses for the
// same thing into one call, retries throttling, 5xx and timeouts with
// backoff and jitter, puts a deadline on every call, and, when the service
// fails, serves what it knew for a bounded time.
//
// When the service says that a cached ARN does not exist (the channel was
// deleted, and perhaps created again under a new ARN), the Resolver drops
// what it cached about that ARN and looks the name up again, once. A
// channel found missing is remembered as missing for NotFoundTTL, so that
// requests for it cannot spend the account's quota.
//
// Set the fields before first use, then do not change them. A Resolver is
// safe for concurrent use and must not be copied after first use.
type Resolver struct {
	// API is the control plane. Required.
	API API
	// Credentials sign GetIceServerConfig requests and URLs. Required for
	// ICEServers and Presign.
	Credentials sigv4.CredentialsProvider
	// HTTPClient sends GetIceServerConfig requests. If nil,
	// http.DefaultClient; each call has a deadline anyway.
	HTTPClient aws.HTTPClient
	// Clock returns the current time, for cache expiry and signing. If
	// nil, time.Now.
	Clock func() time.Time
	// ClockOffset is added to the clock when signing, to correct a local
	// clock known to be off. It does not affect cache expiry.
	ClockOffset time.Duration
	// Expires is the lifetime of URLs from Presign. If zero,
	// kvs.DefaultExpires.
	Expires time.Duration
	// CacheTTL is how long ARNs and endpoints are kept. If zero,
	// DefaultCacheTTL; if negative, they are not kept (concurrent misses
	// are still collapsed).
	CacheTTL time.Duration
	// NotFoundTTL is how long a channel the service says does not exist
	// is remembered as missing. If zero, DefaultNotFoundTTL; if negative,
	// it is not remembered.
	NotFoundTTL time.Duration
	// MaxStale is how long past its expiry a value is still served while
	// the service fails. If zero, DefaultMaxStale; if negative, never.
	// ICE servers are never served past their Ttl.
	MaxStale time.Duration
	// CallTimeout is the deadline of each attempt of each call. If zero,
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxAttempts bounds the attempts of each call. If zero,
	// DefaultMaxAttempts.
	MaxAttempts int
	// CreateIfMissing makes Resolve and Presign create a channel, given by
	// name, that does not exist.
	CreateIfMissing bool
	// IncludeICEServers makes Resolve fetch ICE servers too.
	IncludeICEServers bool
	// Logger receives a debug record per call attempt; never a secret. If
	// nil, nothing is logged.
	Logger *slog.Logger
	// Trace, if set, receives the canonical request and string to sign of
	// what the Resolver signs itself (URLs and GetIceServerConfig). They
	// hold the session token: redact before showing them.
	Trace func(canonicalRequest, stringToSign string)

	initOnce  sync.Once
	arns      *cache[string, string]
	endpoints *cache[endpointKey, endpoints]
	ice       *cache[iceKey, []ICEServer]
	storage   *cache[endpointKey, string] // WEBRTC endpoints
	presigner *kvs.Presigner              // made by init: it keeps templates and keys
	dropped   atomic.Uint64               // see Generation

	// For tests: the backoff's sleep and random source.
	sleep func(context.Context, time.Duration) error
	rand  func() float64
}

type endpointKey struct {
	arn  string
	role kvs.Role
}

type endpoints struct{ wss, https string }

type iceKey struct{ arn, clientID string }

// NewResolver returns a Resolver that calls Kinesis Video Streams with
// cfg (see [LoadConfig]): its region, endpoint, HTTP client, and its
// credentials through [Credentials]. The SDK's own retries are turned off;
// the Resolver retries.
func NewResolver(cfg aws.Config) *Resolver {
	api := kinesisvideo.NewFromConfig(cfg, func(o *kinesisvideo.Options) { o.Retryer = aws.NopRetryer{} })
	var creds sigv4.CredentialsProvider = sigv4.CredentialsFunc(func(context.Context) (sigv4.Credentials, error) {
		return sigv4.Credentials{}, errors.New("awskvs: no credentials provider in the AWS configuration")
	})
	if cfg.Credentials != nil {
		creds = Credentials(cfg.Credentials, 0)
	}
	return &Resolver{API: api, Credentials: creds, HTTPClient: cfg.HTTPClient}
}

func (r *Resolver) init() {
	r.initOnce.Do(func() {
		nf := r.NotFoundTTL
		if nf == 0 {
			nf = DefaultNotFoundTTL
		}
		r.arns = newCache[string, string](nf, &r.dropped)
		r.endpoints = newCache[endpointKey, endpoints](nf, &r.dropped)
		r.ice = newCache[iceKey, []ICEServer](nf, &r.dropped)
		r.storage = newCache[endpointKey, string](nf, &r.dropped)
		r.presigner = &kvs.Presigner{Credentials: r.Credentials, Expires: r.Expires, Clock: r.Clock,
			Skew: kvs.NewClockSkew(r.ClockOffset), Trace: r.Trace}
	})
}

// Generation returns a number that changes each time the Resolver drops
// cached answers before they expire: on Invalidate, and when it learns
// that a channel was deleted or created. A caller that keeps a
// [Connection] until the soonest of its expiries may use it without
// calling Resolve while Generation returns what it returned before that
// Resolve call.
func (r *Resolver) Generation() uint64 { return r.dropped.Load() }

func (r *Resolver) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

func (r *Resolver) cacheTTL() time.Duration { return durationSetting(r.CacheTTL, DefaultCacheTTL) }

func (r *Resolver) maxStale() time.Duration { return durationSetting(r.MaxStale, DefaultMaxStale) }

// durationSetting reads a duration field where zero means the default and
// a negative value means none.
func durationSetting(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// invalid is an error for bad input, found before any call. A
// kvs.FieldError is worded without kvs's prefix, since Error has its own.
func invalid(op, resource string, err error) *Error {
	msg := err.Error()
	var fe *kvs.FieldError
	if errors.As(err, &fe) {
		msg = fe.Field + " is empty: " + fe.Rule
		if fe.Value != "" {
			msg = fe.Field + " " + strconv.Quote(fe.Value) + ": " + fe.Rule
		}
	}
	return &Error{Op: op, Resource: resource, Kind: ErrInvalidArgument, Message: msg, Err: err}
}

// checkChannel accepts a channel name or ARN and reports which it is.
func checkChannel(op, channel string) (isARN bool, err error) {
	if strings.HasPrefix(channel, "arn:") {
		if _, err := kvs.ParseChannelARN(channel); err != nil {
			return true, invalid(op, "", err)
		}
		return true, nil
	}
	if err := kvs.ValidateChannelName(channel); err != nil {
		return false, invalid(op, "", err)
	}
	return false, nil
}

func checkRole(op string, role kvs.Role) error {
	if role != kvs.Master && role != kvs.Viewer {
		return invalid(op, "", fmt.Errorf("role %q: must be MASTER or VIEWER", role))
	}
	return nil
}

// Resolve returns the channel's ARN and its endpoints for role, and its
// ICE servers if IncludeICEServers is set. channel is a name or an ARN.
func (r *Resolver) Resolve(ctx context.Context, channel string, role kvs.Role) (Connection, error) {
	return r.retryGone(channel, func() (Connection, error) {
		c, err := r.resolve(ctx, "Resolve", channel, role)
		if err != nil || !r.IncludeICEServers {
			return c, err
		}
		servers, res, err := r.iceServers(ctx, c.ChannelARN, c.HTTPSEndpoint, "")
		if err != nil {
			return Connection{ChannelARN: c.ChannelARN}, err
		}
		c.ICEServers, c.ICEServersExpire, c.Stale = servers, res.expires, c.Stale || res.stale
		c.FromCache = c.FromCache && res.hit
		return c, nil
	})
}

// retryGone runs resolve, and runs it again once when the service said
// that an ARN looked up by name does not exist: the channel was deleted,
// and may have been created again under a new ARN. On failure, resolve
// returns the ARN it used, if any.
func (r *Resolver) retryGone(channel string, resolve func() (Connection, error)) (Connection, error) {
	c, err := resolve()
	if err != nil && c.ChannelARN != "" && !strings.HasPrefix(channel, "arn:") && errors.Is(err, ErrNotFound) {
		r.forgetARN(c.ChannelARN)
		c, err = resolve()
	}
	if err != nil {
		return Connection{}, err
	}
	return c, nil
}

// resolve returns the ARN and endpoints of a channel; on failure, the ARN
// if it got that far.
func (r *Resolver) resolve(ctx context.Context, op, channel string, role kvs.Role) (Connection, error) {
	r.init()
	if err := checkRole(op, role); err != nil {
		return Connection{}, err
	}
	arn, arnRes, err := r.channelARN(ctx, op, channel)
	if err != nil {
		return Connection{}, err
	}
	eps, epRes, err := r.endpoints.get(ctx, endpointKey{arn, role}, r.now, r.maxStale(), func(ctx context.Context) (endpoints, time.Time, error) {
		return r.fetchEndpoints(ctx, arn, role)
	})
	if err != nil {
		return Connection{ChannelARN: arn}, err
	}
	return Connection{
		ChannelARN: arn, Role: role, WSSEndpoint: eps.wss, HTTPSEndpoint: eps.https,
		ARNExpires: arnRes.expires, EndpointsExpire: epRes.expires, Stale: arnRes.stale || epRes.stale,
		FromCache: arnRes.hit && epRes.hit,
	}, nil
}

// channelARN returns the ARN of a channel given by name or ARN.
func (r *Resolver) channelARN(ctx context.Context, op, channel string) (string, result, error) {
	isARN, err := checkChannel(op, channel)
	if err != nil {
		return "", result{}, err
	}
	if isARN {
		return channel, result{hit: true}, nil
	}
	return r.arns.get(ctx, channel, r.now, r.maxStale(), func(ctx context.Context) (string, time.Time, error) {
		ch, err := r.describe(ctx, channel)
		if errors.Is(err, ErrNotFound) && r.CreateIfMissing {
			ch, err = r.createAndWait(ctx, channel)
		}
		if err != nil {
			return "", time.Time{}, err
		}
		return ch.ARN, r.now().Add(r.cacheTTL()), nil
	})
}

// getEndpoints calls GetSignalingChannelEndpoint for the channel's
// endpoints of protocols, for role.
func (r *Resolver) getEndpoints(ctx context.Context, arn string, role kvs.Role, protocols ...types.ChannelProtocol) ([]types.ResourceEndpointListItem, error) {
	a, _ := kvs.ParseChannelARN(arn)
	in := &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(arn),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: protocols,
			Role:      types.ChannelRole(role),
		},
	}
	var out *kinesisvideo.GetSignalingChannelEndpointOutput
	err := r.call(ctx, "GetSignalingChannelEndpoint", arn, idempotent, func(ctx context.Context) error {
		var err error
		out, err = r.API.GetSignalingChannelEndpoint(ctx, in, inRegion(a.Region))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.ResourceEndpointList, nil
}

func (r *Resolver) fetchEndpoints(ctx context.Context, arn string, role kvs.Role) (endpoints, time.Time, error) {
	list, err := r.getEndpoints(ctx, arn, role, types.ChannelProtocolWss, types.ChannelProtocolHttps)
	if err != nil {
		return endpoints{}, time.Time{}, err
	}
	var eps endpoints
	for _, e := range list {
		switch e.Protocol {
		case types.ChannelProtocolWss:
			eps.wss = aws.ToString(e.ResourceEndpoint)
		case types.ChannelProtocolHttps:
			eps.https = aws.ToString(e.ResourceEndpoint)
		}
	}
	bad := func(rule string) error {
		return &Error{Op: "GetSignalingChannelEndpoint", Resource: arn, Message: "unexpected answer: " + rule}
	}
	if _, err := kvs.ParseEndpoint(eps.wss); err != nil {
		return endpoints{}, time.Time{}, bad(fmt.Sprintf("the WSS endpoint %q is not usable: %v", eps.wss, err))
	}
	if u, err := url.Parse(eps.https); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return endpoints{}, time.Time{}, bad(fmt.Sprintf("the HTTPS endpoint %q is not an http(s) URL", eps.https))
	}
	return eps, r.now().Add(r.cacheTTL()), nil
}

// inRegion sends a call to region, when the channel's ARN names it: an ARN
// says where its channel lives, whatever the default region.
func inRegion(region string) func(*kinesisvideo.Options) {
	return func(o *kinesisvideo.Options) {
		if region != "" {
			o.Region = region
		}
	}
}

// Presign resolves the channel's endpoint for role and signs a URL to
// connect to it with the Resolver's credentials. A viewer needs a client
// id; a master must not have one. The URL is a bearer credential until it
// expires: do not log it.
func (r *Resolver) Presign(ctx context.Context, channel string, role kvs.Role, clientID string) (kvs.SignedURL, error) {
	r.init()
	if r.Credentials == nil {
		return kvs.SignedURL{}, errors.New("awskvs: resolver has no credentials provider")
	}
	switch role {
	case kvs.Viewer:
		if err := kvs.ValidateClientID(clientID); err != nil {
			return kvs.SignedURL{}, invalid("Presign", channel, err)
		}
	case kvs.Master:
		if clientID != "" {
			return kvs.SignedURL{}, invalid("Presign", channel, errors.New("a master connects without a client id"))
		}
	}
	c, err := r.retryGone(channel, func() (Connection, error) { return r.resolve(ctx, "Presign", channel, role) })
	if err != nil {
		return kvs.SignedURL{}, err
	}
	return r.presigner.Presign(ctx, c.WSSEndpoint, c.ChannelARN, role, clientID)
}

// Invalidate forgets what the Resolver cached about a channel (name or
// ARN): call it when a connection is refused with 404 or 403, so that the
// next call asks again.
func (r *Resolver) Invalidate(channel string) {
	r.init()
	arn := channel
	if !strings.HasPrefix(channel, "arn:") {
		arn, _ = r.arns.peek(channel)
		r.arns.forget(func(k string) bool { return k == channel })
	} else {
		r.arns.forgetValue(func(v string) bool { return v == channel })
	}
	if arn != "" {
		r.forgetARN(arn)
	}
}

// forgetARN drops the names that map to arn, and arn's endpoints and ICE
// servers. Dropping them again, after another caller has looked the name
// up anew, loses nothing: the new ARN is another value.
func (r *Resolver) forgetARN(arn string) {
	r.arns.forgetValue(func(v string) bool { return v == arn })
	r.endpoints.forget(func(k endpointKey) bool { return k.arn == arn })
	r.ice.forget(func(k iceKey) bool { return k.arn == arn })
	r.storage.forget(func(k endpointKey) bool { return k.arn == arn })
}
