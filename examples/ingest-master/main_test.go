package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/internal/testmedia"
)

// env points the AWS SDK at the emulator's credentials and nothing else.
func env(t *testing.T, e *emulator.Emulator) {
	t.Helper()
	c := e.Credentials()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": c.AccessKeyID, "AWS_SECRET_ACCESS_KEY": c.SecretAccessKey, "AWS_SESSION_TOKEN": "",
		"AWS_REGION": e.Region(), "AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

func TestRunRecords(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{RecordingDir: t.TempDir()})
	env(t, e)
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	// The stream and the storage, as a user would set them up.
	setupStorage(t, e.URL())
	dir := t.TempDir()
	video, audio := filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
	if err := os.WriteFile(video, testmedia.H264AnnexB(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(audio, testmedia.OggOpus(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), config{Channel: "cam", EndpointURL: e.URL(), Video: video, Audio: audio, FPS: 25, Duration: 3 * time.Second}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"JoinStorageSession (start, #1)", "storage peer connection connected", "connections 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	recs := e.Recordings()
	if len(recs) != 1 || recs[0].VideoFrames < 25 || recs[0].AudioFrames < 50 {
		t.Errorf("recordings %+v; want one with a second of video and audio at least", recs)
	}
}

func TestRunUsage(t *testing.T) {
	cases := []struct {
		name string
		cfg  config
		want string
	}{
		{"no channel", config{}, "--channel is required"},
		{"bad channel", config{Channel: "a b"}, "--channel"},
		{"video alone", config{Channel: "cam", Video: "x.h264"}, "go together"},
		{"bad fps", config{Channel: "cam", Video: "x", Audio: "y", FPS: 0}, "--fps 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.cfg, &bytes.Buffer{})
			if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run = %v; want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

// setupStorage makes the stream cam-recordings and enables cam's media
// storage into it.
func setupStorage(t *testing.T, endpoint string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{EndpointURL: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(cfg)
	if _, err := r.CreateStream(ctx, "cam-recordings", awskvs.StreamOptions{DataRetention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "cam-recordings"); err != nil {
		t.Fatal(err)
	}
}
