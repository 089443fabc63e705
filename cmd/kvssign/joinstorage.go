package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
)

type joinStorageFlags struct {
	outputFlags
	aws      awsFlags
	ch       channelFlags
	asViewer bool
	clientID string
}

func newJoinStorageCmd() *cobra.Command {
	var f joinStorageFlags
	c := &cobra.Command{
		Use:   "join-storage (--channel NAME|ARN | --channel-arn ARN) [--as-viewer --client-id ID]",
		Short: "Join a channel's storage session (JoinStorageSession), as its master or a viewer",
		Long: `Call JoinStorageSession (or, with --as-viewer, JoinStorageSessionAsViewer) at the
channel's WEBRTC endpoint. The channel's media storage must be enabled
('kvssign channel storage enable'), and the master (or the viewer --client-id)
must already be connected to the channel's signaling: the storage session
answers the call by sending it an SDP offer over that connection.

This makes one call; a device that ingests joins again when no offer comes,
when its signaling reconnects and before the session's hour is up (the Go
helper awskvs.StorageJoiner does that; see docs/ingestion.md).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.json(), runJoinStorage(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &f))
		},
	}
	fs := c.Flags()
	f.ch.register(fs, true)
	fs.BoolVar(&f.asViewer, "as-viewer", false, "join as a viewer (JoinStorageSessionAsViewer) rather than as the master")
	fs.StringVar(&f.clientID, "client-id", "", "with --as-viewer: the viewer's client id, connected to signaling")
	f.aws.register(fs, true, true)
	f.outputFlags.register(fs, true)
	registerCompletions(c)
	return c
}

type joinStorageJSON struct {
	Channel  string `json:"channel"`
	Role     string `json:"role"`
	ClientID string `json:"clientId,omitempty"`
	Endpoint string `json:"endpoint"`
}

func runJoinStorage(ctx context.Context, out, stderr io.Writer, f *joinStorageFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	channel, err := f.ch.get()
	if err != nil {
		return err
	}
	role := kvs.Master
	switch {
	case f.asViewer:
		if f.clientID == "" {
			return usagef("--as-viewer needs --client-id: the viewer's client id")
		}
		if err := kvs.ValidateClientID(f.clientID); err != nil {
			return flagError("--client-id", err)
		}
		role = kvs.Viewer
	case f.clientID != "":
		return usagef("--client-id is for --as-viewer: the master joins without one")
	}
	dbg := newDebugLog(f.debug, stderr)
	cfg, err := f.aws.config(ctx, dbg, arnRegion(channel))
	if err != nil {
		return err
	}
	r := f.aws.resolver(cfg, dbg)
	explain := func(err error, op string) error {
		return explainAWS(err, diagnose.Failure{Op: op, Role: role, Channel: channel, Region: cfg.Region,
			ARNRegion: arnRegion(channel), ClientID: f.clientID, LocalNow: time.Now(), ClockOffset: f.aws.clockOffset})
	}
	ep, err := r.StorageEndpoint(ctx, channel, role)
	if err != nil {
		return explain(err, "GetSignalingChannelEndpoint")
	}
	op := "JoinStorageSession"
	if role == kvs.Viewer {
		op = "JoinStorageSessionAsViewer"
		err = r.JoinStorageSessionAsViewer(ctx, channel, f.clientID)
	} else {
		err = r.JoinStorageSession(ctx, channel)
	}
	if err != nil {
		return explain(err, op)
	}
	if f.json() {
		return writeJSON(out, joinStorageJSON{Channel: channel, Role: string(role), ClientID: f.clientID, Endpoint: ep})
	}
	who := "the master"
	if role == kvs.Viewer {
		who = "viewer " + printable(f.clientID)
	}
	_, err = fmt.Fprintf(out, "joined the storage session of %s as %s at %s: its offer goes to %s's signaling connection\n",
		printable(channel), string(role), printable(ep), who)
	return err
}
