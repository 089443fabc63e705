package main

import (
	"bytes"
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

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

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
	aws                      awsFlags
	ch                       channelFlags
	debug                    bool
	endpoint, role, clientID string
}

func newURLCmd() *cobra.Command {
	var f urlFlags
	c := &cobra.Command{
		Use:   "url (--channel NAME|ARN | --channel-arn ARN) --role master|viewer [--client-id ID] [--endpoint WSS]",
		Short: "Sign a URL to connect to a signaling channel",
		Long: `Sign a ConnectAsMaster or ConnectAsViewer URL for a signaling channel.

Without --endpoint, the channel's ARN and its endpoint for the role are
resolved through AWS (or the emulator given with --endpoint-url), with
credentials from the standard chain, --profile or --role-arn.

With --endpoint and the channel's ARN, nothing is asked of AWS: the URL is
signed offline, with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN when they are set (otherwise the standard chain).

The text output is the URL alone on one line; it is a bearer credential
until it expires, so treat it as a secret.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.output == "json", runURL(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &f))
		},
	}
	fs := c.Flags()
	f.ch.register(fs, true)
	fs.StringVar(&f.endpoint, "endpoint", "", "the channel's WSS endpoint for the role (from GetSignalingChannelEndpoint); with a channel ARN, signs offline")
	fs.StringVar(&f.role, "role", "", "master or viewer")
	fs.StringVar(&f.clientID, "client-id", "", "the viewer's client id (default: a random one)")
	f.signFlags.register(c, kvs.DefaultExpires)
	f.aws.register(fs, false, false)
	fs.BoolVar(&f.debug, "debug", false, "show the canonical request, string to sign and calls on stderr (secrets redacted)")
	registerCompletions(c)
	return c
}

func runURL(ctx context.Context, out, stderr io.Writer, f *urlFlags) error {
	clock, err := f.clock()
	if err != nil {
		return err
	}
	channel, err := f.ch.get()
	if err != nil {
		return err
	}
	role, err := parseRole(f.role)
	if err != nil {
		return err
	}
	switch {
	case role == kvs.Viewer && f.clientID == "":
		f.clientID = kvs.NewClientID()
	case role == kvs.Viewer:
		if err := kvs.ValidateClientID(f.clientID); err != nil {
			return flagError("--client-id", err)
		}
	case f.clientID != "":
		return usagef("--client-id: a master connects without a client id")
	}
	if f.expires < time.Second || f.expires > kvs.MaxExpires || f.expires%time.Second != 0 {
		return usagef("--expires %v: must be whole seconds from 1s to %v (SigV4's limit; KVS takes a URL only within %v of signing whatever it says)", f.expires, kvs.MaxExpires, kvs.UseWithin)
	}
	f.aws.region, f.aws.clockOffset = f.region, f.clockOffset
	dbg := newDebugLog(f.debug, stderr)
	var s kvs.SignedURL
	if f.endpoint != "" {
		if !strings.HasPrefix(channel, "arn:") {
			return usagef("--endpoint: signing offline needs the channel's ARN (--channel-arn), not its name")
		}
		if er := diagnose.EndpointRole(f.endpoint); er != "" && er != role {
			// Signing is harmless, so only a warning; connect refuses.
			fmt.Fprintf(stderr, "kvssign: warning: --endpoint looks like a %s endpoint but --role is %s; the service refuses a URL sent to the other role's endpoint\n",
				er, strings.ToLower(string(role)))
		}
		// Credentials are read only once the inputs are known to be valid,
		// so that a bad flag is reported first.
		var creds sigv4.CredentialsProvider = sigv4.CredentialsFunc(func(context.Context) (sigv4.Credentials, error) { return envCredentials() })
		if f.aws.usesChain() {
			if creds, err = signingCredentials(ctx, &f.aws, dbg, arnRegion(channel)); err != nil {
				return err
			}
		} else {
			dbg.printf("credentials: from the environment; nothing is asked of AWS")
		}
		p := &kvs.Presigner{Credentials: markCredentialErrors(creds), Region: f.region, Expires: f.expires, Clock: clock, Skew: kvs.NewClockSkew(f.clockOffset)}
		if dbg.enabled() {
			p.Trace = dbg.trace
		}
		s, err = p.Presign(ctx, f.endpoint, channel, role, f.clientID)
		if err != nil {
			var ue usageError
			if errors.As(err, &ue) {
				return ue
			}
			var ce credentialsError
			if errors.As(err, &ce) {
				return explainAWS(err, diagnose.Failure{})
			}
			return usageError{err}
		}
	} else {
		cfg, err := f.aws.config(ctx, dbg, arnRegion(channel))
		if err != nil {
			return err
		}
		r := f.aws.resolver(cfg, dbg)
		r.Expires, r.Clock = f.expires, clock
		s, err = r.Presign(ctx, channel, role, f.clientID)
		if err != nil {
			return explainAWS(err, diagnose.Failure{Role: role, Channel: channel, Region: cfg.Region, ARNRegion: arnRegion(channel),
				ClientID: f.clientID, LocalNow: time.Now(), ClockOffset: f.clockOffset})
		}
	}
	return printSigned(out, f.output, s)
}

// credentialsError marks a failure to get credentials inside the error of
// the call that needed them.
type credentialsError struct{ err error }

func (e credentialsError) Error() string { return e.err.Error() }
func (e credentialsError) Unwrap() error { return e.err }

// markCredentialErrors returns p, its errors marked as credentialsError.
func markCredentialErrors(p sigv4.CredentialsProvider) sigv4.CredentialsProvider {
	return sigv4.CredentialsFunc(func(ctx context.Context) (sigv4.Credentials, error) {
		c, err := p.Retrieve(ctx)
		if err != nil {
			return c, credentialsError{err}
		}
		return c, nil
	})
}

// signedJSON is the JSON form of a signed signaling URL.
type signedJSON struct {
	URL        string    `json:"url"`
	Role       kvs.Role  `json:"role"`
	ChannelARN string    `json:"channelArn"`
	ClientID   string    `json:"clientId,omitempty"`
	ExpiresAt  time.Time `json:"expiresAt"`
	// Endpoint is the URL without its query: where it connects.
	Endpoint string `json:"endpoint"`
}

func printSigned(out io.Writer, format string, s kvs.SignedURL) error {
	if format == "json" {
		endpoint, _, _ := strings.Cut(s.URL, "?")
		return writeJSON(out, signedJSON{URL: s.URL, Role: s.Role, ChannelARN: s.ChannelARN, ClientID: s.ClientID, ExpiresAt: s.ExpiresAt, Endpoint: endpoint})
	}
	_, err := fmt.Fprintln(out, s.URL)
	return err
}

func writeJSON(out io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := out.Write(printableJSON(buf.Bytes()))
	return err
}

type presignFlags struct {
	signFlags
	service, method string
	debug           bool
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
			return scrub(runPresign(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &f, args[0]))
		},
	}
	c.Flags().StringVar(&f.service, "service", "", "the service's signing name, e.g. execute-api")
	c.Flags().StringVar(&f.method, "method", "GET", "the HTTP method the URL will be used with")
	f.signFlags.register(c, 15*time.Minute)
	c.Flags().BoolVar(&f.debug, "debug", false, "show the canonical request and string to sign on stderr (secrets redacted)")
	registerCompletions(c)
	return c
}

func runPresign(ctx context.Context, out, stderr io.Writer, f *presignFlags, raw string) error {
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
	if dbg := newDebugLog(f.debug, stderr); dbg.enabled() {
		s.Trace = dbg.trace
	}
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
