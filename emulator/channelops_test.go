package emulator_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

func sdkTags(kv ...string) []kvtypes.Tag {
	var out []kvtypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, kvtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func TestTagAPI(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	created, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName: aws.String("tagged"), Tags: sdkTags("team", "video", "env", "dev"),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := created.ChannelARN
	list := func() map[string]string {
		t.Helper()
		out, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		if out.NextToken != nil {
			t.Errorf("NextToken = %q; want none", *out.NextToken)
		}
		return out.Tags
	}
	if diff := cmp.Diff(map[string]string{"team": "video", "env": "dev"}, list()); diff != "" {
		t.Errorf("tags after create (-want +got):\n%s", diff)
	}
	if _, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: sdkTags("env", "prod", "owner", "ana")}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"team": "video", "env": "prod", "owner": "ana"}, list()); diff != "" {
		t.Errorf("tags after TagResource (-want +got):\n%s", diff)
	}
	if _, err := c.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: arn, TagKeyList: []string{"team", "absent"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"env": "prod", "owner": "ana"}, list()); diff != "" {
		t.Errorf("tags after UntagResource (-want +got):\n%s", diff)
	}

	var many []string
	for i := range 49 {
		many = append(many, "k"+string(rune('A'+i/26))+string(rune('a'+i%26)), "v")
	}
	missing := "arn:aws:kinesisvideo:us-west-2:123456789012:channel/nope/1"
	tests := []struct {
		name string
		call func() error
		want error
		msg  string
	}{
		{"over 50 tags in all", func() error {
			_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: sdkTags(many...)})
			return err
		}, &kvtypes.TagsPerResourceExceededLimitException{}, "at most 50"},
		{"tag: no tags", func() error {
			_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: []kvtypes.Tag{}})
			return err
		}, &kvtypes.InvalidArgumentException{}, "'tags'"},
		{"tag: bad key", func() error {
			_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: sdkTags("a|b", "v")})
			return err
		}, &kvtypes.InvalidArgumentException{}, "tags.1.member.key"},
		{"tag: no channel", func() error {
			_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String(missing), Tags: sdkTags("a", "b")})
			return err
		}, &kvtypes.ResourceNotFoundException{}, "not found"},
		{"tag: bad ARN", func() error {
			_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String("arn:nope"), Tags: sdkTags("a", "b")})
			return err
		}, &kvtypes.InvalidArgumentException{}, "resourceARN"},
		{"untag: no keys", func() error {
			_, err := c.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: arn, TagKeyList: []string{}})
			return err
		}, &kvtypes.InvalidArgumentException{}, "tagKeyList"},
		{"untag: no channel", func() error {
			_, err := c.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: aws.String(missing), TagKeyList: []string{"a"}})
			return err
		}, &kvtypes.ResourceNotFoundException{}, "not found"},
		{"list: no channel", func() error {
			_, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: aws.String(missing)})
			return err
		}, &kvtypes.ResourceNotFoundException{}, "not found"},
		{"list: a token never issued", func() error {
			_, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn, NextToken: aws.String("abc")})
			return err
		}, &kvtypes.InvalidArgumentException{}, "nextToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkTyped(t, tt.call(), tt.want, tt.msg) })
	}
}

// checkTyped checks that err is of want's type and mentions msg.
func checkTyped(t *testing.T, err error, want error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %T", want)
	}
	ok := false
	switch want.(type) {
	case *kvtypes.TagsPerResourceExceededLimitException:
		var x *kvtypes.TagsPerResourceExceededLimitException
		ok = errors.As(err, &x)
	case *kvtypes.InvalidArgumentException:
		var x *kvtypes.InvalidArgumentException
		ok = errors.As(err, &x)
	case *kvtypes.ResourceNotFoundException:
		var x *kvtypes.ResourceNotFoundException
		ok = errors.As(err, &x)
	case *kvtypes.VersionMismatchException:
		var x *kvtypes.VersionMismatchException
		ok = errors.As(err, &x)
	case *kvtypes.AccessDeniedException:
		var x *kvtypes.AccessDeniedException
		ok = errors.As(err, &x)
	case *kvtypes.ClientLimitExceededException:
		var x *kvtypes.ClientLimitExceededException
		ok = errors.As(err, &x)
	}
	if !ok {
		t.Fatalf("error %v (%T); want %T", err, err, want)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not mention %q", err, msg)
	}
}

func TestUpdateSignalingChannel(t *testing.T) {
	e := start(t, fastConfig())
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	arn := mustCreate(t, e, "upd")
	describe := func() *kvtypes.ChannelInfo {
		t.Helper()
		out, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeSignalingChannel: %v", err)
		}
		return out.ChannelInfo
	}
	before := describe()
	update := func(version string, ttl int32) error {
		_, err := c.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{
			ChannelARN: aws.String(arn), CurrentVersion: aws.String(version),
			SingleMasterConfiguration: &kvtypes.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(ttl)},
		})
		return err
	}
	if err := update(*before.Version, 17); err != nil {
		t.Fatalf("UpdateSignalingChannel: %v", err)
	}
	after := describe()
	if got := *after.SingleMasterConfiguration.MessageTtlSeconds; got != 17 {
		t.Errorf("MessageTtlSeconds = %d; want 17", got)
	}
	if *after.Version == *before.Version {
		t.Errorf("Version %s did not change", *after.Version)
	}
	tests := []struct {
		name string
		err  error
		want error
		msg  string
	}{
		{"stale version", update(*before.Version, 30), &kvtypes.VersionMismatchException{}, *before.Version},
		{"TTL too small", update(*after.Version, 4), &kvtypes.InvalidArgumentException{}, "singleMasterConfiguration.messageTtlSeconds"},
		{"TTL too large", update(*after.Version, 121), &kvtypes.InvalidArgumentException{}, "less than or equal to 120"},
		{"bad version", update("no-dashes", 30), &kvtypes.InvalidArgumentException{}, "currentVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkTyped(t, tt.err, tt.want, tt.msg) })
	}
	_, err := c.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{
		ChannelARN: aws.String("arn:aws:kinesisvideo:us-west-2:123456789012:channel/nope/1"), CurrentVersion: aws.String("abc"),
	})
	checkTyped(t, err, &kvtypes.ResourceNotFoundException{}, "not found")
	if got := *describe().SingleMasterConfiguration.MessageTtlSeconds; got != 17 {
		t.Errorf("MessageTtlSeconds after failed updates = %d; want 17", got)
	}
}

func TestChannelOpsPolicy(t *testing.T) {
	policy := `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": ["kinesisvideo:ListTagsForResource", "kinesisvideo:Describe*", "kinesisvideo:GetSignalingChannelEndpoint"], "Resource": "*"}]}`
	e := start(t, emulator.Config{Policy: policy})
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	arn := mustCreate(t, e, "guarded")
	if _, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: aws.String(arn)}); err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	_, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String(arn), Tags: sdkTags("a", "b")})
	checkTyped(t, err, &kvtypes.AccessDeniedException{}, "kinesisvideo:TagResource on resource: "+arn)
	_, err = c.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: aws.String(arn), TagKeyList: []string{"a"}})
	checkTyped(t, err, &kvtypes.AccessDeniedException{}, "kinesisvideo:UntagResource")
	_, err = c.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{ChannelARN: aws.String(arn), CurrentVersion: aws.String("abc")})
	checkTyped(t, err, &kvtypes.AccessDeniedException{}, "kinesisvideo:UpdateSignalingChannel")
	if status, out := alexaOffer(t, e, arn, "alexa", "eyJ9"); status != 403 || out["Message"] == nil ||
		!strings.Contains(*out["Message"], "kinesisvideo:SendAlexaOfferToMaster") {
		t.Errorf("SendAlexaOfferToMaster without the permission: %d %v; want 403 naming the action", status, out)
	}
	st := e.Stats()
	if st.AccessDenied != 4 || st.Errors[emulator.OpTagResource] != 1 || st.Calls[emulator.OpListTagsForResource] != 1 {
		t.Errorf("stats: denied %d, TagResource errors %d, ListTagsForResource calls %d; want 4, 1, 1",
			st.AccessDenied, st.Errors[emulator.OpTagResource], st.Calls[emulator.OpListTagsForResource])
	}
}

// alexaOffer calls SendAlexaOfferToMaster at the channel's HTTPS endpoint
// with one signed POST, and returns the status and decoded body.
func alexaOffer(t *testing.T, e *emulator.Emulator, arn, sender, offer string) (int, map[string]*string) {
	t.Helper()
	ep := endpoint(t, e, arn, kvs.Viewer, kvtypes.ChannelProtocolHttps)
	body, _ := json.Marshal(map[string]string{"ChannelARN": arn, "SenderClientId": sender, "MessagePayload": offer})
	resp, b := rawCall(t, e, strings.TrimPrefix(ep, e.URL())+"/v1/send-alexa-offer-to-master", string(body))
	var out map[string]*string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return resp.StatusCode, out
}

func TestSendAlexaOfferToMaster(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "doorbell")
	offer := payload(t, map[string]string{"type": "offer", "sdp": "v=0"})
	answer := payload(t, map[string]string{"type": "answer", "sdp": "v=0"})

	t.Run("no master", func(t *testing.T) {
		status, out := alexaOffer(t, e, arn, "alexa-1", offer)
		if status != 200 || out["Answer"] != nil {
			t.Errorf("got %d %v; want 200 with a null Answer", status, out)
		}
		if _, ok := out["Answer"]; !ok {
			t.Errorf("body %v has no Answer member; KVS sends it as null", out)
		}
	})
	master := connectMaster(t, e, arn)
	t.Run("answered", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			m, err := master.tryRecv(5 * time.Second)
			if err != nil || m.MessageType != kvs.ActionSDPOffer || m.SenderClientID != "alexa-2" || m.MessagePayload != offer {
				t.Errorf("master got %+v, %v; want the offer from alexa-2", m, err)
				return
			}
			b, _ := json.Marshal(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "alexa-2", MessagePayload: answer})
			master.ws.Write(ctxT(t), 1, b)
		}()
		status, out := alexaOffer(t, e, arn, "alexa-2", offer)
		<-done
		if status != 200 || out["Answer"] == nil || *out["Answer"] != answer {
			t.Errorf("got %d %v; want 200 with the master's answer", status, out)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		status, out := alexaOffer(t, e, arn, "", offer)
		if status != 400 || out["Message"] == nil || !strings.Contains(*out["Message"], "senderClientId") {
			t.Errorf("got %d %v; want 400 naming senderClientId", status, out)
		}
		status, out = alexaOffer(t, e, arn, "alexa-3", "not base64!")
		if status != 400 || out["Message"] == nil || !strings.Contains(*out["Message"], "messagePayload") {
			t.Errorf("got %d %v; want 400 naming messagePayload", status, out)
		}
	})
	t.Run("sender id of a connected viewer", func(t *testing.T) {
		// Taking the id over would hand this caller the answer the master
		// sends that viewer.
		connectViewer(t, e, arn, "viewer-1")
		status, out := alexaOffer(t, e, arn, "viewer-1", offer)
		if status != 400 || out["Message"] == nil || !strings.Contains(*out["Message"], "in use") {
			t.Errorf("got %d %v; want 400 saying the id is in use", status, out)
		}
	})
	t.Run("master silent", func(t *testing.T) {
		cfg := fastConfig()
		cfg.AlexaAnswerTimeout = 50 * time.Millisecond
		e := start(t, cfg)
		arn := mustCreate(t, e, "doorbell")
		connectMaster(t, e, arn)
		status, out := alexaOffer(t, e, arn, "alexa-4", offer)
		if status != 200 || out["Answer"] != nil {
			t.Errorf("got %d %v; want 200 with a null Answer", status, out)
		}
	})
	t.Run("answer wait longer than the request deadline", func(t *testing.T) {
		cfg := fastConfig()
		cfg.AlexaAnswerTimeout = 400 * time.Millisecond
		e := start(t, cfg)
		emulator.SetRequestTimeout(e, 100*time.Millisecond)
		arn := mustCreate(t, e, "doorbell")
		connectMaster(t, e, arn)
		status, out := alexaOffer(t, e, arn, "alexa-5", offer)
		if status != 200 || out["Answer"] != nil {
			t.Errorf("got %d %v; want 200 with a null Answer after the wait", status, out)
		}
	})
	if st := e.Stats(); st.Calls[emulator.OpSendAlexaOfferToMaster] != 5 || st.Errors[emulator.OpSendAlexaOfferToMaster] != 3 {
		t.Errorf("stats: calls %d, errors %d; want 5, 3", st.Calls[emulator.OpSendAlexaOfferToMaster], st.Errors[emulator.OpSendAlexaOfferToMaster])
	}
}

// cliEnv is an environment for the aws CLI and boto3 that reads no user
// configuration and signs with the emulator's example key.
func cliEnv(e *emulator.Emulator) []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + emulator.ExampleAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + emulator.ExampleSecretAccessKey,
		"AWS_DEFAULT_REGION=" + e.Region(),
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	for _, k := range []string{"PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// runAWSCLI runs "aws kinesisvideo ARGS" against e and returns its JSON
// output, failing the test with the CLI's standard error if it fails.
func runAWSCLI(t *testing.T, e *emulator.Emulator, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"--endpoint-url", e.URL(), "--output", "json", "kinesisvideo"}, args...)...)
	cmd.Env = cliEnv(e)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("aws kinesisvideo %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var m map[string]any
	if len(strings.TrimSpace(string(out))) > 0 {
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("aws kinesisvideo %s: output %q: %v", args[0], out, err)
		}
	}
	return m
}

// TestAWSCLIChannelOps runs the aws CLI's tag-resource, untag-resource,
// list-tags-for-resource and update-signaling-channel against the
// emulator.
func TestAWSCLIChannelOps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the aws CLI is not on PATH (Debian: apt-get install awscli); skipping the CLI check")
	}
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "cli-channel")
	awsCLI := func(args ...string) map[string]any { t.Helper(); return runAWSCLI(t, e, args...) }
	awsCLI("tag-resource", "--resource-arn", arn, "--tags", "Key=team,Value=video", "Key=env,Value=dev")
	awsCLI("untag-resource", "--resource-arn", arn, "--tag-key-list", "env")
	got := awsCLI("list-tags-for-resource", "--resource-arn", arn)
	if diff := cmp.Diff(map[string]any{"Tags": map[string]any{"team": "video"}}, got); diff != "" {
		t.Errorf("list-tags-for-resource (-want +got):\n%s", diff)
	}
	// The SDK describes, so that only the operations under test pay for
	// the CLI's start-up.
	describe := func() *kvtypes.ChannelInfo {
		out, err := sdkClient(e, exampleCreds()).DescribeSignalingChannel(ctxT(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return out.ChannelInfo
	}
	awsCLI("update-signaling-channel", "--channel-arn", arn, "--current-version", *describe().Version,
		"--single-master-configuration", "MessageTtlSeconds=42")
	if ttl := *describe().SingleMasterConfiguration.MessageTtlSeconds; ttl != 42 {
		t.Errorf("MessageTtlSeconds after update-signaling-channel = %d; want 42", ttl)
	}
}

const boto3Script = `
import json, sys, boto3, botocore.exceptions
c = boto3.client("kinesisvideo", endpoint_url=sys.argv[1])
arn = sys.argv[2]
c.tag_resource(ResourceARN=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
c.untag_resource(ResourceARN=arn, TagKeyList=["b"])
tags = c.list_tags_for_resource(ResourceARN=arn)["Tags"]
v = c.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
c.update_signaling_channel(ChannelARN=arn, CurrentVersion=v, SingleMasterConfiguration={"MessageTtlSeconds": 9})
try:
    c.update_signaling_channel(ChannelARN=arn, CurrentVersion=v, SingleMasterConfiguration={"MessageTtlSeconds": 10})
    mismatch = "none"
except c.exceptions.VersionMismatchException:
    mismatch = "VersionMismatchException"
ttl = c.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["SingleMasterConfiguration"]["MessageTtlSeconds"]
print(json.dumps({"tags": tags, "ttl": ttl, "mismatch": mismatch}))
`

// TestBoto3ChannelOps runs the same operations through boto3.
func TestBoto3ChannelOps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH; skipping the boto3 check")
	}
	e := start(t, fastConfig())
	probe := exec.Command("python3", "-c", "import boto3")
	probe.Env = cliEnv(e)
	if err := probe.Run(); err != nil {
		t.Skip("boto3 is not importable (Debian: apt-get install python3-boto3); skipping the boto3 check")
	}
	arn := mustCreate(t, e, "boto-channel")
	cmd := exec.Command("python3", "-c", boto3Script, e.URL(), arn)
	cmd.Env = cliEnv(e)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 output %q: %v", out, err)
	}
	want := map[string]any{"tags": map[string]any{"a": "1"}, "ttl": 9.0, "mismatch": "VersionMismatchException"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("boto3 (-want +got):\n%s", diff)
	}
}
