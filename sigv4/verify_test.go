package sigv4_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvssign/kvssign/sigv4"
)

var (
	t0    = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	creds = sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	temp  = sigv4.Credentials{AccessKeyID: "ASIAEXAMPLETEMPORARY", SecretAccessKey: "temporarysecret/abc+def", SessionToken: "FwoGZXIvYXdzE+/token==", Expires: t0.Add(time.Hour)}
)

func lookup(_ context.Context, id string) (sigv4.Credentials, error) {
	switch id {
	case creds.AccessKeyID:
		return creds, nil
	case temp.AccessKeyID:
		return temp, nil
	}
	return sigv4.Credentials{}, fmt.Errorf("no key %s: %w", id, sigv4.ErrUnknownAccessKey)
}

func verifier(now time.Time) *sigv4.Verifier {
	return &sigv4.Verifier{Service: "kinesisvideo", Region: "us-west-2", Lookup: lookup, Clock: func() time.Time { return now }}
}

const channelQuery = "X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fdemo%2F1700000000000&X-Amz-ClientId=viewer-1"

// presigned returns a URL signed by this package.
func presigned(t *testing.T, c sigv4.Credentials, rawURL string, at time.Time, expires time.Duration) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return at }}
	out, err := s.PresignURL(context.Background(), c, http.MethodGet, u, expires)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sdkPresigned returns the same URL signed by aws-sdk-go-v2.
func sdkPresigned(t *testing.T, c sigv4.Credentials, rawURL string, at time.Time, expires time.Duration) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires/time.Second)))
	u.RawQuery = q.Encode()
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	out, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
		req, sigv4.EmptyPayloadHash, "kinesisvideo", "us-west-2", at)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyPresignedAccepts(t *testing.T) {
	cases := []struct {
		name, url string
		c         sigv4.Credentials
	}{
		{"viewer", "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?" + channelQuery, creds},
		{"temporary credentials", "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?" + channelQuery, temp},
		{"port and path", "ws://127.0.0.1:8443/signaling/viewer/x?" + channelQuery, temp},
		{"space and tilde", "https://example.com/a%20b~c/?q=a%20b~c&r=", creds},
	}
	for _, c := range cases {
		for _, signer := range []struct {
			name string
			sign func(*testing.T, sigv4.Credentials, string, time.Time, time.Duration) string
		}{{"kvssign", presigned}, {"aws-sdk-go-v2", sdkPresigned}} {
			t.Run(c.name+"/"+signer.name, func(t *testing.T) {
				signed := signer.sign(t, c.c, c.url, t0, 299*time.Second)
				for _, at := range []time.Duration{-5 * time.Minute, 0, 299 * time.Second} {
					res, err := verifier(t0.Add(at)).VerifyPresigned(context.Background(), httptest.NewRequest(http.MethodGet, signed, nil))
					if err != nil {
						t.Fatalf("at %v: %v\nurl: %s", at, err, signed)
					}
					if res.AccessKeyID != c.c.AccessKeyID || !res.SignedAt.Equal(t0) || !res.ExpiresAt.Equal(t0.Add(299*time.Second)) {
						t.Errorf("result %+v", res)
					}
				}
			})
		}
	}
}

// TestVerifyPresignedRejectsEveryChange changes every character of the
// signature, of each signed parameter's value and of the host, one at a
// time, and expects each change to be refused.
func TestVerifyPresignedRejectsEveryChange(t *testing.T) {
	signed := presigned(t, temp, "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com:8443/?"+channelQuery, t0, 299*time.Second)
	v := verifier(t0.Add(time.Minute))
	check := func(t *testing.T, what, mutated string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, mutated, nil)
		if _, err := v.VerifyPresigned(context.Background(), req); err == nil {
			t.Errorf("%s: accepted %s", what, mutated)
		} else if !errors.As(err, new(*sigv4.Error)) {
			t.Errorf("%s: error %v is not a *sigv4.Error", what, err)
		}
	}
	u, _ := url.Parse(signed)
	// Each parameter value, raw in the query.
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, val, _ := strings.Cut(kv, "=")
		for i := range len(val) {
			for _, repl := range []byte{'A', '0'} {
				if val[i] == repl {
					continue
				}
				m := val[:i] + string(repl) + val[i+1:]
				check(t, k, strings.Replace(signed, kv, k+"="+m, 1))
			}
		}
	}
	// Each character of the host.
	for i := range len(u.Host) {
		h := []byte(u.Host)
		if h[i] == '1' {
			h[i] = '2'
		} else {
			h[i] = '1'
		}
		m := *u
		m.Host = string(h)
		check(t, "host", m.String())
	}
	// The path and the method.
	m := *u
	m.Path = "/x"
	check(t, "path", m.String())
	req := httptest.NewRequest(http.MethodPost, signed, nil)
	if _, err := v.VerifyPresigned(context.Background(), req); !errors.Is(err, sigv4.ErrSignatureMismatch) {
		t.Errorf("POST with a GET URL: %v", err)
	}
}

func TestVerifyPresignedErrors(t *testing.T) {
	good := presigned(t, temp, "wss://v-1.example.com/?"+channelQuery, t0, 60*time.Second)
	otherToken := temp
	otherToken.SessionToken = "another-token"
	otherRegion := &sigv4.Signer{Service: "kinesisvideo", Region: "eu-west-1", Clock: func() time.Time { return t0 }}
	otherService := &sigv4.Signer{Service: "execute-api", Region: "us-west-2", Clock: func() time.Time { return t0 }}
	signWith := func(s *sigv4.Signer) string {
		u, _ := url.Parse("wss://v-1.example.com/?" + channelQuery)
		out, err := s.PresignURL(context.Background(), creds, http.MethodGet, u, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	unknown := creds
	unknown.AccessKeyID = "AKIANOTKNOWN"
	expiredCreds := temp
	cases := []struct {
		name string
		url  string
		now  time.Time
		want error
		text string
	}{
		{"expired", good, t0.Add(61 * time.Second), sigv4.ErrExpired, "Signature expired"},
		{"not yet valid", good, t0.Add(-5*time.Minute - time.Second), sigv4.ErrNotYetValid, "Signature not yet current"},
		{"token expired", presigned(t, temp, "wss://v-1.example.com/?"+channelQuery, t0, 2*time.Hour), expiredCreds.Expires, sigv4.ErrExpiredToken, "expired"},
		{"wrong token", presigned(t, otherToken, "wss://v-1.example.com/?"+channelQuery, t0, time.Minute), t0, sigv4.ErrInvalidToken, "invalid"},
		{"unknown key", presigned(t, unknown, "wss://v-1.example.com/?"+channelQuery, t0, time.Minute), t0, sigv4.ErrUnknownAccessKey, "invalid"},
		{"wrong region", signWith(otherRegion), t0, sigv4.ErrWrongScope, "region"},
		{"wrong service", signWith(otherService), t0, sigv4.ErrWrongScope, "service"},
		{"no signature", strings.Split(good, "&X-Amz-Signature=")[0], t0, sigv4.ErrMalformed, "X-Amz-Signature"},
		{"bad expires", strings.Replace(good, "X-Amz-Expires=60", "X-Amz-Expires=abc", 1), t0, sigv4.ErrMalformed, "X-Amz-Expires"},
		{"bad date", strings.Replace(good, "X-Amz-Date=20261123T100000Z", "X-Amz-Date=2026-11-23", 1), t0, sigv4.ErrMalformed, "X-Amz-Date"},
		{"twice", good + "&X-Amz-Date=20261123T100000Z", t0, sigv4.ErrMalformed, "more than once"},
		{"bad escape", good + "&a=%zz", t0, sigv4.ErrMalformed, "percent-encoding"},
	}
	if !expiredCreds.Expires.After(t0) {
		t.Fatal("test credentials must outlive t0")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, c.url, nil)
			_, err := verifier(c.now).VerifyPresigned(context.Background(), req)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v; want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("err = %q; want it to mention %q", err, c.text)
			}
			for _, secret := range []string{temp.SecretAccessKey, temp.SessionToken, otherToken.SessionToken, creds.SecretAccessKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	body := `{"ChannelName":"demo"}`
	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://kinesisvideo.us-west-2.amazonaws.com/describeSignalingChannel?x=1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	ours := newReq()
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return t0 }}
	if err := s.SignRequest(context.Background(), temp, ours, ""); err != nil {
		t.Fatal(err)
	}
	sdk := newReq()
	h := sha256.Sum256([]byte(body))
	sum := hex.EncodeToString(h[:])
	if err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: temp.AccessKeyID, SecretAccessKey: temp.SecretAccessKey, SessionToken: temp.SessionToken},
		sdk, sum, "kinesisvideo", "us-west-2", t0); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*http.Request{"kvssign": ours, "aws-sdk-go-v2": sdk} {
		t.Run(name, func(t *testing.T) {
			// The server sees the request as it arrives: no scheme in the URL.
			r.URL.Scheme, r.URL.Host = "", ""
			payload := ""
			if name == "aws-sdk-go-v2" {
				payload = sum // the SDK sends no X-Amz-Content-Sha256: a server hashes the body or is told the hash
			}
			res, err := verifier(t0.Add(4*time.Minute)).VerifyRequest(context.Background(), r, payload)
			if err != nil {
				t.Fatalf("VerifyRequest: %v", err)
			}
			if res.AccessKeyID != temp.AccessKeyID {
				t.Errorf("access key %q", res.AccessKeyID)
			}
			if _, err := verifier(t0.Add(6*time.Minute)).VerifyRequest(context.Background(), r, payload); !errors.Is(err, sigv4.ErrExpired) {
				t.Errorf("6 minutes later: %v; want ErrExpired", err)
			}
			r.Header.Set("Content-Type", "text/plain")
			if _, err := verifier(t0).VerifyRequest(context.Background(), r, payload); !errors.Is(err, sigv4.ErrSignatureMismatch) {
				t.Errorf("changed signed header: %v; want ErrSignatureMismatch", err)
			}
		})
	}
}

func TestVerifyRequestBodyTampered(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "https://example.com/", strings.NewReader("hello"))
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return t0 }}
	if err := s.SignRequest(context.Background(), creds, r, ""); err != nil {
		t.Fatal(err)
	}
	r.URL.Scheme, r.URL.Host = "", ""
	if _, err := verifier(t0).VerifyRequest(context.Background(), r, ""); err != nil {
		t.Fatalf("untouched body: %v", err)
	}
	r.Body = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hellO")).Body
	if _, err := verifier(t0).VerifyRequest(context.Background(), r, ""); !errors.Is(err, sigv4.ErrSignatureMismatch) {
		t.Fatalf("tampered body: %v; want ErrSignatureMismatch", err)
	}
}

// TestVerifyRequestContentSHA256 swaps the body of a signed request and
// claims the original body's hash in X-Amz-Content-Sha256, signed or not:
// the verifier must hash the body it got and refuse. UNSIGNED-PAYLOAD
// counts only when the header is signed.
func TestVerifyRequestContentSHA256(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	sign := func(t *testing.T, body string, signHeader bool, payloadHash string) *http.Request {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "https://example.com/", strings.NewReader(body))
		s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return t0 }, ContentSHA256Header: signHeader}
		if err := s.SignRequest(context.Background(), creds, r, payloadHash); err != nil {
			t.Fatal(err)
		}
		r.URL.Scheme, r.URL.Host = "", ""
		return r
	}
	swap := func(r *http.Request, body string) {
		r.Body = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)).Body
	}
	cases := []struct {
		name    string
		req     func(t *testing.T) *http.Request
		wantErr error // nil: verifies
	}{
		{"unsigned header claims the signed body's hash", func(t *testing.T) *http.Request {
			r := sign(t, "hello", false, "")
			swap(r, "evil")
			r.Header.Set("X-Amz-Content-Sha256", sum("hello"))
			return r
		}, sigv4.ErrSignatureMismatch},
		{"signed header, body swapped", func(t *testing.T) *http.Request {
			r := sign(t, "hello", true, "")
			swap(r, "evil")
			return r
		}, sigv4.ErrSignatureMismatch},
		{"signed header, body kept", func(t *testing.T) *http.Request { return sign(t, "hello", true, "") }, nil},
		{"unsigned UNSIGNED-PAYLOAD", func(t *testing.T) *http.Request {
			r := sign(t, "hello", false, "")
			swap(r, "evil")
			r.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
			return r
		}, sigv4.ErrSignatureMismatch},
		{"signed UNSIGNED-PAYLOAD", func(t *testing.T) *http.Request {
			r := sign(t, "hello", true, sigv4.UnsignedPayload)
			swap(r, "any body")
			return r
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifier(t0).VerifyRequest(context.Background(), c.req(t), "")
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("VerifyRequest: %v; want %v", err, c.wantErr)
			}
		})
	}
}

// TestVerifyPresignedBody: a presigned URL signs a payload hash too. As at
// AWS, it is the body's (the empty body's for a GET), UNSIGNED-PAYLOAD only
// when the signer said so: for S3, or with a signed X-Amz-Content-Sha256.
func TestVerifyPresignedBody(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	cases := []struct {
		name        string
		service     string
		payloadHash string
		header      http.Header
		body        string
		wantErr     error // nil: verifies
	}{
		{"empty body signed, empty body sent", "execute-api", "", nil, "", nil},
		{"empty body signed, another sent", "execute-api", "", nil, "evil", sigv4.ErrSignatureMismatch},
		{"body hash signed, that body sent", "execute-api", sum("hello"), nil, "hello", nil},
		{"body hash signed, another sent", "execute-api", sum("hello"), nil, "evil", sigv4.ErrSignatureMismatch},
		{"unsigned payload without saying so", "execute-api", sigv4.UnsignedPayload, nil, "any", sigv4.ErrSignatureMismatch},
		{"unsigned payload as a signed header", "execute-api", sigv4.UnsignedPayload, http.Header{"X-Amz-Content-Sha256": {sigv4.UnsignedPayload}}, "any", nil},
		{"s3 is unsigned", "s3", sigv4.UnsignedPayload, nil, "any", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &sigv4.Signer{Service: c.service, Region: "us-west-2", Clock: func() time.Time { return t0 }}
			u, err := s.Presign(context.Background(), creds, &sigv4.PresignRequest{Method: http.MethodPost, Scheme: "https", Host: "h.example.com",
				Path: "/upload", Header: c.header, PayloadHash: c.payloadHash, Expires: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, u, strings.NewReader(c.body))
			for k, v := range c.header {
				r.Header[k] = v
			}
			v := &sigv4.Verifier{Lookup: lookup, Clock: func() time.Time { return t0 }}
			_, err = v.VerifyPresigned(context.Background(), r)
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("VerifyPresigned: %v; want %v", err, c.wantErr)
			}
		})
	}
}
