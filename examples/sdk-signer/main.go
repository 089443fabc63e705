// Command sdk-signer prints a signed Kinesis Video Streams signaling URL
// made with aws-sdk-go-v2's own SigV4 signer, for programs that already
// use the SDK and want no other signer. kvssign's signer produces the same
// URL byte for byte (see main_test.go).
//
//	go run ./examples/sdk-signer -endpoint wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com \
//	    -channel-arn arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000 -client-id viewer-1
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// emptyHash is the SHA-256 of the empty body a WebSocket upgrade has.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// presign signs a ConnectAsMaster (clientID empty) or ConnectAsViewer URL
// for endpoint, valid for expires from t.
func presign(ctx context.Context, creds aws.Credentials, endpoint, channelARN, clientID, region string, t time.Time, expires time.Duration) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Path == "" {
		u.Path = "/" // as browsers send it; the signature is the same
	}
	q := url.Values{}
	q.Set("X-Amz-ChannelARN", channelARN)
	if clientID != "" {
		q.Set("X-Amz-ClientId", clientID)
	}
	// PresignHTTP does not add X-Amz-Expires: it must be in the query first.
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires/time.Second)))
	// url.Values encodes a space as "+"; SigV4 wants "%20".
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	// The session token, if any, goes inside the signed query, as KVS
	// requires.
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyHash, "kinesisvideo", region, t)
	return signed, err
}

func main() {
	endpoint := flag.String("endpoint", "", "the channel's WSS endpoint for the role (from GetSignalingChannelEndpoint)")
	channelARN := flag.String("channel-arn", "", "the signaling channel's ARN")
	clientID := flag.String("client-id", "", "the viewer's client id; none for the master")
	flag.Parse()
	ctx := context.Background()
	arn, err := parseRegion(*channelARN)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(arn))
	if err != nil {
		log.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	u, err := presign(ctx, creds, *endpoint, *channelARN, *clientID, cfg.Region, time.Now(), 299*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u) // a bearer credential for 299 s: do not log it
}

// parseRegion returns the region of a channel ARN
// (arn:aws:kinesisvideo:REGION:ACCOUNT:channel/NAME/TIME).
func parseRegion(arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesisvideo" || parts[3] == "" {
		return "", fmt.Errorf("channel ARN %q: must be arn:aws:kinesisvideo:REGION:ACCOUNT:channel/NAME/TIME", arn)
	}
	return parts[3], nil
}
