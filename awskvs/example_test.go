package awskvs_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

// startEmulator starts a local KVS with one channel, for the examples, and
// returns a configuration for it: LoadConfig with the emulator's endpoint
// and credentials. Against AWS, see ExampleLoadConfig.
func startEmulator(ctx context.Context) (aws.Config, func()) {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	if _, err := e.CreateChannel("front-door", 0); err != nil {
		log.Fatal(err)
	}
	c := e.Credentials()
	cfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{Region: e.Region(), EndpointURL: e.URL()},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	if err != nil {
		log.Fatal(err)
	}
	return cfg, func() { e.Close() }
}

// Against AWS, LoadConfig takes the standard chain: environment, profiles,
// SSO, web identity, ECS, instance metadata. A role to assume is optional.
func ExampleLoadConfig() {
	ctx := context.Background()
	cfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{
		Profile: "kvs",
		Region:  "us-west-2",
		RoleARN: "arn:aws:iam::123456789012:role/kvs-viewer",
	})
	if err != nil {
		log.Fatal(err)
	}
	r := awskvs.NewResolver(cfg)
	s, err := r.Presign(ctx, "front-door", kvs.Viewer, kvs.NewClientID())
	if err != nil {
		log.Fatal(err)
	}
	_ = s.URL // hand it to the client; it is a secret until s.ExpiresAt
}

func ExampleResolver_Presign() {
	ctx := context.Background()
	cfg, stop := startEmulator(ctx)
	defer stop()
	r := awskvs.NewResolver(cfg)
	s, err := r.Presign(ctx, "front-door", kvs.Viewer, "viewer-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Role, s.ClientID, s.ExpiresAt.Sub(s.SignedAt))
	fmt.Println(strings.Contains(s.URL, "X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Ffront-door%2F"))
	// Output:
	// VIEWER viewer-1 4m59s
	// true
}

func ExampleResolver_Resolve() {
	ctx := context.Background()
	cfg, stop := startEmulator(ctx)
	defer stop()
	r := awskvs.NewResolver(cfg)
	r.IncludeICEServers = true
	conn, err := r.Resolve(ctx, "front-door", kvs.Master)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Contains(conn.WSSEndpoint, "/signaling/master/"))
	fmt.Println(len(conn.ICEServers), "ICE servers, cached for", time.Until(conn.ICEServersExpire).Round(10*time.Second))

	_, err = r.Resolve(ctx, "back-door", kvs.Master)
	fmt.Println(errors.Is(err, awskvs.ErrNotFound))
	// Output:
	// true
	// 2 ICE servers, cached for 4m30s
	// true
}

// Credentials adapts any aws-sdk-go-v2 provider for the sigv4 and kvs
// packages, renewing temporary credentials before a URL could outlive them.
func ExampleCredentials() {
	p := credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	signer := kvs.Presigner{
		Credentials: awskvs.Credentials(p, awskvs.DefaultCredentialsWindow),
		Clock:       func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) },
	}
	s, err := signer.Presign(context.Background(), "wss://m-1234abcd.kinesisvideo.us-west-2.amazonaws.com",
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/front-door/1700000000000", kvs.Master, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.ExpiresAt.Format(time.RFC3339))
	// Output: 2026-11-23T10:04:59Z
}
