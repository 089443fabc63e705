package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func TestControlPlaneLifecycle(t *testing.T) {
	clock := &fakeClock{}
	e := start(t, emulator.Config{Clock: clock.Now})
	c := sdkClient(e, exampleCreds())
	ctx := ctxT(t)

	before := clock.Now()
	created, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName:               aws.String("front-door"),
		ChannelType:               kvtypes.ChannelTypeSingleMaster,
		SingleMasterConfiguration: &kvtypes.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(30)},
		Tags:                      []kvtypes.Tag{{Key: aws.String("team"), Value: aws.String("video")}},
	})
	if err != nil {
		t.Fatalf("CreateSignalingChannel: %v", err)
	}
	arn := aws.ToString(created.ChannelARN)
	a, err := kvs.ParseChannelARN(arn)
	if err != nil {
		t.Fatalf("CreateSignalingChannel returned ARN %q: %v", arn, err)
	}
	if a.Region != "us-west-2" || a.Account != "123456789012" || a.Name != "front-door" || a.Partition != "aws" {
		t.Errorf("ARN %q: got %+v", arn, a)
	}
	if d := a.CreationTime - before.UnixMilli(); d < 0 || d > 5000 {
		t.Errorf("ARN creation time %d is not the clock's time %d", a.CreationTime, before.UnixMilli())
	}

	// Describe by name and by ARN give the same, real-shaped answer.
	byName, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("front-door")})
	if err != nil {
		t.Fatalf("DescribeSignalingChannel(name): %v", err)
	}
	byARN, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err != nil {
		t.Fatalf("DescribeSignalingChannel(arn): %v", err)
	}
	info := byName.ChannelInfo
	if got, want := aws.ToString(info.ChannelARN), arn; got != want {
		t.Errorf("ChannelARN = %q; want %q", got, want)
	}
	if info.ChannelStatus != kvtypes.StatusActive || info.ChannelType != kvtypes.ChannelTypeSingleMaster ||
		aws.ToInt32(info.SingleMasterConfiguration.MessageTtlSeconds) != 30 || aws.ToString(info.Version) == "" {
		t.Errorf("ChannelInfo = %+v", info)
	}
	if ct := info.CreationTime; ct == nil || ct.UnixMilli() != a.CreationTime {
		t.Errorf("CreationTime = %v; want the ARN's %d ms", ct, a.CreationTime)
	}
	if aws.ToString(byARN.ChannelInfo.ChannelName) != "front-door" || aws.ToString(byARN.ChannelInfo.Version) != aws.ToString(info.Version) {
		t.Errorf("describe by ARN = %+v; by name = %+v", byARN.ChannelInfo, info)
	}

	// Endpoints: per role, pointing back at the emulator.
	checkRoleEndpoints(ctx, t, c, e, arn)
	// Delete with the wrong version, then the right one.
	checkDeleteChannel(ctx, t, c, arn, info.Version)

	st := e.Stats()
	want := map[string]int64{"CreateSignalingChannel": 1, "DescribeSignalingChannel": 3, "GetSignalingChannelEndpoint": 2, "DeleteSignalingChannel": 3}
	for op, n := range want {
		if st.Calls[op] != n {
			t.Errorf("Stats().Calls[%s] = %d; want %d", op, st.Calls[op], n)
		}
	}
	if st.Errors["DeleteSignalingChannel"] != 2 || st.Errors["DescribeSignalingChannel"] != 1 {
		t.Errorf("Stats().Errors = %v", st.Errors)
	}
}

// checkRoleEndpoints checks that the WSS and HTTPS endpoints of either
// role point back at the emulator, and that the roles' WSS ones differ.
func checkRoleEndpoints(ctx context.Context, t *testing.T, c *kinesisvideo.Client, e *emulator.Emulator, arn string) {
	t.Helper()
	eps := map[string]string{}
	for _, role := range []kvtypes.ChannelRole{kvtypes.ChannelRoleMaster, kvtypes.ChannelRoleViewer} {
		out, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
			ChannelARN: aws.String(arn),
			SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
				Protocols: []kvtypes.ChannelProtocol{kvtypes.ChannelProtocolWss, kvtypes.ChannelProtocolHttps},
				Role:      role,
			},
		})
		if err != nil {
			t.Fatalf("GetSignalingChannelEndpoint(%s): %v", role, err)
		}
		if len(out.ResourceEndpointList) != 2 {
			t.Fatalf("GetSignalingChannelEndpoint(%s) = %d endpoints; want 2", role, len(out.ResourceEndpointList))
		}
		for _, ep := range out.ResourceEndpointList {
			eps[string(role)+"/"+string(ep.Protocol)] = aws.ToString(ep.ResourceEndpoint)
		}
	}
	host := strings.TrimPrefix(e.URL(), "http://")
	for k, want := range map[string]string{
		"MASTER/WSS": "ws://" + host + "/signaling/master/m-", "VIEWER/WSS": "ws://" + host + "/signaling/viewer/v-",
		"MASTER/HTTPS": "http://" + host + "/ice/r-", "VIEWER/HTTPS": "http://" + host + "/ice/r-",
	} {
		if !strings.HasPrefix(eps[k], want) || len(eps[k]) != len(want)+8 {
			t.Errorf("%s endpoint = %q; want %s + 8 hex digits", k, eps[k], want)
		}
	}
	if eps["MASTER/WSS"] == eps["VIEWER/WSS"] {
		t.Errorf("master and viewer WSS endpoints are both %q", eps["MASTER/WSS"])
	}
}

// checkDeleteChannel deletes the channel with a wrong version, then with
// the right one, then once more, and describes it in between.
func checkDeleteChannel(ctx context.Context, t *testing.T, c *kinesisvideo.Client, arn string, version *string) {
	t.Helper()
	_, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn), CurrentVersion: aws.String("nope")})
	var vm *kvtypes.VersionMismatchException
	if !errors.As(err, &vm) {
		t.Errorf("DeleteSignalingChannel(wrong version) = %v; want VersionMismatchException", err)
	}
	if _, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn), CurrentVersion: version}); err != nil {
		t.Fatalf("DeleteSignalingChannel: %v", err)
	}
	_, err = c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	var nf *kvtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeSignalingChannel after delete = %v; want ResourceNotFoundException", err)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 404 {
		t.Errorf("status = %v; want 404", err)
	}
	_, err = c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)})
	if !errors.As(err, &nf) {
		t.Errorf("DeleteSignalingChannel twice = %v; want ResourceNotFoundException", err)
	}
}

func TestListSignalingChannels(t *testing.T) {
	e := start(t, emulator.Config{})
	c := sdkClient(e, exampleCreds())
	ctx := ctxT(t)
	for _, n := range []string{"cam-3", "cam-1", "door", "cam-2", "cam-10", "camera"} {
		mustCreate(t, e, n)
	}
	var got []string
	var pages int
	p := kinesisvideo.NewListSignalingChannelsPaginator(c, &kinesisvideo.ListSignalingChannelsInput{
		MaxResults: aws.Int32(2),
		ChannelNameCondition: &kvtypes.ChannelNameCondition{
			ComparisonOperator: kvtypes.ComparisonOperatorBeginsWith,
			ComparisonValue:    aws.String("cam-"),
		},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListSignalingChannels: %v", err)
		}
		pages++
		for _, ci := range out.ChannelInfoList {
			got = append(got, aws.ToString(ci.ChannelName))
			if ci.ChannelARN == nil || ci.ChannelStatus != kvtypes.StatusActive {
				t.Errorf("ChannelInfo %+v lacks fields", ci)
			}
		}
	}
	if diff := cmp.Diff([]string{"cam-1", "cam-10", "cam-2", "cam-3"}, got); diff != "" {
		t.Errorf("listed names (-want +got):\n%s", diff)
	}
	if pages != 2 {
		t.Errorf("pages = %d; want 2", pages)
	}
	all, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil || len(all.ChannelInfoList) != 6 || all.NextToken != nil {
		t.Errorf("ListSignalingChannels() = %d channels, next %v, %v; want 6, nil", len(all.ChannelInfoList), all.NextToken, err)
	}
	_, err = c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{NextToken: aws.String("garbage")})
	var ia *kvtypes.InvalidArgumentException
	if !errors.As(err, &ia) || !strings.Contains(ia.ErrorMessage(), "nextToken") {
		t.Errorf("ListSignalingChannels(bad token) = %v; want InvalidArgumentException naming nextToken", err)
	}
	_, err = c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{MaxResults: aws.Int32(0)})
	if !errors.As(err, &ia) || !strings.Contains(ia.ErrorMessage(), "maxResults") {
		t.Errorf("ListSignalingChannels(MaxResults 0) = %v; want InvalidArgumentException naming maxResults", err)
	}
}

func TestControlPlaneErrors(t *testing.T) {
	e := start(t, emulator.Config{MaxChannels: 2})
	c := sdkClient(e, exampleCreds())
	ctx := ctxT(t)
	arn := mustCreate(t, e, "taken")
	missing := strings.Replace(arn, "taken", "missing", 1)

	type typed interface{ ErrorCode() string }
	cases := []struct {
		name     string
		call     func() error
		code     string
		status   int
		inMesage string
		as       func(error) bool
	}{
		{"create existing", func() error {
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("taken")})
			return err
		}, "ResourceInUseException", 400, "taken", func(err error) bool { var x *kvtypes.ResourceInUseException; return errors.As(err, &x) }},
		{"create bad name", func() error {
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("has space")})
			return err
		}, "InvalidArgumentException", 400, "channelName", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"create ttl too long", func() error {
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("x"),
				SingleMasterConfiguration: &kvtypes.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(121)}})
			return err
		}, "InvalidArgumentException", 400, "messageTtlSeconds", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"create full mesh", func() error {
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("x"), ChannelType: kvtypes.ChannelTypeFullMesh})
			return err
		}, "InvalidArgumentException", 400, "FULL_MESH", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"describe neither", func() error {
			_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{})
			return err
		}, "InvalidArgumentException", 400, "ChannelName or ChannelARN", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"describe bad arn", func() error {
			_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String("arn:nope")})
			return err
		}, "InvalidArgumentException", 400, "channelARN", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"describe missing", func() error {
			_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("missing")})
			return err
		}, "ResourceNotFoundException", 404, "not found", func(err error) bool { var x *kvtypes.ResourceNotFoundException; return errors.As(err, &x) }},
		{"endpoint missing", func() error {
			_, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(missing)})
			return err
		}, "ResourceNotFoundException", 404, "not found", func(err error) bool { var x *kvtypes.ResourceNotFoundException; return errors.As(err, &x) }},
		{"endpoint bad role", func() error {
			_, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(arn),
				SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{Role: "BOSS"}})
			return err
		}, "InvalidArgumentException", 400, "role", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"delete bad arn", func() error {
			_, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String("arn:aws:kinesisvideo:us-west-2:1:channel/x")})
			return err
		}, "InvalidArgumentException", 400, "channelARN", func(err error) bool { var x *kvtypes.InvalidArgumentException; return errors.As(err, &x) }},
		{"channel limit", func() error {
			mustCreate(t, e, "second")
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("third")})
			return err
		}, "AccountChannelLimitExceededException", 400, "2", func(err error) bool {
			var x *kvtypes.AccountChannelLimitExceededException
			return errors.As(err, &x)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if !tc.as(err) {
				t.Errorf("error %v (%T) is not the SDK's typed %s", err, errors.Unwrap(err), tc.code)
			}
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code || !strings.Contains(api.ErrorMessage(), tc.inMesage) {
				t.Errorf("error = %v; want code %s with a message containing %q", err, tc.code, tc.inMesage)
			}
			var re *smithyhttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
				t.Errorf("status: %v; want %d", err, tc.status)
			}
		})
	}
}

func TestControlPlaneAuth(t *testing.T) {
	clock := &fakeClock{}
	e := start(t, emulator.Config{Clock: clock.Now})
	ctx := ctxT(t)
	describe := func(c *kinesisvideo.Client) error {
		_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("none")})
		return err
	}
	wrongSecret := exampleCreds()
	wrongSecret.SecretAccessKey = "wrong" + wrongSecret.SecretAccessKey[5:]
	cases := []struct {
		name    string
		client  *kinesisvideo.Client
		code    string
		message string
	}{
		{"unknown key", sdkClient(e, sigv4.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000000", SecretAccessKey: "x"}), "UnrecognizedClientException", "The security token included in the request is invalid."},
		{"wrong secret", sdkClient(e, wrongSecret), "InvalidSignatureException", "The request signature we calculated does not match"},
		{"token on long-term key", sdkClient(e, sigv4.Credentials{AccessKeyID: emulator.ExampleAccessKeyID, SecretAccessKey: emulator.ExampleSecretAccessKey, SessionToken: "tok"}), "UnrecognizedClientException", "invalid"},
		{"wrong region", sdkClient(e, exampleCreds(), func(o *kinesisvideo.Options) { o.Region = "eu-west-1" }), "InvalidSignatureException", "Credential should be scoped to a valid region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := describe(tc.client)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code || !strings.Contains(api.ErrorMessage(), tc.message) {
				t.Fatalf("error = %v; want %s containing %q", err, tc.code, tc.message)
			}
			var re *smithyhttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
				t.Errorf("status: %v; want 403", err)
			}
		})
	}
	t.Run("clock skew", func(t *testing.T) {
		clock.Advance(10 * time.Minute)
		defer clock.Advance(-10 * time.Minute)
		err := describe(sdkClient(e, exampleCreds()))
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" || !strings.Contains(api.ErrorMessage(), "Signature expired") {
			t.Fatalf("error = %v; want InvalidSignatureException: Signature expired", err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Post(e.URL()+"/describeSignalingChannel", "application/json", strings.NewReader(`{"ChannelName":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "MissingAuthenticationTokenException:") {
			t.Errorf("unsigned request: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	})
}

// rawCall signs and sends a control-plane request with the example key.
func rawCall(t testing.TB, e *emulator.Emulator, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s := sigv4.Signer{Service: "kinesisvideo", Region: e.Region()}
	if err := s.SignRequest(context.Background(), exampleCreds(), req, ""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestControlPlaneWire(t *testing.T) {
	clock := &fakeClock{offset: -3 * time.Minute} // the Date header follows the emulator's clock
	e := start(t, emulator.Config{Clock: clock.Now})
	resp, body := rawCall(t, e, "/describeSignalingChannel", `{"ChannelName":"nope"}`)
	if resp.StatusCode != 404 {
		t.Fatalf("status %d; want 404", resp.StatusCode)
	}
	if got := resp.Header.Get("x-amzn-ErrorType"); !strings.HasPrefix(got, "ResourceNotFoundException:") {
		t.Errorf("x-amzn-ErrorType = %q", got)
	}
	if id := resp.Header.Get("x-amzn-RequestId"); len(id) != 36 {
		t.Errorf("x-amzn-RequestId = %q", id)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil || date.Sub(clock.Now()).Abs() > 2*time.Second {
		t.Errorf("Date = %q (%v); want the emulator clock's %v", resp.Header.Get("Date"), err, clock.Now())
	}
	var msg map[string]string
	if err := json.Unmarshal(body, &msg); err != nil || msg["Message"] == "" {
		t.Errorf("body = %s; want {\"Message\":…}", body)
	}

	for _, tc := range []struct{ path, body, code, inMessage string }{
		{"/createSignalingChannel", `{"ChannelName":`, "SerializationException", "not valid JSON"},
		{"/createSignalingChannel", `{"ChannelName":5}`, "SerializationException", "ChannelName"},
		{"/createSignalingChannel", `[]`, "SerializationException", ""},
		{"/createSignalingChannel", `{}`, "InvalidArgumentException", "channelName"},
		{"/listSignalingChannels", `{"MaxResults":"ten"}`, "SerializationException", "MaxResults"},
		{"/listSignalingChannels", `{"ChannelNameCondition":{"ComparisonOperator":"ENDS_WITH"}}`, "InvalidArgumentException", "comparisonOperator"},
		{"/getSignalingChannelEndpoint", `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1","SingleMasterChannelEndpointConfiguration":{"Protocols":["FTP"]}}`, "InvalidArgumentException", "protocols"},
		{"/updateSignalingChannel", `{}`, "InvalidArgumentException", "channelARN"},
		{"/TagResource", `{"ResourceARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1","Tags":[{"Value":"v"}]}`, "InvalidArgumentException", "tags.1.member.key"},
		{"/updateStream", `{}`, "UnknownOperationException", ""},
	} {
		resp, body := rawCall(t, e, tc.path, tc.body)
		if got := resp.Header.Get("x-amzn-ErrorType"); !strings.HasPrefix(got, tc.code+":") || resp.StatusCode/100 != 4 {
			t.Errorf("POST %s %s: %d %s; want 4xx %s", tc.path, tc.body, resp.StatusCode, got, tc.code)
		}
		if !bytes.Contains(body, []byte(tc.inMessage)) {
			t.Errorf("POST %s %s: body %s does not name %q", tc.path, tc.body, body, tc.inMessage)
		}
	}
}

func TestFaults(t *testing.T) {
	e := start(t, emulator.Config{})
	c := sdkClient(e, exampleCreds())
	ctx := ctxT(t)
	arn := mustCreate(t, e, "flaky")
	describe := func() error {
		_, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
		return err
	}

	if err := e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle, Operations: []string{emulator.OpDescribeSignalingChannel}, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var cl *kvtypes.ClientLimitExceededException
		if err := describe(); !errors.As(err, &cl) {
			t.Fatalf("call %d = %v; want ClientLimitExceededException", i, err)
		}
	}
	if err := describe(); err != nil {
		t.Fatalf("third call (count exhausted) = %v", err)
	}
	// Other operations are unaffected.
	if _, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("ListSignalingChannels: %v", err)
	}

	// 5xx over the admin endpoint; the SDK's retryer would retry these.
	resp, err := http.Post(e.URL()+"/_emulator/faults", "application/json", strings.NewReader(`{"share":1,"kind":"5xx"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /_emulator/faults: %v %v", resp, err)
	}
	resp.Body.Close()
	err = describe()
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Fatalf("describe with 5xx faults = %v; want HTTP 500", err)
	}
	// The SDK's standard retryer retries a 500 and gives up after 3 tries.
	retrying := sdkClient(e, exampleCreds(), func(o *kinesisvideo.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 3; so.MaxBackoff = 10 * time.Millisecond })
	})
	callsBefore := e.Stats().Calls[emulator.OpDescribeSignalingChannel]
	_, err = retrying.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err == nil {
		t.Fatal("retrying client succeeded under 100% faults")
	}
	if n := e.Stats().Calls[emulator.OpDescribeSignalingChannel] - callsBefore; n != 3 {
		t.Errorf("retrying client made %d calls; want 3", n)
	}

	req, _ := http.NewRequest(http.MethodDelete, e.URL()+"/_emulator/faults", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE /_emulator/faults: %v %v", resp, err)
	}
	if err := describe(); err != nil {
		t.Fatalf("describe after clearing faults = %v", err)
	}
	for _, bad := range []string{`{"share":2}`, `{"share":1,"kind":"boom"}`, `{"share":1,"operations":["Nope"]}`, `{"shares":1}`, `nope`} {
		resp, err := http.Post(e.URL()+"/_emulator/faults", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !json.Valid(b) {
			t.Errorf("POST /_emulator/faults %s = %d %s; want 400 JSON", bad, resp.StatusCode, b)
		}
	}
	st := e.Stats()
	if st.Faults != 6 {
		t.Errorf("Stats().Faults = %d; want 6", st.Faults)
	}
}

func TestStatsEndpoint(t *testing.T) {
	e := start(t, emulator.Config{})
	c := sdkClient(e, exampleCreds())
	for range 3 {
		c.ListSignalingChannels(ctxT(t), &kinesisvideo.ListSignalingChannelsInput{})
	}
	resp, err := http.Get(e.URL() + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st emulator.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Calls["ListSignalingChannels"] != 3 || len(st.Calls) != len(st.Errors) || st.Calls[emulator.OpConnectAsViewer] != 0 {
		t.Errorf("stats calls = %v", st.Calls)
	}
	if diff := cmp.Diff(e.Stats(), st); diff != "" {
		t.Errorf("/_emulator/stats differs from Stats() (-go +http):\n%s", diff)
	}
}

// TestCountersPerOperation shows how the counters prove caching: a client
// that caches makes one Describe call for many resolutions.
func TestCountersPerOperation(t *testing.T) {
	e := start(t, emulator.Config{})
	mustCreate(t, e, "a")
	c := sdkClient(e, exampleCreds())
	var cached *kinesisvideo.DescribeSignalingChannelOutput
	for range 100 {
		if cached == nil {
			out, err := c.DescribeSignalingChannel(ctxT(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("a")})
			if err != nil {
				t.Fatal(err)
			}
			cached = out
		}
	}
	if n := e.Stats().Calls[emulator.OpDescribeSignalingChannel]; n != 1 {
		t.Errorf("DescribeSignalingChannel calls = %d; want 1", n)
	}
}
