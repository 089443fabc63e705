package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/internal/demo"
	"github.com/kvssign/kvssign/kvs"
)

func newDemoCmd() *cobra.Command {
	var cfg demo.Config
	var browser, ingestMode bool
	var addr string
	var ing ingestDemo
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run two WebRTC peers through a local KVS emulator, end to end",
		Long: `Start a KVS emulator in this process on loopback, create a signaling channel,
sign a master and a viewer URL, connect both with the Go signaling client, and
have two WebRTC peers (pion) negotiate a data channel through it: SDP offer and
answer, trickled ICE candidates. Then ping over the data channel.

It prints a timeline: who signed what (signatures redacted), who sent what,
when the data channel opened, and the round trips. No AWS account is needed,
and no packet leaves the machine.

With --ingest it shows WebRTC ingestion instead (see docs/ingestion.md): a
channel with media storage enabled into a stream, a Go master that joins
the storage session and streams H.264 and Opus for --stream-for, a storage
viewer that receives them, and the recording the emulator made (its path,
size, frames and duration).

With --browser it starts the emulator and the vending service with the
browser demo page instead (see docs/web.md), prints a master's and a viewer's
page URL to open, and serves until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Timeout <= 0 {
				return usagef("--timeout %v: must be positive", cfg.Timeout)
			}
			if cfg.Pings < 1 || cfg.Pings > 1000 {
				return usagef("--pings %d: must be from 1 to 1000", cfg.Pings)
			}
			if err := kvs.ValidateChannelName(cfg.Channel); err != nil {
				return usagef("--channel: %v", err)
			}
			if browser {
				return runBrowserDemo(cmd.Context(), cmd.OutOrStdout(), addr, cfg.Channel)
			}
			if err := kvs.ValidateClientID(cfg.ClientID); err != nil {
				return usagef("--client-id: %v", err)
			}
			if ingestMode {
				if ing.stream <= 0 || ing.stream >= cfg.Timeout {
					return usagef("--stream-for %v: must be positive and shorter than --timeout (%v)", ing.stream, cfg.Timeout)
				}
				ing.channel, ing.clientID, ing.timeout = cfg.Channel, cfg.ClientID, cfg.Timeout
				_, err := runIngestDemo(cmd.Context(), cmd.OutOrStdout(), ing)
				return err
			}
			_, err := demo.Run(cmd.Context(), cmd.OutOrStdout(), cfg)
			return err
		},
	}
	c.Flags().DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the demo has not finished within this time")
	c.Flags().IntVar(&cfg.Pings, "pings", 3, "messages to send and time over the data channel")
	c.Flags().StringVar(&cfg.Channel, "channel", "kvssign-demo", "name of the signaling channel to create")
	c.Flags().StringVar(&cfg.ClientID, "client-id", "viewer-demo", "the viewer's client id")
	c.Flags().BoolVar(&ingestMode, "ingest", false, "show WebRTC ingestion: a master streams into the channel's storage session, which records")
	c.Flags().DurationVar(&ing.stream, "stream-for", 4*time.Second, "with --ingest: how long the master streams")
	c.Flags().StringVar(&ing.recordings, "recordings", "", "with --ingest: where the recording goes (default: a new temporary directory, kept)")
	c.Flags().BoolVar(&browser, "browser", false, "serve the browser demo page instead, and print the URLs to open")
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "with --browser: where the page and the vending service listen")
	return c
}
