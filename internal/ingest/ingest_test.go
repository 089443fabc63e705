package ingest_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/internal/ingest"
	"github.com/kvssign/kvssign/signaling"
)

// setup starts an emulator with a storage-enabled channel "cam" and
// returns it with a Resolver for it.
func setup(t *testing.T) (*emulator.Emulator, *awskvs.Resolver) {
	t.Helper()
	e := emulatortest.New(t, emulator.Config{RecordingDir: t.TempDir()})
	c := e.Credentials()
	cfg, err := awskvs.LoadConfig(context.Background(), awskvs.ConfigOptions{Region: e.Region(), EndpointURL: e.URL()},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(cfg)
	ctx := context.Background()
	if _, err := r.CreateChannel(ctx, "cam", 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateStream(ctx, "cam-recordings", awskvs.StreamOptions{DataRetention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "cam-recordings"); err != nil {
		t.Fatal(err)
	}
	return e, r
}

// startMaster runs a master until the test ends or stop is called, and
// returns it with stop, which returns Run's error.
func startMaster(t *testing.T, cfg ingest.Config) (*ingest.Master, func() error) {
	t.Helper()
	cfg.Loopback = true
	cfg.Log = func(f string, a ...any) { t.Logf("master: "+f, a...) }
	m, err := ingest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			cancel()
			runErr, stopped = <-done, true
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return m, stop
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func within(got, want, tolerance float64) bool {
	return want > 0 && math.Abs(got-want) <= tolerance*want
}

func TestIngestEndToEnd(t *testing.T) {
	e, r := setup(t)
	m1, stop1 := startMaster(t, ingest.Config{Resolver: r, Channel: "cam",
		// Kicked off signaling by the second master, this one stays off:
		// two masters that both reconnect take the channel from each
		// other.
		Signaling: &signaling.Options{NoReconnect: true, BufferCandidates: true}})
	waitFor(t, "the first master's storage connection", func() bool { return m1.Stats().Connections == 1 })

	v, err := ingest.NewViewer(ingest.ViewerConfig{Resolver: r, Channel: "cam", ClientID: "viewer-1", Loopback: true,
		Log: func(f string, a ...any) { t.Logf("viewer: "+f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithCancel(context.Background())
	vdone := make(chan error, 1)
	go func() { vdone <- v.Run(vctx) }()
	waitFor(t, "the viewer's frames", func() bool { return v.Stats().VideoFrames >= 25 && v.Stats().AudioPackets >= 50 })
	vcancel()
	if err := <-vdone; err != nil {
		t.Errorf("viewer: %v", err)
	}
	t.Logf("viewer received %+v", v.Stats())
	time.Sleep(2 * time.Second) // a few seconds recorded in all

	first := e.StorageSessions()
	if len(first) != 1 || first[0].Master == "" {
		t.Fatalf("storage sessions = %+v; want cam's with a master", first)
	}
	m2, stop2 := startMaster(t, ingest.Config{Resolver: r, Channel: "cam"})
	waitFor(t, "the second master's storage connection", func() bool { return m2.Stats().Connections == 1 })
	if err := stop1(); err == nil || !strings.Contains(err.Error(), "signaling ended") {
		t.Errorf("the first master ended with %v; want its signaling ended by the second", err)
	}
	if now := e.StorageSessions(); len(now) != 1 || now[0].Master == first[0].Master || now[0].Master == "" {
		t.Errorf("storage sessions after the second master joined = %+v; want another master than %s", now, first[0].Master)
	}
	waitFor(t, "the first recording to be complete", func() bool {
		recs := e.Recordings()
		return len(recs) >= 1 && recs[0].Done
	})
	waitFor(t, "the second recording", func() bool {
		recs := e.Recordings()
		return len(recs) == 2 && recs[1].VideoFrames >= 25
	})
	if err := stop2(); err != nil {
		t.Errorf("the second master: %v", err)
	}
	// The emulator ends a session whose master left when its ICE fails,
	// some 30 seconds later: the second recording is not waited for.

	rec := e.Recordings()[0]
	sent := m1.Stats()
	t.Logf("first master sent %d frames over %v; recorded %+v", sent.SentFrames, sent.SentDuration, rec)
	switch {
	case raceEnabled:
		// The race detector's slowness loses frames on loopback.
		if rec.VideoFrames == 0 {
			t.Errorf("recorded no video frames; sent %d", sent.SentFrames)
		}
	case !within(float64(rec.VideoFrames), float64(sent.SentFrames), 0.1):
		t.Errorf("recorded %d video frames; sent %d (want within 10%%)", rec.VideoFrames, sent.SentFrames)
	case !within(float64(rec.Duration), float64(sent.SentDuration), 0.1):
		t.Errorf("recorded %v; sent %v (want within 10%%)", rec.Duration, sent.SentDuration)
	}
	if rec.AudioFrames == 0 || rec.Width != 320 || rec.Height != 240 {
		t.Errorf("recording %+v; want audio and 320x240 video", rec)
	}
	checkMatroska(t, rec)
	if st := e.Stats().Storage; st.Joins < 2 || st.ViewerJoins < 1 || st.Refused != 0 {
		t.Errorf("storage stats %+v; want 2 joins or more, a viewer, no refusal", st)
	}
}

// checkMatroska checks the file behind a recording: its size, and that
// it is an EBML document of DocType matroska.
func checkMatroska(t *testing.T, rec emulator.Recording) {
	t.Helper()
	data, err := os.ReadFile(rec.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != rec.Size || len(data) < 10_000 {
		t.Errorf("recording file is %d bytes; the emulator says %d (want at least 10 kB)", len(data), rec.Size)
	}
	if !bytes.HasPrefix(data, []byte{0x1a, 0x45, 0xdf, 0xa3}) || !bytes.Contains(data[:64], []byte("matroska")) {
		t.Errorf("recording file does not start as a Matroska file: % x", data[:min(len(data), 32)])
	}
}

func TestIngestAudioOnlyRefused(t *testing.T) {
	e, r := setup(t)
	startMaster(t, ingest.Config{Resolver: r, Channel: "cam", NoVideo: true})
	waitFor(t, "the refusal", func() bool { return e.Stats().Storage.Refused >= 1 })
	if st := e.Stats().Storage; !strings.Contains(st.LastRefusal, "H.264") {
		t.Errorf("last refusal %q; want it to name H.264", st.LastRefusal)
	}
	if recs := e.Recordings(); len(recs) != 0 {
		t.Errorf("recordings of refused media: %+v", recs)
	}
}

func TestIngestRejoins(t *testing.T) {
	e, r := setup(t)
	var mu sync.Mutex
	var reasons []string
	settings := &awskvs.StorageJoiner{SessionLimit: 3 * time.Second, OnJoin: func(a awskvs.JoinAttempt) {
		mu.Lock()
		reasons = append(reasons, a.Reason)
		mu.Unlock()
	}}
	m, _ := startMaster(t, ingest.Config{Resolver: r, Channel: "cam", Joiner: settings})
	waitFor(t, "the storage connection", func() bool { return m.Stats().Connections == 1 })
	if settings.Join != nil {
		t.Error("Run set the configured Joiner's Join; want it left as given")
	}

	if n := e.GoAway(emulator.Target{Channel: "cam", Role: "MASTER"}); n != 1 {
		t.Fatalf("GO_AWAY told %d connections; want 1", n)
	}
	waitFor(t, "a new storage connection after GO_AWAY", func() bool {
		s := m.Stats()
		return s.SignalingReconnects == 1 && s.Connections == 2
	})
	// The 3-second session limit: the master joins again before it,
	// 3s/60 = 50 ms early.
	waitFor(t, "a new storage connection before the session limit", func() bool { return m.Stats().Connections == 3 })
	if st := e.Stats().Storage; st.Joins < 3 || st.Refused != 0 {
		t.Errorf("storage stats %+v; want 3 joins or more", st)
	}
	mu.Lock()
	defer mu.Unlock()
	// The old connection's end, which follows the reconnection, must not
	// count as the loss of the new one.
	want := []string{awskvs.JoinStart, awskvs.JoinReconnected, awskvs.JoinSessionLimit}
	if diff := cmp.Diff(want, reasons[:min(len(reasons), 3)]); diff != "" {
		t.Errorf("join reasons (-want +got):\n%s", diff)
	}
}
