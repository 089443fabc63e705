package kvs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// benchInput is a KVS viewer URL signed with a 400-character session token,
// the case BENCHMARKS.md reports.
func benchInput() input {
	return input{
		endpoint: "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		arn:      "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1700000000000",
		region:   "us-west-2",
		clientID: "viewer-0123456789abcdef",
		role:     kvs.Viewer,
		creds: sigv4.Credentials{
			AccessKeyID:     "ASIAIOSFODNN7EXAMPLE",
			SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			SessionToken:    strings.Repeat("IQoJb3JpZ2luX2VjE+/=", 20),
		},
		at:      time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		expires: kvs.DefaultExpires,
	}
}

// benchLoad varies what a vending service varies between two URLs: each
// iteration signs for another viewer (one of 1,024 client ids) one second
// later, so no signature or client-specific work can be reused. The
// channel and the credentials stay, as they do in real use.
type benchLoad struct {
	in  input
	ids []string
	i   int
}

func newBenchLoad() *benchLoad {
	l := &benchLoad{in: benchInput(), ids: make([]string, 1024)}
	for i := range l.ids {
		l.ids[i] = fmt.Sprintf("viewer-%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	return l
}

// next moves to the next viewer and second.
func (l *benchLoad) next() {
	l.i++
	l.in.clientID = l.ids[l.i%len(l.ids)]
	l.in.at = l.in.at.Add(time.Second)
}

func (l *benchLoad) presigner() *kvs.Presigner {
	return &kvs.Presigner{Credentials: l.in.creds, Clock: func() time.Time { return l.in.at }}
}

func BenchmarkPresignViewer(b *testing.B) {
	l := newBenchLoad()
	p := l.presigner()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.next()
		if _, err := p.Presign(ctx, l.in.endpoint, l.in.arn, l.in.role, l.in.clientID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPresignViewerParallel(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		l := newBenchLoad()
		p := l.presigner()
		for pb.Next() {
			l.next()
			if _, err := p.Presign(ctx, l.in.endpoint, l.in.arn, l.in.role, l.in.clientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPresignViewerAWSSDK signs the same URLs with aws-sdk-go-v2's
// PresignHTTP, building the request as a caller would.
func BenchmarkPresignViewerAWSSDK(b *testing.B) {
	l := newBenchLoad()
	signer := v4.NewSigner()
	b.ReportAllocs()
	for b.Loop() {
		l.next()
		reference(b, signer, l.in)
	}
}

func BenchmarkPresignViewerAWSSDKParallel(b *testing.B) {
	signer := v4.NewSigner()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		l := newBenchLoad()
		for pb.Next() {
			l.next()
			reference(b, signer, l.in)
		}
	})
}

// TestBenchLoadMatchesSDK checks that what the benchmarks time is right:
// both signers produce the same URL for a run of the benchmark's inputs.
func TestBenchLoadMatchesSDK(t *testing.T) {
	l := newBenchLoad()
	p := l.presigner()
	signer := v4.NewSigner()
	for range 100 {
		l.next()
		got, err := p.Presign(context.Background(), l.in.endpoint, l.in.arn, l.in.role, l.in.clientID)
		if err != nil {
			t.Fatal(err)
		}
		if want := reference(t, signer, l.in); got.URL != want {
			t.Fatalf("URLs differ\nkvssign: %s\naws-sdk: %s", got.URL, want)
		}
	}
}
