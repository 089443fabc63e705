package emulator

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/internal/testmedia"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clipSPS returns the test clip's first SPS.
func clipSPS(t testing.TB) []byte {
	t.Helper()
	for _, n := range splitAnnexB(testmedia.H264AnnexB()) {
		if n[0]&0x1f == nalSPS {
			return n
		}
	}
	t.Fatal("no SPS in the test clip")
	return nil
}

func TestParseSPS(t *testing.T) {
	// SPSs from ffmpeg's libx264 (testsrc at each size and profile).
	tests := []struct {
		name          string
		sps           []byte
		profile       string
		width, height int
		wantErr       bool
	}{
		{"clip", clipSPS(t), "constrained-baseline", 320, 240, false},
		{"high 1080p (cropped)", mustHex(t, "67640028acd940780227e5c044000003000400000300c83c60c658"), "high", 1920, 1080, false},
		{"high 1440p", mustHex(t, "67640032acd9402800b5b011000003000100000300320f183196"), "high", 2560, 1440, false},
		{"main 360p", mustHex(t, "674d401eeca05017fcb808800000030080000019078b16cb"), "main", 640, 360, false},
		{"interlaced high", mustHex(t, "6764001eacd940b424d8088000000300800000190f8a14cb"), "high", 720, 576, false},
		{"high 10", []byte{0x67, 110, 0, 30, 0xff}, "", 0, 0, true},
		{"not an SPS", []byte{0x68, 66, 0, 30}, "", 0, 0, true},
		{"truncated", mustHex(t, "67640028acd9"), "", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSPS(tc.sps)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseSPS() = %+v; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.profile != tc.profile || got.width != tc.width || got.height != tc.height {
				t.Errorf("parseSPS() = %s %dx%d; want %s %dx%d", got.profile, got.width, got.height, tc.profile, tc.width, tc.height)
			}
		})
	}
}

func TestH264ProfileName(t *testing.T) {
	tests := []struct {
		idc, constraints byte
		want             string
	}{
		{66, 0xc0, "constrained-baseline"}, {66, 0x00, "baseline"}, {77, 0x40, "main"},
		{100, 0x00, "high"}, {100, 0x08, "progressive-high"}, {100, 0x0c, "constrained-high"},
		{88, 0, ""}, {110, 0, ""}, {244, 0, ""},
	}
	for _, tc := range tests {
		if got := h264ProfileName(tc.idc, tc.constraints); got != tc.want {
			t.Errorf("h264ProfileName(%d, %#x) = %q; want %q", tc.idc, tc.constraints, got, tc.want)
		}
	}
}

func TestSplitAnnexB(t *testing.T) {
	got := splitAnnexB([]byte{0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 3})
	want := [][]byte{{9, 0xf0}, {0x67, 1, 2}, {0x65, 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("splitAnnexB (-want +got):\n%s", diff)
	}
	avcc := toAVCC(got)
	if want := []byte{0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x65, 3}; !bytes.Equal(avcc, want) {
		t.Errorf("toAVCC = %x; want %x (no delimiter)", avcc, want)
	}
}

func TestUnescapeRBSP(t *testing.T) {
	got := unescapeRBSP([]byte{1, 0, 0, 3, 1, 0, 0, 3, 0, 0, 3})
	if want := []byte{1, 0, 0, 1, 0, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("unescapeRBSP = %x; want %x", got, want)
	}
}

func FuzzParseSPS(f *testing.F) {
	f.Add(clipSPS(f))
	f.Add(mustHex(f, "67640028acd940780227e5c044000003000400000300c83c60c658"))
	f.Add(mustHex(f, "6764001eacd940b424d8088000000300800000190f8a14cb"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseSPS(b)
		if err == nil && (info.width <= 0 || info.height <= 0) {
			t.Fatalf("parseSPS(%x) = %+v without error", b, info)
		}
	})
}

func FuzzSplitAnnexB(f *testing.F) {
	f.Add(testmedia.H264AnnexB()[:600])
	f.Add([]byte{0, 0, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range splitAnnexB(b) {
			if len(n) == 0 || n[len(n)-1] == 0 {
				t.Fatalf("splitAnnexB(%x) has the unit %x", b, n)
			}
		}
		toAVCC(splitAnnexB(b))
	})
}

// TestRecordVideoRefuses: the first keyframe's SPS decides whether the
// master's video is taken: KVS's profiles, at most 1920×1920.
func TestRecordVideoRefuses(t *testing.T) {
	e, err := New(Config{RecordingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sps     []byte
		refused string // "" if taken
	}{
		{"clip", clipSPS(t), ""},
		{"1080p high", mustHex(t, "67640028acd940780227e5c044000003000400000300c83c60c658"), ""},
		{"1440p", mustHex(t, "67640032acd9402800b5b011000003000100000300320f183196"), "2560x1440, larger than 1920x1920"},
		{"high 10", []byte{0x67, 110, 0, 30, 0xf4, 0x20}, "profile_idc 110"},
		{"broken SPS", []byte{0x67, 66, 0xc0, 30}, "h264 SPS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &peerLink{s: &storageSession{e: e, ch: &channel{name: "refusals"}}, ended: make(chan struct{})}
			au := append([]byte{0, 0, 0, 1}, tc.sps...)
			au = append(au, 0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84)
			ok := l.recordVideo(au, 0)
			if tc.refused == "" {
				if !ok || l.rec == nil {
					t.Fatalf("recordVideo() = %v, recording %v; want the video taken", ok, l.rec)
				}
				l.rec.close()
				return
			}
			if ok || !l.refused || !strings.Contains(l.reason, tc.refused) {
				t.Errorf("recordVideo() = %v, refused %v (%q); want refused with %q", ok, l.refused, l.reason, tc.refused)
			}
		})
	}
}
