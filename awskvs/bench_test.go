package awskvs

import (
	"context"
	"testing"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// BenchmarkPresignCached measures Presign once the ARN and endpoint are
// cached: a cache lookup and a signature.
func BenchmarkPresignCached(b *testing.B) {
	api := newFakeAPI("cam")
	r, _ := newTestResolver(api, newFakeClock())
	r.Credentials = sigv4.Credentials{AccessKeyID: "AKIDBENCH", SecretAccessKey: "secret", SessionToken: "token"}
	ctx := context.Background()
	if _, err := r.Presign(ctx, "cam", kvs.Viewer, "viewer-1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Presign(ctx, "cam", kvs.Viewer, "viewer-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResolveCached measures a cached Resolve.
func BenchmarkResolveCached(b *testing.B) {
	api := newFakeAPI("cam")
	r, _ := newTestResolver(api, newFakeClock())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "cam", kvs.Master); err != nil {
			b.Fatal(err)
		}
	}
}
