package emulator_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func stsClient(e *emulator.Emulator, c sigv4.Credentials) *sts.Client {
	return sts.New(sts.Options{
		Region:       e.Region(),
		BaseEndpoint: aws.String(e.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Retryer:      aws.NopRetryer{},
	})
}

func apiErr(t *testing.T, err error, code string, status int) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("error = %v; want %s", err, code)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error = %v; want HTTP %d", err, status)
	}
}

// TestAssumeRoleCredentialsExpire: AssumeRole → use the credentials
// (control plane, and a signaling URL) → they expire → 403 ExpiredToken.
func TestAssumeRoleCredentialsExpire(t *testing.T) {
	clock := &fakeClock{}
	e := start(t, emulator.Config{Clock: clock.Now, STSMinDuration: time.Second})
	ctx := ctxT(t)
	arn := mustCreate(t, e, "sts-channel")

	out, err := stsClient(e, exampleCreds()).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::123456789012:role/camera"),
		RoleSessionName: aws.String("device-1"),
		DurationSeconds: aws.Int32(60),
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SessionToken) == "" || aws.ToString(c.SecretAccessKey) == "" {
		t.Fatalf("AssumeRole credentials = %+v", c)
	}
	if d := c.Expiration.Sub(clock.Now()); d < 58*time.Second || d > 61*time.Second {
		t.Errorf("Expiration in %v; want 60s", d)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::123456789012:assumed-role/camera/device-1" {
		t.Errorf("AssumedRoleUser.Arn = %q", got)
	}
	temp := sigv4.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}

	kv := sdkClient(e, temp)
	if _, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		t.Fatalf("DescribeSignalingChannel with AssumeRole credentials: %v", err)
	}
	who, err := stsClient(e, temp).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != "arn:aws:sts::123456789012:assumed-role/camera/device-1" || aws.ToString(who.Account) != "123456789012" {
		t.Fatalf("GetCallerIdentity = %+v, %v", who, err)
	}
	// A signaling URL signed with them connects (token inside the signed query).
	p := kvs.Presigner{Credentials: temp}
	u, err := p.Presign(ctx, endpoint(t, e, arn, kvs.Master, "WSS"), arn, kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	dial(t, u.URL).ws.Close(websocket.StatusNormalClosure, "")
	// Without the token the same key is refused.
	noToken := temp
	noToken.SessionToken = ""
	_, err = sdkClient(e, noToken).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	apiErr(t, err, "UnrecognizedClientException", 403)

	clock.Advance(61 * time.Second)
	_, err = kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	apiErr(t, err, "ExpiredTokenException", 403)
	var api smithy.APIError
	errors.As(err, &api)
	if api.ErrorMessage() != "The security token included in the request is expired" {
		t.Errorf("message = %q", api.ErrorMessage())
	}
	_, err = stsClient(e, temp).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	apiErr(t, err, "ExpiredToken", 403)

	// The signaling handshake refuses the expired token too. The URL is
	// signed on real time, a minute before the emulator's clock.
	status, _, body := dialFail(t, u.URL)
	if status != 403 || body["message"] != "The security token included in the request is expired" {
		t.Errorf("handshake with expired token = %d %v; want 403 expired token", status, body)
	}
}

func TestGetSessionToken(t *testing.T) {
	clock := &fakeClock{}
	e := start(t, emulator.Config{Clock: clock.Now, STSMinDuration: time.Second})
	ctx := ctxT(t)
	out, err := stsClient(e, exampleCreds()).GetSessionToken(ctx, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(5)})
	if err != nil {
		t.Fatalf("GetSessionToken: %v", err)
	}
	temp := stsCredentials(out.Credentials)
	if _, err := sdkClient(e, temp).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("ListSignalingChannels with session credentials: %v", err)
	}
	// Real STS refuses GetSessionToken called with temporary credentials.
	_, err = stsClient(e, temp).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	apiErr(t, err, "AccessDenied", 403)
	// AssumeRole with them is allowed (and chained roles are capped at 1 hour).
	role, err := stsClient(e, temp).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1")})
	if err != nil {
		t.Fatalf("AssumeRole with session credentials: %v", err)
	}
	chained := stsCredentials(role.Credentials)
	_, err = stsClient(e, chained).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r2"), RoleSessionName: aws.String("s2"), DurationSeconds: aws.Int32(7200)})
	apiErr(t, err, "ValidationError", 400)

	clock.Advance(6 * time.Second)
	_, err = sdkClient(e, temp).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	apiErr(t, err, "ExpiredTokenException", 403)

	st := e.Stats()
	if st.Calls[emulator.OpGetSessionToken] != 2 || st.Errors[emulator.OpGetSessionToken] != 1 || st.Calls[emulator.OpAssumeRole] != 2 {
		t.Errorf("stats calls %v errors %v", st.Calls, st.Errors)
	}
}

func TestSTSValidation(t *testing.T) {
	e := start(t, emulator.Config{})
	ctx := ctxT(t)
	c := stsClient(e, exampleCreds())
	cases := []struct {
		name string
		in   *sts.AssumeRoleInput
		want string
	}{
		{"short duration", &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(10)}, "durationSeconds"},
		{"long duration", &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(50000)}, "durationSeconds"},
		{"bad role arn", &sts.AssumeRoleInput{RoleArn: aws.String("not-an-arn-but-long-enough"), RoleSessionName: aws.String("s1")}, "role ARN"},
		{"bad session name", &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("a b")}, "roleSessionName"},
	}
	for _, tc := range cases {
		_, err := c.AssumeRole(ctx, tc.in)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationError" || !strings.Contains(api.ErrorMessage(), tc.want) {
			t.Errorf("%s: AssumeRole = %v; want ValidationError naming %s", tc.name, err, tc.want)
		}
	}
	_, err := stsClient(e, sigv4.Credentials{AccessKeyID: "AKIANOPE", SecretAccessKey: "x"}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	apiErr(t, err, "InvalidClientTokenId", 403)

	// Unknown actions and unsigned requests get XML errors.
	resp, err := http.Post(e.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DeleteEverything&Version=2011-06-15"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidAction</Code>") {
		t.Errorf("unknown action: %d %s", resp.StatusCode, b)
	}
}

func TestIssueCredentials(t *testing.T) {
	clock := newFrozenClock()
	e := start(t, emulator.Config{Clock: clock.Now})
	c := e.IssueCredentials(time.Second)
	if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SessionToken == "" || !c.Expires.Equal(clock.Now().Add(time.Second).Truncate(time.Second)) {
		t.Fatalf("IssueCredentials = %v", c)
	}
	if _, err := sdkClient(e, c).ListSignalingChannels(ctxT(t), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("with issued credentials: %v", err)
	}
	clock.Advance(2 * time.Second)
	_, err := sdkClient(e, c).ListSignalingChannels(ctxT(t), &kinesisvideo.ListSignalingChannelsInput{})
	apiErr(t, err, "ExpiredTokenException", 403)
}

// TestSTSDurationOverflow is a regression test: DurationSeconds that
// overflow a time.Duration were accepted (18446747674 s wrapped to about
// an hour). Sent raw, as the SDKs' int32 cannot carry them.
func TestSTSDurationOverflow(t *testing.T) {
	e := start(t, emulator.Config{})
	const assume = "AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s1"
	cases := []struct{ action, duration string }{{assume, "43201"}, {"GetSessionToken", "129601"}}
	for _, d := range []string{"18446747674", "18446744073709551616", "9223372037", "99999999999999999999", "-1", "899", "1e3"} {
		cases = append(cases, struct{ action, duration string }{assume, d}, struct{ action, duration string }{"GetSessionToken", d})
	}
	for _, tc := range cases {
		action, d := tc.action, tc.duration
		body := "Action=" + action + "&Version=2011-06-15&DurationSeconds=" + d
		req, err := http.NewRequest(http.MethodPost, e.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		sum := sha256.Sum256([]byte(body))
		s := sigv4.Signer{Service: "sts", Region: "us-east-1"}
		if err := s.SignRequest(ctxT(t), exampleCreds(), req, hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>ValidationError</Code>") || !strings.Contains(string(b), "durationSeconds") {
			t.Errorf("%s with DurationSeconds=%s = %d; want 400 ValidationError naming durationSeconds", strings.SplitN(action, "&", 2)[0], d, resp.StatusCode)
		}
	}
}
