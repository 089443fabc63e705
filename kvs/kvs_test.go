package kvs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func TestParseChannelARN(t *testing.T) {
	cases := []struct {
		in      string
		want    kvs.ChannelARN
		wantErr string
	}{
		{in: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1700000000000",
			want: kvs.ChannelARN{Partition: "aws", Region: "us-west-2", Account: "123456789012", Name: "demo-channel", CreationTime: 1700000000000}},
		{in: "arn:aws-cn:kinesisvideo:cn-north-1:123456789012:channel/a.b_c-D/1",
			want: kvs.ChannelARN{Partition: "aws-cn", Region: "cn-north-1", Account: "123456789012", Name: "a.b_c-D", CreationTime: 1}},
		{in: "", wantErr: "channel ARN is empty"},
		{in: "arn%3Aaws%3Akinesisvideo", wantErr: "percent-encoded"},
		{in: "arn:aws:kinesisvideo:us-west-2:123456789012", wantErr: "must be arn:PARTITION:kinesisvideo"},
		{in: "urn:aws:kinesisvideo:us-west-2:1:channel/a/1", wantErr: "must be arn:PARTITION:kinesisvideo"},
		{in: "arn:gcp:kinesisvideo:us-west-2:1:channel/a/1", wantErr: `partition "gcp"`},
		{in: "arn:aws:kinesis:us-west-2:1:channel/a/1", wantErr: `service "kinesis": must be kinesisvideo`},
		{in: "arn:aws:kinesisvideo:US-WEST-2:1:channel/a/1", wantErr: `region "US-WEST-2"`},
		{in: "arn:aws:kinesisvideo:us-west-2:12ab:channel/a/1", wantErr: `account "12ab": must be digits`},
		{in: "arn:aws:kinesisvideo:us-west-2:1:stream/a/1", wantErr: "must start with channel/ (a stream ARN is not a channel ARN)"},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel/a", wantErr: "must be channel/NAME/CREATION_TIME"},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel/a b/1", wantErr: "channel name: must contain only"},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel//1", wantErr: "channel name: is empty"},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel/a/x1", wantErr: `creation time "x1": must be digits`},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel/a/99999999999999999999", wantErr: "creation time"},
		{in: "arn:aws:kinesisvideo:us-west-2:1:channel/" + strings.Repeat("a", 1000) + "/1", wantErr: "must be at most 1024"},
	}
	for _, c := range cases {
		got, err := kvs.ParseChannelARN(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseChannelARN(%q) error = %v; want it to contain %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseChannelARN(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseChannelARN(%q) (-want +got):\n%s", c.in, diff)
		}
		if got.String() != c.in {
			t.Errorf("String() = %q; want %q", got.String(), c.in)
		}
	}
}

func TestValidateClientID(t *testing.T) {
	cases := []struct {
		id, wantErr string
	}{
		{"viewer-1", ""},
		{"a", ""},
		{strings.Repeat("x", 256), ""},
		{"AWSx", ""},
		{"", "client id is empty"},
		{strings.Repeat("x", 257), "must be at most 256"},
		{"AWS_viewer", "must not start with AWS_"},
		{"aws_viewer", "must not start with AWS_"},
		{"Aws_x", "must not start with AWS_"},
		{"a b", "must contain only a-z A-Z 0-9 _ . -"},
		{"a/b", "must contain only"},
		{"ü", "must contain only"},
	}
	for _, c := range cases {
		err := kvs.ValidateClientID(c.id)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("ValidateClientID(%q) = %v; want %q", c.id, err, c.wantErr)
		}
	}
	for range 100 {
		if id := kvs.NewClientID(); kvs.ValidateClientID(id) != nil {
			t.Fatalf("NewClientID() = %q is not valid", id)
		}
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]kvs.Role{"master": kvs.Master, "VIEWER": kvs.Viewer, "Viewer": kvs.Viewer} {
		if got, err := kvs.ParseRole(in); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := kvs.ParseRole("admin"); err == nil || !strings.Contains(err.Error(), "must be MASTER or VIEWER") {
		t.Errorf("ParseRole(admin) = %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in      string
		want    kvs.Endpoint
		wantErr string
	}{
		{in: "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", want: kvs.Endpoint{Scheme: "wss", Host: "v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"}},
		{in: "ws://127.0.0.1:4566/signaling/viewer/abc", want: kvs.Endpoint{Scheme: "ws", Host: "127.0.0.1:4566", Path: "/signaling/viewer/abc"}},
		{in: "wss://[::1]:8443/", want: kvs.Endpoint{Scheme: "wss", Host: "[::1]:8443", Path: "/"}},
		{in: "wss://h/a%20b/", want: kvs.Endpoint{Scheme: "wss", Host: "h", Path: "/a%20b/"}},
		{in: "", wantErr: "endpoint is empty"},
		{in: "https://v-1.example.com", wantErr: "scheme must be wss"},
		{in: "v-1.example.com", wantErr: "scheme must be wss"},
		{in: "wss://h/?X-Amz-ChannelARN=x", wantErr: "must have no query"},
		{in: "wss://u:p@h/", wantErr: "no user info"},
		{in: "wss:///path", wantErr: "has no host"},
		{in: "wss://h_x/", wantErr: "host must be"},
		{in: "wss://h:99999/", wantErr: "host must be"},
		{in: "wss://h//x", wantErr: "path must be escaped"},
		{in: "wss://h/./x", wantErr: "path must be escaped"},
		{in: "wss://h/a b", wantErr: "path must be escaped"},
		{in: "wss://h/%zz", wantErr: "path must be escaped"},
	}
	for _, c := range cases {
		got, err := kvs.ParseEndpoint(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseEndpoint(%q) error = %v; want it to contain %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", c.in, err)
		} else if got != c.want {
			t.Errorf("ParseEndpoint(%q) = %+v; want %+v", c.in, got, c.want)
		}
	}
}

func TestPresignErrors(t *testing.T) {
	const (
		ep  = "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com"
		arn = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000"
	)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	good := sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	expiring := sigv4.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "secret", SessionToken: "tok", Expires: now.Add(2 * time.Minute)}
	cases := []struct {
		name     string
		p        *kvs.Presigner
		role     kvs.Role
		clientID string
		wantErr  string
	}{
		{"master with client id", &kvs.Presigner{Credentials: good}, kvs.Master, "x", "a master connects without a client id"},
		{"viewer without client id", &kvs.Presigner{Credentials: good}, kvs.Viewer, "", "client id is empty"},
		{"viewer AWS_ id", &kvs.Presigner{Credentials: good}, kvs.Viewer, "AWS_1", "must not start with AWS_"},
		{"bad role", &kvs.Presigner{Credentials: good}, "ADMIN", "", `role "ADMIN"`},
		{"region mismatch", &kvs.Presigner{Credentials: good, Region: "eu-west-1"}, kvs.Master, "", `region "eu-west-1": does not match the channel ARN's region "us-west-2"`},
		{"expires above 7 days", &kvs.Presigner{Credentials: good, Expires: kvs.MaxExpires + time.Second}, kvs.Master, "", "must be whole seconds from 1s to 168h0m0s"},
		{"expires not whole seconds", &kvs.Presigner{Credentials: good, Expires: 1500 * time.Millisecond}, kvs.Master, "", "must be whole seconds"},
		{"no provider", &kvs.Presigner{}, kvs.Master, "", "no credentials provider"},
		{"credentials expire first", &kvs.Presigner{Credentials: expiring}, kvs.Master, "", "renew them first"},
		{"empty secret", &kvs.Presigner{Credentials: sigv4.Credentials{AccessKeyID: "AKID"}}, kvs.Master, "", "secret access key is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.p.Clock = func() time.Time { return now }
			// Sign the channel once for each role first, where the
			// presigner can, so the error comes from cached templates.
			c.p.Presign(context.Background(), ep, arn, kvs.Master, "")
			c.p.Presign(context.Background(), ep, arn, kvs.Viewer, "v")
			_, err := c.p.Presign(context.Background(), ep, arn, c.role, c.clientID)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Presign error = %v; want it to contain %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "secret") && !strings.Contains(c.wantErr, "secret") {
				t.Errorf("error mentions the secret: %v", err)
			}
		})
	}
}

// TestPresignTemplates signs in turns for two channels, both roles and two
// expiries, with one presigner per expiry, as a vending service would, and
// checks every URL against aws-sdk-go-v2: a cached template must never be
// used for inputs it was not made for.
func TestPresignTemplates(t *testing.T) {
	base := benchInput()
	other := base
	other.endpoint = "ws://127.0.0.1:4566/signaling"
	other.arn = "arn:aws:kinesisvideo:eu-central-1:123456789012:channel/other/1"
	other.region = "eu-central-1"
	signer := v4.NewSigner()
	var at time.Time
	presigners := map[time.Duration]*kvs.Presigner{}
	for i := range 64 {
		in := base
		if i%2 == 1 {
			in = other
		}
		in.at = in.at.Add(time.Duration(i) * time.Hour)
		in.role, in.clientID = kvs.Viewer, fmt.Sprintf("viewer-%d", i)
		if i%3 == 0 {
			in.role, in.clientID = kvs.Master, ""
		}
		in.expires = []time.Duration{kvs.DefaultExpires, time.Minute}[i/4%2]
		p := presigners[in.expires]
		if p == nil {
			p = &kvs.Presigner{Credentials: in.creds, Expires: in.expires, Clock: func() time.Time { return at }}
			presigners[in.expires] = p
		}
		at = in.at
		got, err := p.Presign(context.Background(), in.endpoint, in.arn, in.role, in.clientID)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if want := reference(t, signer, in); got.URL != want {
			t.Fatalf("%d: URLs differ\nkvssign: %s\naws-sdk: %s", i, got.URL, want)
		}
	}
}

func TestPresignClockOffset(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	p := &kvs.Presigner{Credentials: sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"},
		Clock: func() time.Time { return now }, Skew: kvs.NewClockSkew(-90 * time.Second), Expires: 60 * time.Second}
	s, err := p.Presign(context.Background(), "wss://h", "arn:aws:kinesisvideo:us-west-2:1:channel/a/1", kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-90 * time.Second); !s.SignedAt.Equal(want) || !s.ExpiresAt.Equal(want.Add(time.Minute)) {
		t.Errorf("SignedAt %v ExpiresAt %v", s.SignedAt, s.ExpiresAt)
	}
	if !strings.Contains(s.URL, "X-Amz-Date=20261123T095830Z") || !strings.Contains(s.URL, "X-Amz-Expires=60&") {
		t.Errorf("URL %s", s.URL)
	}
}

// TestPresignLongExpires: KVS accepts X-Amz-Expires up to 7 days, as the C
// SDK signs it, but a URL is usable for 5 minutes at most, so credentials
// that outlive those 5 minutes are enough.
func TestPresignLongExpires(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	creds := sigv4.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", SessionToken: "t", Expires: now.Add(10 * time.Minute)}
	cases := []struct {
		expires, usable time.Duration
	}{
		{kvs.MaxExpires, kvs.UseWithin},
		{time.Hour, kvs.UseWithin},
		{kvs.UseWithin, kvs.UseWithin},
		{kvs.DefaultExpires, kvs.DefaultExpires},
		{time.Second, time.Second},
	}
	for _, c := range cases {
		p := &kvs.Presigner{Credentials: creds, Clock: func() time.Time { return now }, Expires: c.expires}
		s, err := p.Presign(context.Background(), "wss://h", "arn:aws:kinesisvideo:us-west-2:1:channel/a/1", kvs.Master, "")
		if err != nil {
			t.Fatalf("Expires %v: %v", c.expires, err)
		}
		if want := fmt.Sprintf("X-Amz-Expires=%d&", int(c.expires/time.Second)); !strings.Contains(s.URL, want) {
			t.Errorf("Expires %v: URL %s lacks %s", c.expires, s.URL, want)
		}
		if want := now.Add(c.usable); !s.ExpiresAt.Equal(want) {
			t.Errorf("Expires %v: ExpiresAt %v; want %v", c.expires, s.ExpiresAt, want)
		}
	}
}

func FuzzParseChannelARN(f *testing.F) {
	f.Add("arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000")
	f.Add("arn:aws-us-gov:kinesisvideo:us-gov-west-1:1:channel/a/1")
	f.Add("arn:aws:kinesisvideo:::channel//")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := kvs.ParseChannelARN(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "kvs: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		again, err := kvs.ParseChannelARN(a.String())
		if err != nil || again != a {
			t.Fatalf("%q parsed as %+v; its String %q parses as %+v, %v", s, a, a.String(), again, err)
		}
	})
}

func FuzzParseEndpoint(f *testing.F) {
	f.Add("wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com")
	f.Add("ws://127.0.0.1:4566/signaling/master/x")
	f.Add("wss://[::1]:1/")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := kvs.ParseEndpoint(s)
		if err != nil {
			return
		}
		if e.Scheme+"://"+e.Host+e.Path != s {
			t.Fatalf("%q parsed as %+v", s, e)
		}
	})
}

// TestPresignAllocations: once a channel's template is cached, a URL
// costs one allocation, the URL itself.
func TestPresignAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	l := newBenchLoad()
	p := l.presigner()
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		l.next()
		if _, err := p.Presign(ctx, l.in.endpoint, l.in.arn, l.in.role, l.in.clientID); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("%v allocations per URL; want 1", n)
	}
}

// TestPresignTraceNotShared: a presigner's Trace sees its own signatures
// only, whether or not another presigner signed for the channel before it,
// since a template holds the Trace it was made with.
func TestPresignTraceNotShared(t *testing.T) {
	in := benchInput()
	clock := func() time.Time { return in.at }
	var traced int
	quiet := &kvs.Presigner{Credentials: in.creds, Clock: clock}
	loud := &kvs.Presigner{Credentials: in.creds, Clock: clock, Trace: func(string, string) { traced++ }}
	for i, step := range []struct {
		p    *kvs.Presigner
		want int
	}{{quiet, 0}, {loud, 1}, {quiet, 1}, {loud, 2}, {quiet, 2}} {
		if _, err := step.p.Presign(context.Background(), in.endpoint, in.arn, in.role, in.clientID); err != nil {
			t.Fatal(err)
		}
		if traced != step.want {
			t.Fatalf("step %d: Trace called %d times; want %d", i, traced, step.want)
		}
	}
}

// TestFieldError: every validation reports a *kvs.FieldError that names
// the field and the rule, and whose text is the package's usual one.
func TestFieldError(t *testing.T) {
	const ep, arn = "wss://h", "arn:aws:kinesisvideo:us-west-2:1:channel/a/1"
	presign := func(p *kvs.Presigner, ep, arn string, role kvs.Role, id string) error {
		p.Credentials = sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}
		_, err := p.Presign(context.Background(), ep, arn, role, id)
		return err
	}
	cases := []struct {
		name string
		err  error
		want kvs.FieldError
		text string
	}{
		{"client id", kvs.ValidateClientID("AWS_x"), kvs.FieldError{Field: "client id", Value: "AWS_x", Rule: "must not start with AWS_ (in any case)"},
			`kvs: client id "AWS_x": must not start with AWS_ (in any case)`},
		{"empty client id", kvs.ValidateClientID(""), kvs.FieldError{Field: "client id", Rule: "a viewer needs 1 to 256 characters"},
			"kvs: client id is empty: a viewer needs 1 to 256 characters"},
		{"channel name", kvs.ValidateChannelName("a b"), kvs.FieldError{Field: "channel name", Value: "a b", Rule: "must contain only a-z A-Z 0-9 _ . -"},
			`kvs: channel name "a b": must contain only a-z A-Z 0-9 _ . -`},
		{"role", second(kvs.ParseRole("boss")), kvs.FieldError{Field: "role", Value: "boss", Rule: "must be MASTER or VIEWER"},
			`kvs: role "boss": must be MASTER or VIEWER`},
		{"channel ARN", second(kvs.ParseChannelARN("arn:aws:s3:::b")), kvs.FieldError{Field: "channel ARN", Value: "arn:aws:s3:::b", Rule: `service "s3": must be kinesisvideo`},
			`kvs: channel ARN "arn:aws:s3:::b": service "s3": must be kinesisvideo`},
		{"endpoint", second(kvs.ParseEndpoint("https://h?X-Amz-Signature=abc")), kvs.FieldError{Field: "endpoint", Value: "https://h", Rule: "scheme must be wss (or ws for a local emulator)"},
			`kvs: endpoint "https://h": scheme must be wss (or ws for a local emulator)`},
		{"presign endpoint", presign(&kvs.Presigner{}, "", arn, kvs.Master, ""), kvs.FieldError{Field: "endpoint", Rule: "give the WSS endpoint from GetSignalingChannelEndpoint"},
			"kvs: endpoint is empty: give the WSS endpoint from GetSignalingChannelEndpoint"},
		{"presign region", presign(&kvs.Presigner{Region: "eu-west-1"}, ep, arn, kvs.Master, ""), kvs.FieldError{Field: "region", Value: "eu-west-1", Rule: `does not match the channel ARN's region "us-west-2"`},
			`kvs: region "eu-west-1": does not match the channel ARN's region "us-west-2"`},
		{"presign expires", presign(&kvs.Presigner{Expires: time.Millisecond}, ep, arn, kvs.Master, ""), kvs.FieldError{Field: "expires", Value: "1ms", Rule: "must be whole seconds from 1s to 168h0m0s"},
			`kvs: expires "1ms": must be whole seconds from 1s to 168h0m0s`},
		{"presign master id", presign(&kvs.Presigner{}, ep, arn, kvs.Master, "v"), kvs.FieldError{Field: "client id", Value: "v", Rule: "a master connects without a client id"},
			`kvs: client id "v": a master connects without a client id`},
		{"presign role", presign(&kvs.Presigner{}, ep, arn, "X", ""), kvs.FieldError{Field: "role", Value: "X", Rule: "must be MASTER or VIEWER"},
			`kvs: role "X": must be MASTER or VIEWER`},
	}
	for _, c := range cases {
		var fe *kvs.FieldError
		if !errors.As(c.err, &fe) {
			t.Errorf("%s: error %v (%T) is not a *kvs.FieldError", c.name, c.err, c.err)
			continue
		}
		if diff := cmp.Diff(c.want, *fe); diff != "" {
			t.Errorf("%s: FieldError mismatch (-want +got):\n%s", c.name, diff)
		}
		if got := c.err.Error(); got != c.text {
			t.Errorf("%s: Error() = %q; want %q", c.name, got, c.text)
		}
	}
}

func second[T any](_ T, err error) error { return err }
