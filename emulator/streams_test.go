package emulator_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
)

// checkAPIError checks that err is the SDK's typed error for code (so
// that the client's deserializer knows the code) and mentions msg.
func checkAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T); want %s", err, err, code)
	}
	if ae.ErrorCode() != code || fmt.Sprintf("%T", ae) != "*types."+code {
		t.Fatalf("error %v (%T, code %s); want *types.%s", err, ae, ae.ErrorCode(), code)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not mention %q", err, msg)
	}
}

func createStream(t *testing.T, c *kinesisvideo.Client, name string, hours int32) string {
	t.Helper()
	out, err := c.CreateStream(ctxT(t), &kinesisvideo.CreateStreamInput{
		StreamName: aws.String(name), DataRetentionInHours: aws.Int32(hours), MediaType: aws.String("video/h264"),
	})
	if err != nil {
		t.Fatalf("CreateStream(%q): %v", name, err)
	}
	return *out.StreamARN
}

func TestStreamOps(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	arn := createStream(t, c, "cam-1", 24)
	if !strings.HasPrefix(arn, "arn:aws:kinesisvideo:"+e.Region()+":123456789012:stream/cam-1/") {
		t.Errorf("StreamARN = %q; want arn:aws:kinesisvideo:REGION:ACCOUNT:stream/cam-1/MS", arn)
	}
	createStream(t, c, "cam-2", 0)
	createStream(t, c, "other", 1)

	d, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatalf("DescribeStream: %v", err)
	}
	si := d.StreamInfo
	if *si.StreamARN != arn || *si.StreamName != "cam-1" || si.Status != kvtypes.StatusActive || *si.DataRetentionInHours != 24 ||
		*si.MediaType != "video/h264" || si.CreationTime == nil || si.Version == nil {
		t.Errorf("DescribeStream = %+v", si)
	}
	if d2, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)}); err != nil || *d2.StreamInfo.StreamName != "cam-1" {
		t.Errorf("DescribeStream by ARN: %v", err)
	}

	var names []string
	var token *string
	for {
		out, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(1), NextToken: token,
			StreamNameCondition: &kvtypes.StreamNameCondition{ComparisonOperator: kvtypes.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam")}})
		if err != nil {
			t.Fatalf("ListStreams: %v", err)
		}
		for _, s := range out.StreamInfoList {
			names = append(names, *s.StreamName)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if diff := cmp.Diff([]string{"cam-1", "cam-2"}, names); diff != "" {
		t.Errorf("ListStreams BEGINS_WITH cam (-want +got):\n%s", diff)
	}

	missing := "arn:aws:kinesisvideo:us-west-2:123456789012:stream/nope/1"
	tests := []struct {
		name, code, msg string
		call            func() error
	}{
		{"duplicate name", "ResourceInUseException", "cam-1", func() error {
			_, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(1)})
			return err
		}},
		{"bad name", "InvalidArgumentException", "streamName", func() error {
			_, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("a b")})
			return err
		}},
		{"negative retention", "InvalidArgumentException", "dataRetentionInHours", func() error {
			_, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("neg"), DataRetentionInHours: aws.Int32(-1)})
			return err
		}},
		{"describe missing", "ResourceNotFoundException", "stream is not found", func() error {
			_, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(missing)})
			return err
		}},
		{"describe neither", "InvalidArgumentException", "StreamName or StreamARN", func() error {
			_, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{})
			return err
		}},
		{"describe channel ARN", "InvalidArgumentException", "streamARN", func() error {
			_, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String("arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1")})
			return err
		}},
		{"delete missing", "ResourceNotFoundException", "stream is not found", func() error {
			_, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(missing)})
			return err
		}},
		{"delete stale version", "VersionMismatchException", "abc", func() error {
			_, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn), CurrentVersion: aws.String("abc")})
			return err
		}},
		{"list bad token", "InvalidArgumentException", "nextToken", func() error {
			_, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{NextToken: aws.String("zz")})
			return err
		}},
		{"list bad max", "InvalidArgumentException", "maxResults", func() error {
			_, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(0)})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkAPIError(t, tc.call(), tc.code, tc.msg) })
	}

	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn), CurrentVersion: si.Version}); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	_, err = c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)})
	checkAPIError(t, err, "ResourceNotFoundException", "stream")
}

func TestMediaStorage(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	ch := mustCreate(t, e, "door")
	ch2 := mustCreate(t, e, "garage")
	st := createStream(t, c, "door-video", 24)
	noData := createStream(t, c, "no-data", 0)
	describe := func(arn string) kvtypes.MediaStorageConfiguration {
		t.Helper()
		out, err := c.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeMediaStorageConfiguration: %v", err)
		}
		return *out.MediaStorageConfiguration
	}
	update := func(arn, status string, stream *string) error {
		_, err := c.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(arn),
			MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatus(status), StreamARN: stream}})
		return err
	}
	webrtc := func() (string, error) {
		out, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(ch),
			SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
				Protocols: []kvtypes.ChannelProtocol{kvtypes.ChannelProtocolWebrtc}, Role: kvtypes.ChannelRoleMaster}})
		if err != nil {
			return "", err
		}
		return *out.ResourceEndpointList[0].ResourceEndpoint, nil
	}

	if got := describe(ch); got.Status != kvtypes.MediaStorageConfigurationStatusDisabled || got.StreamARN != nil {
		t.Errorf("never configured: %+v; want DISABLED, no stream", got)
	}
	_, err := webrtc()
	checkAPIError(t, err, "InvalidArgumentException", "media storage ENABLED")

	if err := update(ch, "ENABLED", aws.String(st)); err != nil {
		t.Fatalf("UpdateMediaStorageConfiguration: %v", err)
	}
	if got := describe(ch); got.Status != kvtypes.MediaStorageConfigurationStatusEnabled || *got.StreamARN != st {
		t.Errorf("after ENABLED: %+v", got)
	}
	ep, err := webrtc()
	if err != nil || !strings.HasPrefix(ep, e.URL()+"/webrtc/w-") {
		t.Errorf("WEBRTC endpoint = %q, %v; want %s/webrtc/w-…", ep, err, e.URL())
	}

	missing := "arn:aws:kinesisvideo:us-west-2:123456789012:stream/nope/1"
	tests := []struct {
		name, code, msg string
		err             error
	}{
		{"no retention", "NoDataRetentionException", "no-data", update(ch2, "ENABLED", aws.String(noData))},
		{"stream of another channel", "ResourceInUseException", ch, update(ch2, "ENABLED", aws.String(st))},
		{"missing stream", "ResourceNotFoundException", "stream", update(ch2, "ENABLED", aws.String(missing))},
		{"missing channel", "ResourceNotFoundException", "channel", update("arn:aws:kinesisvideo:us-west-2:123456789012:channel/nope/1", "ENABLED", aws.String(st))},
		{"bad status", "InvalidArgumentException", "mediaStorageConfiguration.status", update(ch2, "ON", aws.String(st))},
		{"enabled without stream", "InvalidArgumentException", "StreamARN", update(ch2, "ENABLED", nil)},
		{"stream in use", "ResourceInUseException", "disable it", func() error {
			_, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(st)})
			return err
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkAPIError(t, tc.err, tc.code, tc.msg) })
	}

	if err := update(ch, "DISABLED", nil); err != nil {
		t.Fatalf("UpdateMediaStorageConfiguration DISABLED: %v", err)
	}
	if got := describe(ch); got.Status != kvtypes.MediaStorageConfigurationStatusDisabled {
		t.Errorf("after DISABLED: %+v", got)
	}
	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(st)}); err != nil {
		t.Errorf("DeleteStream once storage is disabled: %v", err)
	}
}

// TestMediaStorageLimit checks the 100 storage-enabled channels per
// account.
func TestMediaStorageLimit(t *testing.T) {
	cfg := fastConfig()
	cfg.Quotas.Off = true
	e := start(t, cfg)
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	enable := func(i int) error {
		ch := mustCreate(t, e, fmt.Sprintf("ch-%03d", i))
		st := createStream(t, c, fmt.Sprintf("st-%03d", i), 1)
		_, err := c.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(ch),
			MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: aws.String(st)}})
		return err
	}
	for i := range 100 {
		if err := enable(i); err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
	}
	checkAPIError(t, enable(100), "ClientLimitExceededException", "100 channels with media storage")
}

func TestMediaStorageQuota(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	ch := mustCreate(t, e, "busy")
	var err error
	for range 6 {
		if _, err = c.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(ch)}); err != nil {
			break
		}
	}
	checkAPIError(t, err, "ClientLimitExceededException", "throttled")
}

func TestStreamsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := fastConfig()
	cfg.StateFile = path
	e1, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start(); err != nil {
		t.Fatal(err)
	}
	c := sdkClient(e1, exampleCreds())
	ctx := ctxT(t)
	ch := mustCreate(t, e1, "kept")
	st := createStream(t, c, "kept-video", 48)
	createStream(t, c, "gone", 1)
	gone, _ := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("gone")})
	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: gone.StreamInfo.StreamARN}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(ch),
		MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: aws.String(st)}}); err != nil {
		t.Fatal(err)
	}
	// Without Close, the second emulator replays the journal; after it,
	// it reads the snapshot alone.
	for _, closeFirst := range []bool{false, true} {
		if closeFirst {
			e1.Close()
		}
		e2 := start(t, emulator.Config{StateFile: path})
		c2 := sdkClient(e2, exampleCreds())
		out, err := c2.ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
		if err != nil || len(out.StreamInfoList) != 1 || *out.StreamInfoList[0].StreamARN != st || *out.StreamInfoList[0].DataRetentionInHours != 48 {
			t.Fatalf("closed %v: ListStreams after restart = %+v, %v; want kept-video alone", closeFirst, out, err)
		}
		m, err := c2.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelName: aws.String("kept")})
		if err != nil || m.MediaStorageConfiguration.Status != kvtypes.MediaStorageConfigurationStatusEnabled || *m.MediaStorageConfiguration.StreamARN != st {
			t.Fatalf("closed %v: storage after restart = %+v, %v", closeFirst, m, err)
		}
		e2.Close()
	}
}

// TestStreamOpsPolicy checks that each new operation is its own IAM-lite
// action, refused with the error code the service model gives it.
func TestStreamOpsPolicy(t *testing.T) {
	policy := `{"Statement": [{"Effect": "Allow", "Action": ["kinesisvideo:CreateStream", "kinesisvideo:Describe*"], "Resource": "*"}]}`
	e := start(t, emulator.Config{Policy: policy})
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	ch := mustCreate(t, e, "guarded")
	st := createStream(t, c, "guarded-video", 1)
	if _, err := c.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(ch)}); err != nil {
		t.Fatalf("DescribeMediaStorageConfiguration: %v", err)
	}
	_, err := c.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(ch),
		MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: aws.String(st)}})
	checkAPIError(t, err, "AccessDeniedException", "kinesisvideo:UpdateMediaStorageConfiguration on resource: "+ch)
	_, err = c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(st)})
	checkAPIError(t, err, "NotAuthorizedException", "kinesisvideo:DeleteStream on resource: "+st)
	// The model gives ListStreams no refusal error: the client sees the
	// code without a type.
	_, err = c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(err.Error(), "kinesisvideo:ListStreams on resource: *") {
		t.Errorf("ListStreams without the permission: %v; want AccessDeniedException naming the action", err)
	}
}

// TestAWSCLIMediaStorage runs the aws CLI's create-stream,
// update-media-storage-configuration, describe-media-storage-configuration
// and get-signaling-channel-endpoint for WEBRTC against the emulator.
func TestAWSCLIMediaStorage(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the aws CLI is not on PATH (Debian: apt-get install awscli); skipping the CLI check")
	}
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "cli-storage")
	awsCLI := func(args ...string) map[string]any { t.Helper(); return runAWSCLI(t, e, args...) }
	st, _ := awsCLI("create-stream", "--stream-name", "cli-video", "--data-retention-in-hours", "24")["StreamARN"].(string)
	if !strings.Contains(st, ":stream/cli-video/") {
		t.Fatalf("create-stream: StreamARN %q", st)
	}
	awsCLI("update-media-storage-configuration", "--channel-arn", arn,
		"--media-storage-configuration", "Status=ENABLED,StreamARN="+st)
	got := awsCLI("describe-media-storage-configuration", "--channel-arn", arn)
	want := map[string]any{"MediaStorageConfiguration": map[string]any{"Status": "ENABLED", "StreamARN": st}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("describe-media-storage-configuration (-want +got):\n%s", diff)
	}
	ep := awsCLI("get-signaling-channel-endpoint", "--channel-arn", arn,
		"--single-master-channel-endpoint-configuration", "Protocols=WEBRTC,Role=MASTER")
	list, _ := ep["ResourceEndpointList"].([]any)
	if len(list) != 1 || !strings.Contains(fmt.Sprint(list[0]), "/webrtc/w-") {
		t.Errorf("get-signaling-channel-endpoint WEBRTC: %v; want one /webrtc/w-… endpoint", ep)
	}
}
