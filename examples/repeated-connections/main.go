// Command repeated-connections connects to a KVS signaling channel again and
// again, as a device does over a long life: each connection gets a URL
// signed afresh, with credentials from the standard AWS chain (optionally an
// assumed role) that are renewed through STS before they expire, for the
// endpoint of the right role. Each connection is closed before the next.
//
//	go run ./examples/repeated-connections --channel demo --role viewer \
//	  --role-arn arn:aws:iam::123456789012:role/kvs-viewer --count 10 --interval 1m
//
// Against a local emulator (kvssign emulate), add --endpoint-url http://127.0.0.1:PORT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

type config struct {
	Channel     string // name or ARN
	Role        kvs.Role
	ClientID    string // a viewer's
	Count       int
	Interval    time.Duration
	URLLifetime time.Duration
	AWS         awskvs.ConfigOptions
}

func main() {
	cfg := config{Role: kvs.Viewer}
	role := flag.String("role", "viewer", "master or viewer")
	flag.StringVar(&cfg.Channel, "channel", "", "signaling channel name or ARN")
	flag.StringVar(&cfg.ClientID, "client-id", kvs.NewClientID(), "viewer client id")
	flag.IntVar(&cfg.Count, "count", 5, "connections to make")
	flag.DurationVar(&cfg.Interval, "interval", 10*time.Second, "pause between connections")
	flag.DurationVar(&cfg.URLLifetime, "url-lifetime", kvs.DefaultExpires, "lifetime of each signed URL")
	flag.StringVar(&cfg.AWS.Region, "region", "", "AWS region (default: from the environment or profile)")
	flag.StringVar(&cfg.AWS.Profile, "profile", "", "shared config profile")
	flag.StringVar(&cfg.AWS.EndpointURL, "endpoint-url", "", "control plane and STS base URL, e.g. a local emulator's")
	flag.StringVar(&cfg.AWS.RoleARN, "role-arn", "", "role to assume with STS (renewed as it expires)")
	flag.DurationVar(&cfg.AWS.RoleDuration, "role-duration", 0, "role session lifetime (default: STS's, 1h)")
	flag.Parse()
	r, err := kvs.ParseRole(*role)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Role = r
	if r == kvs.Master {
		cfg.ClientID = ""
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	awsCfg, err := awskvs.LoadConfig(ctx, cfg.AWS)
	if err != nil {
		return err
	}
	// The Resolver finds the channel's ARN and the endpoint for this role
	// (a viewer connecting to the master endpoint gets 400) and caches
	// them. Its credentials are renewed once they would expire before a
	// URL signed with them.
	r := awskvs.NewResolver(awsCfg)
	r.Expires = cfg.URLLifetime
	r.Credentials = awskvs.Credentials(awsCfg.Credentials, cfg.URLLifetime+min(cfg.URLLifetime, time.Minute))

	for i := 1; i <= cfg.Count; i++ {
		if i > 1 {
			select {
			case <-time.After(cfg.Interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var mu sync.Mutex
		var last kvs.SignedURL
		src := func(ctx context.Context) (string, error) {
			s, err := r.Presign(ctx, cfg.Channel, cfg.Role, cfg.ClientID)
			mu.Lock()
			last = s
			mu.Unlock()
			return s.URL, err
		}
		start := time.Now()
		c, err := signaling.Dial(ctx, src, nil)
		if err != nil {
			return fmt.Errorf("connection %d/%d: %w", i, cfg.Count, err)
		}
		took := time.Since(start)
		// Close every connection: the upstream sample left each one open.
		if err := c.Close(); err != nil {
			return fmt.Errorf("connection %d/%d: closing: %w", i, cfg.Count, err)
		}
		mu.Lock()
		s := last
		mu.Unlock()
		fmt.Fprintf(out, "connection %d/%d: %s connected in %v to %s, signed by %s; closed\n",
			i, cfg.Count, cfg.Role, took.Round(time.Millisecond), endpointOf(s.URL), accessKeyOf(s.URL))
	}
	return nil
}

// endpointOf returns a signed URL without its query.
func endpointOf(signed string) string {
	ep, _, _ := strings.Cut(signed, "?")
	return ep
}

// accessKeyOf returns the access key id a URL was signed with (not a
// secret, unlike the signature and the session token).
func accessKeyOf(signed string) string {
	u, err := url.Parse(signed)
	if err != nil {
		return "?"
	}
	key, _, _ := strings.Cut(u.Query().Get("X-Amz-Credential"), "/")
	return key
}
