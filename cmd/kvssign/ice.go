package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
)

type iceFlags struct {
	outputFlags
	aws      awsFlags
	ch       channelFlags
	clientID string
}

func newICECmd() *cobra.Command {
	var f iceFlags
	c := &cobra.Command{
		Use:   "ice (--channel NAME|ARN | --channel-arn ARN) [--client-id ID]",
		Short: "Print a channel's ICE servers (STUN and TURN) for an RTCPeerConnection",
		Long: `Fetch the channel's TURN servers with GetIceServerConfig (sent to the channel's
HTTPS endpoint) and print them as an RTCPeerConnection's iceServers:
[{"urls":[…],"username":…,"credential":…}], with KVS's STUN server first when
the channel is in AWS.

The text output is that array on one line, ready to paste; --output json adds
the channel ARN and when the TURN credentials expire. The credentials are
short-lived (a Ttl of 5 minutes) but are secrets until then.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.json(), runICE(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &f))
		},
	}
	fs := c.Flags()
	f.ch.register(fs, true)
	fs.StringVar(&f.clientID, "client-id", "", "the viewer asking (a master gives none)")
	f.aws.register(fs, true, true)
	f.outputFlags.register(fs, true)
	registerCompletions(c)
	return c
}

type iceJSON struct {
	ChannelARN string             `json:"channelArn"`
	ICEServers []awskvs.ICEServer `json:"iceServers"`
	ExpiresAt  *time.Time         `json:"expiresAt,omitempty"`
}

func runICE(ctx context.Context, out, stderr io.Writer, f *iceFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	channel, err := f.ch.get()
	if err != nil {
		return err
	}
	role := kvs.Master
	if f.clientID != "" {
		if err := kvs.ValidateClientID(f.clientID); err != nil {
			return flagError("--client-id", err)
		}
		role = kvs.Viewer
	}
	dbg := newDebugLog(f.debug, stderr)
	cfg, err := f.aws.config(ctx, dbg, arnRegion(channel))
	if err != nil {
		return err
	}
	r := f.aws.resolver(cfg, dbg)
	explain := func(err error) error {
		return explainAWS(err, diagnose.Failure{Op: "GetIceServerConfig", Role: role, Channel: channel, Region: cfg.Region,
			ARNRegion: arnRegion(channel), ClientID: f.clientID, LocalNow: time.Now(), ClockOffset: f.aws.clockOffset})
	}
	conn, err := r.Resolve(ctx, channel, role)
	if err != nil {
		return explain(err)
	}
	servers, err := r.ICEServers(ctx, conn.ChannelARN, f.clientID)
	if err != nil {
		return explain(err)
	}
	res := iceJSON{ChannelARN: conn.ChannelARN, ICEServers: servers}
	for _, s := range servers {
		if res.ExpiresAt == nil || s.Expires.Before(*res.ExpiresAt) {
			e := s.Expires.UTC()
			res.ExpiresAt = &e
		}
	}
	if stun := stunServer(conn.HTTPSEndpoint); stun != "" {
		res.ICEServers = append([]awskvs.ICEServer{{URLs: []string{stun}}}, res.ICEServers...)
	}
	if res.ICEServers == nil {
		res.ICEServers = []awskvs.ICEServer{}
	}
	if f.json() {
		return writeJSON(out, res)
	}
	b, err := json.Marshal(res.ICEServers)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// stunServer returns KVS's STUN server for a channel whose HTTPS endpoint
// is in AWS, as the KVS SDKs add it; none for other endpoints (a local
// emulator), whose clients must not be sent to AWS.
func stunServer(httpsEndpoint string) string {
	u, err := url.Parse(httpsEndpoint)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	for _, domain := range []string{".amazonaws.com", ".amazonaws.com.cn"} {
		if !strings.HasSuffix(host, domain) {
			continue
		}
		// r-xxxxxxxx.kinesisvideo.REGION.amazonaws.com
		parts := strings.Split(strings.TrimSuffix(host, domain), ".")
		if len(parts) >= 3 && parts[len(parts)-2] == "kinesisvideo" {
			return "stun:stun.kinesisvideo." + parts[len(parts)-1] + domain + ":443"
		}
	}
	return ""
}
