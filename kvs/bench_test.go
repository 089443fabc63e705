package kvs_test

import (
	"context"
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

func BenchmarkPresignViewer(b *testing.B) {
	in := benchInput()
	p := &kvs.Presigner{Credentials: in.creds, Clock: func() time.Time { return in.at }}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Presign(ctx, in.endpoint, in.arn, in.role, in.clientID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPresignViewerParallel(b *testing.B) {
	in := benchInput()
	p := &kvs.Presigner{Credentials: in.creds, Clock: func() time.Time { return in.at }}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Presign(ctx, in.endpoint, in.arn, in.role, in.clientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPresignViewerAWSSDK signs the same URL with aws-sdk-go-v2's
// PresignHTTP, building the request as a caller would.
func BenchmarkPresignViewerAWSSDK(b *testing.B) {
	in := benchInput()
	signer := v4.NewSigner()
	b.ReportAllocs()
	for b.Loop() {
		reference(b, signer, in)
	}
}

func BenchmarkPresignViewerAWSSDKParallel(b *testing.B) {
	in := benchInput()
	signer := v4.NewSigner()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			reference(b, signer, in)
		}
	})
}
