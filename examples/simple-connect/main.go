// Command simple-connect signs a URL for a KVS signaling channel, connects
// once, and prints the result of the handshake: what a first test of a
// signer needs. It uses no AWS SDK: credentials come from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
//
//	go run ./examples/simple-connect \
//	  --endpoint wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com \
//	  --channel-arn arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000 \
//	  --role viewer --client-id viewer-1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

// config is what run needs; main fills it from flags and the environment.
type config struct {
	Endpoint   string // the WSS endpoint GetSignalingChannelEndpoint returned for Role
	ChannelARN string
	Role       kvs.Role
	ClientID   string // a viewer's; empty for a master
	Creds      sigv4.Credentials
}

func main() {
	var cfg config
	role := flag.String("role", "viewer", "master or viewer")
	flag.StringVar(&cfg.Endpoint, "endpoint", "", "WSS endpoint for the role, from GetSignalingChannelEndpoint")
	flag.StringVar(&cfg.ChannelARN, "channel-arn", "", "signaling channel ARN")
	flag.StringVar(&cfg.ClientID, "client-id", "", "viewer client id (default: a random one)")
	flag.Parse()
	r, err := kvs.ParseRole(*role)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Role = r
	if r == kvs.Viewer && cfg.ClientID == "" {
		cfg.ClientID = kvs.NewClientID()
	}
	cfg.Creds = sigv4.Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	signer := &kvs.Presigner{Credentials: cfg.Creds}
	// Print each URL as it is signed, redacted: a signed URL is a bearer
	// credential until it expires.
	src := func(ctx context.Context) (string, error) {
		s, err := signer.Presign(ctx, cfg.Endpoint, cfg.ChannelARN, cfg.Role, cfg.ClientID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(out, "signed URL (valid until %s):\n  %s\n", s.ExpiresAt.Format(time.RFC3339), sigv4.Redact(s.URL))
		return s.URL, nil
	}
	c, err := signaling.Dial(ctx, src, nil)
	var he *signaling.HandshakeError
	if errors.As(err, &he) {
		fmt.Fprintf(out, "handshake refused: HTTP %d %s\n  message: %s\n  server time: %s\n  hint: %s\n",
			he.StatusCode, he.Type, he.Message, he.Date.Format(time.RFC3339), hint(he.StatusCode))
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "handshake accepted: HTTP 101 Switching Protocols; connected as %s\n", cfg.Role)
	return c.Close()
}

// hint says what usually causes a refusal.
func hint(status int) string {
	switch status {
	case 400:
		return "is the endpoint the one for this role? a viewer's client id must not start with AWS_"
	case 403:
		return "check the credentials (expired?), the clock, the region, and kinesisvideo:ConnectAs* permissions"
	case 404:
		return "check the channel ARN"
	}
	return "see the message"
}
