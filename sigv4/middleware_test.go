package sigv4_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

var (
	mwKey     = sigv4.Credentials{AccessKeyID: "AKIDMIDDLEWARE", SecretAccessKey: "mw-secret"}
	mwSession = sigv4.Credentials{AccessKeyID: "ASIAMIDDLEWARE", SecretAccessKey: "mw-secret-2", SessionToken: "mw-token"}
	errBroken = errors.New("the key store is down")
)

func mwLookup(_ context.Context, id string) (sigv4.Credentials, error) {
	switch id {
	case mwKey.AccessKeyID:
		return mwKey, nil
	case mwSession.AccessKeyID:
		return mwSession, nil
	case "AKIDBROKEN":
		return sigv4.Credentials{}, errBroken
	}
	return sigv4.Credentials{}, fmt.Errorf("%s: %w", id, sigv4.ErrUnknownAccessKey)
}

// mwServer serves RequireSignature around a handler that echoes who
// signed and the body it read.
func mwServer(t *testing.T, now time.Time) *httptest.Server {
	v := &sigv4.Verifier{Service: "execute-api", Region: "us-east-1", Lookup: mwLookup, Clock: func() time.Time { return now }}
	h := sigv4.RequireSignature(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := sigv4.ResultFromContext(r.Context())
		if !ok {
			http.Error(w, "no result in the context", http.StatusInternalServerError)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s %s %s", res.AccessKeyID, res.Region, res.Service, body)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// An mwRequest is a request to a RequireSignature server, signed or
// presigned by signer and then changed by tamper.
type mwRequest struct {
	method, path, body string
	creds              sigv4.Credentials
	signer             *sigv4.Signer // nil: unsigned
	presign            bool
	tamper             func(*http.Request)
}

// build makes the request to the server at base.
func (m mwRequest) build(t *testing.T, base string) *http.Request {
	t.Helper()
	var body io.Reader
	if m.body != "" {
		body = strings.NewReader(m.body)
	}
	req, err := http.NewRequest(m.method, base+m.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.signer; s != nil {
		if m.presign {
			signed, err := s.PresignURL(context.Background(), m.creds, m.method, req.URL, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if req.URL, err = url.Parse(signed); err != nil {
				t.Fatal(err)
			}
		} else if err := s.SignRequest(context.Background(), m.creds, req, ""); err != nil {
			t.Fatal(err)
		}
	}
	if m.tamper != nil {
		m.tamper(req)
	}
	return req
}

func TestRequireSignature(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	srv := mwServer(t, now)
	signer := func(region string, at time.Time) *sigv4.Signer {
		return &sigv4.Signer{Service: "execute-api", Region: region, Clock: func() time.Time { return at }}
	}
	cases := []struct {
		name       string
		req        mwRequest
		wantStatus int
		wantType   string
		wantBody   string // the echo, or a phrase of the message
	}{
		{"signed GET", mwRequest{method: "GET", path: "/pets?kind=cat", creds: mwKey, signer: signer("us-east-1", now)}, 200, "", "AKIDMIDDLEWARE us-east-1 execute-api "},
		{"signed POST with a body", mwRequest{method: "POST", path: "/pets", body: `{"name":"Tom"}`, creds: mwKey, signer: signer("us-east-1", now)}, 200, "", `AKIDMIDDLEWARE us-east-1 execute-api {"name":"Tom"}`},
		{"session credentials", mwRequest{method: "POST", path: "/pets", body: "x", creds: mwSession, signer: signer("us-east-1", now)}, 200, "", "ASIAMIDDLEWARE us-east-1 execute-api x"},
		{"presigned URL", mwRequest{method: "GET", path: "/pets", creds: mwSession, signer: signer("us-east-1", now), presign: true}, 200, "", "ASIAMIDDLEWARE us-east-1 execute-api "},
		{"unsigned", mwRequest{method: "GET", path: "/pets"}, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"body changed after signing", mwRequest{method: "POST", path: "/pets", body: "a", creds: mwKey, signer: signer("us-east-1", now),
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("b")) }}, 403, "InvalidSignatureException", "does not match"},
		{"content hash header lies", mwRequest{method: "POST", path: "/pets", body: "a", creds: mwKey, signer: signer("us-east-1", now),
			tamper: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader("b"))
				r.Header.Set("X-Amz-Content-Sha256", sigv4.EmptyPayloadHash)
			}},
			403, "InvalidSignatureException", "x-amz-content-sha256"},
		{"path changed", mwRequest{method: "GET", path: "/pets", creds: mwKey, signer: signer("us-east-1", now),
			tamper: func(r *http.Request) { r.URL.Path = "/admin" }}, 403, "InvalidSignatureException", "signature we calculated does not match"},
		{"wrong secret", mwRequest{method: "GET", path: "/", creds: sigv4.Credentials{AccessKeyID: mwKey.AccessKeyID, SecretAccessKey: "wrong"}, signer: signer("us-east-1", now)}, 403, "InvalidSignatureException", "does not match"},
		{"unknown key", mwRequest{method: "GET", path: "/", creds: sigv4.Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: "x"}, signer: signer("us-east-1", now)}, 403, "UnrecognizedClientException", "security token included in the request is invalid"},
		{"wrong token", mwRequest{method: "GET", path: "/", creds: sigv4.Credentials{AccessKeyID: mwSession.AccessKeyID, SecretAccessKey: mwSession.SecretAccessKey, SessionToken: "forged"}, signer: signer("us-east-1", now)}, 403, "UnrecognizedClientException", "invalid"},
		{"wrong region", mwRequest{method: "GET", path: "/", creds: mwKey, signer: signer("eu-west-1", now)}, 403, "InvalidSignatureException", "Credential should be scoped to a valid region"},
		{"signed too long ago", mwRequest{method: "GET", path: "/", creds: mwKey, signer: signer("us-east-1", now.Add(-10*time.Minute))}, 403, "InvalidSignatureException", "Signature expired"},
		{"signed in the future", mwRequest{method: "GET", path: "/", creds: mwKey, signer: signer("us-east-1", now.Add(10*time.Minute))}, 403, "InvalidSignatureException", "Signature not yet current"},
		{"presigned URL expired", mwRequest{method: "GET", path: "/", creds: mwKey, signer: signer("us-east-1", now.Add(-time.Hour)), presign: true}, 403, "InvalidSignatureException", "Signature expired"},
		{"key store down", mwRequest{method: "GET", path: "/", creds: sigv4.Credentials{AccessKeyID: "AKIDBROKEN", SecretAccessKey: "x"}, signer: signer("us-east-1", now)}, 500, "InternalServerErrorException", "Internal server error"},
		{"malformed authorization", mwRequest{method: "GET", path: "/", tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }}, 403, "IncompleteSignatureException", "SignedHeaders"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req.build(t, srv.URL)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s); want %d", resp.StatusCode, got, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				if string(got) != tc.wantBody {
					t.Errorf("body %q; want %q", got, tc.wantBody)
				}
				return
			}
			var msg struct{ Message string }
			if err := json.Unmarshal(got, &msg); err != nil || !strings.Contains(msg.Message, tc.wantBody) {
				t.Errorf("body %s; want JSON {\"message\"} containing %q", got, tc.wantBody)
			}
			if typ := resp.Header.Get("x-amzn-ErrorType"); typ != tc.wantType {
				t.Errorf("x-amzn-ErrorType %q; want %q", typ, tc.wantType)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			for _, secret := range []string{"mw-secret", "mw-token", "forged", errBroken.Error()} {
				if strings.Contains(string(got), secret) {
					t.Errorf("the answer %s holds %q", got, secret)
				}
			}
		})
	}
}

func TestRequireSignatureBodyLimit(t *testing.T) {
	now := time.Now()
	srv := mwServer(t, now)
	req, _ := http.NewRequest("POST", srv.URL+"/upload", strings.NewReader(strings.Repeat("x", sigv4.MaxSignedBody+1)))
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", Clock: func() time.Time { return now }}
	if err := s.SignRequest(context.Background(), mwKey, req, sigv4.UnsignedPayload); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d for a body over the limit; want 413", resp.StatusCode)
	}
}

func TestResultFromContextEmpty(t *testing.T) {
	if r, ok := sigv4.ResultFromContext(context.Background()); ok || r != nil {
		t.Errorf("ResultFromContext(empty) = %v, %v; want nil, false", r, ok)
	}
}
