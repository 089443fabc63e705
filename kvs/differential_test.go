package kvs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// input is one set of KVS signing inputs for the differential tests.
type input struct {
	endpoint, arn, region, clientID string
	role                            kvs.Role
	creds                           sigv4.Credentials
	at                              time.Time
	expires                         time.Duration
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randomInput(r *rand.Rand) input {
	regions := []string{"us-west-2", "us-east-1", "eu-central-1", "ap-northeast-1", "cn-north-1", "us-gov-west-1"}
	partitions := map[string]string{"cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"}
	region := regions[r.IntN(len(regions))]
	part := partitions[region]
	if part == "" {
		part = "aws"
	}
	name := randString(r, idAlphabet, 1+r.IntN(256))
	arn := fmt.Sprintf("arn:%s:kinesisvideo:%s:%012d:channel/%s/%d", part, region, r.Int64N(1e12), name, r.Int64N(1e13))
	host := fmt.Sprintf("%c-%08x.kinesisvideo.%s.amazonaws.com", "mv"[r.IntN(2)], r.Uint32(), region)
	switch r.IntN(4) {
	case 0:
		host = fmt.Sprintf("localhost:%d", 1+r.IntN(65535))
	case 1:
		host = fmt.Sprintf("127.0.0.1:%d", 1024+r.IntN(60000))
	}
	in := input{
		endpoint: []string{"wss://", "ws://"}[r.IntN(2)] + host + []string{"", "/", "/signaling/x"}[r.IntN(3)],
		arn:      arn,
		region:   region,
		role:     kvs.Master,
		creds: sigv4.Credentials{
			AccessKeyID:     "ASIA" + randString(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
			SecretAccessKey: randString(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", 40),
		},
		at:      time.Unix(1e9+r.Int64N(1e9), 0).UTC(),
		expires: time.Duration(1+r.IntN(300)) * time.Second,
	}
	if r.IntN(4) > 0 {
		in.creds.SessionToken = randString(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=", 100+r.IntN(900))
	}
	if r.IntN(2) == 0 {
		in.role = kvs.Viewer
		in.clientID = randString(r, idAlphabet, 1+r.IntN(256))
		if strings.HasPrefix(strings.ToUpper(in.clientID), "AWS_") {
			in.clientID = "x" + in.clientID[1:]
		}
	}
	return in
}

// ours signs with kvs.Presigner.
func ours(t testing.TB, in input) string {
	p := &kvs.Presigner{Credentials: in.creds, Expires: in.expires, Clock: func() time.Time { return in.at }}
	s, err := p.Presign(context.Background(), in.endpoint, in.arn, in.role, in.clientID)
	if err != nil {
		t.Fatalf("Presign(%+v): %v", in, err)
	}
	return s.URL
}

// reference signs the same inputs with aws-sdk-go-v2's v4 signer, which
// wants X-Amz-Expires in the query before it signs.
func reference(t testing.TB, signer *v4.Signer, in input) string {
	u, err := url.Parse(in.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	q := url.Values{kvs.ParamChannelARN: {in.arn}, "X-Amz-Expires": {fmt.Sprint(int(in.expires / time.Second))}}
	if in.role == kvs.Viewer {
		q.Set(kvs.ParamClientID, in.clientID)
	}
	u.RawQuery = q.Encode()
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	creds := aws.Credentials{AccessKeyID: in.creds.AccessKeyID, SecretAccessKey: in.creds.SecretAccessKey, SessionToken: in.creds.SessionToken}
	signed, _, err := signer.PresignHTTP(context.Background(), creds, req, sigv4.EmptyPayloadHash, kvs.Service, in.region, in.at)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// signatureOf and paramsOf compare what matters: the signature and the set
// of parameters (aws-sdk-go-v2 writes the same ones, in the same order).
func TestDifferentialAgainstAWSSDK(t *testing.T) {
	signer := v4.NewSigner()
	r := rand.New(rand.NewPCG(1, 2))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := range n {
		in := randomInput(r)
		got, want := ours(t, in), reference(t, signer, in)
		if got != want {
			t.Fatalf("case %d: URLs differ\ninput: %+v\nkvssign: %s\naws-sdk: %s", i, in, got, want)
		}
	}
}

func FuzzDifferentialAgainstAWSSDK(f *testing.F) {
	f.Add("wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", "demo-channel", "viewer-1", "tok+en/=", int64(1700000000), uint16(299))
	f.Add("ws://127.0.0.1:8080/signaling/master/abc", "a.b_c-d", "", "", int64(1), uint16(1))
	signer := v4.NewSigner()
	f.Fuzz(func(t *testing.T, endpoint, name, clientID, token string, at int64, expires uint16) {
		arn := "arn:aws:kinesisvideo:us-west-2:123456789012:channel/" + name + "/1700000000000"
		in := input{endpoint: endpoint, arn: arn, region: "us-west-2", clientID: clientID, role: kvs.Viewer,
			creds:   sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: token},
			at:      time.Unix(at, 0).UTC(),
			expires: time.Duration(expires) * time.Second}
		if clientID == "" {
			in.role = kvs.Master
		}
		p := &kvs.Presigner{Credentials: in.creds, Expires: in.expires, Clock: func() time.Time { return in.at }}
		s, err := p.Presign(context.Background(), in.endpoint, in.arn, in.role, in.clientID)
		if y := in.at.Year(); err == nil && (y < 1970 || y > 9999) {
			t.Fatalf("signed a URL for a time outside 1970-9999: %v", in.at)
		}
		if err != nil {
			return // invalid input must be refused, and it was
		}
		in.expires = s.ExpiresAt.Sub(s.SignedAt) // zero asked for the default
		if want := reference(t, signer, in); s.URL != want {
			t.Fatalf("URLs differ\nkvssign: %s\naws-sdk: %s", s.URL, want)
		}
	})
}
