package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
)

type channelCmdFlags struct {
	outputFlags
	aws awsFlags
}

func newChannelCmd() *cobra.Command {
	var f channelCmdFlags
	c := &cobra.Command{
		Use:   "channel create|describe|list|delete|storage",
		Short: "Create, describe, list and delete signaling channels, and set their media storage",
		Long: `Manage signaling channels through the Kinesis Video Streams control plane (or
the emulator given with --endpoint-url). A channel is named by its name or
its ARN.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usagef("channel: give a subcommand: create, describe, list, delete or storage")
		},
	}
	pf := c.PersistentFlags()
	f.aws.register(pf, true, false)
	f.outputFlags.register(pf, true)
	c.AddCommand(newChannelCreateCmd(&f), newChannelDescribeCmd(&f), newChannelListCmd(&f), newChannelDeleteCmd(&f), newChannelStorageCmd(&f))
	registerCompletions(c)
	return c
}

// resolver checks the shared flags and returns a Resolver.
func (f *channelCmdFlags) resolver(ctx context.Context, stderr io.Writer, channel string) (*awskvs.Resolver, string, error) {
	if err := f.check(); err != nil {
		return nil, "", err
	}
	dbg := newDebugLog(f.debug, stderr)
	cfg, err := f.aws.config(ctx, dbg, arnRegion(channel))
	if err != nil {
		return nil, "", err
	}
	return f.aws.resolver(cfg, dbg), cfg.Region, nil
}

// channelArg checks a NAME|ARN argument and returns it with a resolver
// for its region.
func (f *channelCmdFlags) channelArg(c *cobra.Command, arg string) (channel string, r *awskvs.Resolver, region string, err error) {
	if channel, err = checkChannelArg("NAME|ARN", arg); err != nil {
		return "", nil, "", err
	}
	r, region, err = f.resolver(c.Context(), c.ErrOrStderr(), channel)
	return channel, r, region, err
}

func (f *channelCmdFlags) explain(err error, op, channel, region string) error {
	return explainAWS(err, diagnose.Failure{Op: op, Channel: channel, Region: region, ARNRegion: arnRegion(channel), LocalNow: time.Now()})
}

func newChannelCreateCmd(f *channelCmdFlags) *cobra.Command {
	var ttl time.Duration
	var tags []string
	c := &cobra.Command{
		Use:   "create NAME [--message-ttl 60s] [--tag KEY=VALUE]...",
		Short: "Create a SINGLE_MASTER signaling channel and print its ARN",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return finish(c.OutOrStdout(), f.json(), func() error {
				name, err := checkChannelArg("NAME", args[0])
				if err != nil {
					return err
				}
				if strings.HasPrefix(name, "arn:") {
					return usagef("NAME %q: give a name; the service makes the ARN", name)
				}
				if ttl != 0 && (ttl < awskvs.MinMessageTTL || ttl > awskvs.MaxMessageTTL || ttl%time.Second != 0) {
					return usagef("--message-ttl %v: must be whole seconds from %v to %v", ttl, awskvs.MinMessageTTL, awskvs.MaxMessageTTL)
				}
				tm, err := parseTags(tags)
				if err != nil {
					return err
				}
				r, region, err := f.resolver(c.Context(), c.ErrOrStderr(), name)
				if err != nil {
					return err
				}
				arn, err := r.CreateChannel(c.Context(), name, ttl, tm)
				if err != nil {
					return f.explain(err, "CreateSignalingChannel", name, region)
				}
				if f.json() {
					return writeJSON(c.OutOrStdout(), map[string]string{"channelArn": arn})
				}
				_, err = fmt.Fprintln(c.OutOrStdout(), printable(arn))
				return err
			}())
		},
	}
	c.Flags().DurationVar(&ttl, "message-ttl", 0, "how long messages for a disconnected peer are held, 5s to 120s (default: the service's, 60s)")
	c.Flags().StringArrayVar(&tags, "tag", nil, "a tag KEY=VALUE (repeatable)")
	return c
}

// channelJSON is a channel as printed with --output json.
type channelJSON struct {
	Name              string    `json:"name"`
	ARN               string    `json:"arn"`
	Type              string    `json:"type,omitempty"`
	Status            string    `json:"status,omitempty"`
	CreatedAt         time.Time `json:"createdAt,omitzero"`
	MessageTTLSeconds int       `json:"messageTtlSeconds,omitempty"`
	Version           string    `json:"version,omitempty"`
}

func toChannelJSON(c awskvs.Channel) channelJSON {
	return channelJSON{Name: c.Name, ARN: c.ARN, Type: c.Type, Status: c.Status, CreatedAt: c.CreatedAt.UTC(),
		MessageTTLSeconds: int(c.MessageTTL / time.Second), Version: c.Version}
}

func newChannelDescribeCmd(f *channelCmdFlags) *cobra.Command {
	return f.channelCmd("describe", "Describe a signaling channel", func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error {
		ch, err := r.DescribeChannel(c.Context(), channel)
		if err != nil {
			return f.explain(err, "DescribeSignalingChannel", channel, region)
		}
		out := c.OutOrStdout()
		if f.json() {
			return writeJSON(out, toChannelJSON(ch))
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "name:\t%s\narn:\t%s\ntype:\t%s\nstatus:\t%s\ncreated:\t%s\nmessage ttl:\t%v\nversion:\t%s\n",
			printable(ch.Name), printable(ch.ARN), printable(ch.Type), printable(ch.Status), ch.CreatedAt.UTC().Format(time.RFC3339), ch.MessageTTL, printable(ch.Version))
		return tw.Flush()
	})
}

func newChannelListCmd(f *channelCmdFlags) *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "list [--prefix P]",
		Short: "List signaling channels (name, status, ARN)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.json(), func() error {
				r, region, err := f.resolver(c.Context(), c.ErrOrStderr(), "")
				if err != nil {
					return err
				}
				list, err := r.ListChannels(c.Context(), prefix)
				if err != nil {
					return f.explain(err, "ListSignalingChannels", "", region)
				}
				out := c.OutOrStdout()
				if f.json() {
					js := make([]channelJSON, 0, len(list))
					for _, ch := range list {
						js = append(js, toChannelJSON(ch))
					}
					return writeJSON(out, js)
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				for _, ch := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(ch.Name), printable(ch.Status), printable(ch.ARN))
				}
				return tw.Flush()
			}())
		},
	}
	c.Flags().StringVar(&prefix, "prefix", "", "only channels whose names begin with this")
	return c
}

func newChannelDeleteCmd(f *channelCmdFlags) *cobra.Command {
	return f.channelCmd("delete", "Delete a signaling channel", func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error {
		if err := r.DeleteChannel(c.Context(), channel); err != nil {
			return f.explain(err, "DeleteSignalingChannel", channel, region)
		}
		if f.json() {
			return writeJSON(c.OutOrStdout(), map[string]string{"deleted": channel})
		}
		_, err := fmt.Fprintln(c.OutOrStdout(), "deleted", printable(channel))
		return err
	})
}

// channelCmd makes the subcommand VERB NAME|ARN, which runs run with the
// checked channel and a resolver for its region.
func (f *channelCmdFlags) channelCmd(verb, short string, run func(c *cobra.Command, channel string, r *awskvs.Resolver, region string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME|ARN",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			channel, r, region, err := f.channelArg(c, args[0])
			if err == nil {
				err = run(c, channel, r, region)
			}
			return finish(c.OutOrStdout(), f.json(), err)
		},
	}
}
