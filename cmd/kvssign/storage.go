package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
)

func newChannelStorageCmd(f *channelCmdFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "storage enable|disable|describe NAME|ARN [--stream NAME|ARN]",
		Short: "Turn a channel's media storage on or off, or show it",
		Long: `Set where a channel's WebRTC sessions are recorded: 'enable' points the channel
at a Kinesis video stream (which must keep data: 'kvssign stream create NAME
--retention 24h'), 'disable' turns recording off, 'describe' shows the
configuration. While storage is enabled, a master joins the channel's storage
session ('kvssign join-storage') and viewers do not connect to it
peer-to-peer. See docs/ingestion.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usagef("channel storage: give a subcommand: enable, disable or describe")
		},
	}
	var stream string
	enable := f.channelCmd("enable", "Record the channel's WebRTC sessions into a stream", func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error {
		if stream == "" {
			return usagef("--stream NAME|ARN is required: the stream to record into")
		}
		s, err := checkStreamArg("--stream", stream)
		if err != nil {
			return err
		}
		return f.updateStorage(c, r, channel, region, true, s)
	})
	enable.Use = "enable NAME|ARN --stream NAME|ARN"
	enable.Flags().StringVar(&stream, "stream", "", "the Kinesis video stream to record into, by name or ARN")
	disable := f.channelCmd("disable", "Stop recording the channel's WebRTC sessions", func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error {
		return f.updateStorage(c, r, channel, region, false, "")
	})
	describe := f.channelCmd("describe", "Show the channel's media storage configuration", func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error {
		ms, err := r.DescribeMediaStorage(c.Context(), channel)
		if err != nil {
			return f.explain(err, "DescribeMediaStorageConfiguration", channel, region)
		}
		return printStorage(c, f.json(), channel, ms)
	})
	c.AddCommand(enable, disable, describe)
	return c
}

// storageJSON is a media storage configuration as printed with --output
// json, with the names KVS gives its fields.
type storageJSON struct {
	Channel   string `json:"channel"`
	Status    string `json:"status"`
	StreamARN string `json:"streamArn,omitempty"`
}

func printStorage(c *cobra.Command, jsonOut bool, channel string, ms awskvs.MediaStorage) error {
	status := "DISABLED"
	if ms.Enabled {
		status = "ENABLED"
	}
	out := c.OutOrStdout()
	if jsonOut {
		return writeJSON(out, storageJSON{Channel: channel, Status: status, StreamARN: ms.StreamARN})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "channel:\t%s\nstatus:\t%s\n", printable(channel), status)
	if ms.StreamARN != "" {
		fmt.Fprintf(tw, "stream:\t%s\n", printable(ms.StreamARN))
	}
	return tw.Flush()
}

// updateStorage sets the channel's media storage and prints the result as
// the service then describes it.
func (f *channelCmdFlags) updateStorage(c *cobra.Command, r *awskvs.Resolver, channel, region string, enabled bool, stream string) error {
	if err := r.UpdateMediaStorage(c.Context(), channel, enabled, stream); err != nil {
		var ae *awskvs.Error
		switch {
		case errors.As(err, &ae) && ae.Op == "DescribeStream":
			// The stream, given by name, was looked up first.
			return explainStream(err, ae.Op, stream, region)
		case errors.Is(err, awskvs.ErrNotFound):
			// The channel or the stream: the service's message says which.
			return err
		}
		return f.explain(err, "UpdateMediaStorageConfiguration", channel, region)
	}
	ms, err := r.DescribeMediaStorage(c.Context(), channel)
	if err != nil {
		return f.explain(err, "DescribeMediaStorageConfiguration", channel, region)
	}
	return printStorage(c, f.json(), channel, ms)
}
