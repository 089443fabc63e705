package emulator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
)

// TestDescribeChannelQuota: KVS allows 5 DescribeSignalingChannel per
// second per channel; the 6th in the same second is throttled, another
// channel is not, and a second later the channel is served again.
func TestDescribeChannelQuota(t *testing.T) {
	clock := newFrozenClock()
	e := start(t, emulator.Config{Clock: clock.Now})
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	a, b := mustCreate(t, e, "a"), mustCreate(t, e, "b")
	describe := func(arn string) error {
		_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
		return err
	}
	for i := range 5 {
		if err := describe(a); err != nil {
			t.Fatalf("Describe %d: %v", i+1, err)
		}
	}
	err := describe(a)
	var cle *kvtypes.ClientLimitExceededException
	if !errors.As(err, &cle) {
		t.Fatalf("6th Describe: %v; want ClientLimitExceededException", err)
	}
	if !strings.Contains(cle.ErrorMessage(), "throttled") {
		t.Errorf("message %q does not say the call was throttled", cle.ErrorMessage())
	}
	if err := describe(b); err != nil {
		t.Errorf("Describe of another channel: %v", err)
	}
	// By name, the same channel's quota applies.
	if _, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("a")}); !errors.As(err, &cle) {
		t.Errorf("Describe by name: %v; want ClientLimitExceededException", err)
	}
	clock.Advance(time.Second)
	if err := describe(a); err != nil {
		t.Errorf("Describe a second later: %v", err)
	}
	st := e.Stats()
	if st.Throttled != 2 || st.Errors[emulator.OpDescribeSignalingChannel] != 2 || st.Calls[emulator.OpDescribeSignalingChannel] != 9 {
		t.Errorf("stats: throttled %d, Describe errors %d, calls %d; want 2, 2, 9",
			st.Throttled, st.Errors[emulator.OpDescribeSignalingChannel], st.Calls[emulator.OpDescribeSignalingChannel])
	}
}

func TestAccountQuotas(t *testing.T) {
	clock := newFrozenClock()
	cfg := emulator.Config{Clock: clock.Now}
	cfg.Quotas.Account = map[string]float64{emulator.OpCreateSignalingChannel: 2, emulator.OpListSignalingChannels: -1}
	e := start(t, cfg)
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	create := func(name string) error {
		_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(name)})
		return err
	}
	var cle *kvtypes.ClientLimitExceededException
	if err := errors.Join(create("x1"), create("x2")); err != nil {
		t.Fatal(err)
	}
	if err := create("x3"); !errors.As(err, &cle) {
		t.Errorf("3rd create at 2 TPS: %v; want ClientLimitExceededException", err)
	}
	// ListSignalingChannels' 50 TPS is lifted.
	for i := range 60 {
		if _, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
			t.Fatalf("List %d: %v", i+1, err)
		}
	}
	// GetSignalingChannelEndpoint keeps KVS's 300 TPS.
	arn := mustCreate(t, e, "ep")
	n := 0
	for ; n < 400; n++ {
		if _, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(arn)}); err != nil {
			if !errors.As(err, &cle) {
				t.Fatal(err)
			}
			break
		}
	}
	if n != 300 {
		t.Errorf("GetSignalingChannelEndpoint served %d calls in a second; want 300", n)
	}
}

func TestQuotasOff(t *testing.T) {
	clock := newFrozenClock()
	e := start(t, emulator.Config{Clock: clock.Now, Quotas: emulator.Quotas{Off: true}})
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	arn := mustCreate(t, e, "free")
	for i := range 20 {
		if _, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
			t.Fatalf("Describe %d with quotas off: %v", i+1, err)
		}
	}
}

func TestQuotasSet(t *testing.T) {
	tests := []struct {
		spec    string
		want    emulator.Quotas
		wantErr string
	}{
		{spec: "DescribeSignalingChannel=1000", want: emulator.Quotas{Account: map[string]float64{"DescribeSignalingChannel": 1000}}},
		{spec: "DescribeSignalingChannel/channel=50", want: emulator.Quotas{Channel: map[string]float64{"DescribeSignalingChannel": 50}}},
		{spec: "CreateSignalingChannel=off", want: emulator.Quotas{Account: map[string]float64{"CreateSignalingChannel": -1}}},
		{spec: "CreateSignalingChannel=0.5", want: emulator.Quotas{Account: map[string]float64{"CreateSignalingChannel": 0.5}}},
		{spec: "DescribeSignalingChannel", wantErr: "want OPERATION=RATE"},
		{spec: "Describe=5", wantErr: `operation "Describe": must be one of`},
		{spec: "DescribeSignalingChannel/stream=5", wantErr: "scope after / must be channel"},
		{spec: "DescribeSignalingChannel=0", wantErr: "rate must be a positive number"},
		{spec: "DescribeSignalingChannel=-3", wantErr: "rate must be a positive number"},
		{spec: "DescribeSignalingChannel=Inf", wantErr: "rate must be a positive number"},
		{spec: "DescribeSignalingChannel=NaN", wantErr: "rate must be a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			var q emulator.Quotas
			err := q.Set(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v; want an error containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("Set(%q) (-want +got):\n%s", tt.spec, diff)
			}
		})
	}
	if _, err := emulator.New(emulator.Config{Quotas: emulator.Quotas{Channel: map[string]float64{"Nope": 1}}}); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Errorf("New with a quota for an unknown operation: %v; want an error naming it", err)
	}
}

// FuzzQuotasSet: Set never panics, and what it accepts is a valid
// Config.
func FuzzQuotasSet(f *testing.F) {
	for _, s := range []string{"DescribeSignalingChannel=5", "ListSignalingChannels/channel=off", "=", "/channel=", "x=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		var q emulator.Quotas
		if q.Set(spec) != nil {
			return
		}
		e, err := emulator.New(emulator.Config{Quotas: q, DisableTURN: true})
		if err != nil {
			t.Fatalf("Set(%q) accepted a quota New refuses: %v", spec, err)
		}
		e.Close()
	})
}
