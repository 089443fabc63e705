package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestEmulateBadStorageFlags(t *testing.T) {
	cases := []struct {
		args     []string
		inStderr string
	}{
		{[]string{"--storage-session-duration", "0s"}, "--storage-session-duration 0s: must be positive"},
		{[]string{"--storage-no-master-timeout", "-1s"}, "--storage-no-master-timeout -1s: must be positive"},
		{[]string{"--storage-viewers", "0"}, "--storage-viewers 0: must be positive"},
		{[]string{"--recording-dir", ""}, "--recording-dir: must name a directory"},
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

func TestEmulateStorageFlags(t *testing.T) {
	dir := t.TempDir()
	url, _, _, stop := startEmulate(t, "--log-level", "off", "--recording-dir", dir, "--storage-viewers", "1",
		"--storage-session-duration", "10m", "--storage-no-master-timeout", "1m")
	if url == "" {
		t.Fatal("the emulator did not start")
	}
	if code := stop(); code != 0 {
		t.Errorf("emulate exited %d; want 0", code)
	}
}
