package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"

	"github.com/kvssign/kvssign/internal/testmedia"
)

// recordClip writes the test clip through a recorder, as the storage peer
// would from RTP (90 kHz video, 48 kHz audio timestamps).
func recordClip(tb testing.TB, path string) Recording {
	tb.Helper()
	video, err := testmedia.H264()
	if err != nil {
		tb.Fatal(err)
	}
	audio, err := testmedia.Opus()
	if err != nil {
		tb.Fatal(err)
	}
	nals := splitAnnexB(video[0].Data)
	var sps, pps []byte
	for _, n := range nals {
		switch n[0] & 0x1f {
		case nalSPS:
			sps = n
		case nalPPS:
			pps = n
		}
	}
	info, err := parseSPS(sps)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	r, err := newRecorder(path, "clip", sps, pps, info, 1000, start)
	if err != nil {
		tb.Fatal(err)
	}
	a := 0
	for i, s := range video {
		at := time.Duration(i) * s.Duration
		for ; a < len(audio) && time.Duration(a)*20*time.Millisecond <= at; a++ {
			r.writeAudio(audio[a].Data, uint32(a*960), start.Add(time.Duration(a)*20*time.Millisecond))
		}
		n := splitAnnexB(s.Data)
		key := i%testmedia.FrameRate == 0
		r.writeVideo(n, 1000+uint32(i*3600), key)
	}
	rec, err := r.close()
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

func TestRecorder(t *testing.T) {
	rec := recordClip(t, filepath.Join(t.TempDir(), "clip.mkv"))
	if rec.VideoFrames != testmedia.FrameCount || rec.Duration != 3960*time.Millisecond || !rec.Done || rec.Size == 0 {
		t.Errorf("close() = %+v; want %d frames over 3.96s, done, a size", rec, testmedia.FrameCount)
	}
	f, err := os.Open(rec.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment webm.Segment    `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(f, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Segment.Cluster) == 0 || doc.Segment.Info.Duration < 3900 {
		t.Errorf("%d clusters, Duration %v ms; want clusters and about 3960 ms", len(doc.Segment.Cluster), doc.Segment.Info.Duration)
	}
	if got := doc.Segment.Tracks.TrackEntry[0].CodecPrivate; len(got) < 8 || got[0] != 1 || got[1] != 66 {
		t.Errorf("avcC = %x; want version 1, profile 66", got)
	}
}

// BenchmarkRecorder measures muxing one 4 s clip (100 frames, 200 Opus
// packets) into a Matroska file: the storage peer's recording share.
func BenchmarkRecorder(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	for i := range b.N {
		recordClip(b, filepath.Join(dir, fmt.Sprintf("clip-%d.mkv", i)))
	}
}
