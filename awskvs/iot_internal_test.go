package awskvs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestParseIoTCredentials(t *testing.T) {
	const good = `{"credentials":{"accessKeyId":"ASIAEXAMPLE","secretAccessKey":"s3cr3t","sessionToken":"t0k3n","expiration":"2026-12-02T21:00:00Z"}}`
	c, err := parseIoTCredentials([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIAEXAMPLE" || !c.CanExpire || !c.Expires.Equal(time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)) {
		t.Errorf("parsed %s expiring %v (%t)", c.AccessKeyID, c.Expires, c.CanExpire)
	}
	tests := []struct{ body, want string }{
		{`not json`, "the answer is not the expected JSON object"},
		{`{}`, "the answer has no credentials object"},
		{`{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t0k3n"}}`, "the answer's credentials.expiration is missing"},
		{`{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"","expiration":"x"}}`, "the answer's credentials.sessionToken is missing"},
		{`{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t0k3n","expiration":"tomorrow"}}`, "the answer's credentials.expiration is not an RFC 3339 time"},
	}
	for _, tc := range tests {
		_, err := parseIoTCredentials([]byte(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("parseIoTCredentials(%s): %v; want %s", tc.body, err, tc.want)
		}
	}
}

// FuzzParseIoTCredentials: any answer parses or fails without a panic,
// and a failure never repeats a secret or token from the answer.
func FuzzParseIoTCredentials(f *testing.F) {
	f.Add([]byte(`{"credentials":{"accessKeyId":"ASIAEXAMPLE","secretAccessKey":"s3cr3t","sessionToken":"t0k3n","expiration":"2026-12-02T21:00:00Z"}}`))
	f.Add([]byte(`{"credentials":{"secretAccessKey":"s3cr3t","sessionToken":"t0k3n","expiration":"bad"}}`))
	f.Add([]byte(`{"credentials":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseIoTCredentials(body)
		if err != nil {
			for _, s := range []string{"s3cr3t", "t0k3n"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q repeats a value of the answer", err)
				}
			}
			return
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" || c.Expires.IsZero() {
			t.Fatalf("accepted incomplete credentials from %q", body)
		}
	})
}

func TestIoTRefreshTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		life         time.Duration
		rand         float64
		wantEarliest time.Duration // before expiry, with rand near 1
		wantLatest   time.Duration // before expiry, with rand 0
	}{
		{time.Hour, 0, 0, DefaultCredentialsWindow},
		{time.Hour, 0.999999, DefaultCredentialsWindow + DefaultIoTRefreshJitter, 0},
		// 14 minutes: the margin fits in half; the jitter shrinks to fill
		// three quarters of the life at most.
		{14 * time.Minute, 0.999999, 630 * time.Second, 0},
		{14 * time.Minute, 0, 0, DefaultCredentialsWindow},
		// Two minutes: both shrink to fit 90 s.
		{2 * time.Minute, 0.999999, 90 * time.Second, 0},
		{2 * time.Minute, 0, 0, 49 * time.Second},
	}
	for _, tc := range tests {
		p := &IoTProvider{margin: DefaultCredentialsWindow, spread: DefaultIoTRefreshJitter, rand: func() float64 { return tc.rand }}
		exp := now.Add(tc.life)
		before := exp.Sub(p.refreshTime(now, exp))
		if tc.wantEarliest != 0 && (before > tc.wantEarliest || before < tc.wantEarliest-time.Second) {
			t.Errorf("life %v, rand %v: renewed %v before expiry; want about %v", tc.life, tc.rand, before, tc.wantEarliest)
		}
		if tc.wantLatest != 0 && (before < tc.wantLatest-time.Second || before > tc.wantLatest+time.Second) {
			t.Errorf("life %v, rand %v: renewed %v before expiry; want about %v", tc.life, tc.rand, before, tc.wantLatest)
		}
	}
}

func TestIoTBackoff(t *testing.T) {
	p := &IoTProvider{rand: func() float64 { return 0.5 }}
	for n, want := range map[int]time.Duration{1: 750 * time.Millisecond, 2: 1500 * time.Millisecond, 9: 192 * time.Second, 10: 225 * time.Second, 100: 225 * time.Second} {
		if got := p.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v; want %v", n, got, want)
		}
	}
}

// BenchmarkIoTRetrieveCached is the cost of signing-time retrieval once
// the credentials are cached: what every signed URL pays.
func BenchmarkIoTRetrieveCached(b *testing.B) {
	now := time.Now()
	p := &IoTProvider{now: time.Now, rand: func() float64 { return 0 },
		creds:     aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t", CanExpire: true, Expires: now.Add(time.Hour)},
		refreshAt: now.Add(50 * time.Minute)}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
