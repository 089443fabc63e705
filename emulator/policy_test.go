package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

const longTermARN = "arn:aws:iam::123456789012:user/emulator"

// deniedMessage is AWS's wording of a refusal by IAM.
func deniedMessage(principal, op, resource string) string {
	return "User: " + principal + " is not authorized to perform: kinesisvideo:" + op + " on resource: " + resource
}

// iceWith calls GetIceServerConfig for arn at the HTTPS endpoint ep,
// signed with c. (The emulator serves every channel at every endpoint.)
func iceWith(t *testing.T, e *emulator.Emulator, c sigv4.Credentials, ep, arn string) (int, http.Header, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ep+"/v1/get-ice-server-config", strings.NewReader(`{"ChannelARN":"`+arn+`"}`))
	req.Header.Set("Content-Type", "application/json")
	s := sigv4.Signer{Service: kvs.Service, Region: e.Region()}
	if err := s.SignRequest(context.Background(), c, req, ""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := map[string]string{}
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("GetIceServerConfig error body %q: %v", b, err)
		}
	}
	return resp.StatusCode, resp.Header, body
}

// presignAs signs a signaling URL for role on arn with c.
func presignAs(t *testing.T, e *emulator.Emulator, c sigv4.Credentials, arn string, role kvs.Role, clientID string) string {
	t.Helper()
	p := kvs.Presigner{Credentials: c}
	u, err := p.Presign(ctxT(t), endpoint(t, e, arn, role, kvtypes.ChannelProtocolWss), arn, role, clientID)
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	return u.URL
}

// wantDenied checks that err is the SDK's typed AccessDeniedException,
// 403, with exactly message.
func wantDenied(t *testing.T, err error, message string) {
	t.Helper()
	var ad *kvtypes.AccessDeniedException
	if !errors.As(err, &ad) {
		t.Fatalf("error = %v (%T); want the SDK's typed AccessDeniedException", err, errors.Unwrap(err))
	}
	if got := ad.ErrorMessage(); got != message {
		t.Errorf("message = %q; want %q", got, message)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
		t.Errorf("status: %v; want 403", err)
	}
}

// wantRefused checks a refused signaling handshake: 403
// AccessDeniedException with exactly message.
func wantRefused(t *testing.T, url, message string) {
	t.Helper()
	status, h, body := dialFail(t, url)
	if status != 403 || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "AccessDeniedException:") || body["message"] != message {
		t.Errorf("handshake = %d %s %v; want 403 AccessDeniedException %q", status, h.Get("x-amzn-ErrorType"), body, message)
	}
}

// stsCredentials converts credentials STS returned.
func stsCredentials(c *ststypes.Credentials) sigv4.Credentials {
	return sigv4.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}
}

// assumeWithPolicy assumes role with the example credentials and a session
// policy, and returns the session's credentials.
func assumeWithPolicy(ctx context.Context, t *testing.T, e *emulator.Emulator, role, session, policy string) sigv4.Credentials {
	t.Helper()
	out, err := stsClient(e, exampleCreds()).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(role), RoleSessionName: aws.String(session), Policy: aws.String(policy)})
	if err != nil {
		t.Fatalf("AssumeRole %s with a session policy: %v", role, err)
	}
	return stsCredentials(out.Credentials)
}

func TestIdentityPolicyControlPlane(t *testing.T) {
	const openChannels = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/open/*"
	policy := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Sid": "UseOpen", "Effect": "Allow", "Resource": "` + openChannels + `",
	     "Action": ["kinesisvideo:Describe*", "KinesisVideo:getsignalingchannelendpoint", "kinesisvideo:GetIceServerConfig",
	                "kinesisvideo:CreateSignalingChannel", "kinesisvideo:DeleteSignalingChannel"]},
	    {"Sid": "List", "Effect": "Allow", "Action": "kinesisvideo:ListSignalingChannels", "Resource": "*"},
	    {"Sid": "NeverDelete", "Effect": "Deny", "Action": "kinesisvideo:DeleteSignalingChannel", "Resource": "*"}
	  ]
	}`
	e := start(t, emulator.Config{Policy: policy})
	ctx := ctxT(t)
	open := mustCreate(t, e, "open") // the Go API is not checked
	closed := mustCreate(t, e, "closed")
	c := sdkClient(e, exampleCreds())
	denials := checkPolicyCalls(ctx, t, c, open, closed)

	// Refused creations and deletions changed nothing.
	list, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil || len(list.ChannelInfoList) != 2 {
		t.Errorf("ListSignalingChannels = %+v, %v; want open and closed", list, err)
	}

	// GetIceServerConfig, at the HTTPS endpoint the policy lets it get.
	ep := endpoint(t, e, open, kvs.Viewer, "HTTPS")
	if status, _, body := iceWith(t, e, exampleCreds(), ep, open); status != 200 {
		t.Errorf("GetIceServerConfig(open) = %d %v", status, body)
	}
	status, h, body := iceWith(t, e, exampleCreds(), ep, closed)
	denials++
	if want := deniedMessage(longTermARN, "GetIceServerConfig", closed); status != 403 || body["Message"] != want ||
		!strings.HasPrefix(h.Get("x-amzn-ErrorType"), "AccessDeniedException:") {
		t.Errorf("GetIceServerConfig(closed) = %d %s %v; want 403 AccessDeniedException %q", status, h.Get("x-amzn-ErrorType"), body, want)
	}

	// The handshake: the policy allows no Connect at all.
	wantRefused(t, signedURL(t, e, open, kvs.Master, ""), deniedMessage(longTermARN, "ConnectAsMaster", open))
	wantRefused(t, signedURL(t, e, open, kvs.Viewer, "v1"), deniedMessage(longTermARN, "ConnectAsViewer", open))
	denials += 2

	// GetSessionToken's credentials carry the same policy, and STS itself
	// is not checked.
	out, err := stsClient(e, exampleCreds()).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	if err != nil {
		t.Fatalf("GetSessionToken: %v", err)
	}
	temp := stsCredentials(out.Credentials)
	_, err = sdkClient(e, temp).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(closed)})
	wantDenied(t, err, deniedMessage(longTermARN, "DescribeSignalingChannel", closed))
	denials++
	if _, err := sdkClient(e, temp).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(open)}); err != nil {
		t.Errorf("DescribeSignalingChannel(open) with GetSessionToken credentials: %v", err)
	}
	if who, err := stsClient(e, temp).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(who.Arn) != longTermARN {
		t.Errorf("GetCallerIdentity = %+v, %v", who, err)
	}
	// So are IssueCredentials'.
	_, err = sdkClient(e, e.IssueCredentials(time.Minute)).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Errorf("ListSignalingChannels with IssueCredentials: %v", err)
	}
	_, err = sdkClient(e, e.IssueCredentials(time.Minute)).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("closed")})
	wantDenied(t, err, deniedMessage(longTermARN, "DescribeSignalingChannel", closed))
	denials++

	checkDenialStats(t, e, denials)
}

// checkPolicyCalls makes the control plane calls of
// TestIdentityPolicyControlPlane with c, and returns how many the policy
// denied.
func checkPolicyCalls(ctx context.Context, t *testing.T, c *kinesisvideo.Client, open, closed string) int {
	t.Helper()
	describe := func(in *kinesisvideo.DescribeSignalingChannelInput) func() error {
		return func() error { _, err := c.DescribeSignalingChannel(ctx, in); return err }
	}
	getEndpoint := func(arn string) func() error {
		return func() error {
			_, err := c.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(arn)})
			return err
		}
	}
	create := func(name string) func() error {
		return func() error {
			_, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(name)})
			return err
		}
	}

	cases := []struct {
		name   string
		call   func() error
		code   string // "" for success
		denied string // the exact message of an AccessDeniedException
	}{
		{"describe an allowed channel by ARN", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(open)}), "", ""},
		{"describe an allowed channel by name", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("open")}), "", ""},
		{"describe another channel by ARN", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(closed)}),
			"AccessDeniedException", deniedMessage(longTermARN, "DescribeSignalingChannel", closed)},
		{"describe another channel by name", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("closed")}),
			"AccessDeniedException", deniedMessage(longTermARN, "DescribeSignalingChannel", closed)},
		{"describe a missing channel by name: no ARN, so the name", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("ghost")}),
			"AccessDeniedException", deniedMessage(longTermARN, "DescribeSignalingChannel", "ghost")},
		{"describe a missing channel the policy covers", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(strings.Replace(open, "/open/", "/open/1", 1))}),
			"ResourceNotFoundException", ""},
		{"validation comes before authorisation", describe(&kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String("arn:nope")}),
			"InvalidArgumentException", ""},
		{"endpoint of an allowed channel (action in another case)", getEndpoint(open), "", ""},
		{"endpoint of another channel", getEndpoint(closed), "AccessDeniedException", deniedMessage(longTermARN, "GetSignalingChannelEndpoint", closed)},
		{"list", func() error {
			_, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
			return err
		}, "", ""},
		{"create an allowed name that exists", create("open"), "ResourceInUseException", ""},
		{"create another name", create("new"), "AccessDeniedException", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/new/"},
		{"delete: the explicit deny wins", func() error {
			_, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(open)})
			return err
		}, "AccessDeniedException", deniedMessage(longTermARN, "DeleteSignalingChannel", open)},
	}
	denials := 0
	for _, tc := range cases {
		if tc.code == "AccessDeniedException" {
			denials++
		}
		t.Run(tc.name, func(t *testing.T) { checkPolicyError(t, tc.call(), tc.code, tc.denied) })
	}
	return denials
}

// checkPolicyError checks the answer of a call: success when code is
// empty, an AccessDeniedException with exactly denied, or the error code.
func checkPolicyError(t *testing.T, err error, code, denied string) {
	t.Helper()
	switch {
	case code == "":
		if err != nil {
			t.Fatalf("error %v; want success", err)
		}
	case code == "AccessDeniedException" && strings.HasSuffix(denied, "/"):
		// CreateSignalingChannel: the resource is the ARN the
		// channel would get, ending in the creation time.
		var ad *kvtypes.AccessDeniedException
		if !errors.As(err, &ad) {
			t.Fatalf("error = %v; want AccessDeniedException", err)
		}
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(deniedMessage(longTermARN, "CreateSignalingChannel", denied)) + `[0-9]{13}$`)
		if !re.MatchString(ad.ErrorMessage()) {
			t.Errorf("message = %q; want %s", ad.ErrorMessage(), re)
		}
	case code == "AccessDeniedException":
		wantDenied(t, err, denied)
	default:
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != code {
			t.Errorf("error = %v; want %s", err, code)
		}
	}
}

// checkDenialStats checks that the emulator's statistics, in Go and at
// /_emulator/stats, count the denials.
func checkDenialStats(t *testing.T, e *emulator.Emulator, denials int) {
	t.Helper()
	st := e.Stats()
	if st.AccessDenied != int64(denials) {
		t.Errorf("Stats().AccessDenied = %d; want %d", st.AccessDenied, denials)
	}
	if st.Errors[emulator.OpDeleteSignalingChannel] != 1 || st.Errors[emulator.OpConnectAsMaster] != 1 || st.HandshakesRejected != 2 {
		t.Errorf("errors %v, handshakes rejected %d", st.Errors, st.HandshakesRejected)
	}
	resp, err := http.Get(e.URL() + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var js struct {
		AccessDenied int64 `json:"accessDenied"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&js); err != nil || js.AccessDenied != int64(denials) {
		t.Errorf("/_emulator/stats accessDenied = %d, %v; want %d", js.AccessDenied, err, denials)
	}
}

// TestSessionPolicy: AssumeRole with a session policy allowing only
// ConnectAsViewer on one channel; the credentials can do that and
// nothing else.
func TestSessionPolicy(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	demo := mustCreate(t, e, "demo")
	other := mustCreate(t, e, "other")
	session := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesisvideo:ConnectAsViewer","Resource":"` + demo + `"}]}`
	scoped := assumeWithPolicy(ctx, t, e, "arn:aws:iam::123456789012:role/viewers", "phone-1", session)
	const principal = "arn:aws:sts::123456789012:assumed-role/viewers/phone-1"

	// Allowed: a viewer on demo.
	dial(t, presignAs(t, e, scoped, demo, kvs.Viewer, "phone-1")).ws.Close(websocket.StatusNormalClosure, "")
	// Refused: the master on demo, a viewer on other.
	wantRefused(t, presignAs(t, e, scoped, demo, kvs.Master, ""), deniedMessage(principal, "ConnectAsMaster", demo))
	wantRefused(t, presignAs(t, e, scoped, other, kvs.Viewer, "phone-1"), deniedMessage(principal, "ConnectAsViewer", other))
	// Refused: the control plane and GetIceServerConfig.
	_, err := sdkClient(e, scoped).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(demo)})
	wantDenied(t, err, deniedMessage(principal, "DescribeSignalingChannel", demo))
	_, err = sdkClient(e, scoped).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	wantDenied(t, err, deniedMessage(principal, "ListSignalingChannels", "*"))
	if status, _, body := iceWith(t, e, scoped, endpoint(t, e, demo, kvs.Viewer, "HTTPS"), demo); status != 403 || body["Message"] != deniedMessage(principal, "GetIceServerConfig", demo) {
		t.Errorf("GetIceServerConfig with the scoped credentials = %d %v; want 403", status, body)
	}
	if n := e.Stats().AccessDenied; n != 5 {
		t.Errorf("Stats().AccessDenied = %d; want 5", n)
	}

	// STS is not checked; GetCallerIdentity names the session.
	who, err := stsClient(e, scoped).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != principal {
		t.Errorf("GetCallerIdentity = %+v, %v", who, err)
	}
	// The scoped session may not shed its policy by assuming another
	// role: its session policy does not allow sts:AssumeRole.
	next := "arn:aws:iam::123456789012:role/next"
	_, err = stsClient(e, scoped).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(next), RoleSessionName: aws.String("hop")})
	apiErr(t, err, "AccessDenied", 403)
	if want := "User: " + principal + " is not authorized to perform: sts:AssumeRole on resource: " + next; !strings.Contains(err.Error(), want) {
		t.Errorf("chained AssumeRole error = %v; want %q", err, want)
	}
	if n := e.Stats().AccessDenied; n != 6 {
		t.Errorf("Stats().AccessDenied = %d; want 6", n)
	}

	// A session policy that allows sts:AssumeRole may chain; the chained
	// session starts afresh from the role's (here: no) policy, as in AWS.
	chainable := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + next + `"}]}`
	mayChain := assumeWithPolicy(ctx, t, e, "arn:aws:iam::123456789012:role/viewers", "phone-2", chainable)
	chained, err := stsClient(e, mayChain).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(next), RoleSessionName: aws.String("hop")})
	if err != nil {
		t.Fatalf("chained AssumeRole allowed by the session policy: %v", err)
	}
	hop := stsCredentials(chained.Credentials)
	if _, err := sdkClient(e, hop).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(demo)}); err != nil {
		t.Errorf("DescribeSignalingChannel with chained credentials: %v", err)
	}
}

// TestSessionPolicyWithinIdentityPolicy: a session policy cannot grant
// what the identity policy (the role's stand-in) denies or leaves out.
func TestSessionPolicyWithinIdentityPolicy(t *testing.T) {
	e := start(t, emulator.Config{ConnectRate: -1, Policy: `{"Statement":[
		{"Effect":"Allow","Action":["kinesisvideo:ConnectAsViewer","kinesisvideo:GetSignalingChannelEndpoint"],"Resource":"*"},
		{"Effect":"Deny","Action":"kinesisvideo:ConnectAsViewer","Resource":"arn:aws:kinesisvideo:*:*:channel/other/*"}]}`})
	ctx := ctxT(t)
	demo := mustCreate(t, e, "demo")
	other := mustCreate(t, e, "other")
	c := assumeWithPolicy(ctx, t, e, "arn:aws:iam::123456789012:role/path/cams", "s1",
		`{"Statement":{"Effect":"Allow","Action":["kinesisvideo:Connect*","kinesisvideo:Describe*"],"Resource":"*"}}`)
	const principal = "arn:aws:sts::123456789012:assumed-role/cams/s1"
	dial(t, presignAs(t, e, c, demo, kvs.Viewer, "v1")).ws.Close(websocket.StatusNormalClosure, "")
	wantRefused(t, presignAs(t, e, c, other, kvs.Viewer, "v1"), deniedMessage(principal, "ConnectAsViewer", other))
	wantRefused(t, presignAs(t, e, c, demo, kvs.Master, ""), deniedMessage(principal, "ConnectAsMaster", demo))
	_, err := sdkClient(e, c).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(demo)})
	wantDenied(t, err, deniedMessage(principal, "DescribeSignalingChannel", demo))
}

func TestMalformedSessionPolicy(t *testing.T) {
	e := start(t, emulator.Config{})
	ctx := ctxT(t)
	c := stsClient(e, exampleCreds())
	cases := []struct {
		name, policy string
		code         string
		inMessage    string
	}{
		{"not JSON", `{"Statement":`, "MalformedPolicyDocument", "not valid JSON"},
		{"Condition", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, "MalformedPolicyDocument", "Statement[0].Condition"},
		{"NotAction", `{"Statement":{"Effect":"Allow","NotAction":"kinesisvideo:DeleteSignalingChannel","Resource":"*"}}`, "MalformedPolicyDocument", "Statement.NotAction"},
		{"Principal", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}}`, "MalformedPolicyDocument", "Statement.Principal"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, "MalformedPolicyDocument", "Statement: is an empty list"},
		{"Effect in the wrong case", `{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`, "MalformedPolicyDocument", `Statement.Effect: "allow"`},
		{"empty", ``, "ValidationError", "policy"},
		{"over 2048 characters", `{"Id":"` + strings.Repeat("x", 2048) + `","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, "ValidationError", "2048"},
		{"a character beyond U+00FF", `{"Id":"€","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, "ValidationError", "regular expression"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1"), Policy: aws.String(tc.policy)})
			apiErr(t, err, tc.code, 400)
			if tc.code == "MalformedPolicyDocument" {
				var mp *ststypes.MalformedPolicyDocumentException
				if !errors.As(err, &mp) {
					t.Errorf("error %v is not the SDK's typed MalformedPolicyDocumentException", err)
				}
			}
			var api smithy.APIError
			errors.As(err, &api)
			if !strings.Contains(api.ErrorMessage(), tc.inMessage) {
				t.Errorf("message %q does not name %q", api.ErrorMessage(), tc.inMessage)
			}
		})
	}
	// A policy with characters up to U+00FF is fine.
	if _, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1"),
		Policy: aws.String("{\"Id\":\"café\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}")}); err != nil {
		t.Errorf("AssumeRole with a Latin-1 policy: %v", err)
	}
}

// TestNoPolicyAllowsEverything: without Config.Policy and without a
// session policy, every operation is allowed to every kind of credentials.
func TestNoPolicyAllowsEverything(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	gst, err := stsClient(e, exampleCreds()).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	role, err := stsClient(e, exampleCreds()).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s1")})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]sigv4.Credentials{
		"long-term":       exampleCreds(),
		"GetSessionToken": stsCredentials(gst.Credentials),
		"AssumeRole":      stsCredentials(role.Credentials),
	} {
		t.Run(name, func(t *testing.T) {
			kv := sdkClient(e, c)
			created, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("ch-" + strings.ToLower(name))})
			if err != nil {
				t.Fatalf("CreateSignalingChannel: %v", err)
			}
			arn := aws.ToString(created.ChannelARN)
			if _, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: created.ChannelARN}); err != nil {
				t.Errorf("DescribeSignalingChannel: %v", err)
			}
			if _, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
				t.Errorf("ListSignalingChannels: %v", err)
			}
			if status, _, body := iceWith(t, e, c, endpoint(t, e, arn, kvs.Viewer, "HTTPS"), arn); status != 200 {
				t.Errorf("GetIceServerConfig: %d %v", status, body)
			}
			dial(t, presignAs(t, e, c, arn, kvs.Master, "")).ws.Close(websocket.StatusNormalClosure, "")
			dial(t, presignAs(t, e, c, arn, kvs.Viewer, "v1")).ws.Close(websocket.StatusNormalClosure, "")
			if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: created.ChannelARN}); err != nil {
				t.Errorf("DeleteSignalingChannel: %v", err)
			}
		})
	}
	if n := e.Stats().AccessDenied; n != 0 {
		t.Errorf("Stats().AccessDenied = %d; want 0", n)
	}
}

// TestDeniedBeforeLookupAndSideEffects: a caller without the permission
// gets 403 for a channel ARN that does not exist (not 404, which would
// tell it the channel is not there), and a refused handshake changes
// nothing: the connected master stays, and no connection is counted.
func TestDeniedBeforeLookupAndSideEffects(t *testing.T) {
	e := start(t, emulator.Config{ConnectRate: -1, Policy: `{"Statement":[
		{"Effect":"Allow","Action":["kinesisvideo:ConnectAs*","kinesisvideo:GetSignalingChannelEndpoint"],"Resource":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/*"}]}`})
	ctx := ctxT(t)
	demo := mustCreate(t, e, "demo")
	const ghost = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/ghost/1700000000000"
	const user = "arn:aws:iam::123456789012:user/emulator"
	kv := sdkClient(e, exampleCreds())

	_, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(ghost)})
	wantDenied(t, err, deniedMessage(user, "DescribeSignalingChannel", ghost))
	_, err = kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(ghost)})
	wantDenied(t, err, deniedMessage(user, "GetSignalingChannelEndpoint", ghost))
	_, err = kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(ghost)})
	wantDenied(t, err, deniedMessage(user, "DeleteSignalingChannel", ghost))

	// A master is connected; credentials scoped to viewing try to take
	// its place.
	master := dial(t, presignAs(t, e, exampleCreds(), demo, kvs.Master, ""))
	waitFor(t, "the master to be counted", func() bool { return e.Stats().Connections.Master == 1 })
	scoped := assumeWithPolicy(ctx, t, e, "arn:aws:iam::123456789012:role/viewers", "phone-1",
		`{"Statement":[{"Effect":"Allow","Action":"kinesisvideo:ConnectAsViewer","Resource":"*"}]}`)
	before := e.Stats()
	wantRefused(t, presignAs(t, e, scoped, demo, kvs.Master, ""),
		deniedMessage("arn:aws:sts::123456789012:assumed-role/viewers/phone-1", "ConnectAsMaster", demo))
	after := e.Stats()
	if after.Connections != before.Connections || after.HandshakesAccepted != before.HandshakesAccepted {
		t.Errorf("a refused handshake changed the connections: %+v, %d accepted; before %+v, %d",
			after.Connections, after.HandshakesAccepted, before.Connections, before.HandshakesAccepted)
	}
	// The master still gets what a viewer sends.
	viewer := dial(t, presignAs(t, e, scoped, demo, kvs.Viewer, "phone-1"))
	viewer.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer", "sdp": "v=0"})})
	if m := master.recv(); m.SenderClientID != "phone-1" {
		t.Errorf("master received %+v; want the viewer's offer", m)
	}
}
