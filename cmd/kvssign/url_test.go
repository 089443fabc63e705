package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
)

// dial connects with a signed URL and fails the test if the handshake is
// refused.
func dial(t *testing.T, signedURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, signedURL, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connecting with %s: HTTP %d: %v", redactedURL(signedURL), status, scrub(err))
	}
	c.Close(websocket.StatusNormalClosure, "")
}

func TestURLResolvesThroughTheControlPlane(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1})
	arn := v.channel(t, "cam")
	ep := "--endpoint-url=" + v.url
	for _, role := range []string{"master", "viewer"} {
		r := cli(t, nil, "url", "--channel", "cam", "--role", role, ep)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("url --role %s: %v", role, r)
		}
		dial(t, strings.TrimSpace(r.stdout))
	}
	s := signed(t, "--channel-arn", arn, "--role", "viewer", "--client-id", "viewer-7", ep)
	if s.ChannelARN != arn || s.ClientID != "viewer-7" || !strings.Contains(s.Endpoint, "/signaling/viewer/") {
		t.Errorf("url --output json = %+v", s)
	}
	dial(t, s.URL)

	// With no region configured, an ARN's region is used.
	t.Setenv("AWS_REGION", "")
	dial(t, signed(t, "--channel-arn", arn, "--role", "master", ep).URL)
	if r := cli(t, nil, "url", "--channel", "cam", "--role", "master", ep); r.code != 2 || !strings.Contains(r.stderr, "no region") {
		t.Errorf("url by name with no region: %v; want exit 2", r)
	}
}

func TestURLWithProfile(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	c := v.e.Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_REGION", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	os.WriteFile(cfg, []byte("[profile cams]\nregion = "+v.region+"\n"), 0o600)
	os.WriteFile(creds, []byte("[cams]\naws_access_key_id = "+c.AccessKeyID+"\naws_secret_access_key = "+c.SecretAccessKey+"\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)

	s := signed(t, "--profile", "cams", "--channel", "cam", "--role", "master", "--endpoint-url", v.url)
	dial(t, s.URL)
	t.Setenv("AWS_PROFILE", "cams")
	dial(t, signed(t, "--channel", "cam", "--role", "viewer", "--endpoint-url", v.url).URL)

	if r := cli(t, nil, "url", "--profile", "nope", "--channel", "cam", "--role", "master", "--endpoint-url", v.url); r.code != 2 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("url --profile nope: %v; want exit 2 naming the profile", r)
	}
}

func TestURLWithAssumedRole(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	s := signed(t, "--role-arn", "arn:aws:iam::123456789012:role/kvs-viewer", "--external-id", "abc", "--role-session-name", "test",
		"--channel", "cam", "--role", "viewer", "--endpoint-url", v.url)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if !strings.HasPrefix(q.Get("X-Amz-Credential"), "ASIA") || q.Get("X-Amz-Security-Token") == "" {
		t.Errorf("URL signed with %s and a token %t; want the role's temporary credentials", q.Get("X-Amz-Credential")[:4], q.Has("X-Amz-Security-Token"))
	}
	dial(t, s.URL)
	if n := v.e.Stats().Calls[emulator.OpAssumeRole]; n != 1 {
		t.Errorf("%d AssumeRole calls; want 1", n)
	}
	if r := cli(t, nil, "url", "--role-arn", "not-an-arn", "--channel", "cam", "--role", "viewer", "--endpoint-url", v.url); r.code != 2 || !strings.Contains(r.stderr, "must look like arn:aws:iam::") {
		t.Errorf("url --role-arn not-an-arn: %v", r)
	}
}

func TestURLResolveErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown channel", []string{"--channel", "nope", "--role", "master"}, 1, "does not exist"},
		{"no role", []string{"--channel", "cam"}, 2, "--role is required"},
		{"no channel", []string{"--role", "master"}, 2, "--channel NAME or --channel-arn ARN is required"},
		{"bad name", []string{"--channel", "a/b", "--role", "master"}, 2, "must contain only"},
		{"endpoint with a name", []string{"--channel", "cam", "--endpoint", "wss://m-1.kinesisvideo.us-west-2.amazonaws.com", "--role", "master"}, 2, "needs the channel's ARN"},
		{"throttled", []string{"--channel", "cam", "--role", "master", "--timeout", "1s"}, 1, "throttled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "throttled" {
				v.e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle, Operations: []string{emulator.OpDescribeSignalingChannel}})
				defer v.e.SetFaults(emulator.Faults{})
			}
			r := cli(t, nil, append([]string{"url", "--endpoint-url", v.url}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v; want exit %d mentioning %q", r, tc.code, tc.want)
			}
		})
	}
	if n := v.e.Stats().Calls[emulator.OpDescribeSignalingChannel]; n != 1+int64(4) {
		t.Errorf("%d Describe calls; want 5 (one for the unknown channel, four throttled attempts)", n)
	}
}
