package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// TestMain keeps the tests on loopback: no DNS (so no AWS host name is
// ever reached by mistake), no EC2 instance metadata, no shared config or
// credentials from the machine.
func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("tests resolve no names: use 127.0.0.1")
	}}
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	for _, k := range awsEnv {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// awsEnv are the variables a test may set, cleared before each test.
var awsEnv = []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}

// result is what one run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs kvssign in-process with args and returns its exit code and
// output. stdin may be nil.
func cli(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cliCtx(ctx, t, stdin, args...)
}

func cliCtx(ctx context.Context, t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut syncBuffer
	code := run(ctx, args, stdin, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// env is a test's AWS environment.
type env struct {
	e      *emulator.Emulator
	url    string
	region string
}

// newEnv starts an emulator and points the AWS variables at its
// credentials and region; commands still need --endpoint-url e.url.
func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	e := emulatortest.New(t, cfg)
	c := e.Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	t.Setenv("AWS_REGION", e.Region())
	return &env{e: e, url: e.URL(), region: e.Region()}
}

// channel creates a channel directly in the emulator and returns its ARN.
func (v *env) channel(t *testing.T, name string) string {
	t.Helper()
	arn, err := v.e.CreateChannel(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func TestRedactCLIText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"wss://h/?X-Amz-ChannelARN=arn%3Aa&X-Amz-Credential=AKID%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Security-Token=IQo%2Babc%3D&X-Amz-Signature=0123abcd",
			"wss://h/?X-Amz-ChannelARN=arn%3Aa&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"},
		{`Get "http://127.0.0.1:1/?x-amz-signature=ab": dial tcp`, `Get "http://127.0.0.1:1/?x-amz-signature=REDACTED": dial tcp`},
		{"AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32),
			"AWS4-HMAC-SHA256 Credential=REDACTED, SignedHeaders=host;x-amz-date, Signature=REDACTED"},
		{"host:example.com\nx-amz-security-token:IQoJb3JpZ2luX2VjE\nx-amz-date:20261123T100000Z",
			"host:example.com\nx-amz-security-token:REDACTED\nx-amz-date:20261123T100000Z"},
		{"(signed: wss://h/?X-Amz-Signature=0123abcd)", "(signed: wss://h/?X-Amz-Signature=REDACTED)"},
		{"nothing secret here", "nothing secret here"},
	}
	for _, tc := range cases {
		if got := sigv4.Redact(tc.in); got != tc.want {
			t.Errorf("sigv4.Redact(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestProfileNamesForCompletion(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	os.WriteFile(cfg, []byte("[default]\nregion=us-west-2\n[profile kvs]\nregion=eu-west-1\n[sso-session corp]\nsso_region=us-east-1\n"), 0o600)
	os.WriteFile(creds, []byte("[kvs]\naws_access_key_id=x\n[ci]\naws_access_key_id=y\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	if diff := cmp.Diff([]string{"default", "kvs", "ci"}, profileNames()); diff != "" {
		t.Errorf("profileNames (-want +got):\n%s", diff)
	}
	r := cli(t, nil, "__complete", "connect", "--profile", "")
	for _, p := range []string{"default", "kvs", "ci"} {
		if !strings.Contains(r.stdout, p+"\n") {
			t.Errorf("completing --profile: %q lacks %s", r.stdout, p)
		}
	}
	r = cli(t, nil, "__complete", "url", "--role", "")
	if !strings.Contains(r.stdout, "master\nviewer\n") {
		t.Errorf("completing --role: %q", r.stdout)
	}
}

func TestCompletionAndVersion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := cli(t, nil, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "kvssign") {
			t.Errorf("completion %s: %v", shell, r)
		}
	}
	r := cli(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "kvssign ") {
		t.Errorf("version: %v", r)
	}
	r = cli(t, nil, "version", "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"go": "go1.`) {
		t.Errorf("version --output json: %v", r)
	}
	if r := cli(t, nil, "version", "--output", "yaml"); r.code != 2 || !strings.Contains(r.stderr, `--output "yaml": must be text or json`) {
		t.Errorf("version --output yaml: %v", r)
	}
}

// TestNoSecretsPrintedWithDebug runs every command with --debug and scans
// what it printed for secret keys, session tokens and signatures. Only the
// stdout of url and presign holds a signed URL: that is their product.
func TestNoSecretsPrintedWithDebug(t *testing.T) {
	v := newEnv(t, emulator.Config{ConnectRate: -1, STSMinDuration: time.Second})
	arn := v.channel(t, "cam")
	ep := "--endpoint-url=" + v.url
	session := v.e.IssueCredentials(time.Hour)
	useSession := func() {
		t.Setenv("AWS_ACCESS_KEY_ID", session.AccessKeyID)
		t.Setenv("AWS_SECRET_ACCESS_KEY", session.SecretAccessKey)
		t.Setenv("AWS_SESSION_TOKEN", session.SessionToken)
	}
	useSession()
	secrets := []string{session.SecretAccessKey, session.SessionToken, v.e.Credentials().SecretAccessKey,
		apiSession.SecretAccessKey, apiSession.SessionToken}
	api := iamAPI(t)
	master := endpointOf(t, v, kvs.Master)

	type run struct {
		args      []string
		stdin     string
		creds     *sigv4.Credentials // nil: the emulator session
		signedOut bool               // stdout is a signed URL
		wantCode  int
		wantTrace bool // canonical request and string to sign shown
	}
	runs := []run{
		{args: []string{"url", "--channel", "cam", "--role", "viewer", ep}, signedOut: true, wantTrace: true},
		{args: []string{"url", "--channel", "cam", "--role", "master", "--output", "json", ep}, signedOut: true, wantTrace: true},
		{args: []string{"url", "--channel-arn", arn, "--endpoint", master, "--role", "master"}, signedOut: true, wantTrace: true},
		{args: []string{"url", "--role-arn", "arn:aws:iam::123456789012:role/r", "--channel", "cam", "--role", "master", ep}, signedOut: true, wantTrace: true},
		{args: []string{"presign", "--service", "kinesisvideo", "--region", v.region, master + "?X-Amz-ChannelARN=" + arn}, signedOut: true, wantTrace: true},
		{args: []string{"connect", "--channel", "cam", "--role", "master", "--once", ep}, wantTrace: true},
		{args: []string{"connect", "--channel", "cam", "--role", "viewer", "--once", "--output", "json", ep}, wantTrace: true},
		{args: []string{"connect", "--channel", "cam", "--role", "viewer", "--once", "--clock-offset", "10m", ep}, wantCode: 1, wantTrace: true},
		{args: []string{"connect", "--channel", "cam", "--role", "viewer", "--once", "--clock-offset", "10m", "--output", "json", ep}, wantCode: 1},
		{args: []string{"connect", "--channel-arn", arn, "--endpoint", "ws://127.0.0.1:1/signaling/master/m-1", "--role", "master", "--once", "--timeout", "1s"}, wantCode: 1},
		{args: []string{"connect", "--channel", "cam", "--role", "viewer", "--duration", "300ms", ep},
			stdin: `{"action":"SDP_OFFER","messagePayload":{"type":"offer","sdp":"x"}}` + "\n"},
		{args: []string{"ice", "--channel", "cam", ep}, wantTrace: true},
		{args: []string{"ice", "--channel", "cam", "--client-id", "v1", "--output", "json", ep}, wantTrace: true},
		{args: []string{"channel", "create", "tmp", ep}},
		{args: []string{"channel", "describe", "tmp", ep}},
		{args: []string{"channel", "list", "--output", "json", ep}},
		{args: []string{"channel", "delete", "tmp", ep}},
		{args: []string{"channel", "describe", "tmp", ep}, wantCode: 1},
		{args: []string{"request", "--service", "execute-api", "--region", "us-east-1", "-d", "hello", api + "/x"}, creds: &apiSession, wantTrace: true},
		{args: []string{"request", "--service", "execute-api", "--region", "us-east-1", "--output", "json", api + "/x"}, creds: &apiSession, wantTrace: true},
		{args: []string{"request", "--service", "execute-api", "--region", "eu-west-1", api + "/x"}, creds: &apiSession, wantCode: 1, wantTrace: true},
		{args: []string{"version"}},
	}
	sigRE := regexp.MustCompile(`[0-9a-f]{64}`)
	for _, rn := range runs {
		name := strings.Join(rn.args[:min(3, len(rn.args))], " ")
		if rn.creds != nil {
			t.Setenv("AWS_ACCESS_KEY_ID", rn.creds.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", rn.creds.SecretAccessKey)
			t.Setenv("AWS_SESSION_TOKEN", rn.creds.SessionToken)
		} else {
			useSession()
		}
		r := cli(t, strings.NewReader(rn.stdin), append(rn.args, "--debug")...)
		if r.code != rn.wantCode {
			t.Errorf("%s: exit %d; want %d\n%v", name, r.code, rn.wantCode, r)
			continue
		}
		if rn.wantTrace && (!strings.Contains(r.stderr, "canonical request:") || !strings.Contains(r.stderr, "string to sign:")) {
			t.Errorf("%s --debug: stderr lacks the canonical request and string to sign:\n%s", name, r.stderr)
		}
		scanned := r.stderr
		if rn.signedOut {
			// Learn the URL's own signature and token (an STS session's
			// too), and make sure stderr holds neither.
			for _, m := range regexp.MustCompile(`X-Amz-(?:Signature|Security-Token)=([^&"\s]+)`).FindAllStringSubmatch(r.stdout, -1) {
				tok, _ := url.QueryUnescape(m[1])
				if strings.Contains(r.stderr, m[1]) || strings.Contains(r.stderr, tok) {
					t.Errorf("%s: stderr holds the URL's signature or token", name)
				}
			}
		} else {
			scanned += r.stdout
		}
		for _, s := range secrets {
			for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
				if strings.Contains(scanned, form) {
					t.Errorf("%s --debug printed a secret (%.6s…):\n%s", name, form, scanned)
				}
			}
		}
		for _, sig := range sigRE.FindAllString(scanned, -1) {
			// Hashes of canonical requests and payloads are fine; a
			// signature never follows "Signature=".
			if strings.Contains(scanned, "Signature="+sig) || strings.Contains(strings.ToLower(scanned), "x-amz-signature="+sig) {
				t.Errorf("%s --debug printed a signature", name)
			}
		}
	}
}
