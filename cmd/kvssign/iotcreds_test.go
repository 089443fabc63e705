package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/emulator"
)

// The C SDK's variables never come from the machine running the tests.
func init() {
	for _, s := range iotSettings {
		os.Unsetenv(s.env)
	}
}

// camPolicy lets a camera look channels up and connect as master only to
// the channel named after its thing.
const camPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["kinesisvideo:DescribeSignalingChannel","kinesisvideo:GetSignalingChannelEndpoint","kinesisvideo:GetIceServerConfig"],
  "Resource":"arn:aws:kinesisvideo:*:*:channel/*"},
 {"Effect":"Allow","Action":"kinesisvideo:ConnectAsMaster",
  "Resource":"arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*"}]}`

// iotEnv starts an emulator with things cam-1 and cam-2 under camPolicy
// and sets the C SDK's variables for cam-1, as a device script would.
func iotEnv(t *testing.T) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	v := newEnv(t, emulator.Config{ConnectRate: -1, Policy: camPolicy, IoT: &emulator.IoTConfig{Dir: dir, Things: []string{"cam-1", "cam-2"},
		RoleAliases: []emulator.IoTRoleAlias{{Name: "kvs-camera", RoleARN: "arn:aws:iam::123456789012:role/kvs-camera"}}}})
	v.channel(t, "cam-1")
	v.channel(t, "cam-2")
	for k, val := range map[string]string{
		"AWS_IOT_CORE_CREDENTIAL_ENDPOINT": strings.TrimPrefix(v.e.IoTURL(), "https://"),
		"AWS_IOT_CORE_CERT":                filepath.Join(dir, "cam-1.cert.pem"),
		"AWS_IOT_CORE_PRIVATE_KEY":         filepath.Join(dir, "cam-1.private.key"),
		"AWS_IOT_CORE_ROLE_ALIAS":          "kvs-camera",
		"AWS_IOT_CORE_THING_NAME":          "cam-1",
		"AWS_KVS_CACERT_PATH":              filepath.Join(dir, "ca.pem"),
	} {
		t.Setenv(k, val)
	}
	// No other credentials: the device has only its certificate.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	return v, dir
}

func TestConnectWithIoTCertificate(t *testing.T) {
	v, dir := iotEnv(t)
	ep := "--endpoint-url=" + v.url

	r := cli(t, nil, "connect", "--channel", "cam-1", "--role", "master", "--once", ep)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "connected as MASTER to ") {
		t.Errorf("cam-1 connecting to its channel: %v", r)
	}
	r = cli(t, nil, "connect", "--channel", "cam-2", "--role", "master", "--once", "--output", "json", ep)
	var got failureJSON
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Status != 403 || got.Cause != diagnose.CausePermission ||
		!strings.Contains(got.Fix, "kinesisvideo:ConnectAsMaster") {
		t.Errorf("cam-1 connecting to cam-2: %v; want 403 diagnosed as %s", r, diagnose.CausePermission)
	}
	r = cli(t, nil, "connect", "--channel", "cam-2", "--role", "master", "--once", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "likely cause: access denied") || !strings.Contains(r.stderr, "kinesisvideo:ConnectAsMaster") {
		t.Errorf("cam-1 connecting to cam-2 (text): %v", r)
	}

	// Flags override the variables: cam-2's certificate and thing.
	r = cli(t, nil, "connect", "--channel", "cam-2", "--role", "master", "--once", ep,
		"--iot-cert", filepath.Join(dir, "cam-2.cert.pem"), "--iot-key", filepath.Join(dir, "cam-2.private.key"), "--iot-thing-name", "cam-2")
	if r.code != 0 {
		t.Errorf("cam-2 by flags connecting to its channel: %v", r)
	}
	// Offline signing with the channel's ARN and endpoint works too.
	if r := cli(t, nil, "url", "--channel", "cam-1", "--role", "master", ep); r.code != 0 || !strings.Contains(r.stdout, "X-Amz-Security-Token=") {
		t.Errorf("url with IoT credentials: %v", r)
	}
}

func TestIoTCredentialErrors(t *testing.T) {
	v, dir := iotEnv(t)
	ep := "--endpoint-url=" + v.url
	connect := []string{"connect", "--channel", "cam-1", "--role", "master", "--once", ep}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		code  int
		wants []string
	}{
		{"certificate without key", map[string]string{"AWS_IOT_CORE_PRIVATE_KEY": ""}, nil, 2,
			[]string{"--iot-key (or $AWS_IOT_CORE_PRIVATE_KEY) is required with IoT credentials"}},
		{"key without role alias", map[string]string{"AWS_IOT_CORE_ROLE_ALIAS": ""}, nil, 2,
			[]string{"--iot-role-alias (or $AWS_IOT_CORE_ROLE_ALIAS) is required"}},
		{"with a profile", nil, []string{"--profile", "p"}, 2, []string{"--profile: cannot be combined with IoT credentials"}},
		{"with a role", nil, []string{"--role-arn", "arn:aws:iam::123456789012:role/x"}, 2, []string{"--role-arn: cannot be combined with IoT credentials"}},
		{"missing key file", nil, []string{"--iot-key", filepath.Join(dir, "none.key")}, 2,
			[]string{"--iot-key ($AWS_IOT_CORE_PRIVATE_KEY): ", "none.key: no such file or directory"}},
		{"key and certificate swapped", nil, []string{"--iot-key", filepath.Join(dir, "cam-1.cert.pem")}, 2,
			[]string{"--iot-key ($AWS_IOT_CORE_PRIVATE_KEY): ", "holds a certificate"}},
		{"unknown role alias", nil, []string{"--iot-role-alias", "nope"}, 1,
			[]string{"--iot-role-alias ($AWS_IOT_CORE_ROLE_ALIAS): ResourceNotFoundException: Role alias does not exist (HTTP 404)"}},
		{"thing not attached", nil, []string{"--iot-thing-name", "cam-2"}, 1,
			[]string{"--iot-thing-name ($AWS_IOT_CORE_THING_NAME): AccessDeniedException: Thing cam-2 is not attached to the certificate (HTTP 403)"}},
		{"CA not given", map[string]string{"AWS_KVS_CACERT_PATH": ""}, nil, 1,
			[]string{"--iot-ca ($AWS_KVS_CACERT_PATH): the endpoint's certificate is not signed by a trusted CA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, val := range tc.env {
				t.Setenv(k, val)
			}
			r := cli(t, nil, append(append([]string{}, connect...), tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d; want %d\n%v", r.code, tc.code, r)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}

	// A revoked certificate.
	if _, err := v.e.RevokeIoTCertificates("", "cam-1"); err != nil {
		t.Fatal(err)
	}
	r := cli(t, nil, connect...)
	if r.code != 1 || !strings.Contains(r.stderr, "--iot-cert ($AWS_IOT_CORE_CERT): AccessDeniedException: Certificate is revoked (HTTP 403)") {
		t.Errorf("revoked certificate: %v", r)
	}
}

// TestNoSecretsPrintedWithIoT runs commands with IoT credentials and
// --debug, and scans what they print for the device's private key, the
// IoT session token and secrets in the shape of a secret access key.
func TestNoSecretsPrintedWithIoT(t *testing.T) {
	v, dir := iotEnv(t)
	ep := "--endpoint-url=" + v.url
	keyPEM, err := os.ReadFile(filepath.Join(dir, "cam-1.private.key"))
	if err != nil {
		t.Fatal(err)
	}
	var keyLines []string
	for line := range strings.Lines(string(keyPEM)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			keyLines = append(keyLines, line)
		}
	}
	// The emulator's session tokens all begin so; its secrets are 40
	// base64 characters.
	const tokenPrefix = "IQoJb3JpZ2luX2VtdWxhdG9y"
	secretRE := regexp.MustCompile(`(?:^|[^A-Za-z0-9+/])([A-Za-z0-9+/]{40})(?:[^A-Za-z0-9+/=]|$)`)
	hexRE := regexp.MustCompile(`^[0-9a-f]+$`)
	runs := [][]string{
		{"connect", "--channel", "cam-1", "--role", "master", "--once", ep},
		{"connect", "--channel", "cam-2", "--role", "master", "--once", "--output", "json", ep},
		{"ice", "--channel", "cam-1", ep},
		{"url", "--channel", "cam-1", "--role", "master", ep},
		{"connect", "--channel", "cam-1", "--role", "master", "--once", "--iot-role-alias", "nope", ep},
		{"connect", "--channel", "cam-1", "--role", "master", "--once", "--iot-thing-name", "cam-2", ep},
		{"connect", "--channel", "cam-1", "--role", "master", "--once", "--iot-key", filepath.Join(dir, "cam-2.private.key"), ep},
	}
	scan := func(name, scanned string) {
		t.Helper()
		for _, l := range keyLines {
			if strings.Contains(scanned, l) {
				t.Errorf("%s printed the private key", name)
			}
		}
		if strings.Contains(scanned, tokenPrefix) {
			t.Errorf("%s printed a session token", name)
		}
		for _, m := range secretRE.FindAllStringSubmatch(scanned, -1) {
			if !hexRE.MatchString(m[1]) {
				t.Errorf("%s printed what looks like a secret access key (%.6s…)", name, m[1])
			}
		}
	}
	for _, args := range runs {
		r := cli(t, nil, append(args, "--debug")...)
		scanned := r.stderr
		if args[0] != "url" {
			scanned += r.stdout
		}
		scan(strings.Join(args, " "), scanned)
	}

}

// TestEmulateIoT runs kvssign emulate with two things and a role alias of
// two minutes, and a device script's variables pointing at what it prints.
func TestEmulateIoT(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(camPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	iotDir := filepath.Join(dir, "iot")
	url, stdout, _, stop := startCommand(t, 10*time.Second, "emulate", "--policy", policy, "--create-channel", "cam-1", "--create-channel", "cam-2",
		"--iot-thing", "cam-1", "--iot-thing", "cam-2", "--iot-role-alias", "kvs-camera=arn:aws:iam::123456789012:role/kvs-camera:120", "--iot-dir", iotDir, "--log-level", "off")
	m := regexp.MustCompile(`AWS_IOT_CORE_CREDENTIAL_ENDPOINT=(127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(stdout.String())
	if m == nil || !strings.Contains(stdout.String(), "kvs-camera -> arn:aws:iam::123456789012:role/kvs-camera (credentials last 2m0s)") ||
		!strings.Contains(stdout.String(), filepath.Join(iotDir, "cam-2.cert.pem")) {
		t.Fatalf("emulate printed no IoT endpoint, role alias or thing:\n%s", stdout)
	}
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_IOT_CORE_CREDENTIAL_ENDPOINT", m[1])
	t.Setenv("AWS_IOT_CORE_CERT", filepath.Join(iotDir, "cam-2.cert.pem"))
	t.Setenv("AWS_IOT_CORE_PRIVATE_KEY", filepath.Join(iotDir, "cam-2.private.key"))
	t.Setenv("AWS_IOT_CORE_ROLE_ALIAS", "kvs-camera")
	t.Setenv("AWS_IOT_CORE_THING_NAME", "cam-2")
	t.Setenv("AWS_KVS_CACERT_PATH", filepath.Join(iotDir, "ca.pem"))
	// Two-minute credentials need URLs shorter than their renewal margin.
	if r := cli(t, nil, "connect", "--channel", "cam-2", "--role", "master", "--once", "--expires", "30s", "--endpoint-url", url); r.code != 0 {
		t.Errorf("cam-2 connecting to its channel: %v", r)
	}
	if r := cli(t, nil, "connect", "--channel", "cam-1", "--role", "master", "--once", "--expires", "30s", "--endpoint-url", url); r.code != 1 || !strings.Contains(r.stderr, "403") {
		t.Errorf("cam-2 connecting to cam-1: %v", r)
	}
	if code := stop(); code != 0 {
		t.Errorf("emulate exited %d", code)
	}
}

func TestEmulateIoTUsageErrors(t *testing.T) {
	cases := []struct{ args, want string }{
		{"--iot-role-alias kvs", `--iot-role-alias "kvs": must be ALIAS=ROLE_ARN[:SECONDS]`},
		{"--iot-role-alias kvs=arn:aws:iam::123456789012:role/r:0", `--iot-role-alias "kvs=arn:aws:iam::123456789012:role/r:0": seconds "0": must be a whole number from 1 to 43200`},
		{"--iot-role-alias kvs=arn:aws:iam::123456789012:user/r", `iot role alias "kvs" role ARN "arn:aws:iam::123456789012:user/r": must be arn:aws:iam::ACCOUNT:role/NAME`},
		{"--iot-thing cam/1", `iot thing "cam/1": must be 1 to 128 letters, digits, ':', '_' or '-'`},
		{"--iot-thing cam --iot-dir=", `--iot-dir: must name a folder for the certificates`},
	}
	for _, tc := range cases {
		r := cli(t, nil, append([]string{"emulate"}, strings.Fields(tc.args)...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("emulate %s: %v; want exit 2 saying %s", tc.args, r, tc.want)
		}
	}
}

func FuzzParseRoleAlias(f *testing.F) {
	f.Add("kvs-camera=arn:aws:iam::123456789012:role/kvs-camera:3600")
	f.Add("a=arn:aws:iam::123456789012:role/x")
	f.Add("=")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseRoleAlias(s)
		if err != nil {
			return
		}
		if a.Name == "" || a.RoleARN == "" || a.Duration < 0 || a.Duration > 43200*time.Second {
			t.Fatalf("parseRoleAlias(%q) = %+v", s, a)
		}
	})
}

// TestIoTThingNameAlone: the C SDK's thing name and CA variables alone
// leave the credentials as they were; the flags alone are refused.
func TestIoTThingNameAlone(t *testing.T) {
	v, _ := iotEnv(t)
	for _, k := range []string{"AWS_IOT_CORE_CREDENTIAL_ENDPOINT", "AWS_IOT_CORE_CERT", "AWS_IOT_CORE_PRIVATE_KEY", "AWS_IOT_CORE_ROLE_ALIAS"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", v.e.Credentials().AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", v.e.Credentials().SecretAccessKey)
	ep := "--endpoint-url=" + v.url
	if r := cli(t, nil, "channel", "describe", "cam-1", ep); r.code != 0 {
		t.Errorf("with only AWS_IOT_CORE_THING_NAME and AWS_KVS_CACERT_PATH set: %v", r)
	}
	for _, flag := range []string{"--iot-thing-name", "--iot-ca"} {
		if r := cli(t, nil, "channel", "describe", "cam-1", ep, flag, "x"); r.code != 2 ||
			!strings.Contains(r.stderr, "--iot-thing-name and --iot-ca: only used with IoT credentials") {
			t.Errorf("%s alone: %v", flag, r)
		}
	}
}
