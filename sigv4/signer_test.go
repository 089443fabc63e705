package sigv4_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/sigv4"
)

func TestParseQuery(t *testing.T) {
	cases := []struct {
		raw     string
		want    []sigv4.Param
		wantErr string
	}{
		{"", nil, ""},
		{"a=1&b=2", []sigv4.Param{{"a", "1"}, {"b", "2"}}, ""},
		{"flag&x=", []sigv4.Param{{"flag", ""}, {"x", ""}}, ""},
		{"t=abc%3D%3D&u=a=b==", []sigv4.Param{{"t", "abc=="}, {"u", "a=b=="}}, ""},
		{"arn=arn%253Aaws", []sigv4.Param{{"arn", "arn%3Aaws"}}, ""}, // decoded once only
		{"s=a+b%20c", []sigv4.Param{{"s", "a b c"}}, ""},
		{"a=1&&b=2", []sigv4.Param{{"a", "1"}, {"b", "2"}}, ""},
		{"a=1&a=0", []sigv4.Param{{"a", "1"}, {"a", "0"}}, ""},
		{"bad=%G1", nil, `query parameter "bad": invalid percent-encoding "%G1"`},
		{"bad=%4", nil, `query parameter "bad": invalid percent-encoding "%4"`},
	}
	for _, c := range cases {
		got, err := sigv4.ParseQuery(c.raw)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseQuery(%q) error = %v; want %q", c.raw, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", c.raw, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseQuery(%q) mismatch (-want +got):\n%s", c.raw, diff)
		}
	}
}

func TestPresignURLRefuses(t *testing.T) {
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", Clock: func() time.Time { return t0 }}
	cases := []struct {
		name, url string
		expires   time.Duration
		creds     sigv4.Credentials
		want      string
	}{
		{"caller sets X-Amz-Date", "wss://a.example.com/?X-Amz-Date=20200101T000000Z", time.Minute, creds, `"X-Amz-Date": is set by the signer`},
		{"caller sets lower-case x-amz-expires", "wss://a.example.com/?x-amz-expires=5", time.Minute, creds, `"x-amz-expires": is set by the signer`},
		{"already signed", "wss://a.example.com/?X-Amz-Signature=abc", time.Minute, creds, `"X-Amz-Signature": is set by the signer`},
		{"expires too long", "wss://a.example.com/", 8 * 24 * time.Hour, creds, "expires 192h0m0s: must be from 1s"},
		{"expires zero", "wss://a.example.com/", 0, creds, "expires 0s"},
		{"fractional expires", "wss://a.example.com/", 1500 * time.Millisecond, creds, "whole seconds"},
		{"ftp", "ftp://a.example.com/", time.Minute, creds, `scheme "ftp"`},
		{"user info", "wss://user:pw@a.example.com/", time.Minute, creds, "no user info"},
		{"fragment", "wss://a.example.com/#x", time.Minute, creds, "no user info or fragment"},
		{"no secret", "wss://a.example.com/", time.Minute, sigv4.Credentials{AccessKeyID: "AKID"}, "secret access key is empty"},
		{"no access key", "wss://a.example.com/", time.Minute, sigv4.Credentials{SecretAccessKey: "s"}, "access key id is empty"},
		{"bad escape", "wss://a.example.com/?a=%zz", time.Minute, creds, "invalid percent-encoding"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(c.url)
			if err != nil {
				// url.Parse itself refuses some; build the URL by hand.
				u = &url.URL{Scheme: "wss", Host: "a.example.com", RawQuery: strings.SplitN(c.url, "?", 2)[1]}
			}
			_, err = s.PresignURL(context.Background(), c.creds, http.MethodGet, u, c.expires)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("PresignURL(%s) error = %v; want it to contain %q", c.url, err, c.want)
			}
		})
	}
	for _, bad := range []*sigv4.Signer{{Region: "us-east-1"}, {Service: "s"}, {Service: "s/x", Region: "r"}, {Service: "s", Region: "us east"}} {
		_, err := bad.PresignURL(context.Background(), creds, http.MethodGet, &url.URL{Scheme: "https", Host: "a"}, time.Minute)
		if err == nil {
			t.Errorf("Signer%+v signed", bad)
		}
	}
}

// TestPresignKnownAnswer pins one URL, checked by hand against the
// canonical request AWS documents, so any change to the output is seen.
func TestPresignKnownAnswer(t *testing.T) {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return t0 }}
	u, _ := url.Parse("wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com:443?" + channelQuery)
	got, err := s.PresignURL(context.Background(), temp, "", u, 299*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fdemo%2F1700000000000" +
		"&X-Amz-ClientId=viewer-1&X-Amz-Credential=ASIAEXAMPLETEMPORARY%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request" +
		"&X-Amz-Date=20261123T100000Z&X-Amz-Expires=299&X-Amz-Security-Token=FwoGZXIvYXdzE%2B%2Ftoken%3D%3D" +
		"&X-Amz-SignedHeaders=host&X-Amz-Signature="
	if !strings.HasPrefix(got, want) || len(got) != len(want)+64 {
		t.Errorf("PresignURL =\n%s\nwant prefix\n%s", got, want)
	}
	if sdk := sdkPresigned(t, temp, "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?"+channelQuery, t0, 299*time.Second); sdk != got {
		t.Errorf("aws-sdk-go-v2 signs\n%s\nkvssign signs\n%s", sdk, got)
	}
}

func TestTokenAfterSigning(t *testing.T) {
	s := &sigv4.Signer{Service: "iotdevicegateway", Region: "us-west-2", Clock: func() time.Time { return t0 }, TokenAfterSigning: true}
	got, err := s.PresignURL(context.Background(), temp, http.MethodGet, &url.URL{Scheme: "wss", Host: "a-ats.iot.us-west-2.amazonaws.com", Path: "/mqtt"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sig := strings.Index(got, "&X-Amz-Signature=")
	tok := strings.Index(got, "&X-Amz-Security-Token=FwoGZXIvYXdzE%2B%2Ftoken%3D%3D")
	if sig < 0 || tok < sig {
		t.Errorf("token must follow the signature: %s", got)
	}
}

func TestSignRequestHeaders(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "https://abc.execute-api.us-east-1.amazonaws.com:8443/prod/items?b=2&a=1", strings.NewReader("{}"))
	r.Header.Set("User-Agent", "test") // never signed
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", Clock: func() time.Time { return t0 }, ContentSHA256Header: true}
	var canonical string
	s.Trace = func(cr, _ string) { canonical = cr }
	if err := s.SignRequest(context.Background(), temp, r, ""); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"POST", "/prod/items", "a=1&b=2",
		"content-length:2",
		"host:abc.execute-api.us-east-1.amazonaws.com:8443",
		"x-amz-content-sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
		"x-amz-date:20261123T100000Z",
		"x-amz-security-token:FwoGZXIvYXdzE+/token==",
		"",
		"content-length;host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
		"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
	}, "\n")
	if diff := cmp.Diff(want, canonical); diff != "" {
		t.Errorf("canonical request (-want +got):\n%s", diff)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLETEMPORARY/20261123/us-east-1/execute-api/aws4_request, SignedHeaders=content-length;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=") {
		t.Errorf("Authorization = %s", a)
	}
	// Signing again replaces the old signature instead of signing it.
	if err := s.SignRequest(context.Background(), temp, r, ""); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Header.Values("Authorization")); n != 1 {
		t.Errorf("%d Authorization headers after re-signing", n)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	for _, s := range []string{fmt.Sprint(temp), fmt.Sprintf("%+v", temp), fmt.Sprintf("%#v", temp), fmt.Sprintf("%v", &temp)} {
		if strings.Contains(s, temp.SecretAccessKey) || strings.Contains(s, temp.SessionToken) {
			t.Errorf("formatted credentials leak a secret: %s", s)
		}
		if !strings.Contains(s, temp.AccessKeyID) {
			t.Errorf("formatted credentials lack the access key id: %s", s)
		}
	}
}
