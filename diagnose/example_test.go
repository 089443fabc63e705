package diagnose_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// A viewer's handshake refused with 403 "Signature expired" by a service
// whose clock reads ten minutes later than this machine's.
func ExampleExplain() {
	local := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f := diagnose.Failure{
		Status:     403,
		Message:    "Signature expired: 20261123T100000Z is now earlier than 20261123T100500Z",
		ServerDate: local.Add(10 * time.Minute),
		LocalNow:   local,
	}
	f.FromURL("wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fcam%2F1&X-Amz-ClientId=viewer-1")
	d := diagnose.Explain(f)
	fmt.Println(d.Cause)
	fmt.Println(d.SuggestedClockOffset)
	// Output:
	// clock-skew
	// 10m0s
}

// A viewer signs with the wrong secret key; the emulator, as KVS, refuses
// the handshake, and Handshake says why.
func ExampleHandshake() {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	api := &kvsapi.Client{BaseURL: e.URL(), Region: e.Region(), Credentials: e.Credentials()}
	arn, err := api.CreateChannel(ctx, "front-door")
	if err != nil {
		log.Fatal(err)
	}
	endpoint, err := api.Endpoint(ctx, arn, kvs.Viewer)
	if err != nil {
		log.Fatal(err)
	}
	creds := e.Credentials()
	creds.SecretAccessKey = "not-the-secret"
	signer := &kvs.Presigner{Credentials: creds}

	_, err = signaling.Dial(ctx, signaling.Presigned(signer, endpoint, arn, kvs.Viewer, "viewer-1"), nil)
	d := diagnose.Handshake(err, time.Now())
	fmt.Println(d.Cause)
	fmt.Println(d.Fix)
	// Output:
	// signature-mismatch
	// check AWS_SECRET_ACCESS_KEY; pass the signed URL on unchanged
}
