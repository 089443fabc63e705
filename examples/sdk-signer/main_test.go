package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// TestSameAsKvssign checks that the SDK-based signer and kvssign's produce
// the same URL, byte for byte, for the same inputs and time.
func TestSameAsKvssign(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const arn = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-cam_1.a/1700000000000"
	long := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	session := aws.Credentials{AccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		SessionToken: "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLXdlc3QtMiJHMEUCIQD+example/token=="}
	cases := []struct {
		name     string
		creds    aws.Credentials
		endpoint string
		role     kvs.Role
		clientID string
		expires  time.Duration
	}{
		{"master", long, "wss://m-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", kvs.Master, "", 299 * time.Second},
		{"viewer", long, "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", kvs.Viewer, "viewer-1", 299 * time.Second},
		{"viewer with a session token", session, "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com", kvs.Viewer, "Viewer_2.x-y", 60 * time.Second},
		{"emulator endpoint with a port and path", session, "ws://127.0.0.1:4567/signaling/master/m-1a2b3c4d", kvs.Master, "", 1 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := presign(context.Background(), tc.creds, tc.endpoint, arn, tc.clientID, "us-west-2", at, tc.expires)
			if err != nil {
				t.Fatal(err)
			}
			p := &kvs.Presigner{
				Credentials: sigv4.Credentials{AccessKeyID: tc.creds.AccessKeyID, SecretAccessKey: tc.creds.SecretAccessKey, SessionToken: tc.creds.SessionToken},
				Expires:     tc.expires,
				Clock:       func() time.Time { return at },
			}
			want, err := p.Presign(context.Background(), tc.endpoint, arn, tc.role, tc.clientID)
			if err != nil {
				t.Fatal(err)
			}
			if got != want.URL {
				t.Errorf("the SDK's URL differs from kvssign's:\n sdk     %s\n kvssign %s", got, want.URL)
			}
		})
	}
}

func TestParseRegion(t *testing.T) {
	if r, err := parseRegion("arn:aws:kinesisvideo:eu-west-1:123456789012:channel/x/1"); r != "eu-west-1" || err != nil {
		t.Errorf("parseRegion = %q, %v", r, err)
	}
	if _, err := parseRegion("demo"); err == nil {
		t.Error("parseRegion(demo) succeeded")
	}
}
