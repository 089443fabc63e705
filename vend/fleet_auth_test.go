package vend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key into dir, and returns their paths.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kvssign test redis"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestFleetTLSAndAuth: a rediss:// URL with a private CA and a password
// from the environment; a wrong password or an unknown CA leaves the copy
// on its own, says so without the password, and fails no request.
func TestFleetTLSAndAuth(t *testing.T) {
	const password = "redis-test-password-0123456789"
	noteSecret(password)
	dir := t.TempDir()
	cert, key := writeTestCert(t, dir)
	tlsPort := freePort(t)
	rs := startRedis(t, "--requirepass", password, "--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "no")
	tlsURL := fmt.Sprintf("rediss://127.0.0.1:%d", tlsPort)
	env := map[string]string{"REDIS_PW": password, "REDIS_BAD": "wrong-password-000000"}
	getenv := func(k string) string { return env[k] }

	cases := []struct {
		name   string
		cfg    redisConfig
		wantUp bool
	}{
		{"tls and auth", redisConfig{URL: tlsURL, CAFile: cert, PasswordEnv: "REDIS_PW"}, true},
		{"plain with auth", redisConfig{URL: rs.URL(), PasswordEnv: "REDIS_PW"}, true},
		{"wrong password", redisConfig{URL: rs.URL(), PasswordEnv: "REDIS_BAD"}, false},
		{"no password", redisConfig{URL: rs.URL()}, false},
		{"unknown CA", redisConfig{URL: tlsURL, PasswordEnv: "REDIS_PW"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncBuffer{}
			c.cfg.Timeout = Duration(2 * time.Second) // for a busy machine
			f, err := newFleet(c.cfg, fleetOptions{logger: testLogger(logs), getenv: getenv})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Up() != c.wantUp {
				t.Fatalf("Up() = %v; want %v (logs: %s)", f.Up(), c.wantUp, logs)
			}
			allowed, _, asked := f.allow(context.Background(), "limit:test:"+c.name, 10, 10)
			if asked != c.wantUp || (asked && !allowed) {
				t.Errorf("allow: allowed %v, asked Redis %v; want asked %v", allowed, asked, c.wantUp)
			}
			if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), "wrong-password") {
				t.Errorf("the logs hold the password: %s", logs)
			}
		})
	}
}

func TestFleetConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  redisConfig
		want string
	}{
		{"empty password variable", redisConfig{URL: "redis://127.0.0.1:1", PasswordEnv: "NOPE"}, "redis.passwordEnv: the environment variable NOPE is empty"},
		{"ca without tls", redisConfig{URL: "redis://127.0.0.1:1", CAFile: "ca.pem"}, "redis.caFile: set only with a rediss:// URL"},
		{"missing ca", redisConfig{URL: "rediss://127.0.0.1:1", CAFile: filepath.Join(t.TempDir(), "nope.pem")}, "redis.caFile"},
		{"bad url", redisConfig{URL: "redis://user:hunter2-secret@127.0.0.1:1/notadb"}, "redis.url"},
	}
	for _, c := range cases {
		f, err := newFleet(c.cfg, fleetOptions{getenv: func(string) string { return "" }})
		if err == nil {
			f.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: NewFleet = %v; want an error saying %q, without the password", c.name, err, c.want)
		}
	}
}
