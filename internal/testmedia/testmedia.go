// Package testmedia holds a short synthetic H.264 + Opus clip for tests, examples and demos
// that need a WebRTC master streaming real media without a camera or an encoder.
//
// The clip is 4 seconds of ffmpeg's testsrc pattern (320x240, 25 fps, H.264 constrained
// baseline, no B-frames, an IDR with SPS and PPS every second) and 4 seconds of a 440 Hz
// sine as Opus in 20 ms packets. README.md gives the commands that made it.
package testmedia

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clip's properties, fixed by the ffmpeg commands in README.md.
const (
	Width        = 320
	Height       = 240
	FrameRate    = 25
	FrameCount   = 100
	Length       = 4 * time.Second
	KeyInterval  = time.Second
	OpusRate     = 48000
	OpusChannels = 1
)

var (
	//go:embed clip.h264
	clipH264 []byte
	//go:embed clip.ogg
	clipOgg []byte
)

// H264AnnexB returns a copy of the clip's video as an H.264 Annex-B byte stream.
func H264AnnexB() []byte { return bytes.Clone(clipH264) }

// OggOpus returns a copy of the clip's audio as an Ogg Opus file.
func OggOpus() []byte { return bytes.Clone(clipOgg) }

var (
	videoOnce = sync.OnceValues(func() ([]media.Sample, error) { return ReadH264(bytes.NewReader(clipH264), FrameRate) })
	audioOnce = sync.OnceValues(func() ([]media.Sample, error) { return ReadOpus(bytes.NewReader(clipOgg)) })
)

// H264 returns the clip's video as access units, one per frame, each with its
// SPS, PPS and access unit delimiter in front as they appear in the stream, ready
// for a TrackLocalStaticSample. The samples' Data is shared between calls: do not
// modify it.
func H264() ([]media.Sample, error) {
	s, err := videoOnce()
	return clone(s), err
}

// Opus returns the clip's audio as Opus packets with their durations. The
// samples' Data is shared between calls: do not modify it.
func Opus() ([]media.Sample, error) {
	s, err := audioOnce()
	return clone(s), err
}

func clone(s []media.Sample) []media.Sample {
	if s == nil {
		return nil
	}
	return append([]media.Sample(nil), s...)
}

// ReadH264 splits an Annex-B stream into access units of the given frame rate. It
// assumes one slice per picture, which is what the clip and most live encoders
// produce: every coded slice ends an access unit, and the parameter sets, SEI and
// delimiters before it belong to it.
func ReadH264(r io.Reader, fps int) ([]media.Sample, error) {
	if fps <= 0 {
		return nil, fmt.Errorf("testmedia: frame rate %d: must be positive", fps)
	}
	rd, err := h264reader.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("testmedia: h264: %w", err)
	}
	var (
		out     []media.Sample
		pending []byte
	)
	for {
		nal, err := rd.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("testmedia: h264 access unit %d: %w", len(out), err)
		}
		pending = append(pending, 0, 0, 0, 1)
		pending = append(pending, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			out = append(out, media.Sample{Data: pending, Duration: time.Second / time.Duration(fps)})
			pending = nil
		}
	}
	if len(out) == 0 {
		return nil, errors.New("testmedia: h264: no coded slice in the stream")
	}
	return out, nil
}

// ReadOpus returns the packets of an Ogg Opus file that carries one packet per
// page (ffmpeg's -page_duration set to the frame duration does that), each with
// the duration its TOC byte declares.
func ReadOpus(r io.Reader) ([]media.Sample, error) {
	rd, _, err := oggreader.NewWith(r)
	if err != nil {
		return nil, fmt.Errorf("testmedia: ogg: %w", err)
	}
	var out []media.Sample
	for {
		payload, hdr, err := rd.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("testmedia: ogg page %d: %w", len(out), err)
		}
		if t, ok := hdr.HeaderType(payload); ok && t == oggreader.HeaderOpusTags {
			continue
		}
		d, err := OpusDuration(payload)
		if err != nil {
			return nil, fmt.Errorf("testmedia: ogg page %d: %w", len(out), err)
		}
		out = append(out, media.Sample{Data: payload, Duration: d})
	}
	if len(out) == 0 {
		return nil, errors.New("testmedia: ogg: no opus packet in the file")
	}
	return out, nil
}

// OpusDuration returns how much audio an Opus packet holds, read from its TOC
// byte (RFC 6716 section 3.1) and, for code 3 packets, its frame count byte.
func OpusDuration(packet []byte) (time.Duration, error) {
	if len(packet) == 0 {
		return 0, errors.New("testmedia: opus packet: empty, needs a TOC byte")
	}
	toc := packet[0]
	config := int(toc >> 3)
	// Frame sizes in units of 2.5 ms for each configuration's bandwidth group.
	var unit int
	switch {
	case config < 12:
		unit = []int{4, 8, 16, 24}[config%4]
	case config < 16:
		unit = []int{4, 8}[config%2]
	default:
		unit = []int{1, 2, 4, 8}[config%4]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(packet) < 2 {
			return 0, errors.New("testmedia: opus packet: code 3 needs a frame count byte")
		}
		frames = int(packet[1] & 0x3f)
		if frames == 0 {
			return 0, errors.New("testmedia: opus packet: frame count must be at least 1")
		}
	}
	d := time.Duration(unit*frames) * 2500 * time.Microsecond
	if d > 120*time.Millisecond {
		return 0, fmt.Errorf("testmedia: opus packet: %v of audio, at most 120ms allowed", d)
	}
	return d, nil
}
