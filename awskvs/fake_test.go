package awskvs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
)

// fakeAPI is an in-memory control plane. Errors queued in fail are
// returned, one per call, before calls succeed again.
type fakeAPI struct {
	mu       sync.Mutex
	channels map[string]string // name -> ARN
	fail     map[string][]error
	block    chan struct{} // if set, calls wait for it to close
	calls    map[string]*atomic.Int64
	region   string
	created  int
}

func newFakeAPI(names ...string) *fakeAPI {
	f := &fakeAPI{channels: map[string]string{}, fail: map[string][]error{}, calls: map[string]*atomic.Int64{}, region: "us-west-2"}
	for _, op := range []string{"Create", "Describe", "GetEndpoint", "List", "Delete"} {
		f.calls[op] = new(atomic.Int64)
	}
	for i, n := range names {
		f.channels[n] = fmt.Sprintf("arn:aws:kinesisvideo:us-west-2:123456789012:channel/%s/%d", n, 1700000000000+i)
	}
	return f
}

func (f *fakeAPI) count(op string) int64 { return f.calls[op].Load() }

func (f *fakeAPI) failNext(op string, errs ...error) {
	f.mu.Lock()
	f.fail[op] = append(f.fail[op], errs...)
	f.mu.Unlock()
}

// enter counts a call, waits for block, and pops a queued error.
func (f *fakeAPI) enter(ctx context.Context, op string) error {
	f.calls[op].Add(1)
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.fail[op]; len(q) > 0 {
		f.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

func apiErr(status int, code, msg string) error {
	return &httpError{status: status, api: &smithy.GenericAPIError{Code: code, Message: msg}}
}

var (
	errThrottle = apiErr(400, "ClientLimitExceededException", "slow down")
	err500      = apiErr(500, "InternalFailure", "oops")
	err503      = apiErr(503, "ServiceUnavailableException", "unavailable")
	errNotFound = apiErr(404, "ResourceNotFoundException", "The requested channel is not found or not active.")
	errDenied   = apiErr(403, "AccessDeniedException", "User is not authorized")
	errInvalid  = apiErr(400, "InvalidArgumentException", "bad")
)

func (f *fakeAPI) CreateSignalingChannel(ctx context.Context, in *kinesisvideo.CreateSignalingChannelInput, _ ...func(*kinesisvideo.Options)) (*kinesisvideo.CreateSignalingChannelOutput, error) {
	if err := f.enter(ctx, "Create"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.ChannelName)
	if _, ok := f.channels[name]; ok {
		return nil, apiErr(400, "ResourceInUseException", "exists")
	}
	f.created++
	arn := fmt.Sprintf("arn:aws:kinesisvideo:%s:123456789012:channel/%s/%d", f.region, name, 1800000000000+f.created)
	f.channels[name] = arn
	return &kinesisvideo.CreateSignalingChannelOutput{ChannelARN: aws.String(arn)}, nil
}

func (f *fakeAPI) DescribeSignalingChannel(ctx context.Context, in *kinesisvideo.DescribeSignalingChannelInput, _ ...func(*kinesisvideo.Options)) (*kinesisvideo.DescribeSignalingChannelOutput, error) {
	if err := f.enter(ctx, "Describe"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, arn := range f.channels {
		if name == aws.ToString(in.ChannelName) || arn == aws.ToString(in.ChannelARN) {
			return &kinesisvideo.DescribeSignalingChannelOutput{ChannelInfo: &types.ChannelInfo{
				ChannelName: aws.String(name), ChannelARN: aws.String(arn), ChannelStatus: types.StatusActive,
				ChannelType: types.ChannelTypeSingleMaster, Version: aws.String("v1"),
				SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(60)},
			}}, nil
		}
	}
	return nil, errNotFound
}

func (f *fakeAPI) GetSignalingChannelEndpoint(ctx context.Context, in *kinesisvideo.GetSignalingChannelEndpointInput, _ ...func(*kinesisvideo.Options)) (*kinesisvideo.GetSignalingChannelEndpointOutput, error) {
	if err := f.enter(ctx, "GetEndpoint"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	known := false
	for _, arn := range f.channels {
		known = known || arn == aws.ToString(in.ChannelARN)
	}
	f.mu.Unlock()
	if !known {
		return nil, errNotFound
	}
	prefix := "m"
	if in.SingleMasterChannelEndpointConfiguration.Role == types.ChannelRoleViewer {
		prefix = "v"
	}
	return &kinesisvideo.GetSignalingChannelEndpointOutput{ResourceEndpointList: []types.ResourceEndpointListItem{
		{Protocol: types.ChannelProtocolWss, ResourceEndpoint: aws.String("wss://" + prefix + "-1234abcd.kinesisvideo.us-west-2.amazonaws.com")},
		{Protocol: types.ChannelProtocolHttps, ResourceEndpoint: aws.String("https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com")},
	}}, nil
}

func (f *fakeAPI) ListSignalingChannels(ctx context.Context, in *kinesisvideo.ListSignalingChannelsInput, _ ...func(*kinesisvideo.Options)) (*kinesisvideo.ListSignalingChannelsOutput, error) {
	if err := f.enter(ctx, "List"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesisvideo.ListSignalingChannelsOutput{}
	for name, arn := range f.channels {
		out.ChannelInfoList = append(out.ChannelInfoList, types.ChannelInfo{ChannelName: aws.String(name), ChannelARN: aws.String(arn)})
	}
	return out, nil
}

func (f *fakeAPI) DeleteSignalingChannel(ctx context.Context, in *kinesisvideo.DeleteSignalingChannelInput, _ ...func(*kinesisvideo.Options)) (*kinesisvideo.DeleteSignalingChannelOutput, error) {
	if err := f.enter(ctx, "Delete"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, arn := range f.channels {
		if arn == aws.ToString(in.ChannelARN) {
			delete(f.channels, name)
			return &kinesisvideo.DeleteSignalingChannelOutput{}, nil
		}
	}
	return nil, errNotFound
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2035, 1, 2, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sleepRecorder replaces the backoff's sleep: it records and returns at
// once.
type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

// newTestResolver returns a Resolver over api with an injected clock and
// an instant backoff.
func newTestResolver(api API, clock *fakeClock) (*Resolver, *sleepRecorder) {
	s := &sleepRecorder{}
	r := &Resolver{API: api, Clock: clock.Now, sleep: s.sleep, rand: func() float64 { return 0.5 }}
	return r, s
}
