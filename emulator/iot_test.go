package emulator_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
)

const iotRole = "arn:aws:iam::123456789012:role/kvs-camera"

func iotConfig(dir string) *emulator.IoTConfig {
	return &emulator.IoTConfig{Dir: dir, Things: []string{"cam-1"},
		RoleAliases: []emulator.IoTRoleAlias{{Name: "kvs-camera", RoleARN: iotRole, Duration: 90 * time.Second}}}
}

// iotClient is an HTTP client presenting c (none if zero) and trusting
// the emulator's IoT CA.
func iotClient(t *testing.T, e *emulator.Emulator, c emulator.IoTCertificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.IoTCAPEM())
	tc := &tls.Config{RootCAs: pool}
	if c.CertPEM != nil {
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type iotAnswer struct {
	status  int
	errType string
	body    map[string]any
}

func iotGet(t *testing.T, client *http.Client, method, url, thing string) iotAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if thing != "" {
		req.Header.Set("x-amzn-iot-thingname", thing)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := iotAnswer{status: resp.StatusCode, errType: resp.Header.Get("x-amzn-ErrorType")}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	return a
}

func TestIoTEndpoint(t *testing.T) {
	clock := newFrozenClock()
	dir := t.TempDir()
	e := emulatortest.New(t, emulator.Config{Clock: clock.Now, IoT: iotConfig(dir)})
	for _, f := range []string{"ca.pem", "cam-1.cert.pem", "cam-1.private.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".key") && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", f, fi.Mode())
		}
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "cam-1.cert.pem"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "cam-1.private.key"))
	cam1 := emulator.IoTCertificate{CertPEM: certPEM, KeyPEM: keyPEM}
	other, err := e.IssueIoTCertificate("cam-2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := e.IssueIoTCertificate("cam-3", clock.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	url := e.IoTURL() + "/role-aliases/kvs-camera/credentials"

	ok := iotGet(t, iotClient(t, e, cam1), "GET", url, "cam-1")
	creds, _ := ok.body["credentials"].(map[string]any)
	if ok.status != 200 || creds == nil {
		t.Fatalf("cam-1: HTTP %d %v; want 200 with credentials", ok.status, ok.body)
	}
	for _, k := range []string{"accessKeyId", "secretAccessKey", "sessionToken", "expiration"} {
		if s, _ := creds[k].(string); s == "" {
			t.Errorf("credentials.%s is missing", k)
		}
	}
	if exp, _ := creds["expiration"].(string); exp != clock.Now().Add(90*time.Second).UTC().Truncate(time.Second).Format(time.RFC3339) {
		t.Errorf("expiration %s; want the role alias's 90 s from now", exp)
	}

	clock.Set(clock.Now().Add(2 * time.Minute))
	tests := []struct {
		name    string
		client  *http.Client
		method  string
		url     string
		thing   string
		status  int
		errType string
		message string
	}{
		{"thing not attached", iotClient(t, e, cam1), "GET", url, "cam-2", 403, "AccessDeniedException", "Thing cam-2 is not attached to the certificate"},
		{"unknown role alias", iotClient(t, e, cam1), "GET", e.IoTURL() + "/role-aliases/nope/credentials", "", 404, "ResourceNotFoundException", "Role alias does not exist"},
		{"expired certificate", iotClient(t, e, expired), "GET", url, "cam-3", 403, "AccessDeniedException", "Certificate is expired or not yet valid"},
		{"no certificate", iotClient(t, e, emulator.IoTCertificate{}), "GET", url, "", 403, "AccessDeniedException", "Missing client certificate"},
		{"bad thing name", iotClient(t, e, other), "GET", url, "cam 2", 400, "InvalidRequestException", "Invalid thing name"},
		{"wrong path", iotClient(t, e, other), "GET", e.IoTURL() + "/credentials", "", 404, "ResourceNotFoundException", "no such resource: want GET /role-aliases/ALIAS/credentials"},
		{"wrong method", iotClient(t, e, other), "POST", url, "", 405, "MethodNotAllowedException", "POST is not allowed: use GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := iotGet(t, tc.client, tc.method, tc.url, tc.thing)
			if a.status != tc.status || a.errType != tc.errType || a.body["message"] != tc.message {
				t.Errorf("HTTP %d %s %v; want %d %s %q", a.status, a.errType, a.body, tc.status, tc.errType, tc.message)
			}
		})
	}

	checkIoTRevocation(t, e, url, other)
}

// checkIoTRevocation revokes cam-2 through the admin endpoint: its
// certificate is refused from then on, bad revocations are refused, and a
// cross-site form cannot revoke.
func checkIoTRevocation(t *testing.T, e *emulator.Emulator, url string, other emulator.IoTCertificate) {
	t.Helper()
	resp, err := http.Post(e.URL()+"/_emulator/iot/revoke?thing=cam-2", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var revoked struct{ Revoked []string }
	json.NewDecoder(resp.Body).Decode(&revoked)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(revoked.Revoked) != 1 || revoked.Revoked[0] != other.ID {
		t.Fatalf("revoke: HTTP %d %v; want 200 with %s", resp.StatusCode, revoked.Revoked, other.ID)
	}
	if a := iotGet(t, iotClient(t, e, other), "GET", url, "cam-2"); a.status != 403 || a.body["message"] != "Certificate is revoked" {
		t.Errorf("revoked certificate: HTTP %d %v; want 403 Certificate is revoked", a.status, a.body)
	}
	for _, q := range []string{"", "thing=nobody", "certificate=abc&thing=cam-1"} {
		resp, err := http.Post(e.URL()+"/_emulator/iot/revoke?"+q, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("revoke ?%s: HTTP %d; want 400 or 404", q, resp.StatusCode)
		}
	}
	// A cross-site form cannot revoke: the admin guard applies.
	resp, err = http.Post(e.URL()+"/_emulator/iot/revoke?thing=cam-1", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("revoke with a form content type: HTTP %d; want 403", resp.StatusCode)
	}
}

func TestIoTConfigInvalid(t *testing.T) {
	alias := func(name, arn string, d time.Duration) *emulator.IoTConfig {
		return &emulator.IoTConfig{RoleAliases: []emulator.IoTRoleAlias{{Name: name, RoleARN: arn, Duration: d}}}
	}
	tests := []struct {
		name string
		iot  *emulator.IoTConfig
		want string
	}{
		{"bad addr", &emulator.IoTConfig{Addr: "nowhere"}, `emulator: iot addr "nowhere": must be host:port`},
		{"bad alias", alias("a/b", iotRole, 0), `emulator: iot role alias 0 name "a/b": must be 1 to 128 letters, digits, '_', '=', ',', '@' or '-'`},
		{"bad role", alias("cam", "arn:aws:iam::1:user/x", 0), `emulator: iot role alias "cam" role ARN "arn:aws:iam::1:user/x": must be arn:aws:iam::ACCOUNT:role/NAME`},
		{"too long", alias("cam", iotRole, 13*time.Hour), `emulator: iot role alias "cam" duration 13h0m0s: must be from 1s to 12h (AWS: 900 to 43,200 seconds)`},
		{"too short", alias("cam", iotRole, time.Millisecond), `emulator: iot role alias "cam" duration 1ms: must be from 1s to 12h (AWS: 900 to 43,200 seconds)`},
		{"twice", &emulator.IoTConfig{RoleAliases: []emulator.IoTRoleAlias{{Name: "a", RoleARN: iotRole}, {Name: "a", RoleARN: iotRole}}}, `emulator: iot role alias "a": given twice`},
		{"bad thing", &emulator.IoTConfig{Things: []string{"cam/1"}}, `emulator: iot thing "cam/1": must be 1 to 128 letters, digits, ':', '_' or '-'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := emulator.New(emulator.Config{IoT: tc.iot})
			if err == nil || err.Error() != tc.want {
				t.Errorf("New: %v; want %s", err, tc.want)
			}
		})
	}
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.IssueIoTCertificate("cam", time.Time{}); err == nil {
		t.Error("IssueIoTCertificate without Config.IoT succeeded")
	}
	if e.IoTURL() != "" || e.IoTCAPEM() != nil {
		t.Error("an IoT endpoint without Config.IoT")
	}
}

// ExampleEmulator_IssueIoTCertificate runs the emulated AWS IoT
// credentials provider: a device presents the certificate the emulator
// issued for its thing and gets temporary credentials.
func ExampleEmulator_IssueIoTCertificate() {
	e, err := emulator.New(emulator.Config{IoT: &emulator.IoTConfig{
		RoleAliases: []emulator.IoTRoleAlias{{Name: "kvs-camera", RoleARN: "arn:aws:iam::123456789012:role/kvs-camera"}},
	}})
	if err != nil {
		panic(err)
	}
	if err := e.Start(); err != nil {
		panic(err)
	}
	defer e.Close()
	cert, err := e.IssueIoTCertificate("cam-1", time.Time{})
	if err != nil {
		panic(err)
	}
	pair, _ := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.IoTCAPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}}}
	req, _ := http.NewRequest("GET", e.IoTURL()+"/role-aliases/kvs-camera/credentials", nil)
	req.Header.Set("x-amzn-iot-thingname", "cam-1")
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var out struct {
		Credentials struct{ AccessKeyID string }
	}
	json.NewDecoder(resp.Body).Decode(&out)
	fmt.Println(resp.StatusCode, out.Credentials.AccessKeyID[:4])
	// Output: 200 ASIA
}
