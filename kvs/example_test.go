package kvs_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// Sign a viewer's URL for a signaling channel. The endpoint is the one
// GetSignalingChannelEndpoint returned for the VIEWER role.
func ExamplePresigner_Presign() {
	p := &kvs.Presigner{
		Credentials: sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		Clock:       func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) },
	}
	s, err := p.Presign(context.Background(),
		"wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1700000000000",
		kvs.Viewer, "viewer-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("expires", s.ExpiresAt.Format(time.RFC3339))
	for _, part := range strings.Split(s.URL, "&") {
		fmt.Println(part)
	}
	// Output:
	// expires 2026-11-23T10:04:59Z
	// wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256
	// X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fdemo-channel%2F1700000000000
	// X-Amz-ClientId=viewer-1
	// X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request
	// X-Amz-Date=20261123T100000Z
	// X-Amz-Expires=299
	// X-Amz-SignedHeaders=host
	// X-Amz-Signature=2a08c09a59eecdeb759a7a0644a8ad6323e7598957356f6ca067ece75064a337
}

// Validation errors name the field and the rule.
func ExampleValidateClientID() {
	fmt.Println(kvs.ValidateClientID("AWS_viewer"))
	fmt.Println(kvs.ValidateClientID("my viewer"))
	// Output:
	// kvs: client id "AWS_viewer": must not start with AWS_ (in any case)
	// kvs: client id "my viewer": must contain only a-z A-Z 0-9 _ . -
}
