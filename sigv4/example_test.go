package sigv4_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// Presign the URL of an API Gateway WebSocket API that uses IAM
// authorization.
func ExampleSigner_PresignURL() {
	s := &sigv4.Signer{
		Service: "execute-api",
		Region:  "us-east-1",
		Clock:   func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) },
	}
	creds := sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	u, _ := url.Parse("wss://abc123.execute-api.us-east-1.amazonaws.com/prod?room=lobby")
	signed, err := s.PresignURL(context.Background(), creds, http.MethodGet, u, 5*time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, part := range strings.Split(signed, "&") {
		fmt.Println(part)
	}
	// Output:
	// wss://abc123.execute-api.us-east-1.amazonaws.com/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256
	// X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261123%2Fus-east-1%2Fexecute-api%2Faws4_request
	// X-Amz-Date=20261123T100000Z
	// X-Amz-Expires=300
	// X-Amz-SignedHeaders=host
	// room=lobby
	// X-Amz-Signature=d8e0438aa326d365915d15e90ee301fde95852154eb3291c8d0b7bf9da24caa8
}

// Make a template once and sign it for each viewer: only the credentials,
// the time and the open client id are written per URL, which is how a
// vending service signs one channel for many viewers.
func ExampleSigner_NewTemplate() {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	tmpl, err := s.NewTemplate(&sigv4.PresignRequest{
		Scheme:  "wss",
		Host:    "v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		Query:   []sigv4.Param{{Name: "X-Amz-ChannelARN", Value: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000"}},
		Expires: 299 * time.Second,
	}, "X-Amz-ClientId")
	if err != nil {
		fmt.Println(err)
		return
	}
	creds := sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, viewer := range []string{"viewer-1", "viewer-2"} {
		signed, err := tmpl.Presign(context.Background(), creds, at, viewer)
		if err != nil {
			fmt.Println(err)
			return
		}
		u, _ := url.Parse(signed)
		fmt.Println(u.Query().Get("X-Amz-ClientId"), u.Query().Get("X-Amz-Signature"))
	}
	// Output:
	// viewer-1 799188fe3209f3e2c3554d8ee9d9d90a18922ab87119088dcac5c7b9121ef3f6
	// viewer-2 9d3f42140fed6ca9f5526311403f2739f55708a2157657cfb229e87e29cb77be
}

// Sign an HTTP request's headers, as an API Gateway client with IAM
// authorization does.
func ExampleSigner_SignRequest() {
	s := &sigv4.Signer{Service: "execute-api", Region: "us-east-1",
		Clock: func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }}
	creds := sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	req, _ := http.NewRequest(http.MethodPost, "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items", strings.NewReader(`{"n":1}`))
	req.Header.Set("Content-Type", "application/json")
	if err := s.SignRequest(context.Background(), creds, req, ""); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Header.Get("X-Amz-Date"))
	fmt.Println(strings.SplitAfter(req.Header.Get("Authorization"), ", ")[1])
	// Output:
	// 20261123T100000Z
	// SignedHeaders=content-length;content-type;host;x-amz-date,
}

// Check a presigned URL on the server side and tell why it fails.
func ExampleVerifier_VerifyPresigned() {
	secret := sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	signedAt := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return signedAt }}
	u, _ := url.Parse("wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1")
	signed, _ := s.PresignURL(context.Background(), secret, http.MethodGet, u, 299*time.Second)

	now := signedAt.Add(time.Minute)
	v := &sigv4.Verifier{
		Service: "kinesisvideo",
		Region:  "us-west-2",
		Clock:   func() time.Time { return now },
		Lookup: func(_ context.Context, id string) (sigv4.Credentials, error) {
			if id == secret.AccessKeyID {
				return secret, nil
			}
			return sigv4.Credentials{}, sigv4.ErrUnknownAccessKey
		},
	}
	res, err := v.VerifyPresigned(context.Background(), httptest.NewRequest(http.MethodGet, signed, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	arn, _ := res.Get("X-Amz-ChannelARN")
	fmt.Println("ok:", res.AccessKeyID, arn)

	now = signedAt.Add(10 * time.Minute)
	_, err = v.VerifyPresigned(context.Background(), httptest.NewRequest(http.MethodGet, signed, nil))
	fmt.Println(errors.Is(err, sigv4.ErrExpired), err)
	// Output:
	// ok: AKIAIOSFODNN7EXAMPLE arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1
	// true sigv4: Signature expired: 20261123T100459Z (X-Amz-Date 20261123T100000Z + X-Amz-Expires 299 s) is now earlier than 20261123T101000Z.
}
