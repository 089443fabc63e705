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
	"github.com/kvssign/kvssign/internal/ingest"
)

// TestEmulateIngestOffline is docs/ingestion.md's offline test of a
// device: kvssign emulate with --recordings, the channel, stream and
// storage set up with the CLI, a master streaming, a file in the
// directory.
func TestEmulateIngestOffline(t *testing.T) {
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	// kvssign emulate's default credentials, AWS's documented example key.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-west-2")
	dir := filepath.Join(t.TempDir(), "recordings")
	url, stdout, _, stop := startEmulate(t, "--recordings", dir, "--log-level", "off", "--create-channel", "cam")
	defer stop()
	if !strings.Contains(stdout.String(), "recordings:        "+dir) {
		t.Errorf("emulate does not show the recordings directory:\n%s", stdout)
	}
	ep := "--endpoint-url=" + url
	for _, args := range [][]string{
		{"stream", "create", "cam-recordings", "--retention", "24h", ep},
		{"channel", "storage", "enable", "cam", "--stream", "cam-recordings", ep},
	} {
		if r := cli(t, nil, args...); r.code != 0 {
			t.Fatalf("%v: %v", args, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	cfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{EndpointURL: url})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ingest.New(ingest.Config{Resolver: awskvs.NewResolver(cfg), Channel: "cam", Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Stats().Connections != 1 {
		t.Fatalf("master stats %+v; want one storage connection", m.Stats())
	}
	r := cli(t, nil, "join-storage", "--channel", "cam", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "No master is connected") {
		t.Errorf("join-storage with the master gone: %v; want exit 1 with the emulator's reason", r)
	}
	stop() // ends the session, which completes the file
	files, _ := filepath.Glob(filepath.Join(dir, "cam-*.mkv"))
	if len(files) != 1 {
		t.Fatalf("recordings in %s: %v; want one", dir, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil || len(data) < 10_000 || !bytes.HasPrefix(data, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Errorf("recording %s: %d bytes, %v; want a Matroska file of 10 kB or more", files[0], len(data), err)
	}
}

func TestEmulateBadStorageFlags(t *testing.T) {
	cases := []struct {
		args     []string
		inStderr string
	}{
		{[]string{"--storage-session-duration", "0s"}, "--storage-session-duration 0s: must be positive"},
		{[]string{"--storage-viewers", "0"}, "--storage-viewers 0: must be positive"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, append([]string{"emulate"}, tc.args...), strings.NewReader(""), &out, &errOut)
		cancel()
		if code != 2 || !strings.Contains(errOut.String(), tc.inStderr) {
			t.Errorf("emulate %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.inStderr)
		}
	}
}
