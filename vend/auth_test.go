package vend

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	keysOnce         sync.Once
	rsaKey, rsaKey2  *rsa.PrivateKey
	ecKey, otherEC   *ecdsa.PrivateKey
	hmacSecret       = "hs256-secret-for-tests-0123456789abcdef"
	jwtIssuer        = "https://issuer.test/"
	jwtAudience      = "kvssign-vend"
	jwtClockStart    = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	jwtSecretEnvName = "KVSSIGN_TEST_HS256"
)

func init() { noteSecret(hmacSecret) }

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		otherEC, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	b, _ := k.Bytes()
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(b[1:33]), "y": b64u(b[33:])}
}

// jwksServer serves a key set that tests may change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]string) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]string) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// mint signs claims with method and key, with kid in the header if set.
func mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	noteSecret(s)
	return s
}

// claims returns valid claims for sub at the clock's start, changed by kv
// pairs (a nil value deletes the claim).
func claims(sub string, kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": jwtIssuer, "aud": jwtAudience, "sub": sub,
		"iat": jwtClockStart.Unix(), "exp": jwtClockStart.Add(time.Hour).Unix(),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func jwtConfig(jwksURL string) Config {
	cfg := baseConfig()
	cfg.Auth.JWT = &JWT{
		Issuer: jwtIssuer, Audience: []string{jwtAudience, "other"},
		Algorithms: []string{"RS256", "ES256", "HS256"}, JWKSURL: jwksURL, HMACSecretEnv: jwtSecretEnvName,
	}
	cfg.Rules = append(cfg.Rules,
		Rule{Principals: []string{"jwt:*"}, Channels: []string{"pub-*"}, Roles: []string{"VIEWER"}},
		Rule{Groups: []string{"installers"}, Channels: []string{"cam-*"}, Roles: []string{"MASTER"}},
	)
	return cfg
}

func getenvHS(name string) string {
	if name == jwtSecretEnvName {
		return hmacSecret
	}
	return ""
}

func TestJWT(t *testing.T) {
	testKeys(t)
	js := newJWKSServer(t, rsaJWK("r1", &rsaKey.PublicKey), ecJWK("e1", &ecKey.PublicKey))
	clock := newFakeClock(jwtClockStart.Add(time.Minute))
	ts := startServer(t, jwtConfig(js.URL), Options{Clock: clock.Now, Getenv: getenvHS, HTTPClient: js.Client(), Backend: newFakeBackend("pub-1", "cam-1")})
	pubPEM, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubPEM})
	viewer := `{"channel":"pub-1","role":"VIEWER"}`

	cases := []struct {
		name   string
		token  string
		body   string
		status int
		reason string // in the message
	}{
		{"RS256", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice")), viewer, 200, ""},
		{"ES256", mint(t, jwt.SigningMethodES256, ecKey, "e1", claims("bob")), viewer, 200, ""},
		{"HS256", mint(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims("carol")), viewer, 200, ""},
		{"no kid, one key of the algorithm", mint(t, jwt.SigningMethodES256, ecKey, "", claims("dave")), viewer, 200, ""},
		{"second audience", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("erin", "aud", []string{"x", "other"})), viewer, 200, ""},
		{"groups claim", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("installer-1", "groups", []string{"installers"})), `{"channel":"cam-1","role":"MASTER"}`, 200, ""},
		{"groups not held", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("frank", "groups", "viewers")), `{"channel":"cam-1","role":"MASTER"}`, 403, ""},
		{"string groups claim", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("installer-2", "groups", "installers")), `{"channel":"cam-1","role":"MASTER"}`, 200, ""},
		{"string groups claim is one group", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("mallory", "groups", "Not installers")), `{"channel":"cam-1","role":"MASTER"}`, 403, ""},
		{"no group split off a list entry", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("mallory", "groups", []string{"Not installers"})), `{"channel":"cam-1","role":"MASTER"}`, 403, ""},
		{"channel not allowed", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice")), `{"channel":"cam-1","role":"VIEWER"}`, 403, ""},
		{"expired", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "exp", jwtClockStart.Add(-time.Hour).Unix())), viewer, 401, "expired"},
		{"no exp", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "exp", nil)), viewer, 401, "required claim"},
		{"not yet valid", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "nbf", jwtClockStart.Add(time.Hour).Unix())), viewer, 401, "not valid yet"},
		{"issued in the future", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "iat", jwtClockStart.Add(time.Hour).Unix())), viewer, 401, "future"},
		{"wrong issuer", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "iss", "https://evil.test/")), viewer, 401, "issuer"},
		{"wrong audience", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "aud", "someone-else")), viewer, 401, "audience"},
		{"no audience", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice", "aud", nil)), viewer, 401, "required claim"},
		{"no subject", mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("", "sub", nil)), viewer, 401, "sub"},
		{"wrong key for kid", mint(t, jwt.SigningMethodRS256, rsaKey2, "r1", claims("alice")), viewer, 401, "signature"},
		{"EC key under RSA kid", mint(t, jwt.SigningMethodES256, ecKey, "r1", claims("alice")), viewer, 401, ""},
		{"other EC key", mint(t, jwt.SigningMethodES256, otherEC, "e1", claims("alice")), viewer, 401, "signature"},
		{"HS256 with the RSA public key as secret", mint(t, jwt.SigningMethodHS256, pemBytes, "r1", claims("alice")), viewer, 401, "signature"},
		{"alg none", mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("alice")), viewer, 401, ""},
		{"malformed", "eyJhbGciOiJSUzI1NiJ9.e30.x", viewer, 401, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ts.post(t, c.token, c.body)
			if a.status != c.status {
				t.Fatalf("status = %d; want %d (%s)", a.status, c.status, a.body)
			}
			if c.reason != "" && !strings.Contains(a.err.Message, c.reason) {
				t.Errorf("message %q does not say %q", a.err.Message, c.reason)
			}
		})
	}
	// A JWT caller's viewer client id derives from its subject.
	a := ts.post(t, mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("auth0|5f1c")), viewer)
	if a.status != 200 || !strings.HasPrefix(a.conn.ClientID, "jwth-") {
		t.Errorf("subject auth0|5f1c: %d client id %q; want jwth-…", a.status, a.conn.ClientID)
	}
	// The verified-token cache still honours expiry.
	tok := mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("gina", "exp", clock.Now().Add(2*time.Minute).Unix()))
	if a := ts.post(t, tok, viewer); a.status != 200 {
		t.Fatalf("fresh token = %d", a.status)
	}
	clock.Advance(3 * time.Minute)
	if a := ts.post(t, tok, viewer); a.status != 401 {
		t.Errorf("the same token after its expiry = %d; want 401", a.status)
	}
}

func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	js := newJWKSServer(t, rsaJWK("old", &rsaKey.PublicKey))
	clock := newFakeClock(jwtClockStart.Add(time.Minute))
	ts := startServer(t, jwtConfig(js.URL), Options{Clock: clock.Now, Getenv: getenvHS, HTTPClient: js.Client(), Backend: newFakeBackend("pub-1", "cam-1")})
	viewer := `{"channel":"pub-1","role":"VIEWER"}`
	if a := ts.post(t, mint(t, jwt.SigningMethodRS256, rsaKey, "old", claims("a")), viewer); a.status != 200 {
		t.Fatalf("old key = %d %s", a.status, a.body)
	}
	before := js.fetches.Load()
	// The issuer rotates: a token names a key the server has not seen.
	js.set(rsaJWK("old", &rsaKey.PublicKey), rsaJWK("new", &rsaKey2.PublicKey))
	clock.Advance(2 * time.Minute) // past the minimum interval between fetches
	if a := ts.post(t, mint(t, jwt.SigningMethodRS256, rsaKey2, "new", claims("b")), viewer); a.status != 200 {
		t.Fatalf("new key = %d %s", a.status, a.body)
	}
	if n := js.fetches.Load() - before; n != 1 {
		t.Errorf("rotation caused %d fetches; want 1", n)
	}
	// Unknown key ids do not make the server hammer the issuer.
	before = js.fetches.Load()
	for i := range 5 {
		if a := ts.post(t, mint(t, jwt.SigningMethodRS256, rsaKey2, "bogus"+string(rune('a'+i)), claims("c")), viewer); a.status != 401 {
			t.Errorf("unknown kid = %d; want 401", a.status)
		}
	}
	if n := js.fetches.Load() - before; n > 1 {
		t.Errorf("5 unknown key ids within a minute caused %d fetches; want at most 1", n)
	}
}

// TestJWKSIssuerUnreachable: when the issuer's key set cannot be fetched,
// a token naming an unknown key gets 503 with Retry-After, after a bounded
// wait rather than the whole request timeout; and Close stops the fetch
// under way.
func TestJWKSIssuerUnreachable(t *testing.T) {
	testKeys(t)
	release := make(chan struct{})
	var fetches atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	cfg := jwtConfig(hang.URL)
	cfg.Limits.RequestTimeout = Duration(time.Minute)
	clock := newFakeClock(jwtClockStart.Add(time.Minute))
	ts := startServer(t, cfg, Options{Clock: clock.Now, Getenv: getenvHS, HTTPClient: hang.Client(), Backend: newFakeBackend("pub-1")})
	ts.auth.jwt.keys.wait = 100 * time.Millisecond
	a := ts.post(t, mint(t, jwt.SigningMethodRS256, rsaKey, "r1", claims("alice")), `{"channel":"pub-1","role":"VIEWER"}`)
	if a.status != 503 || a.err.Code != "unavailable" || a.header.Get("Retry-After") == "" {
		t.Errorf("token while the issuer hangs: %d %s Retry-After %q; want 503 unavailable with Retry-After", a.status, a.body, a.header.Get("Retry-After"))
	}
	// An HS256 token needs no key set: it still works.
	if a := ts.post(t, mint(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims("carol")), `{"channel":"pub-1","role":"VIEWER"}`); a.status != 200 {
		t.Errorf("HS256 while the issuer hangs: %d %s", a.status, a.body)
	}
	if fetches.Load() == 0 {
		t.Fatal("no fetch was made")
	}
	done := make(chan struct{})
	go func() { ts.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Close did not stop the fetch under way")
	}
}

func TestBearer(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  *authError
	}{
		{"", "", errNoToken},
		{"Bearer abc.def-ghi_jkl~mno+p/q=", "abc.def-ghi_jkl~mno+p/q=", nil},
		{"bearer abc", "abc", nil},
		{"Bearer  abc", "abc", nil},
		{"Bearer", "", errBadAuth},
		{"Bearer ", "", errBadAuth},
		{"Basic abc", "", errBadAuth},
		{"Bearer a b", "", errBadAuth},
		{"Bearer " + strings.Repeat("a", maxTokenLength+1), "", errBadAuth},
	}
	for _, c := range cases {
		got, err := bearer(c.in)
		if got != c.want || err != c.err {
			t.Errorf("bearer(%.20q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestJWTClientBase(t *testing.T) {
	cases := []struct{ sub, want string }{
		{"alice", "jwt-alice"},
		{"a_b-C9", "jwt-a_b-C9"},
		{"AWS_x", "jwt-AWS_x"},
	}
	for _, c := range cases {
		if got := jwtClientBase(c.sub); got != c.want {
			t.Errorf("jwtClientBase(%q) = %q; want %q", c.sub, got, c.want)
		}
	}
	// Subjects that are not plain names are hashed, under another prefix,
	// so no plain subject can produce the same id.
	for _, sub := range []string{"auth0|123", "a.b", "bob@example.com", strings.Repeat("x", 200)} {
		got := jwtClientBase(sub)
		if !strings.HasPrefix(got, "jwth-") || len(got) != len("jwth-")+24 {
			t.Errorf("jwtClientBase(%q) = %q; want jwth- and 24 hex digits", sub, got)
		}
	}
	if jwtClientBase("a.b") == jwtClientBase("a_b") {
		t.Error("different subjects share a client id")
	}
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	good := rsaJWK("r", &rsaKey.PublicKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name  string
		keys  []map[string]string
		nkeys int
		err   string
	}{
		{"rsa and ec", []map[string]string{good, ecJWK("e", &ecKey.PublicKey)}, 2, ""},
		{"encryption keys skipped", []map[string]string{good, {"kty": "RSA", "use": "enc", "kid": "x", "n": "AQAB", "e": "AQAB"}}, 1, ""},
		{"other curves skipped", []map[string]string{good, {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}}, 1, ""},
		{"small RSA", []map[string]string{rsaJWK("s", &small.PublicKey)}, 0, "2048"},
		{"point off the curve", []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "bad", "x": b64u(make([]byte, 32)), "y": b64u(append(make([]byte, 31), 1))}}, 0, "not on P-256"},
		{"bad base64", []map[string]string{{"kty": "RSA", "kid": "b", "n": "!!", "e": "AQAB"}}, 0, "base64url"},
		{"empty", nil, 0, "no RSA or P-256"},
	}
	for _, c := range cases {
		b, _ := json.Marshal(map[string]any{"keys": c.keys})
		k, err := parseJWKS(b)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v; want one saying %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || len(k) != c.nkeys {
			t.Errorf("%s: %d keys, %v; want %d", c.name, len(k), err, c.nkeys)
		}
	}
}
