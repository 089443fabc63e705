package testmedia_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvssign/kvssign/internal/testmedia"
)

func TestH264(t *testing.T) {
	samples, err := testmedia.H264()
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != testmedia.FrameCount {
		t.Fatalf("H264() = %d access units, want %d", len(samples), testmedia.FrameCount)
	}
	var total time.Duration
	var keys []int
	for i, s := range samples {
		total += s.Duration
		if !bytes.HasPrefix(s.Data, []byte{0, 0, 0, 1}) {
			t.Fatalf("access unit %d does not start with an Annex-B start code", i)
		}
		if hasNAL(s.Data, 5) {
			keys = append(keys, i)
			if !hasNAL(s.Data, 7) || !hasNAL(s.Data, 8) {
				t.Errorf("IDR access unit %d lacks SPS or PPS", i)
			}
		}
	}
	if total != testmedia.Length {
		t.Errorf("total duration = %v, want %v", total, testmedia.Length)
	}
	if diff := cmp.Diff([]int{0, 25, 50, 75}, keys); diff != "" {
		t.Errorf("IDR positions (-want +got):\n%s", diff)
	}
}

// hasNAL reports whether an Annex-B access unit holds a NAL unit of type typ.
func hasNAL(au []byte, typ byte) bool {
	for _, part := range bytes.Split(au, []byte{0, 0, 0, 1}) {
		if len(part) > 0 && part[0]&0x1f == typ {
			return true
		}
	}
	return false
}

func TestOpus(t *testing.T) {
	samples, err := testmedia.Opus()
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for i, s := range samples {
		if s.Duration != 20*time.Millisecond {
			t.Fatalf("packet %d lasts %v, want 20ms", i, s.Duration)
		}
		total += s.Duration
	}
	if total < testmedia.Length || total > testmedia.Length+40*time.Millisecond {
		t.Errorf("total duration = %v, want %v (+ at most two packets of padding)", total, testmedia.Length)
	}
}

func TestSamplesAreCopies(t *testing.T) {
	a, err := testmedia.H264()
	if err != nil {
		t.Fatal(err)
	}
	a[0] = media.Sample{}
	b, err := testmedia.H264()
	if err != nil {
		t.Fatal(err)
	}
	if len(b[0].Data) == 0 {
		t.Fatal("changing one H264() result changed the next")
	}
}

func TestOpusDuration(t *testing.T) {
	tests := []struct {
		name    string
		packet  []byte
		want    time.Duration
		wantErr string
	}{
		{"celt 20ms", []byte{31 << 3}, 20 * time.Millisecond, ""},
		{"celt 2.5ms", []byte{16 << 3}, 2500 * time.Microsecond, ""},
		{"silk 60ms", []byte{3 << 3}, 60 * time.Millisecond, ""},
		{"hybrid 10ms", []byte{12 << 3}, 10 * time.Millisecond, ""},
		{"two frames", []byte{31<<3 | 1}, 40 * time.Millisecond, ""},
		{"code 3 six frames", []byte{31<<3 | 3, 6}, 120 * time.Millisecond, ""},
		{"empty", nil, 0, "needs a TOC byte"},
		{"code 3 no count", []byte{31<<3 | 3}, 0, "frame count byte"},
		{"code 3 zero frames", []byte{31<<3 | 3, 0}, 0, "at least 1"},
		{"too long", []byte{3<<3 | 3, 3}, 0, "at most 120ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmedia.OpusDuration(tt.packet)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("OpusDuration() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("OpusDuration() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := testmedia.ReadH264(bytes.NewReader(nil), 25); err == nil {
		t.Error("ReadH264(empty) succeeded")
	}
	if _, err := testmedia.ReadH264(bytes.NewReader(testmedia.H264AnnexB()), 0); err == nil || !strings.Contains(err.Error(), "frame rate") {
		t.Errorf("ReadH264(fps 0) error = %v, want one naming the frame rate", err)
	}
	if _, err := testmedia.ReadOpus(bytes.NewReader([]byte("not ogg at all, not at all"))); err == nil {
		t.Error("ReadOpus(garbage) succeeded")
	}
}

func TestPlay(t *testing.T) {
	samples := []media.Sample{{Data: []byte{1}, Duration: time.Millisecond}, {Data: []byte{2}, Duration: time.Millisecond}}
	var got []byte
	err := testmedia.Play(context.Background(), samples, 2, func(s media.Sample) error {
		got = append(got, s.Data[0])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte{1, 2, 1, 2}, got); diff != "" {
		t.Errorf("played (-want +got):\n%s", diff)
	}

	boom := errors.New("boom")
	if err := testmedia.Play(context.Background(), samples, 0, func(media.Sample) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Play() = %v, want the write error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := testmedia.Play(ctx, samples, 0, func(media.Sample) error { return nil }); err != nil {
		t.Errorf("Play(cancelled) = %v, want nil", err)
	}
}

func FuzzOpusDuration(f *testing.F) {
	f.Add([]byte{31 << 3})
	f.Add([]byte{31<<3 | 3, 6})
	f.Fuzz(func(t *testing.T, packet []byte) {
		d, err := testmedia.OpusDuration(packet)
		if err == nil && (d <= 0 || d > 120*time.Millisecond) {
			t.Fatalf("OpusDuration(%x) = %v without error", packet, d)
		}
	})
}

func FuzzReadH264(f *testing.F) {
	f.Add(testmedia.H264AnnexB()[:2000])
	f.Add([]byte{0, 0, 1, 0x65, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		samples, err := testmedia.ReadH264(bytes.NewReader(data), 25)
		if err == nil && len(samples) == 0 {
			t.Fatal("ReadH264 returned no access units and no error")
		}
	})
}

func FuzzReadOpus(f *testing.F) {
	f.Add(testmedia.OggOpus()[:1000])
	f.Fuzz(func(t *testing.T, data []byte) {
		samples, err := testmedia.ReadOpus(bytes.NewReader(data))
		if err == nil && len(samples) == 0 {
			t.Fatal("ReadOpus returned no packets and no error")
		}
	})
}
