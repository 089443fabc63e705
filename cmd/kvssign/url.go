package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func init() { subcommands = append(subcommands, newURLCmd, newPresignCmd) }

// signFlags are the flags shared by commands that sign.
type signFlags struct {
	region      string
	expires     time.Duration
	signingTime string
	clockOffset time.Duration
	output      string
}

func (f *signFlags) register(c *cobra.Command, defaultExpires time.Duration) {
	c.Flags().StringVar(&f.region, "region", "", "signing region (default: the channel ARN's region)")
	c.Flags().DurationVar(&f.expires, "expires", defaultExpires, "how long the URL stays valid")
	c.Flags().StringVar(&f.signingTime, "signing-time", "", "sign as of this RFC 3339 time instead of now")
	c.Flags().DurationVar(&f.clockOffset, "clock-offset", 0, "add this to the local clock (e.g. 90s or -2m) to correct skew")
	c.Flags().StringVar(&f.output, "output", "text", "output format: text or json")
}

// clock returns the signing clock the flags ask for.
func (f *signFlags) clock() (func() time.Time, error) {
	switch f.output {
	case "text", "json":
	default:
		return nil, usagef("--output %q: must be text or json", f.output)
	}
	if f.signingTime == "" {
		return time.Now, nil
	}
	t, err := time.Parse(time.RFC3339, f.signingTime)
	if err != nil {
		return nil, usagef("--signing-time %q: must be an RFC 3339 time such as 2026-11-23T10:00:00Z", f.signingTime)
	}
	return func() time.Time { return t }, nil
}

// envCredentials reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
func envCredentials() (sigv4.Credentials, error) {
	c := sigv4.Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, usagef("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)")
	}
	return c, nil
}

type urlFlags struct {
	signFlags
	endpoint, channelARN, role, clientID string
}

func newURLCmd() *cobra.Command {
	var f urlFlags
	c := &cobra.Command{
		Use:   "url --endpoint WSS --channel-arn ARN --role master|viewer [--client-id ID]",
		Short: "Sign a URL to connect to a signaling channel",
		Long: `Sign a ConnectAsMaster or ConnectAsViewer URL for a signaling channel.

Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN. The text output is the URL alone on one line; it is a
bearer credential until it expires, so treat it as a secret.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runURL(c.Context(), c.OutOrStdout(), &f)
		},
	}
	c.Flags().StringVar(&f.endpoint, "endpoint", "", "the channel's WSS endpoint for the role (from GetSignalingChannelEndpoint)")
	c.Flags().StringVar(&f.channelARN, "channel-arn", "", "the signaling channel's ARN")
	c.Flags().StringVar(&f.role, "role", "", "master or viewer")
	c.Flags().StringVar(&f.clientID, "client-id", "", "the viewer's client id (default: a random one)")
	f.signFlags.register(c, kvs.DefaultExpires)
	return c
}

func runURL(ctx context.Context, out io.Writer, f *urlFlags) error {
	clock, err := f.clock()
	if err != nil {
		return err
	}
	if f.endpoint == "" {
		return usagef("--endpoint is required: the channel's WSS endpoint for the role")
	}
	if f.channelARN == "" {
		return usagef("--channel-arn is required")
	}
	role, err := kvs.ParseRole(f.role)
	if err != nil {
		return usagef("--role %q: must be master or viewer", f.role)
	}
	if role == kvs.Viewer && f.clientID == "" {
		f.clientID = kvs.NewClientID()
	}
	// Credentials are read only once the inputs are known to be valid, so
	// that a bad flag is reported first.
	creds := sigv4.CredentialsFunc(func(context.Context) (sigv4.Credentials, error) { return envCredentials() })
	p := &kvs.Presigner{Credentials: creds, Region: f.region, Expires: f.expires, Clock: clock, ClockOffset: f.clockOffset}
	s, err := p.Presign(ctx, f.endpoint, f.channelARN, role, f.clientID)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return ue
		}
		return usageError{err}
	}
	return printSigned(out, f.output, s)
}

// signedJSON is the JSON form of a signed signaling URL.
type signedJSON struct {
	URL        string    `json:"url"`
	Role       kvs.Role  `json:"role"`
	ChannelARN string    `json:"channelArn"`
	ClientID   string    `json:"clientId,omitempty"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

func printSigned(out io.Writer, format string, s kvs.SignedURL) error {
	if format == "json" {
		return writeJSON(out, signedJSON{URL: s.URL, Role: s.Role, ChannelARN: s.ChannelARN, ClientID: s.ClientID, ExpiresAt: s.ExpiresAt})
	}
	_, err := fmt.Fprintln(out, s.URL)
	return err
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

type presignFlags struct {
	signFlags
	service, method string
}

func newPresignCmd() *cobra.Command {
	var f presignFlags
	c := &cobra.Command{
		Use:   "presign --service S --region R [--expires D] [--method GET] URL",
		Short: "Presign any AWS URL with SigV4 query authentication",
		Long: `Presign a URL for any AWS service, for example an API Gateway WebSocket API
(service execute-api) that uses IAM authorization. The URL's own query is
kept; it must not already carry X-Amz-* authentication parameters.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runPresign(c.Context(), c.OutOrStdout(), &f, args[0])
		},
	}
	c.Flags().StringVar(&f.service, "service", "", "the service's signing name, e.g. execute-api")
	c.Flags().StringVar(&f.method, "method", "GET", "the HTTP method the URL will be used with")
	f.signFlags.register(c, 15*time.Minute)
	return c
}

func runPresign(ctx context.Context, out io.Writer, f *presignFlags, raw string) error {
	clock, err := f.clock()
	if err != nil {
		return err
	}
	if f.service == "" {
		return usagef("--service is required (e.g. execute-api)")
	}
	if f.region == "" {
		return usagef("--region is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return usagef("URL: %v", errors.Unwrap(err))
	}
	if u.Scheme == "" || u.Host == "" {
		return usagef("URL %q: must be absolute, like wss://abc123.execute-api.us-east-1.amazonaws.com/prod", u.Redacted())
	}
	creds, err := envCredentials()
	if err != nil {
		return err
	}
	now := clock().Add(f.clockOffset)
	s := &sigv4.Signer{Service: f.service, Region: f.region, Clock: func() time.Time { return now }}
	signed, err := s.PresignURL(ctx, creds, strings.ToUpper(f.method), u, f.expires)
	if err != nil {
		return usageError{err}
	}
	if f.output == "json" {
		return writeJSON(out, struct {
			URL       string    `json:"url"`
			ExpiresAt time.Time `json:"expiresAt"`
		}{signed, now.UTC().Truncate(time.Second).Add(f.expires)})
	}
	_, err = fmt.Fprintln(out, signed)
	return err
}
