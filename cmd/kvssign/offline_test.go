package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const (
	exampleKey    = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleToken  = "IQoJb3JpZ2luX2VjE+/example=="
	exampleARN    = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000"
	exampleWSS    = "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func setExampleCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", exampleKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", exampleSecret)
	t.Setenv("AWS_SESSION_TOKEN", exampleToken)
}

func TestURLOffline(t *testing.T) {
	setExampleCredentials(t)
	code, out, errOut := runCLI(t, "url", "--endpoint", exampleWSS, "--channel-arn", exampleARN, "--role", "master",
		"--signing-time", "2026-11-23T10:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("text output is %d lines; want the URL alone:\n%s", len(lines), out)
	}
	u, err := url.Parse(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("X-Amz-ChannelARN") != exampleARN || q.Get("X-Amz-Security-Token") != exampleToken || q.Has("X-Amz-ClientId") ||
		q.Get("X-Amz-Date") != "20261123T100000Z" || q.Get("X-Amz-Expires") != "299" {
		t.Errorf("URL query %v", q)
	}

	code, out, errOut = runCLI(t, "url", "--endpoint", exampleWSS, "--channel-arn", exampleARN, "--role", "viewer",
		"--output", "json", "--signing-time", "2026-11-23T10:00:00Z", "--clock-offset", "-30s", "--expires", "60s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j struct {
		URL, Role, ChannelArn, ClientID, ExpiresAt string
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if j.Role != "VIEWER" || j.ChannelArn != exampleARN || !strings.HasPrefix(j.ClientID, "viewer-") ||
		j.ExpiresAt != "2026-11-23T10:00:30Z" || !strings.Contains(j.URL, "X-Amz-ClientId="+j.ClientID) ||
		!strings.Contains(j.URL, "X-Amz-Date=20261123T095930Z") {
		t.Errorf("json output %+v", j)
	}
}

func TestURLOfflineErrors(t *testing.T) {
	setExampleCredentials(t)
	base := []string{"url", "--endpoint", exampleWSS, "--channel-arn", exampleARN}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad role", append(base, "--role", "boss"), `--role "boss": must be master or viewer`},
		{"bad client id", append(base, "--role", "viewer", "--client-id", "AWS_me"), "must not start with AWS_"},
		{"master with client id", append(base, "--role", "master", "--client-id", "me"), "a master connects without a client id"},
		{"expires too long", append(base, "--role", "master", "--expires", "169h"), "from 1s to 168h0m0s"},
		{"region mismatch", append(base, "--role", "master", "--region", "eu-west-1"), "does not match the channel ARN's region"},
		{"bad ARN", []string{"url", "--endpoint", exampleWSS, "--channel-arn", "demo", "--role", "master"}, "channel ARN \"demo\""},
		{"https endpoint", []string{"url", "--endpoint", "https://x", "--channel-arn", exampleARN, "--role", "master"}, "scheme must be wss"},
		{"bad signing time", append(base, "--role", "master", "--signing-time", "yesterday"), "--signing-time"},
		{"bad output", append(base, "--role", "master", "--output", "xml"), "--output \"xml\""},
		{"unknown flag", append(base, "--rol", "master"), "unknown flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d; want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q; want nothing", out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("stderr %q; want it to mention %q", errOut, c.want)
			}
			for _, secret := range []string{exampleSecret, exampleToken} {
				if strings.Contains(errOut, secret) {
					t.Errorf("stderr leaks a secret: %s", errOut)
				}
			}
		})
	}
}

func TestURLNoCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	code, _, errOut := runCLI(t, "url", "--endpoint", exampleWSS, "--channel-arn", exampleARN, "--role", "master")
	if code == 0 || !strings.Contains(errOut, "AWS_ACCESS_KEY_ID") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestPresignCommand(t *testing.T) {
	setExampleCredentials(t)
	code, out, errOut := runCLI(t, "presign", "--service", "execute-api", "--region", "us-east-1",
		"--signing-time", "2026-11-23T10:00:00Z", "wss://abc123.execute-api.us-east-1.amazonaws.com/prod?room=a%20b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"wss://abc123.execute-api.us-east-1.amazonaws.com/prod?", "room=a%20b", "X-Amz-Expires=900",
		"%2Fus-east-1%2Fexecute-api%2Faws4_request", "X-Amz-Signature="} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	code, _, errOut = runCLI(t, "presign", "--service", "execute-api", "--region", "us-east-1",
		"wss://abc123.execute-api.us-east-1.amazonaws.com/prod?X-Amz-Signature=00")
	if code != 2 || !strings.Contains(errOut, `"X-Amz-Signature": is set by the signer`) {
		t.Errorf("re-signing a signed URL: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "presign", "--region", "us-east-1", "wss://a/")
	if code != 2 || !strings.Contains(errOut, "--service is required") {
		t.Errorf("no service: exit %d, %s", code, errOut)
	}
}
