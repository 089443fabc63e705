package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
	"github.com/kvssign/kvssign/vend"
)

const serveToken = "kvst_serve-test-token-0123456789abcdef"

// writeServeConfig writes a config that lets serveToken do anything, with
// extra top-level fields, and returns its path.
func writeServeConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := `{"auth":{"tokens":[{"name":"test","sha256":"` + vend.HashToken(serveToken) + `"}]},
	 "rules":[{"principals":["token:test"],"channels":["*"],"roles":["MASTER","VIEWER"]}]` + extra + `}`
	p := filepath.Join(t.TempDir(), "vend.json")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startServe runs `kvssign serve args...` until stop and returns its base
// URL once it listens.
func startServe(t *testing.T, args ...string) (base string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	return startCommand(t, 15*time.Second, append([]string{"serve"}, args...)...)
}

// serveEnv starts an emulator and gives the process its credentials.
func serveEnv(t *testing.T) *emulator.Emulator {
	t.Helper()
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	for _, k := range []string{"KVSSIGN_CONFIG", "KVSSIGN_ADDR", "KVSSIGN_REGION", "KVSSIGN_PROFILE", "KVSSIGN_ENDPOINT_URL", "KVSSIGN_LOG_LEVEL"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	e := emulatortest.New(t, emulator.Config{ConnectRate: -1})
	c := e.Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	return e
}

func vendPost(t *testing.T, base, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/connections", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeVendsAndStops(t *testing.T) {
	e := serveEnv(t)
	if _, err := e.CreateChannel("demo", 0); err != nil {
		t.Fatal(err)
	}
	cfg := writeServeConfig(t, `,"logLevel":"debug"`)
	base, _, stderr, stop := startServe(t, "--config", cfg, "--addr", "127.0.0.1:0", "--endpoint-url", e.URL(), "--region", e.Region())

	status, body := vendPost(t, base, serveToken, `{"channel":"demo","role":"VIEWER","clientId":"token-test.cli"}`)
	if status != 200 {
		t.Fatalf("POST = %d %v", status, body)
	}
	url, _ := body["url"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("the vended URL does not connect: %v", strings.SplitN(err.Error(), "?", 2)[0])
	}
	c.Close(websocket.StatusNormalClosure, "")
	if status, _ := vendPost(t, base, "kvst_wrong", `{"channel":"demo","role":"VIEWER"}`); status != 401 {
		t.Errorf("bad token: %d; want 401", status)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kvssign_vend_upstream_calls_total{operation="DescribeSignalingChannel"} 1`, `kvssign_vend_urls_vended_total{role="VIEWER"} 1`, "go_goroutines"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if code := stop(); code != 0 {
		t.Errorf("exit %d after SIGINT; want 0\n%s", code, stderr)
	}
	logs := stderr.String()
	for _, want := range []string{`"msg":"vended"`, `"principal":"token:test"`, `"clientId":"token-test.cli"`, `"msg":"kvssign serve: stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{serveToken, e.Credentials().SecretAccessKey, "X-Amz-Signature", "X-Amz-Credential"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold %.12s…", secret)
		}
	}
}

func TestServeEnvironmentAndFlags(t *testing.T) {
	e := serveEnv(t)
	// The file's address is taken; the environment's wins over it.
	cfg := writeServeConfig(t, `,"addr":"127.0.0.1:1","logLevel":"warn"`)
	t.Setenv("KVSSIGN_CONFIG", cfg)
	t.Setenv("KVSSIGN_ADDR", "127.0.0.1:0")
	t.Setenv("KVSSIGN_ENDPOINT_URL", e.URL())
	t.Setenv("KVSSIGN_REGION", e.Region())
	base, _, _, stop := startServe(t)
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v", resp, err)
	}
	stop()
	// A flag wins over the environment.
	t.Setenv("KVSSIGN_ADDR", "not-an-address")
	base, _, _, _ = startServe(t, "--addr", "127.0.0.1:0")
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	}
}

func TestServeUsageErrors(t *testing.T) {
	e := serveEnv(t)
	good := writeServeConfig(t, "")
	bad := writeServeConfig(t, `,"rules":[{"principals":["token:test"],"channels":["*"],"roles":["ADMIN"]}]`)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"serve"}, "--config FILE is required"},
		{"missing file", []string{"serve", "--config", filepath.Join(t.TempDir(), "nope.json")}, "no such file"},
		{"invalid config", []string{"serve", "--config", bad}, "rules[0].roles[0]"},
		{"bad address", []string{"serve", "--config", good, "--addr", "nowhere"}, "addr"},
		{"bad log level", []string{"serve", "--config", good, "--log-level", "loud"}, "logLevel"},
		{"bad endpoint", []string{"serve", "--config", good, "--endpoint-url", "ftp://x"}, "endpointUrl"},
		{"unknown profile", []string{"serve", "--config", good, "--profile", "nope", "--endpoint-url", e.URL(), "--region", e.Region()}, "nope"},
		{"unknown flag", []string{"serve", "--port", "80"}, "unknown flag"},
		{"argument", []string{"serve", "extra"}, "unknown command"},
	}
	if serveWeb == nil {
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"no page", []string{"serve", "--config", good, "--endpoint-url", e.URL(), "--region", e.Region(), "--web"}, "no embedded web page"})
	}
	for _, c := range cases {
		var out, errOut syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		code := run(ctx, c.args, strings.NewReader(""), &out, &errOut)
		cancel()
		if code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, errOut.String(), c.want)
		}
	}
}

func TestServeHashToken(t *testing.T) {
	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errOut syncBuffer
		code := run(context.Background(), append([]string{"serve", "hash-token"}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, _ := run1(serveToken + "\n")
	if code != 0 || strings.TrimSpace(out) != vend.HashToken(serveToken) {
		t.Errorf("hash-token = %d %q; want %s", code, out, vend.HashToken(serveToken))
	}
	code, out, _ = run1("", "--generate")
	m := regexp.MustCompile(`(?m)^token:  (kvst_[A-Za-z0-9_-]{43})\nsha256: ([0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil || vend.HashToken(m[1]) != m[2] {
		t.Errorf("hash-token --generate = %d %q", code, out)
	}
	if code, _, errOut := run1(""); code != 2 || !strings.Contains(errOut, "no token") {
		t.Errorf("hash-token with nothing = %d %q; want 2", code, errOut)
	}
	if code, _, _ := run1("two words\n"); code != 2 {
		t.Errorf("hash-token with a space = %d; want 2", code)
	}
}

// slowBackend answers after a pause, to hold a request in flight.
type slowBackend struct{ started chan struct{} }

func (slowBackend) Forget(string) {}

func (b slowBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (vend.Target, error) {
	close(b.started)
	time.Sleep(500 * time.Millisecond)
	return vend.Target{ChannelARN: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000",
		Endpoint: "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"}, nil
}

// TestServeDrainsInFlight: on cancellation the server stops accepting and
// the request in flight still gets its answer.
func TestServeDrainsInFlight(t *testing.T) {
	cfg, err := vend.ParseConfig([]byte(`{"addr":"127.0.0.1:0","auth":{"tokens":[{"name":"test","sha256":"` + vend.HashToken(serveToken) + `"}]},
	  "rules":[{"principals":["token:test"],"channels":["*"],"roles":["VIEWER"]}],"shutdown":{"timeout":"5s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv, err := vend.New(cfg, vend.Options{Backend: slowBackend{started}, Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret-for-the-drain-test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- listenAndServe(ctx, &out, cfg, srv, slog.New(slog.DiscardHandler)) }()
	var base string
	for base == "" {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := make(chan int, 1)
	go func() {
		status, _ := vendPost(t, base, serveToken, `{"channel":"demo","role":"VIEWER"}`)
		got <- status
	}()
	<-started
	cancel()
	if status := <-got; status != 200 {
		t.Errorf("the request in flight got %d; want 200", status)
	}
	if err := <-done; err != nil {
		t.Errorf("listenAndServe: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still accepts after shutdown")
	}
}

// TestServeTLS serves HTTPS with the config's certificate.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cfg, err := vend.ParseConfig([]byte(`{"addr":"127.0.0.1:0","hsts":true,"tls":{"certFile":"` + certFile + `","keyFile":"` + keyFile + `"},
	  "auth":{"tokens":[{"name":"test","sha256":"` + vend.HashToken(serveToken) + `"}]},
	  "rules":[{"principals":["token:test"],"channels":["*"],"roles":["VIEWER"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := vend.New(cfg, vend.Options{Backend: slowBackend{make(chan struct{})}, Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret-for-the-tls-test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- listenAndServe(ctx, &out, cfg, srv, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		<-done
	}()
	re := regexp.MustCompile(`listening on (https://127\.0\.0\.1:[0-9]+)\n`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no https address printed: %q", out.String())
	}
	pool := x509.NewCertPool()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(cert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("GET /healthz over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	// net/http's own answers are JSON over TLS too, and the header limit
	// is the configured one (16 KiB by default).
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", strings.Repeat("a", 16<<10))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 431 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"headers_too_large"`) {
		t.Errorf("17 KiB of headers over TLS: %d %q %s; want a JSON 431", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
