package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/demo"
	"github.com/kvssign/kvssign/internal/ingest"
)

// ingestDemo configures `kvssign demo --ingest`.
type ingestDemo struct {
	channel, clientID string
	timeout, stream   time.Duration
	recordings        string // where the recording goes; empty: a new temporary directory, kept
}

// ingestResult is what the ingestion demo measured.
type ingestResult struct {
	recording    emulator.Recording
	viewerFrames int64
}

// runIngestDemo starts an emulator on loopback with a storage-enabled
// channel, has a Go master stream the test clip into its storage session
// for d.stream while a storage viewer watches, and prints the timeline and
// the recording's path and size.
func runIngestDemo(ctx context.Context, w io.Writer, d ingestDemo) (res ingestResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	defer func() {
		if err != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("demo: did not finish within %v: %w", d.timeout, err)
		}
	}()
	dir := d.recordings
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kvssign-demo-recordings-"); err != nil {
			return res, err
		}
	}
	tl := demo.NewTimeline(w)
	e, err := emulator.New(emulator.Config{RecordingDir: dir})
	if err != nil {
		return res, err
	}
	if err := e.Start(); err != nil {
		return res, fmt.Errorf("demo: starting the emulator: %w", err)
	}
	defer e.Close()
	tl.Printf("emulator", "KVS emulator listening on %s, recording into %s", e.URL(), dir)
	r, err := ingestDemoStorage(ctx, e, tl, d.channel)
	if err != nil {
		return res, err
	}
	m, err := ingest.New(ingest.Config{Resolver: r, Channel: d.channel, Loopback: true,
		Log: func(f string, a ...any) { tl.Printf("master", f, a...) }})
	if err != nil {
		return res, err
	}
	v, err := ingest.NewViewer(ingest.ViewerConfig{Resolver: r, Channel: d.channel, ClientID: d.clientID, Loopback: true,
		Log: func(f string, a ...any) { tl.Printf("viewer", f, a...) }})
	if err != nil {
		return res, err
	}
	mctx, mstop := context.WithCancel(ctx)
	defer mstop()
	mdone := make(chan error, 1)
	go func() { mdone <- m.Run(mctx) }()
	if err := waitUntil(ctx, mdone, func() bool { return m.Stats().Connections > 0 }); err != nil {
		return res, err
	}
	vdone := make(chan error, 1)
	go func() { vdone <- v.Run(mctx) }()
	select {
	case <-time.After(d.stream):
	case err := <-mdone:
		return res, fmt.Errorf("demo: the master stopped: %w", err)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	mstop()
	<-mdone
	<-vdone
	s, vs := m.Stats(), v.Stats()
	tl.Printf("master", "stopped: sent %d video frames, %d of them (%v) from the first keyframe the storage peer received",
		s.VideoSamples, s.SentFrames, s.SentDuration.Round(time.Millisecond))
	tl.Printf("viewer", "stopped: received %d video frames, %d audio packets from the storage session", vs.VideoFrames, vs.AudioPackets)
	// Closing the emulator ends the storage session, which completes the
	// recording file.
	e.Close()
	recs := e.Recordings()
	if len(recs) == 0 {
		return res, errors.New("demo: the emulator recorded nothing")
	}
	rec := recs[len(recs)-1]
	tl.Printf("emulator", "recording %s: %d bytes, %d video frames (%dx%d %s), %d audio frames, %v",
		rec.Path, rec.Size, rec.VideoFrames, rec.Width, rec.Height, rec.Profile, rec.AudioFrames, rec.Duration.Round(time.Millisecond))
	tl.Stop()
	return ingestResult{recording: rec, viewerFrames: vs.VideoFrames}, nil
}

// ingestDemoStorage creates the channel and a stream, enables the
// channel's media storage into it through awskvs, and returns the Resolver.
func ingestDemoStorage(ctx context.Context, e *emulator.Emulator, tl *demo.Timeline, channel string) (*awskvs.Resolver, error) {
	c := e.Credentials()
	cfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{Region: e.Region(), EndpointURL: e.URL()},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	if err != nil {
		return nil, err
	}
	r := awskvs.NewResolver(cfg)
	arn, err := r.CreateChannel(ctx, channel, 0, nil)
	if err != nil {
		return nil, err
	}
	tl.Printf("control", "CreateSignalingChannel %s", arn)
	streamARN, err := r.CreateStream(ctx, channel+"-recordings", awskvs.StreamOptions{DataRetention: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	tl.Printf("control", "CreateStream %s (24 h retention)", streamARN)
	if err := r.UpdateMediaStorage(ctx, arn, true, streamARN); err != nil {
		return nil, err
	}
	ep, err := r.StorageEndpoint(ctx, arn, "MASTER")
	if err != nil {
		return nil, err
	}
	tl.Printf("control", "UpdateMediaStorageConfiguration ENABLED; WEBRTC endpoint %s", ep)
	return r, nil
}

// waitUntil polls cond until it holds, the master stops or ctx ends.
func waitUntil(ctx context.Context, stopped <-chan error, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-stopped:
			return fmt.Errorf("demo: the master stopped: %w", err)
		case <-t.C:
		}
	}
	return nil
}
