package sigv4_test

import (
	"context"
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// The generic benchmarks presign an API Gateway WebSocket URL with two
// parameters of its own and temporary credentials, one second later each
// time: with Signer.Presign, which checks and escapes everything per URL,
// and from a Template with the room open. The KVS figures, side by side
// with aws-sdk-go-v2, are in package kvs.

var benchRequest = sigv4.PresignRequest{
	Scheme:  "wss",
	Host:    "abc123.execute-api.us-east-1.amazonaws.com",
	Path:    "/prod",
	Query:   []sigv4.Param{{Name: "room", Value: "lobby"}, {Name: "user", Value: "alice@example.com"}},
	Expires: 5 * time.Minute,
}

func BenchmarkPresign(b *testing.B) {
	at := t0
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1", Clock: func() time.Time { return at }}
	r := benchRequest
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		if _, err := s.Presign(ctx, temp, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTemplatePresign(b *testing.B) {
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1"}
	r := benchRequest
	r.Query = r.Query[1:]
	tmpl, err := s.NewTemplate(&r, "room")
	if err != nil {
		b.Fatal(err)
	}
	at := t0
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		if _, err := tmpl.Presign(ctx, temp, at, "lobby"); err != nil {
			b.Fatal(err)
		}
	}
}
