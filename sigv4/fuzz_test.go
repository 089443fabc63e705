package sigv4_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// FuzzVerifyPresigned feeds arbitrary queries and hosts to the verifier: it
// must refuse them with an error, never panic, and never accept a URL
// whose signature it did not compute.
func FuzzVerifyPresigned(f *testing.F) {
	good := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20261123T100000Z&X-Amz-Expires=299&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("0", 64)
	f.Add("example.com", good)
	f.Add("example.com:8443", good+"&X-Amz-Security-Token=abc")
	f.Add("h", "X-Amz-SignedHeaders=host%3Bx&X-Amz-Date=1")
	v := &sigv4.Verifier{Lookup: lookup, Clock: func() time.Time { return t0 }}
	f.Fuzz(func(t *testing.T, host, query string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		req.URL.RawQuery = query
		if _, err := v.VerifyPresigned(context.Background(), req); err == nil {
			t.Fatalf("accepted host %q query %q", host, query)
		}
	})
}

// FuzzTemplate signs a fuzzed query twice, from a template with some
// parameters open and with Signer.Presign given them all: both must refuse
// it, or both sign the same URL.
func FuzzTemplate(f *testing.F) {
	f.Add("X-Amz-ChannelARN=arn%3Aaws&X-Amz-ClientId=v1", uint16(2), "/", "tok+/=", false)
	f.Add("a=1&b=2&X-Amz-T=3&~=4", uint16(5), "/x/../y", "", true)
	f.Add("X-Amz-Date=1", uint16(1), "", "t", false)
	f.Fuzz(func(t *testing.T, rawQuery string, openMask uint16, path, token string, after bool) {
		q, err := sigv4.ParseQuery(rawQuery)
		if err != nil || len(q) > 12 {
			return
		}
		s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", TokenAfterSigning: after, Clock: func() time.Time { return t0 }}
		c := sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: token}
		req := sigv4.PresignRequest{Scheme: "wss", Host: "a.example.com:8443", Path: path, Expires: time.Minute}
		var open, values []string
		for i, p := range q {
			if openMask&(1<<i) != 0 {
				open, values = append(open, p.Name), append(values, p.Value)
			} else {
				req.Query = append(req.Query, p)
			}
		}
		full := req
		full.Query = q
		want, wantErr := s.Presign(context.Background(), c, &full)
		tmpl, err := s.NewTemplate(&req, open...)
		if err != nil {
			// A template refuses what Presign refuses, and also open names
			// that are empty, repeat or are also fixed.
			own := strings.Contains(err.Error(), "is named twice") || strings.Contains(err.Error(), "is also in the query") ||
				strings.Contains(err.Error(), "an open parameter has an empty name")
			if wantErr == nil && !own {
				t.Fatalf("NewTemplate refused what Presign signs: %v", err)
			}
			return
		}
		got, err := tmpl.Presign(context.Background(), c, t0, values...)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("template error %v; Presign error %v", err, wantErr)
		}
		if got != want {
			t.Fatalf("URLs differ\ntemplate: %s\npresign:  %s", got, want)
		}
	})
}
