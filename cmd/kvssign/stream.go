package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
)

func newStreamCmd() *cobra.Command {
	var f channelCmdFlags
	c := &cobra.Command{
		Use:   "stream create|describe|list|delete",
		Short: "Create, describe, list and delete Kinesis video streams",
		Long: `Manage Kinesis video streams through the Kinesis Video Streams control plane (or
the emulator given with --endpoint-url): the streams a channel's WebRTC
sessions are stored into once 'kvssign channel storage enable' points it at
one. A stream is named by its name or its ARN. See docs/ingestion.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usagef("stream: give a subcommand: create, describe, list or delete")
		},
	}
	pf := c.PersistentFlags()
	f.aws.register(pf, true, false)
	f.outputFlags.register(pf, true)
	c.AddCommand(newStreamCreateCmd(&f), newStreamDescribeCmd(&f), newStreamListCmd(&f), newStreamDeleteCmd(&f))
	registerCompletions(c)
	return c
}

// The forms of a stream's name and ARN, as the service model gives them.
var (
	streamNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)
	streamARNPattern  = regexp.MustCompile(`^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:[0-9]+:stream/[a-zA-Z0-9_.-]{1,256}/[0-9]+$`)
)

// streamRegion returns the region a stream ARN names, or "".
func streamRegion(stream string) string {
	if p := strings.SplitN(stream, ":", 5); len(p) == 5 && p[0] == "arn" {
		return p[3]
	}
	return ""
}

// streamResolver checks the shared flags and returns a Resolver for the
// stream's region.
func (f *channelCmdFlags) streamResolver(ctx context.Context, stderr io.Writer, stream string) (*awskvs.Resolver, string, error) {
	if err := f.check(); err != nil {
		return nil, "", err
	}
	dbg := newDebugLog(f.debug, stderr)
	cfg, err := f.aws.config(ctx, dbg, streamRegion(stream))
	if err != nil {
		return nil, "", err
	}
	return f.aws.resolver(cfg, dbg), cfg.Region, nil
}

// explainStream adds a likely cause and fix to a failed stream call. The
// diagnose package speaks of channels, so a missing stream is worded here.
func explainStream(err error, op, stream, region string) error {
	var ae *awskvs.Error
	if errors.As(err, &ae) && ae.Kind == awskvs.ErrNotFound && ae.StatusCode != 0 {
		where := ""
		if region != "" {
			where = " in " + region
		}
		return diagnosedError{err: err, d: diagnose.Diagnosis{Cause: "unknown-stream",
			Explanation: fmt.Sprintf("the stream %s does not exist%s: a wrong name or region, or it was deleted", stream, where),
			Fix:         "check the name and --region, list streams with 'kvssign stream list', or create it with 'kvssign stream create NAME --retention 24h'"}}
	}
	return explainAWS(err, diagnose.Failure{Op: op, Region: region, LocalNow: time.Now()})
}

// checkStreamArg checks a stream name or ARN given as flag or argument.
func checkStreamArg(what, s string) (string, error) {
	if s == "" {
		return "", usagef("%s is empty: give a stream name or ARN", what)
	}
	if strings.HasPrefix(s, "arn:") {
		if !streamARNPattern.MatchString(s) {
			return "", usagef("%s %q: must look like arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION_MS", what, s)
		}
		return s, nil
	}
	if !streamNamePattern.MatchString(s) {
		return "", usagef("%s %q: must be 1 to 256 characters of a-z A-Z 0-9 _ . -", what, s)
	}
	return s, nil
}

func newStreamCreateCmd(f *channelCmdFlags) *cobra.Command {
	var o awskvs.StreamOptions
	var tags []string
	c := &cobra.Command{
		Use:   "create NAME --retention 24h [--media-type video/h264] [--tag KEY=VALUE]...",
		Short: "Create a Kinesis video stream and print its ARN",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return finish(c.OutOrStdout(), f.json(), func() error {
				name, err := checkStreamArg("NAME", args[0])
				if err != nil {
					return err
				}
				if strings.HasPrefix(name, "arn:") {
					return usagef("NAME %q: give a name; the service makes the ARN", name)
				}
				if o.DataRetention < 0 || o.DataRetention > awskvs.MaxDataRetention || o.DataRetention%time.Hour != 0 {
					return usagef("--retention %v: must be whole hours from 0 to %dh", o.DataRetention, int(awskvs.MaxDataRetention/time.Hour))
				}
				if o.Tags, err = parseTags(tags); err != nil {
					return err
				}
				r, region, err := f.streamResolver(c.Context(), c.ErrOrStderr(), name)
				if err != nil {
					return err
				}
				arn, err := r.CreateStream(c.Context(), name, o)
				if err != nil {
					return explainStream(err, "CreateStream", name, region)
				}
				if f.json() {
					return writeJSON(c.OutOrStdout(), map[string]string{"streamArn": arn})
				}
				_, err = fmt.Fprintln(c.OutOrStdout(), printable(arn))
				return err
			}())
		},
	}
	c.Flags().DurationVar(&o.DataRetention, "retention", 0, "how long the stream keeps data, whole hours (0 keeps none, and a channel cannot store into it)")
	c.Flags().StringVar(&o.MediaType, "media-type", "", "the stream's MIME type, e.g. video/h264")
	c.Flags().StringVar(&o.KMSKeyID, "kms-key-id", "", "the KMS key that encrypts the stream's data (default: KVS's)")
	c.Flags().StringVar(&o.DeviceName, "device-name", "", "the device that writes to the stream")
	c.Flags().StringArrayVar(&tags, "tag", nil, "a tag KEY=VALUE (repeatable)")
	return c
}

// parseTags reads --tag KEY=VALUE flags.
func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	tm := map[string]string{}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, usagef("--tag %q: must be KEY=VALUE", t)
		}
		tm[k] = v
	}
	return tm, nil
}

// streamJSON is a stream as printed with --output json.
type streamJSON struct {
	Name                 string    `json:"name"`
	ARN                  string    `json:"arn"`
	Status               string    `json:"status,omitempty"`
	MediaType            string    `json:"mediaType,omitempty"`
	KMSKeyID             string    `json:"kmsKeyId,omitempty"`
	DeviceName           string    `json:"deviceName,omitempty"`
	CreatedAt            time.Time `json:"createdAt,omitzero"`
	DataRetentionInHours int       `json:"dataRetentionInHours"`
	Version              string    `json:"version,omitempty"`
}

func toStreamJSON(s awskvs.Stream) streamJSON {
	return streamJSON{Name: s.Name, ARN: s.ARN, Status: s.Status, MediaType: s.MediaType, KMSKeyID: s.KMSKeyID,
		DeviceName: s.DeviceName, CreatedAt: s.CreatedAt.UTC(), DataRetentionInHours: int(s.DataRetention / time.Hour), Version: s.Version}
}

// streamCmd makes the subcommand VERB NAME|ARN, which runs run with the
// checked stream and a resolver for its region.
func (f *channelCmdFlags) streamCmd(verb, short string, run func(c *cobra.Command, stream string, r *awskvs.Resolver, region string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME|ARN",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			stream, err := checkStreamArg("NAME|ARN", args[0])
			if err == nil {
				var r *awskvs.Resolver
				var region string
				if r, region, err = f.streamResolver(c.Context(), c.ErrOrStderr(), stream); err == nil {
					err = run(c, stream, r, region)
				}
			}
			return finish(c.OutOrStdout(), f.json(), err)
		},
	}
}

func newStreamDescribeCmd(f *channelCmdFlags) *cobra.Command {
	return f.streamCmd("describe", "Describe a Kinesis video stream", func(c *cobra.Command, stream string, r *awskvs.Resolver, region string) error {
		s, err := r.DescribeStream(c.Context(), stream)
		if err != nil {
			return explainStream(err, "DescribeStream", stream, region)
		}
		out := c.OutOrStdout()
		if f.json() {
			return writeJSON(out, toStreamJSON(s))
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "name:\t%s\narn:\t%s\nstatus:\t%s\nmedia type:\t%s\nretention:\t%v\ncreated:\t%s\nversion:\t%s\n",
			printable(s.Name), printable(s.ARN), printable(s.Status), printable(s.MediaType), s.DataRetention,
			s.CreatedAt.UTC().Format(time.RFC3339), printable(s.Version))
		return tw.Flush()
	})
}

func newStreamListCmd(f *channelCmdFlags) *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "list [--prefix P]",
		Short: "List Kinesis video streams (name, status, retention, ARN)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return finish(c.OutOrStdout(), f.json(), func() error {
				if prefix != "" && !streamNamePattern.MatchString(prefix) {
					return usagef("--prefix %q: must be 1 to 256 characters of a-z A-Z 0-9 _ . -", prefix)
				}
				r, region, err := f.streamResolver(c.Context(), c.ErrOrStderr(), "")
				if err != nil {
					return err
				}
				list, err := r.ListStreams(c.Context(), prefix)
				if err != nil {
					return explainStream(err, "ListStreams", "", region)
				}
				out := c.OutOrStdout()
				if f.json() {
					js := make([]streamJSON, 0, len(list))
					for _, s := range list {
						js = append(js, toStreamJSON(s))
					}
					return writeJSON(out, js)
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", printable(s.Name), printable(s.Status), s.DataRetention, printable(s.ARN))
				}
				return tw.Flush()
			}())
		},
	}
	c.Flags().StringVar(&prefix, "prefix", "", "only streams whose names begin with this")
	return c
}

func newStreamDeleteCmd(f *channelCmdFlags) *cobra.Command {
	return f.streamCmd("delete", "Delete a Kinesis video stream and its data", func(c *cobra.Command, stream string, r *awskvs.Resolver, region string) error {
		if err := r.DeleteStream(c.Context(), stream); err != nil {
			return explainStream(err, "DeleteStream", stream, region)
		}
		if f.json() {
			return writeJSON(c.OutOrStdout(), map[string]string{"deleted": stream})
		}
		_, err := fmt.Fprintln(c.OutOrStdout(), "deleted", printable(stream))
		return err
	})
}
