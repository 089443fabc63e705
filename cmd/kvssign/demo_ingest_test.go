package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestDemoIngest(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--ingest", "--stream-for", "2500ms", "--recordings", dir}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("kvssign demo --ingest exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"UpdateMediaStorageConfiguration ENABLED", "JoinStorageSession (start, #1)",
		"JoinStorageSessionAsViewer (start, #1)", "storage peer connection connected"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	m := regexp.MustCompile(`recording (\S+\.mkv): ([0-9]+) bytes, ([0-9]+) video frames`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("output names no recording:\n%s", text)
	}
	if !strings.HasPrefix(m[1], dir) {
		t.Errorf("recording %s is not in --recordings %s", m[1], dir)
	}
	fi, err := os.Stat(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := strconv.ParseInt(m[2], 10, 64); size != fi.Size() || size < 10_000 {
		t.Errorf("the timeline says %s bytes; the file has %d", m[2], fi.Size())
	}
	if frames, _ := strconv.Atoi(m[3]); frames < 25 {
		t.Errorf("%d video frames recorded; want a second's at least", frames)
	}
	if v := regexp.MustCompile(`received ([0-9]+) video frames`).FindStringSubmatch(text); v == nil || v[1] == "0" {
		t.Errorf("the viewer received no frames:\n%s", text)
	}
}

func TestDemoIngestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--ingest", "--stream-for", "40s"}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--stream-for 40s: must be positive and shorter than --timeout") {
		t.Errorf("exit %d, stderr %q; want 2 and the rule", code, errOut.String())
	}
}
