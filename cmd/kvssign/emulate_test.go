package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// startEmulate runs `kvssign emulate args...` until the test ends and
// returns its URL and output buffers.
func startEmulate(t *testing.T, args ...string) (url string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	return startCommand(t, 10*time.Second, append([]string{"emulate"}, args...)...)
}

func TestEmulateServesAndStops(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	url, stdout, _, stop := startEmulate(t, "--state", state, "--create-channel", "demo", "--log-level", "off")
	out := stdout.String()
	for _, want := range []string{"region:            us-west-2", "access key id:     AKIAIOSFODNN7EXAMPLE",
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY  (AWS's documented example key)", "aws --endpoint-url " + url} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	kv := kinesisvideo.New(kinesisvideo.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	})
	list, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatalf("ListSignalingChannels against the CLI's emulator: %v", err)
	}
	if len(list.ChannelInfoList) != 1 || aws.ToString(list.ChannelInfoList[0].ChannelName) != "demo" {
		t.Errorf("channels = %+v; want demo", list.ChannelInfoList)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code after cancellation = %d; want 0", code)
	}
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), `"demo"`) {
		t.Errorf("state file: %s %v", b, err)
	}
	// Restarting with the same state and --create-channel is fine.
	_, _, _, stop2 := startEmulate(t, "--state", state, "--create-channel", "demo", "--log-level", "off")
	if code := stop2(); code != 0 {
		t.Errorf("second run exit code = %d", code)
	}
}

func TestEmulateCustomCredentialsNotPrinted(t *testing.T) {
	const secret = "s3cr3t/Value+that-must-not-be-printed"
	_, stdout, stderr, stop := startEmulate(t, "--access-key-id", "AKIACUSTOM0000000000", "--secret-access-key", secret, "--log-level", "debug")
	stop()
	if !strings.Contains(stdout.String(), "AKIACUSTOM0000000000") {
		t.Errorf("output lacks the access key id:\n%s", stdout)
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Errorf("the secret appears in the output:\n%s\n%s", stdout, stderr)
	}
}

func TestEmulateBadFlags(t *testing.T) {
	corrupt := filepath.Join(t.TempDir(), "corrupt.json")
	os.WriteFile(corrupt, []byte("{not json"), 0o600)
	policyFile := func(doc string) string {
		p := filepath.Join(t.TempDir(), "policy.json")
		os.WriteFile(p, []byte(doc), 0o600)
		return p
	}
	conditionPolicy := policyFile(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`)
	emptyPolicy := policyFile("")
	missingPolicy := filepath.Join(t.TempDir(), "missing.json")
	badJSONPolicy := policyFile(`{"Statement":`)
	bigPolicy := policyFile(strings.Repeat(" ", 64<<10+1))
	cases := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"--addr", "nonsense"}, 2, "--addr"},
		{[]string{"--access-key-id", "AKIAX"}, 2, "give both or neither"},
		{[]string{"--region", "Mars"}, 2, "region"},
		{[]string{"--account", "12"}, 2, "account"},
		{[]string{"--idle-timeout", "0s"}, 2, "--idle-timeout"},
		{[]string{"--max-viewers", "0"}, 2, "--max-viewers"},
		{[]string{"--connect-rate", "-2"}, 2, "--connect-rate"},
		{[]string{"--tls-cert", "x.pem"}, 2, "--tls"},
		{[]string{"--log-level", "loud"}, 2, "--log-level"},
		{[]string{"--create-channel", "bad name"}, 2, "bad name"},
		{[]string{"--state", corrupt}, 1, "corrupt"},
		{[]string{"extra-arg"}, 2, ""},
		{[]string{"--policy", missingPolicy}, 2, "--policy " + missingPolicy + ": no such file or directory"},
		{[]string{"--policy", conditionPolicy}, 2, "--policy " + conditionPolicy + ": emulator: policy: Statement[0].Condition: the emulator does not evaluate conditions"},
		{[]string{"--policy", emptyPolicy}, 2, "--policy " + emptyPolicy + ": emulator: policy: the document is empty"},
		{[]string{"--policy", badJSONPolicy}, 2, "--policy " + badJSONPolicy + ": emulator: policy: Statement: is not valid JSON"},
		{[]string{"--policy", bigPolicy}, 2, "--policy " + bigPolicy + ": the file is over 65536 bytes"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		// A flag that is wrongly accepted starts the emulator: stop it
		// rather than wait for ever.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, append([]string{"emulate"}, tc.args...), strings.NewReader(""), &out, &errOut)
		cancel()
		if code != tc.code || !strings.Contains(errOut.String(), tc.inStderr) {
			t.Errorf("emulate %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.inStderr)
		}
	}
}

func TestEmulatePolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.json")
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"ListOnly","Effect":"Allow","Action":"kinesisvideo:List*","Resource":"*"}]}`
	if err := os.WriteFile(policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stdout, _, stop := startEmulate(t, "--policy", policy, "--log-level", "off")
	defer stop()
	if want := "policy:            " + policy; !strings.Contains(stdout.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
	kv := kinesisvideo.New(kinesisvideo.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	})
	ctx := context.Background()
	if _, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Errorf("ListSignalingChannels, which the policy allows: %v", err)
	}
	_, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("door")})
	var ad *kvtypes.AccessDeniedException
	if !errors.As(err, &ad) || !strings.HasPrefix(ad.ErrorMessage(),
		"User: arn:aws:iam::123456789012:user/emulator is not authorized to perform: kinesisvideo:CreateSignalingChannel on resource: arn:aws:kinesisvideo:us-west-2:123456789012:channel/door/") {
		t.Errorf("CreateSignalingChannel, which the policy does not allow: %v; want AccessDeniedException", err)
	}
}

// TestEmulateSecretOffTheCommandLine checks the two ways to give the
// secret without showing it in ps: the environment and standard input.
func TestEmulateSecretOffTheCommandLine(t *testing.T) {
	const akid, secret = "AKIACUSTOM0000000001", "off/the-command-line+0123456789abcdefghij"
	cases := []struct {
		name, env, stdin string
		args             []string
	}{
		{"environment", secret, "", nil},
		{"stdin", "", secret + "\n", []string{"--secret-access-key", "-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envEmulatorSecret, tc.env)
			ctx := context.Background()
			url, stdout, stderr, stop := startEmulateIn(t, tc.stdin, listeningRE, append([]string{"--access-key-id", akid, "--log-level", "off"}, tc.args...)...)
			kv := kinesisvideo.New(kinesisvideo.Options{
				Region: "us-west-2", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
				Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
			})
			if _, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
				t.Errorf("ListSignalingChannels with the secret given by %s: %v", tc.name, err)
			}
			if code := stop(); code != 0 {
				t.Errorf("exit %d; want 0", code)
			}
			if all := stdout.String() + stderr.String(); strings.Contains(all, secret) || strings.Contains(all, "warning") {
				t.Errorf("output shows the secret or warns:\n%s", all)
			}
		})
	}

	// A secret on the command line still works, with a warning.
	_, _, stderr, stop := startEmulate(t, "--access-key-id", akid, "--secret-access-key", secret, "--log-level", "off")
	stop()
	if !strings.Contains(stderr.String(), "visible to other processes") || strings.Contains(stderr.String(), secret) {
		t.Errorf("stderr = %q; want a warning without the secret", stderr)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"emulate", "--access-key-id", akid, "--secret-access-key", "-"}, strings.NewReader(""), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "no secret on standard input") {
		t.Errorf("empty stdin: exit %d, stderr %q; want 2, no secret on standard input", code, errOut.String())
	}
}

// startEmulateIn runs `kvssign emulate args...` with stdin until the test
// ends, and returns the first group of started once stdout matches it.
func startEmulateIn(t *testing.T, stdin string, started *regexp.Regexp, args ...string) (match string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"emulate"}, args...), strings.NewReader(stdin), stdout, stderr)
	}()
	code := -1
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := started.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stdout, stderr, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulate did not start:\n%s\n%s", stdout, stderr)
		}
	}
}

// TestEmulateHostname checks that --hostname is advertised and named by
// the certificate whose path the CLI prints.
func TestEmulateHostname(t *testing.T) {
	const host = "kinesisvideo.us-west-2.amazonaws.com"
	cert := filepath.Join(t.TempDir(), "cert.pem")
	url, stdout, _, stop := startEmulateIn(t, "", regexp.MustCompile(`listening on (https://\S+)\n`),
		"--tls", "--tls-cert", cert, "--hostname", host, "--log-level", "off")
	defer stop()
	if !strings.HasPrefix(url, "https://"+host+":") {
		t.Errorf("URL = %q; want https://%s:PORT", url, host)
	}
	m := regexp.MustCompile(`tls certificate: +(\S+)`).FindStringSubmatch(stdout.String())
	if m == nil || m[1] != cert {
		t.Fatalf("output does not name the certificate %s:\n%s", cert, stdout)
	}
	b, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s is not PEM", m[1])
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyHostname(host); err != nil {
		t.Errorf("the certificate does not name %s: %v", host, err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"emulate", "--hostname", "bad name"}, strings.NewReader(""), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "hostname") {
		t.Errorf("--hostname 'bad name': exit %d, stderr %q; want 2 naming the hostname", code, errOut.String())
	}
}
