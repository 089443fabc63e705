package vend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func TestConnectionsStatuses(t *testing.T) {
	ts := startServer(t, baseConfig(), Options{})
	long := `{"channel":"cam-1","role":"VIEWER","clientId":"` + strings.Repeat("x", 5000) + `"}`
	cases := []struct {
		name      string
		token     string
		body      string
		hdr       []string
		wantCode  int
		wantError string // error code
		wantField string
	}{
		{name: "no token", body: `{"channel":"cam-1","role":"VIEWER"}`, wantCode: 401, wantError: "unauthenticated"},
		{name: "unknown token", token: "kvst_not-a-real-token-at-all", body: `{"channel":"cam-1","role":"VIEWER"}`, wantCode: 401, wantError: "unauthenticated"},
		{name: "basic auth", body: `{"channel":"cam-1","role":"VIEWER"}`, hdr: []string{"Authorization", "Basic YWxpY2U6cHc="}, wantCode: 401, wantError: "unauthenticated"},
		{name: "token with bad characters", token: "abc,def", body: `{"channel":"cam-1","role":"VIEWER"}`, wantCode: 401, wantError: "unauthenticated"},
		{name: "channel not allowed", token: tokAlice, body: `{"channel":"garage","role":"VIEWER"}`, wantCode: 403, wantError: "forbidden"},
		{name: "role not allowed", token: tokAlice, body: `{"channel":"cam-1","role":"MASTER"}`, wantCode: 403, wantError: "forbidden"},
		{name: "no rule for caller", token: tokNobody, body: `{"channel":"cam-1","role":"VIEWER"}`, wantCode: 403, wantError: "forbidden"},
		{name: "create not allowed", token: tokAlice, body: `{"channel":"cam-9","role":"VIEWER","create":true}`, wantCode: 403, wantError: "forbidden", wantField: "create"},
		{name: "another caller's client id", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER","clientId":"token-camera1"}`, wantCode: 403, wantError: "forbidden", wantField: "clientId"},
		{name: "prefix of the base id", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER","clientId":"token-alicex"}`, wantCode: 403, wantError: "forbidden", wantField: "clientId"},
		{name: "bad suffix", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.a.b"}`, wantCode: 400, wantError: "invalid_argument", wantField: "clientId"},
		{name: "AWS_ client id", token: tokBackend, body: `{"channel":"cam-1","role":"VIEWER","clientId":"AWS_x"}`, wantCode: 400, wantError: "invalid_argument", wantField: "clientId"},
		{name: "master with client id", token: tokCamera, body: `{"channel":"cam-1","role":"MASTER","clientId":"x"}`, wantCode: 400, wantError: "invalid_argument", wantField: "clientId"},
		{name: "no role", token: tokAlice, body: `{"channel":"cam-1"}`, wantCode: 400, wantError: "invalid_argument", wantField: "role"},
		{name: "bad role", token: tokAlice, body: `{"channel":"cam-1","role":"OBSERVER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "role"},
		{name: "no channel", token: tokAlice, body: `{"role":"VIEWER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "channel"},
		{name: "bad channel name", token: tokAlice, body: `{"channel":"cam 1","role":"VIEWER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "channel"},
		{name: "encoded ARN", token: tokAlice, body: `{"channel":"arn%3Aaws%3Akinesisvideo","role":"VIEWER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "channel"},
		{name: "bad ARN", token: tokAlice, body: `{"channel":"arn:aws:kinesisvideo:us-west-2:123:stream/x/1","role":"VIEWER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "channel"},
		{name: "wrong type", token: tokAlice, body: `{"channel":7,"role":"VIEWER"}`, wantCode: 400, wantError: "invalid_argument", wantField: "channel"},
		{name: "unknown field", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER","expires":3600}`, wantCode: 400, wantError: "invalid_argument", wantField: "expires"},
		{name: "not JSON", token: tokAlice, body: `channel=cam-1`, wantCode: 400, wantError: "invalid_json"},
		{name: "two objects", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER"}{}`, wantCode: 400, wantError: "invalid_json"},
		{name: "array", token: tokAlice, body: `[]`, wantCode: 400, wantError: "invalid_json"},
		{name: "empty body", token: tokAlice, hdr: []string{"Content-Type", "application/json"}, wantCode: 400, wantError: "invalid_json"},
		{name: "wrong content type", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER"}`, hdr: []string{"Content-Type", "text/plain"}, wantCode: 415, wantError: "unsupported_media_type"},
		{name: "too large", token: tokAlice, body: long, wantCode: 413, wantError: "payload_too_large"},
		{name: "missing channel", token: tokCamera, body: `{"channel":"cam-404","role":"MASTER"}`, wantCode: 404, wantError: "channel_not_found", wantField: "channel"},
		{name: "viewer", token: tokAlice, body: `{"channel":"cam-1","role":"viewer"}`, wantCode: 200},
		{name: "viewer with suffix", token: tokAlice, body: `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.tablet"}`, wantCode: 200},
		{name: "viewer by ARN", token: tokAlice, body: `{"channel":"` + testARN("cam-2") + `","role":"VIEWER"}`, wantCode: 200},
		{name: "master", token: tokCamera, body: `{"channel":"cam-2","role":"MASTER"}`, wantCode: 200},
		{name: "content type with charset", token: tokCamera, body: `{"channel":"cam-2","role":"MASTER"}`, hdr: []string{"Content-Type", "application/json; charset=utf-8"}, wantCode: 200},
		{name: "create", token: tokCamera, body: `{"channel":"cam-new","role":"MASTER","create":true}`, wantCode: 200},
		{name: "any client id", token: tokBackend, body: `{"channel":"cam-1","role":"VIEWER","clientId":"user-42"}`, wantCode: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ts.post(t, c.token, c.body, c.hdr...)
			if a.status != c.wantCode {
				t.Fatalf("status = %d; want %d (body %s)", a.status, c.wantCode, a.body)
			}
			if got := a.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", got)
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", got)
			}
			if c.wantCode == 200 {
				return
			}
			if a.err.Code != c.wantError || a.err.Field != c.wantField || a.err.Message == "" {
				t.Errorf("error = %+v; want code %q, field %q and a message", a.err, c.wantError, c.wantField)
			}
			if c.wantField != "" && !strings.Contains(a.err.Message, c.wantField) {
				t.Errorf("message %q does not name the field %q", a.err.Message, c.wantField)
			}
			if c.wantCode == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestConnectionAnswer(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	ts := startServer(t, baseConfig(), Options{Clock: clock.Now})
	a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.phone"}`)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	got := a.conn
	u, err := url.Parse(got.URL)
	if err != nil {
		t.Fatal(err)
	}
	got.URL = ""
	want := connectionResponse{
		ExpiresAt:  clock.Now().Add(kvs.DefaultExpires),
		Role:       kvs.Viewer,
		ClientID:   "token-alice.phone",
		ChannelARN: testARN("cam-1"),
		Region:     testRegion,
		Endpoint:   "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		ICEServers: testICE,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer mismatch (-want +got):\n%s", diff)
	}
	// The URL is what kvs.Presigner signs for the same inputs.
	p := kvs.Presigner{Credentials: testCreds, Clock: clock.Now}
	ref, err := p.Presign(context.Background(), want.Endpoint, want.ChannelARN, kvs.Viewer, want.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if u.String() != ref.URL {
		t.Error("the vended URL differs from kvs.Presigner's")
	}
	// The signature verifies.
	v := sigv4.Verifier{Service: kvs.Service, Region: testRegion, Clock: clock.Now,
		Lookup: func(ctx context.Context, akid string) (sigv4.Credentials, error) { return testCreds, nil }}
	vr, err := http.NewRequest("GET", u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPresigned(context.Background(), vr); err != nil {
		t.Errorf("the vended URL does not verify: %v", err)
	}
	// A viewer asking for no client id gets its base id and a suffix.
	a = ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
	if !strings.HasPrefix(a.conn.ClientID, "token-alice.") || kvs.ValidateClientID(a.conn.ClientID) != nil {
		t.Errorf("default client id = %q; want token-alice.SUFFIX", a.conn.ClientID)
	}
	b := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
	if b.conn.ClientID == a.conn.ClientID {
		t.Error("two sessions of one caller got the same default client id")
	}
	for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy", "X-Frame-Options", "X-Request-Id"} {
		if a.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
}

func TestRoutes(t *testing.T) {
	ts := startServer(t, baseConfig(), Options{})
	cases := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"POST", "/healthz", 405},
		{"GET", "/metrics", 200},
		{"DELETE", "/metrics", 405},
		{"GET", "/v1/connections", 405},
		{"PUT", "/v1/connections", 405},
		{"GET", "/", 404},
		{"GET", "/v1/other", 404},
		{"GET", "/../../etc/passwd", 404},
	}
	for _, c := range cases {
		a := ts.do(t, c.method, c.path, "", "")
		if a.status != c.want {
			t.Errorf("%s %s = %d; want %d", c.method, c.path, a.status, c.want)
		}
		if c.want >= 400 && c.method != "HEAD" && a.err.Code == "" {
			t.Errorf("%s %s: error body %q is not the JSON error shape", c.method, c.path, a.body)
		}
		if c.want == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
	ts.SetDraining(true)
	if a := ts.do(t, "GET", "/readyz", "", ""); a.status != 503 {
		t.Errorf("draining: /readyz = %d; want 503", a.status)
	}
	if a := ts.do(t, "GET", "/healthz", "", ""); a.status != 200 {
		t.Errorf("draining: /healthz = %d; want 200", a.status)
	}
	if a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`); a.status != 200 {
		t.Errorf("draining: requests are still answered; got %d", a.status)
	}
}

func TestStatic(t *testing.T) {
	fsys := fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>demo</title>")}, "app.js": {Data: []byte("console.log(1)")}}
	ts := startServer(t, baseConfig(), Options{Static: http.FS(fsys)})
	if a := ts.do(t, "GET", "/", "", ""); a.status != 200 || !strings.Contains(string(a.body), "demo") {
		t.Errorf("GET / = %d %q; want the page", a.status, a.body)
	}
	if a := ts.do(t, "GET", "/app.js", "", ""); a.status != 200 {
		t.Errorf("GET /app.js = %d", a.status)
	}
	if a := ts.do(t, "GET", "/v1/nothing", "", ""); a.status != 404 || a.err.Code != "not_found" {
		t.Errorf("GET /v1/nothing = %d %s; want the API's 404", a.status, a.body)
	}
	// The page's own origin may call the API.
	host := strings.TrimPrefix(ts.URL, "http://")
	if a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`, "Origin", "http://"+host); a.status != 200 {
		t.Errorf("same-origin POST = %d %s", a.status, a.body)
	}
}

func TestCORS(t *testing.T) {
	cfg := baseConfig()
	cfg.CORS = CORS{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}, MaxAge: Duration(5 * time.Minute)}
	ts := startServer(t, cfg, Options{})
	self := strings.TrimPrefix(ts.URL, "http://")
	body := `{"channel":"cam-1","role":"VIEWER"}`
	cases := []struct {
		origin string
		ok     bool
	}{
		{"https://app.example.com", true},
		{"http://" + self, true},
		{"ftp://" + self, false},
		{"javascript://" + self, false},
		{"http://" + self + "/", false},
		{"https://evil.com?.example.org", false},
		{"https://evil.com/.example.org", false},
		{"https://evil.com#.example.org", false},
		{"https://user@a.example.org", false},
		{"https://evil.com\\.example.org", false},
		{"https://a.example.org:8443", false},
		{"https://app.example.com:443", false},
		{"https://app.example.com/", false},
		{"https://APP.example.com", false},
		{"https://.example.org", false},
		{"https://a..example.org", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://example.org", false},
		{"http://app.example.com", false},
		{"https://app.example.com.evil.test", false},
		{"https://evilexample.org", false},
		{"null", false},
	}
	for _, c := range cases {
		pre := ts.do(t, "OPTIONS", "/v1/connections", "", "", "Origin", c.origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		post := ts.post(t, tokAlice, body, "Origin", c.origin)
		if c.ok {
			if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != c.origin || pre.header.Get("Access-Control-Max-Age") != "300" ||
				!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight from %s = %d %v; want 204 allowing it", c.origin, pre.status, pre.header)
			}
			if post.status != 200 || post.header.Get("Access-Control-Allow-Origin") != c.origin || !strings.Contains(post.header.Get("Vary"), "Origin") {
				t.Errorf("POST from %s = %d %v; want 200 with CORS headers", c.origin, post.status, post.header)
			}
			continue
		}
		if pre.status != 403 || pre.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s = %d (ACAO %q); want 403 without CORS headers", c.origin, pre.status, pre.header.Get("Access-Control-Allow-Origin"))
		}
		if post.status != 403 || post.err.Code != "origin_not_allowed" {
			t.Errorf("POST from %s = %d %s; want 403 origin_not_allowed", c.origin, post.status, post.body)
		}
	}
	// No Origin: not a browser, no CORS.
	if a := ts.post(t, tokAlice, body); a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST without Origin = %d, ACAO %q", a.status, a.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestRateLimits(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	cfg := baseConfig()
	cfg.Limits.PerPrincipal = Rate{PerSecond: 1, Burst: 3}
	cfg.Limits.PerIP = Rate{PerSecond: 2, Burst: 6}
	ts := startServer(t, cfg, Options{Clock: clock.Now})
	body := `{"channel":"cam-1","role":"VIEWER"}`
	for i := range 3 {
		if a := ts.post(t, tokAlice, body); a.status != 200 {
			t.Fatalf("request %d = %d; want 200", i, a.status)
		}
	}
	a := ts.post(t, tokAlice, body)
	if a.status != 429 || a.err.Code != "rate_limited" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("over the caller limit: %d %s Retry-After %q; want 429 with Retry-After 1", a.status, a.body, a.header.Get("Retry-After"))
	}
	// Another caller from the same address still has its own budget, until
	// the address's runs out (3 + 1 + 2 = 6 requests so far counts 5).
	if a := ts.post(t, tokBackend, body); a.status != 200 {
		t.Fatalf("another caller = %d; want 200", a.status)
	}
	if a := ts.post(t, tokBackend, body); a.status != 200 {
		t.Fatalf("another caller = %d; want 200", a.status)
	}
	a = ts.post(t, tokBackend, body)
	if a.status != 429 || !strings.Contains(a.err.Message, "address") {
		t.Fatalf("over the address limit: %d %s; want 429 for the address", a.status, a.body)
	}
	// Unauthenticated requests spend the address's budget too.
	if a := ts.post(t, "kvst_guess", body); a.status != 429 {
		t.Errorf("guessing tokens over the limit = %d; want 429", a.status)
	}
	clock.Advance(time.Second)
	if a := ts.post(t, tokAlice, body); a.status != 200 {
		t.Errorf("after a second = %d; want 200", a.status)
	}
	metrics := ts.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{`kvssign_vend_rate_limited_total{limit="ip"}`, `kvssign_vend_rate_limited_total{limit="principal"} 1`, `kvssign_vend_requests_total{code="429",route="connections"}`} {
		if !strings.Contains(string(metrics.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg := baseConfig()
	cfg.TrustedProxies = []string{"127.0.0.1"}
	cfg.Limits.PerIP = Rate{PerSecond: 1, Burst: 1}
	ts := startServer(t, cfg, Options{})
	body := `{"channel":"cam-1","role":"VIEWER"}`
	// Each forwarded client has its own budget; a forged left-most entry
	// does not matter.
	for _, xff := range []string{"203.0.113.1", "203.0.113.2", "198.51.100.7, 203.0.113.3"} {
		if a := ts.post(t, tokAlice, body, "X-Forwarded-For", xff); a.status != 200 {
			t.Errorf("X-Forwarded-For %s = %d; want 200", xff, a.status)
		}
	}
	if a := ts.post(t, tokAlice, body, "X-Forwarded-For", "198.51.100.9, 203.0.113.1"); a.status != 429 {
		t.Errorf("the same client again = %d; want 429", a.status)
	}
	if !strings.Contains(ts.logs.String(), `"ip":"203.0.113.1"`) {
		t.Error("logs do not show the forwarded client address")
	}
}

func TestBackendErrors(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		retryAfter string
	}{
		{"throttled", fmt.Errorf("describe: %w", ErrUnavailable), 503, "unavailable", "2"},
		{"retry hint", retryIn{ErrUnavailable, 7 * time.Second}, 503, "unavailable", "7"},
		{"deadline", context.DeadlineExceeded, 503, "unavailable", "2"},
		{"invalid", fmt.Errorf("x: %w", ErrInvalid), 400, "invalid_argument", ""},
		{"denied", errors.New("AccessDeniedException: User: arn:aws:iam::123456789012:user/vend is not authorized"), 502, "upstream_error", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fb := newFakeBackend("cam-1")
			fb.err = c.err
			ts := startServer(t, baseConfig(), Options{Backend: fb})
			a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
			if a.status != c.wantStatus || a.err.Code != c.wantCode || a.header.Get("Retry-After") != c.retryAfter {
				t.Errorf("got %d %s Retry-After %q; want %d %s %q", a.status, a.body, a.header.Get("Retry-After"), c.wantStatus, c.wantCode, c.retryAfter)
			}
			if strings.Contains(string(a.body), "arn:aws:iam") || strings.Contains(string(a.body), "AccessDenied") {
				t.Errorf("the answer shows internals: %s", a.body)
			}
		})
	}
}

type retryIn struct {
	err error
	d   time.Duration
}

func (r retryIn) Error() string             { return r.err.Error() }
func (r retryIn) Unwrap() error             { return r.err }
func (r retryIn) RetryAfter() time.Duration { return r.d }

// panicBackend panics, as a bug would.
type panicBackend struct{}

func (panicBackend) Forget(string) {}

func (panicBackend) Connection(context.Context, string, kvs.Role, bool) (Target, error) {
	panic("bug")
}

func TestPanicKeepsServing(t *testing.T) {
	ts := startServer(t, baseConfig(), Options{Backend: panicBackend{}})
	for range 2 {
		a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER"}`)
		if a.status != 500 || a.err.Code != "internal" || strings.Contains(string(a.body), "bug") {
			t.Errorf("after a panic: %d %s; want a bare 500", a.status, a.body)
		}
	}
	if a := ts.do(t, "GET", "/healthz", "", ""); a.status != 200 {
		t.Errorf("healthz after panics = %d", a.status)
	}
}

func TestAuditLine(t *testing.T) {
	auditTestRan.Store(true)
	ts := startServer(t, baseConfig(), Options{})
	a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.tv"}`)
	if a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	var found bool
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "vended" {
			continue
		}
		found = true
		want := map[string]any{"principal": "token:alice", "channel": "cam-1", "role": "VIEWER", "clientId": "token-alice.tv", "channelArn": testARN("cam-1"), "ip": "127.0.0.1"}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("audit %s = %v; want %v", k, rec[k], v)
			}
		}
		if strings.Contains(line, "Signature") || strings.Contains(line, "wss://") {
			t.Errorf("audit line holds the URL: %s", line)
		}
	}
	if !found {
		t.Errorf("no audit line in %s", ts.logs.String())
	}
}

// TestAuditLineFields: the audit line's keys, in order, and its source
// for a handler that adds one, as slog.Logger.LogAttrs would give it.
func TestAuditLineFields(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{AddSource: true}))
	ts := startServer(t, baseConfig(), Options{Logger: log})
	for range 2 { // the source is found on the first line, then kept
		if a := ts.post(t, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.tv"}`); a.status != 200 {
			t.Fatalf("status %d", a.status)
		}
	}
	wantKeys := []string{"time", "level", "source", "msg", "requestId", "principal", "channel", "channelArn", "role", "clientId", "ip", "cached", "expiresAt"}
	var lines int
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(line, `"msg":"vended"`) {
			continue
		}
		lines++
		var keys []string
		dec := json.NewDecoder(strings.NewReader(line))
		dec.Token() // {
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		if diff := cmp.Diff(wantKeys, keys); diff != "" {
			t.Errorf("audit line keys (-want +got):\n%s", diff)
		}
		var rec struct{ Source slog.Source }
		json.Unmarshal([]byte(line), &rec)
		if rec.Source.Function != "github.com/kvssign/kvssign/vend.(*Server).vend" || !strings.HasSuffix(rec.Source.File, "/vend/server.go") || rec.Source.Line == 0 {
			t.Errorf("audit line source = %+v; want the call in (*Server).vend", rec.Source)
		}
	}
	if lines != 2 {
		t.Errorf("%d audit lines; want 2 in %s", lines, buf.String())
	}
}

func TestIPString(t *testing.T) {
	cases := []struct{ remote, ip, want string }{
		{"127.0.0.1:40000", "127.0.0.1", "127.0.0.1"},
		{"[::1]:40000", "::1", "::1"},
		{"[::ffff:192.0.2.1]:40000", "192.0.2.1", "192.0.2.1"},
		{"10.0.0.1:443", "203.0.113.7", "203.0.113.7"}, // from X-Forwarded-For
		{"[2001:db8::1]:443", "203.0.113.7", "203.0.113.7"},
		{"", "192.0.2.1", "192.0.2.1"},
	}
	for _, c := range cases {
		if got := ipString(c.remote, netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("ipString(%q, %s) = %q; want %q", c.remote, c.ip, got, c.want)
		}
	}
	ip := netip.MustParseAddr("127.0.0.1")
	if n := testing.AllocsPerRun(100, func() { ipString("127.0.0.1:40000", ip) }); n != 0 {
		t.Errorf("ipString of an IPv4 peer: %v allocations; want 0", n)
	}
}

// TestConcurrentRequests runs requests in parallel under the race
// detector.
func TestConcurrentRequests(t *testing.T) {
	ts := startServer(t, baseConfig(), Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				tok, body := tokAlice, `{"channel":"cam-1","role":"VIEWER"}`
				if (w+i)%3 == 0 {
					tok, body = tokCamera, `{"channel":"cam-2","role":"MASTER"}`
				}
				if a := ts.post(t, tok, body); a.status != 200 {
					errs <- fmt.Sprintf("status %d: %s", a.status, a.body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestForeignARNs: a caller's ARN cannot make the server sign for, and
// call, another partition, region or account. It is refused before any
// AWS call, with the field and the rule, and logged as a refused request,
// not as the operator's error.
func TestForeignARNs(t *testing.T) {
	arn := func(partition, region, account string) string {
		return "arn:" + partition + ":kinesisvideo:" + region + ":" + account + ":channel/cam-1/1700000000000"
	}
	cfg := baseConfig()
	cfg.Region = testRegion
	backend := newFakeBackend("cam-1")
	ts := startServer(t, cfg, Options{Backend: backend})
	other := "210987654321"
	cases := []struct {
		name, channel, rule string
		status              int
	}{
		{"other region", arn("aws", "eu-west-1", "123456789012"), `region "eu-west-1": must be one this server serves (us-west-2)`, 403},
		{"other partition", arn("aws-cn", "cn-north-1", "123456789012"), `region "cn-north-1": must be one this server serves (us-west-2)`, 403},
		{"partition not the region's", arn("aws-cn", testRegion, "123456789012"), `partition "aws-cn": must be aws, the partition of us-west-2`, 403},
		// Until the server has resolved a name, it does not know its
		// account.
		{"other account, not yet known", arn("aws", testRegion, other), "", 200},
		{"by name", "cam-1", "", 200},
		{"other account", arn("aws", testRegion, other), `account "210987654321": must be one this server serves (123456789012)`, 403},
		{"own account", arn("aws", testRegion, "123456789012"), "", 200},
	}
	for _, c := range cases {
		backend.mu.Lock()
		before := backend.calls
		backend.mu.Unlock()
		a := ts.post(t, tokAlice, `{"channel":"`+c.channel+`","role":"VIEWER"}`)
		if a.status != c.status {
			t.Fatalf("%s: status %d; want %d (%s)", c.name, a.status, c.status, a.body)
		}
		if c.status == 200 {
			continue
		}
		if a.err.Code != "forbidden" || a.err.Field != "channel" || a.err.Message != "channel: "+c.rule {
			t.Errorf("%s: %+v; want forbidden on channel with %q", c.name, a.err, "channel: "+c.rule)
		}
		backend.mu.Lock()
		if backend.calls != before {
			t.Errorf("%s: the backend was called", c.name)
		}
		backend.mu.Unlock()
	}

	// A configured list is used from the start.
	cfg.ARNAccounts = []string{"123456789012"}
	cfg.ARNRegions = []string{testRegion, "eu-west-1"}
	ts = startServer(t, cfg, Options{Backend: newFakeBackend("cam-1")})
	if a := ts.post(t, tokAlice, `{"channel":"`+arn("aws", testRegion, other)+`","role":"VIEWER"}`); a.status != 403 {
		t.Errorf("another account with arnAccounts set: %d %s; want 403", a.status, a.body)
	}
	if a := ts.post(t, tokAlice, `{"channel":"`+arn("aws", "eu-west-1", "123456789012")+`","role":"VIEWER"}`); a.status != 200 {
		t.Errorf("a listed region: %d %s; want 200", a.status, a.body)
	}

	// AWS denying access to a caller's ARN is the caller's problem.
	backend = newFakeBackend("cam-1")
	backend.err = errors.Join(ErrForbidden, errors.New("AccessDeniedException: not authorized"))
	ts = startServer(t, baseConfig(), Options{Backend: backend})
	if a := ts.post(t, tokAlice, `{"channel":"`+arn("aws", testRegion, other)+`","role":"VIEWER"}`); a.status != 403 || a.err.Field != "channel" {
		t.Errorf("AWS denied a caller's ARN: %d %s; want 403 on channel", a.status, a.body)
	}
	if logs := ts.logs.String(); strings.Contains(logs, `"level":"ERROR"`) || strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("a caller's mistake logged as the operator's:\n%s", logs)
	}
}
