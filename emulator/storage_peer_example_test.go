package emulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// A master connected to signaling calls JoinStorageSession at the
// channel's WEBRTC endpoint; the storage peer then sends it an SDP offer
// over signaling, which the master answers to the offer's sender (not
// shown: a pion peer connection with H.264 and Opus tracks).
func Example_joinStorageSession() {
	e, err := emulator.New(emulator.Config{DisableTURN: true, StorageSessionDuration: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	creds := sigv4.Credentials{AccessKeyID: emulator.ExampleAccessKeyID, SecretAccessKey: emulator.ExampleSecretAccessKey}
	client := kinesisvideo.New(kinesisvideo.Options{
		Region:       e.Region(),
		BaseEndpoint: aws.String(e.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
	})
	channel, _ := e.CreateChannel("door", 0)
	st, _ := client.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("door-video"), DataRetentionInHours: aws.Int32(24)})
	client.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(channel),
		MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: st.StreamARN}})
	endpoint := func(protocol kvtypes.ChannelProtocol) string {
		out, err := client.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(channel),
			SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
				Protocols: []kvtypes.ChannelProtocol{protocol}, Role: kvtypes.ChannelRoleMaster}})
		if err != nil {
			log.Fatal(err)
		}
		return aws.ToString(out.ResourceEndpointList[0].ResourceEndpoint)
	}

	// The master connects to signaling first.
	p := kvs.Presigner{Credentials: creds}
	u, err := p.Presign(ctx, endpoint(kvtypes.ChannelProtocolWss), channel, kvs.Master, "")
	if err != nil {
		log.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, u.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.CloseNow()

	// JoinStorageSession: a header-signed POST, service kinesisvideo.
	body := []byte(`{"channelArn":"` + channel + `"}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint(kvtypes.ChannelProtocolWebrtc)+"/joinStorageSession", bytes.NewReader(body))
	sum := sha256.Sum256(body)
	signer := &sigv4.Signer{Service: "kinesisvideo", Region: e.Region()}
	if err := signer.SignRequest(ctx, creds, req, hex.EncodeToString(sum[:])); err != nil {
		log.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("JoinStorageSession:", resp.Status)

	_, msg, err := ws.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	m, err := kvs.DecodeServerMessage(msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MessageType, "from the storage peer:", strings.HasPrefix(m.SenderClientID, "storage-peer-"))
	// Output:
	// JoinStorageSession: 200 OK
	// SDP_OFFER from the storage peer: true
}
