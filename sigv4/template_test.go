package sigv4_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// templateCase is a request to presign, with some of its parameters left
// open in the template.
type templateCase struct {
	signer *sigv4.Signer
	req    sigv4.PresignRequest
	open   []sigv4.Param // not in req.Query
	creds  sigv4.Credentials
}

// randomTemplateCase draws requests whose parameters sort among and around
// SigV4's own, with and without a session token, extra signed headers and
// the token after the signature.
func randomTemplateCase(r *rand.Rand) templateCase {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	names := []string{"a", "Z", "room", "X-Amz-ChannelARN", "X-Amz-ClientId", "X-Amz-B", "X-Amz-Dz",
		"X-Amz-Security", "X-Amz-T", "x-amz-lower", "~tilde", "sp ace", "ü", "X-Amz-Credentials"}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	values := []string{"", "1", "a b", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1", "+/=", "ü~*"}
	c := templateCase{
		signer: &sigv4.Signer{
			Service:                   pick("kinesisvideo", "execute-api", "iotdevicegateway"),
			Region:                    pick("us-west-2", "eu-central-1", "cn-north-1"),
			TokenAfterSigning:         r.IntN(4) == 0,
			DisablePathNormalization:  r.IntN(4) == 0,
			DisableDoublePathEscaping: r.IntN(4) == 0,
		},
		req: sigv4.PresignRequest{
			Method:  pick("", "GET", "POST"),
			Scheme:  pick("wss", "https", "ws", "http"),
			Host:    pick("v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", "127.0.0.1:8443", "example.com:443", "[::1]:80"),
			Path:    pick("", "/", "/prod", "/a/./b/../c", "/%E2%82%AC/x%20y/"),
			Expires: time.Duration(1+r.IntN(3600)) * time.Second,
		},
		creds: sigv4.Credentials{AccessKeyID: pick("AKIDEXAMPLE", "ASIA+/weird"), SecretAccessKey: "secret"},
	}
	if r.IntN(3) > 0 {
		c.creds.SessionToken = strings.Repeat(pick("IQoJb3JpZ2luX2VjE+/=", "abc"), 1+r.IntN(40))
	}
	if r.IntN(3) == 0 {
		c.req.Header = http.Header{"X-Custom": {pick("v", " spaced  out ")}, "Content-Type": {"text/plain"}}
	}
	if r.IntN(3) == 0 {
		c.req.PayloadHash = sigv4.UnsignedPayload
	}
	for _, n := range names[:r.IntN(len(names))] {
		p := sigv4.Param{Name: n, Value: values[r.IntN(len(values))]}
		if r.IntN(2) == 0 {
			c.open = append(c.open, p)
		} else {
			c.req.Query = append(c.req.Query, p)
		}
	}
	return c
}

// TestTemplateMatchesPresign signs random requests twice: from a template
// with some parameters open, and with Signer.Presign given them all. The
// URLs must be the same, byte for byte.
func TestTemplateMatchesPresign(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := range 2000 {
		c := randomTemplateCase(r)
		names, values := make([]string, len(c.open)), make([]string, len(c.open))
		for j, p := range c.open {
			names[j], values[j] = p.Name, p.Value
		}
		tmpl, err := c.signer.NewTemplate(&c.req, names...)
		if err != nil {
			t.Fatalf("case %d: NewTemplate: %v", i, err)
		}
		c.signer.Clock = func() time.Time { return at }
		for range 2 { // the second signature starts from the saved state again
			at = at.Add(time.Duration(r.IntN(1e6)) * time.Second)
			got, err := tmpl.Presign(context.Background(), c.creds, at, values...)
			if err != nil {
				t.Fatalf("case %d: Template.Presign: %v", i, err)
			}
			full := c.req
			full.Query = append(append([]sigv4.Param(nil), c.req.Query...), c.open...)
			want, err := c.signer.Presign(context.Background(), c.creds, &full)
			if err != nil {
				t.Fatalf("case %d: Presign: %v", i, err)
			}
			if got != want {
				t.Fatalf("case %d: URLs differ\ntemplate: %s\npresign:  %s", i, got, want)
			}
		}
		if tmpl.Expires() != c.req.Expires {
			t.Fatalf("case %d: Expires() = %v; want %v", i, tmpl.Expires(), c.req.Expires)
		}
	}
}

func TestTemplateVerifies(t *testing.T) {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	tmpl, err := s.NewTemplate(&sigv4.PresignRequest{
		Scheme:  "wss",
		Host:    "v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		Query:   []sigv4.Param{{Name: "X-Amz-ChannelARN", Value: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000"}},
		Expires: 299 * time.Second,
	}, "X-Amz-ClientId")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"viewer-1", "viewer-2"} {
		u, err := tmpl.Presign(context.Background(), temp, t0, id)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		res, err := verifier(t0.Add(time.Minute)).VerifyPresigned(context.Background(), req)
		if err != nil {
			t.Fatalf("VerifyPresigned(%s): %v", id, err)
		}
		if res.AccessKeyID != temp.AccessKeyID {
			t.Errorf("verified access key %q; want %q", res.AccessKeyID, temp.AccessKeyID)
		}
	}
}

func TestNewTemplateRefuses(t *testing.T) {
	ok := sigv4.PresignRequest{Scheme: "wss", Host: "a.example.com", Query: []sigv4.Param{{Name: "room", Value: "1"}}, Expires: time.Minute}
	cases := []struct {
		name   string
		signer *sigv4.Signer
		mod    func(*sigv4.PresignRequest)
		open   []string
		want   string
	}{
		{"no service", &sigv4.Signer{Region: "us-east-1"}, nil, nil, "service is empty"},
		{"bad region", &sigv4.Signer{Service: "s", Region: "us/east"}, nil, nil, `region "us/east"`},
		{"expires 0", &sigv4.Signer{Service: "s", Region: "r"}, func(r *sigv4.PresignRequest) { r.Expires = 0 }, nil, "expires 0s: must be from 1s"},
		{"ftp", &sigv4.Signer{Service: "s", Region: "r"}, func(r *sigv4.PresignRequest) { r.Scheme = "ftp" }, nil, `scheme "ftp"`},
		{"query in path", &sigv4.Signer{Service: "s", Region: "r"}, func(r *sigv4.PresignRequest) { r.Path = "/a?b" }, nil, `path "/a?b"`},
		{"auth param in query", &sigv4.Signer{Service: "s", Region: "r"}, func(r *sigv4.PresignRequest) { r.Query = []sigv4.Param{{Name: "X-Amz-Signature"}} }, nil, `"X-Amz-Signature": is set by the signer`},
		{"open auth param", &sigv4.Signer{Service: "s", Region: "r"}, nil, []string{"x-amz-date"}, `open parameter "x-amz-date": is set by the signer`},
		{"open empty", &sigv4.Signer{Service: "s", Region: "r"}, nil, []string{""}, "an open parameter has an empty name"},
		{"open twice", &sigv4.Signer{Service: "s", Region: "r"}, nil, []string{"id", "id"}, `open parameter "id": is named twice`},
		{"open and fixed", &sigv4.Signer{Service: "s", Region: "r"}, nil, []string{"room"}, `open parameter "room": is also in the query`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			if c.mod != nil {
				c.mod(&r)
			}
			tmpl, err := c.signer.NewTemplate(&r, c.open...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewTemplate error = %v; want it to contain %q", err, c.want)
			}
			if tmpl != nil {
				t.Errorf("NewTemplate returned a template with its error")
			}
		})
	}
}

func TestTemplatePresignRefuses(t *testing.T) {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	tmpl, err := s.NewTemplate(&sigv4.PresignRequest{Scheme: "wss", Host: "a.example.com", Expires: time.Minute}, "id", "role")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		creds  sigv4.Credentials
		at     time.Time
		values []string
		want   string
	}{
		{"one value for two", creds, t0, []string{"a"}, "1 values given for 2 open parameters (id, role)"},
		{"three values for two", creds, t0, []string{"a", "b", "c"}, "3 values given for 2 open parameters"},
		{"no secret key", sigv4.Credentials{AccessKeyID: "AKID"}, t0, []string{"a", "b"}, "secret access key is empty"},
		{"year 10000", creds, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), []string{"a", "b"}, "must be between 1970 and 9999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := tmpl.Presign(context.Background(), c.creds, c.at, c.values...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Presign error = %v; want it to contain %q", err, c.want)
			}
			if u != "" {
				t.Errorf("Presign returned %q with its error", u)
			}
			if c.creds.SecretAccessKey != "" && strings.Contains(err.Error(), c.creds.SecretAccessKey) {
				t.Errorf("error shows the secret key: %v", err)
			}
		})
	}
}

// TestTemplateConcurrent signs from one template on many goroutines, each
// for its own client id; run with -race.
func TestTemplateConcurrent(t *testing.T) {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	req := sigv4.PresignRequest{Scheme: "wss", Host: "a.example.com", Expires: time.Minute}
	tmpl, err := s.NewTemplate(&req, "X-Amz-ClientId")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			at := t0
			sg := &sigv4.Signer{Service: s.Service, Region: s.Region, Clock: func() time.Time { return at }}
			for i := range 200 {
				id := fmt.Sprintf("viewer-%d-%d", g, i)
				at = t0.Add(time.Duration(i) * time.Second)
				got, err := tmpl.Presign(context.Background(), temp, at, id)
				if err != nil {
					errs <- err
					return
				}
				full := req
				full.Query = []sigv4.Param{{Name: "X-Amz-ClientId", Value: id}}
				want, _ := sg.Presign(context.Background(), temp, &full)
				if got != want {
					errs <- fmt.Errorf("%s: template signed\n%s\nwant\n%s", id, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPresignAllocations pins what the benchmarks show: a presigned URL
// costs one allocation, the URL itself, from a template or not.
func TestPresignAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", Clock: func() time.Time { return t0 }}
	r := benchRequest
	tr := benchRequest
	tr.Query = tr.Query[1:]
	tmpl, err := s.NewTemplate(&tr, "room")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name string
		sign func() (string, error)
	}{
		{"Signer.Presign", func() (string, error) { return s.Presign(ctx, temp, &r) }},
		{"Template.Presign", func() (string, error) { return tmpl.Presign(ctx, temp, t0, "lobby") }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := c.sign(); err != nil {
				t.Fatal(err)
			}
		}); n != 1 {
			t.Errorf("%s: %v allocations per URL; want 1", c.name, n)
		}
	}
}

func TestZeroTemplate(t *testing.T) {
	var tmpl sigv4.Template
	u, err := tmpl.Presign(context.Background(), creds, t0)
	if err == nil || u != "" {
		t.Fatalf("zero Template signed %q, %v", u, err)
	}
}
