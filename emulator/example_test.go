package emulator_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvssign/kvssign/emulator"
)

// Start an emulator, point the SDK at it, and read its counters.
func ExampleNew() {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	client := kinesisvideo.New(kinesisvideo.Options{
		Region:       e.Region(),
		BaseEndpoint: aws.String(e.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(emulator.ExampleAccessKeyID, emulator.ExampleSecretAccessKey, ""),
	})
	out, err := client.CreateSignalingChannel(context.Background(), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("door")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(aws.ToString(out.ChannelARN)[:58])
	fmt.Println(e.Stats().Calls[emulator.OpCreateSignalingChannel], "call")
	// Output:
	// arn:aws:kinesisvideo:us-west-2:123456789012:channel/door/1
	// 1 call
}

// Relax KVS's quotas for a load test: lift the per-channel
// DescribeSignalingChannel quota and halve CreateSignalingChannel's.
func ExampleQuotas_Set() {
	var q emulator.Quotas
	for _, spec := range []string{"DescribeSignalingChannel/channel=off", "CreateSignalingChannel=25"} {
		if err := q.Set(spec); err != nil {
			log.Fatal(err)
		}
	}
	e, err := emulator.New(emulator.Config{Quotas: q, DisableTURN: true})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	fmt.Println(q.Channel, q.Account)
	// Output:
	// map[DescribeSignalingChannel:-1] map[CreateSignalingChannel:25]
}

// Serve as KVS's own host name, with TLS, for clients that cannot be
// given an endpoint (the C SDK): map the name to 127.0.0.1 in /etc/hosts
// and listen on 127.0.0.1:443, where endpoints then carry no port.
func ExampleConfig_hostname() {
	e, err := emulator.New(emulator.Config{TLS: true, Hostname: "kinesisvideo.us-west-2.amazonaws.com"})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil { // on 127.0.0.1:443 in real use
		log.Fatal(err)
	}
	defer e.Close()
	fmt.Println(strings.HasPrefix(e.URL(), "https://kinesisvideo.us-west-2.amazonaws.com:"))
	block, _ := pem.Decode(e.CertificatePEM()) // what clients must trust
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cert.DNSNames)
	// Output:
	// true
	// [localhost kinesisvideo.us-west-2.amazonaws.com]
}

// Give a channel media storage, as WebRTC ingestion needs: create a
// stream that keeps data, point the channel at it, and ask for the
// channel's WEBRTC endpoint.
func Example_mediaStorage() {
	e, err := emulator.New(emulator.Config{DisableTURN: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	client := kinesisvideo.New(kinesisvideo.Options{
		Region:       e.Region(),
		BaseEndpoint: aws.String(e.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(emulator.ExampleAccessKeyID, emulator.ExampleSecretAccessKey, ""),
	})
	channel, err := e.CreateChannel("door", 0)
	if err != nil {
		log.Fatal(err)
	}
	st, err := client.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("door-video"), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN: aws.String(channel),
		MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{
			Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: st.StreamARN,
		},
	}); err != nil {
		log.Fatal(err)
	}
	out, err := client.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(channel),
		SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
			Protocols: []kvtypes.ChannelProtocol{kvtypes.ChannelProtocolWebrtc}, Role: kvtypes.ChannelRoleMaster,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ep := aws.ToString(out.ResourceEndpointList[0].ResourceEndpoint)
	fmt.Println(strings.HasPrefix(ep, e.URL()+"/webrtc/w-"))
	// Output:
	// true
}
