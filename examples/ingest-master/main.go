// Command ingest-master is a WebRTC ingestion master: it connects to a
// channel's signaling as MASTER, joins the channel's storage session
// (JoinStorageSession), answers the storage session's offer and streams
// H.264 and Opus to it, in a loop, so that KVS records them into the
// channel's stream. It joins again when no offer comes, after GO_AWAY and
// reconnections, when the connection is lost and before the session's hour
// is up.
//
// The media is internal/testmedia's 4-second clip, or files: an H.264
// Annex-B stream (--video, at --fps) and an Ogg Opus file (--audio), both
// needed, as KVS takes nothing less.
//
// Credentials, region and profile come from the AWS SDK's standard chain.
// Against a local emulator (kvssign emulate), give its URL as
// --endpoint-url; ICE is then limited to loopback:
//
//	kvssign emulate --addr 127.0.0.1:4566 &
//	kvssign channel create cam --endpoint-url http://127.0.0.1:4566
//	kvssign stream create cam-recordings --retention 24h --endpoint-url http://127.0.0.1:4566
//	kvssign channel storage enable cam --stream cam-recordings --endpoint-url http://127.0.0.1:4566
//	go run ./examples/ingest-master --channel cam --endpoint-url http://127.0.0.1:4566
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/internal/ingest"
	"github.com/kvssign/kvssign/internal/testmedia"
	"github.com/kvssign/kvssign/kvs"
)

// config is what run needs; main fills it from flags.
type config struct {
	Channel     string
	Region      string
	Profile     string
	EndpointURL string
	Video       string // H.264 Annex-B file; empty: the test clip
	Audio       string // Ogg Opus file
	FPS         int
	Duration    time.Duration // 0: until interrupted
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Channel, "channel", "", "the signaling channel's name or ARN, with media storage enabled")
	flag.StringVar(&cfg.Region, "region", "", "AWS region (default: the SDK's)")
	flag.StringVar(&cfg.Profile, "profile", "", "shared config profile")
	flag.StringVar(&cfg.EndpointURL, "endpoint-url", "", "control plane URL, e.g. http://127.0.0.1:4566 for kvssign emulate")
	flag.StringVar(&cfg.Video, "video", "", "H.264 Annex-B file to stream (default: a built-in test clip)")
	flag.StringVar(&cfg.Audio, "audio", "", "Ogg Opus file to stream, with --video")
	flag.IntVar(&cfg.FPS, "fps", 25, "the --video file's frame rate")
	flag.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (default: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-master:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad flag value.
type usageError struct{ error }

func run(ctx context.Context, cfg config, out io.Writer) error {
	switch {
	case cfg.Channel == "":
		return usageError{errors.New("--channel is required")}
	case strings.HasPrefix(cfg.Channel, "arn:"):
		if _, err := kvs.ParseChannelARN(cfg.Channel); err != nil {
			return usageError{fmt.Errorf("--channel: %w", err)}
		}
	default:
		if err := kvs.ValidateChannelName(cfg.Channel); err != nil {
			return usageError{fmt.Errorf("--channel: %w", err)}
		}
	}
	video, audio, err := loadMedia(cfg)
	if err != nil {
		return err
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	awsCfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{Region: cfg.Region, Profile: cfg.Profile, EndpointURL: cfg.EndpointURL})
	if err != nil {
		return err
	}
	r := awskvs.NewResolver(awsCfg)
	loopback := isLocal(cfg.EndpointURL)
	var iceServers []webrtc.ICEServer
	if !loopback {
		// KVS's STUN server, and its TURN servers for networks where
		// a direct path fails.
		iceServers = append(iceServers, webrtc.ICEServer{URLs: []string{"stun:stun.kinesisvideo." + awsCfg.Region + ".amazonaws.com:443"}})
		turn, err := r.ICEServers(ctx, cfg.Channel, "")
		if err != nil {
			return err
		}
		for _, s := range turn {
			iceServers = append(iceServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	start := time.Now()
	m, err := ingest.New(ingest.Config{
		Resolver: r, Channel: cfg.Channel, Video: video, Audio: audio, Loopback: loopback, ICEServers: iceServers,
		Log: func(format string, args ...any) {
			fmt.Fprintf(out, "%8.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return err
	}
	err = m.Run(ctx)
	s := m.Stats()
	fmt.Fprintf(out, "joins %d, offers %d, connections %d, signaling reconnects %d; sent %d video frames (%v) while connected, %d audio packets\n",
		s.Joins, s.Offers, s.Connections, s.SignalingReconnects, s.SentFrames, s.SentDuration.Round(time.Millisecond), s.AudioSamples)
	return err
}

// loadMedia reads the files the flags name, or returns nil for the test
// clip.
func loadMedia(cfg config) (video, audio []media.Sample, err error) {
	if cfg.Video == "" && cfg.Audio == "" {
		return nil, nil, nil
	}
	if cfg.Video == "" || cfg.Audio == "" {
		return nil, nil, usageError{errors.New("--video and --audio go together: KVS needs both H.264 video and Opus audio")}
	}
	if cfg.FPS < 1 || cfg.FPS > 120 {
		return nil, nil, usageError{fmt.Errorf("--fps %d: must be from 1 to 120", cfg.FPS)}
	}
	vf, err := os.Open(cfg.Video)
	if err != nil {
		return nil, nil, err
	}
	defer vf.Close()
	if video, err = testmedia.ReadH264(vf, cfg.FPS); err != nil {
		return nil, nil, fmt.Errorf("--video %s: %w", cfg.Video, err)
	}
	af, err := os.Open(cfg.Audio)
	if err != nil {
		return nil, nil, err
	}
	defer af.Close()
	if audio, err = testmedia.ReadOpus(af); err != nil {
		return nil, nil, fmt.Errorf("--audio %s: %w", cfg.Audio, err)
	}
	return video, audio, nil
}

// isLocal reports whether the endpoint URL is on this machine: an
// emulator, whose storage peer is reached over loopback.
func isLocal(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || endpoint == "" {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}
