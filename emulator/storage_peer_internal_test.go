package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/internal/testmedia"
)

// clipParams returns the test clip's parameter sets, as the storage peer
// finds them on the first keyframe.
func clipParams(tb testing.TB) (sps, pps []byte, info spsInfo) {
	tb.Helper()
	video, err := testmedia.H264()
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range splitAnnexB(video[0].Data) {
		switch n[0] & 0x1f {
		case nalSPS:
			sps = n
		case nalPPS:
			pps = n
		}
	}
	if info, err = parseSPS(sps); err != nil {
		tb.Fatal(err)
	}
	return sps, pps, info
}

// TestRecordingNames: every valid channel name makes a file name within
// NAME_MAX (255 bytes); long names are shortened and told apart by a hash,
// the recording keeps the full name.
func TestRecordingNames(t *testing.T) {
	sps, pps, info := clipParams(t)
	long := strings.Repeat("a", 256)
	longer := strings.Repeat("a", 255) + "b"
	at := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	st := &storageState{}
	dir := t.TempDir()
	names := map[string]string{}
	for _, ch := range []string{"front-door", long, longer, strings.Repeat("x.-_", 64)} {
		r, err := st.newRecording(ch, sps, pps, info, 0, dir, at)
		if err != nil {
			t.Fatalf("newRecording for a %d-character channel name: %v", len(ch), err)
		}
		rec, err := r.close()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Channel != ch || len(rec.Name) > 255 || filepath.Base(rec.Path) != rec.Name {
			t.Errorf("recording of a %d-character channel: name %q (%d bytes), channel %d characters; want the full channel and a name of at most 255 bytes", len(ch), rec.Name, len(rec.Name), len(rec.Channel))
		}
		if prev, ok := names[rec.Name]; ok {
			t.Errorf("channels %q and %q share the recording name %q", prev, ch, rec.Name)
		}
		names[rec.Name] = ch
	}
	if _, ok := names["front-door-20261203T040506Z-1.mkv"]; !ok {
		t.Errorf("recording names %v; want front-door-20261203T040506Z-1.mkv for a short name", names)
	}
}

// TestRecordingLookup: a recording is found by name without waiting on
// the other recorders, and a recording's size comes from what its
// recorder wrote, not from the file system.
func TestRecordingLookup(t *testing.T) {
	sps, pps, info := clipParams(t)
	e := &Emulator{}
	dir := t.TempDir()
	var recs []*recorder
	for _, ch := range []string{"busy", "wanted"} {
		r, err := e.storage.newRecording(ch, sps, pps, info, 0, dir, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.close() })
		recs = append(recs, r)
	}
	// A recorder held by a slow write must not hold up a download of
	// another recording.
	recs[0].mu.Lock()
	found := make(chan bool)
	go func() {
		_, ok := e.recordingPath(recs[1].info.Name)
		found <- ok
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Errorf("recordingPath(%q) found nothing", recs[1].info.Name)
		}
	case <-time.After(10 * time.Second):
		t.Error("recordingPath waited on another recording's recorder")
	}
	recs[0].mu.Unlock()
	if _, ok := e.recordingPath("nope.mkv"); ok {
		t.Error("recordingPath found a recording that does not exist")
	}

	// The header is written: its size is known with the file out of the
	// file system's sight.
	if err := os.Remove(recs[1].info.Path); err != nil {
		t.Fatal(err)
	}
	if got := e.Recordings(); len(got) != 2 || got[1].Size == 0 {
		t.Errorf("Recordings() = %+v; want the second one's header counted in its size", got)
	}
}

// BenchmarkRecordingLookup measures finding one of 200 recordings under
// way by name, as GET /_emulator/recordings/NAME does.
func BenchmarkRecordingLookup(b *testing.B) {
	sps, pps, info := clipParams(b)
	e := &Emulator{}
	dir := b.TempDir()
	var last string
	for i := range 200 {
		r, err := e.storage.newRecording(fmt.Sprintf("channel-%d", i), sps, pps, info, 0, dir, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.close() })
		last = r.info.Name
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.recordingPath(last); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkRecordings measures listing 200 recordings under way.
func BenchmarkRecordings(b *testing.B) {
	sps, pps, info := clipParams(b)
	e := &Emulator{}
	dir := b.TempDir()
	for i := range 200 {
		r, err := e.storage.newRecording(fmt.Sprintf("channel-%d", i), sps, pps, info, 0, dir, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.close() })
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Recordings()
	}
}
