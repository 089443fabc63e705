// Recordings of storage sessions: the master's H.264 and Opus in a
// Matroska file. WebM proper allows neither H.264 nor, with it, a file a
// player would call WebM, so the file says matroska and ends in .mkv;
// ebml-go's webm writer does the muxing (Cues and Duration included, so
// players can seek).

package emulator

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// A Recording is the media one storage session's master sent, as the
// admin API lists it.
type Recording struct {
	// Name is the file's base name, for GET /_emulator/recordings/NAME.
	Name string `json:"name"`
	// Path is where the file is.
	Path    string `json:"path"`
	Channel string `json:"channel"`
	// Size is the file's size in bytes, as far as it was written.
	Size int64 `json:"size"`
	// Duration is the span of the recorded frames' timestamps.
	Duration time.Duration `json:"durationNs"`
	// VideoFrames and AudioFrames count the frames written.
	VideoFrames int `json:"videoFrames"`
	AudioFrames int `json:"audioFrames"`
	// Width, Height and Profile describe the H.264 video.
	Width   int       `json:"width"`
	Height  int       `json:"height"`
	Profile string    `json:"profile"`
	Started time.Time `json:"started"`
	// Done is set once the session ended and the file is complete.
	Done bool `json:"done"`
}

const (
	trackVideo = 1
	trackAudio = 2
)

// recorder writes one session's recording. Its methods are safe for
// concurrent use by the video and audio readers.
type recorder struct {
	mu     sync.Mutex
	video  webm.BlockWriteCloser
	audio  webm.BlockWriteCloser
	info   Recording
	start  time.Time // wall time of the first video frame
	vFirst uint32    // RTP timestamp of the first video frame
	aFirst uint32
	aBase  time.Duration // when the first audio frame came, after start
	aSeen  bool
	last   time.Duration // the latest timestamp written
	failed error
	closed bool
	file   *sizedFile
}

// sizedFile is a recording's file, counting its size as the muxer writes
// it (from a goroutine of its own), so that listing recordings asks the
// file system nothing.
type sizedFile struct {
	f    *os.File
	size atomic.Int64
}

func (s *sizedFile) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.size.Add(int64(n))
	return n, err
}

// WriteAt patches what was written: the muxer takes Cues only from an
// io.WriterAt (or io.WriteSeeker), and fills in the Cues and the Duration
// through it at the end.
func (s *sizedFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.f.WriteAt(p, off)
	for end := off + int64(n); ; {
		cur := s.size.Load()
		if end <= cur || s.size.CompareAndSwap(cur, end) {
			break
		}
	}
	return n, err
}

func (s *sizedFile) Close() error { return s.f.Close() }

// newRecorder creates path and writes the header of a recording whose
// video starts with the keyframe carrying sps and pps.
func newRecorder(path, channel string, sps, pps []byte, info spsInfo, pts uint32, now time.Time) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("emulator: recording: %w", err)
	}
	tracks := []webm.TrackEntry{
		{
			Name: "video", TrackNumber: trackVideo, TrackUID: 1, CodecID: "V_MPEG4/ISO/AVC", TrackType: 1,
			CodecPrivate: avcConfig(sps, pps),
			Video:        &webm.Video{PixelWidth: uint64(info.width), PixelHeight: uint64(info.height)},
		},
		{
			Name: "audio", TrackNumber: trackAudio, TrackUID: 2, CodecID: "A_OPUS", TrackType: 2,
			CodecPrivate: opusHead(),
			Audio:        &webm.Audio{SamplingFrequency: 48000, Channels: 2},
		},
	}
	header := *webm.DefaultEBMLHeader
	header.DocType = "matroska"
	sf := &sizedFile{f: f}
	ws, err := webm.NewSimpleBlockWriter(sf, tracks,
		mkvcore.WithEBMLHeader(&header),
		mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: uint64(time.Millisecond), MuxingApp: "kvssign emulator", WritingApp: "kvssign emulator"}),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(16<<10),
		mkvcore.WithBlockInterceptor(mkvcore.MustBlockInterceptor(mkvcore.NewMultiTrackBlockSorter(
			mkvcore.WithMaxDelayedPackets(64), mkvcore.WithSortRule(mkvcore.BlockSorterWriteOutdated)))),
	)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("emulator: recording: %w", err)
	}
	r := &recorder{video: ws[0], audio: ws[1], start: now, vFirst: pts, file: sf}
	r.info = Recording{Path: path, Channel: channel, Width: info.width, Height: info.height, Profile: info.profile, Started: now}
	return r, nil
}

// opusHead is the Opus identification header Matroska's A_OPUS wants:
// two channels as WebRTC's opus/48000/2, no pre-skip.
func opusHead() []byte {
	return []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0}
}

// writeVideo adds an access unit (NAL units) with RTP timestamp pts.
func (r *recorder) writeVideo(nals [][]byte, pts uint32, key bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.failed != nil {
		return
	}
	at := time.Duration(int32(pts-r.vFirst)) * time.Second / 90000
	if at < 0 {
		return
	}
	if _, err := r.video.Write(key, int64(at/time.Millisecond), toAVCC(nals)); err != nil {
		r.failed = err
		return
	}
	r.info.VideoFrames++
	r.last = max(r.last, at)
}

// writeAudio adds an Opus packet with RTP timestamp pts that arrived at
// now. Audio is placed on the video's timeline by its first packet's
// arrival, then by its own timestamps.
func (r *recorder) writeAudio(packet []byte, pts uint32, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.failed != nil {
		return
	}
	if !r.aSeen {
		r.aSeen, r.aFirst, r.aBase = true, pts, now.Sub(r.start)
	}
	at := r.aBase + time.Duration(int32(pts-r.aFirst))*time.Second/48000
	if at < 0 {
		return
	}
	if _, err := r.audio.Write(true, int64(at/time.Millisecond), packet); err != nil {
		r.failed = err
		return
	}
	r.info.AudioFrames++
	r.last = max(r.last, at)
}

// close finishes the file and returns its description.
func (r *recorder) close() (Recording, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.info, r.failed
	}
	r.closed = true
	// Closing the last track's writer finishes the file and closes it.
	err := r.video.Close()
	if aerr := r.audio.Close(); err == nil {
		err = aerr
	}
	if r.failed == nil && err != nil {
		r.failed = fmt.Errorf("emulator: recording: %w", err)
	}
	r.info.Duration = r.last
	r.info.Size = r.file.size.Load()
	r.info.Done = true
	return r.info, r.failed
}

// snapshot returns the recording's description so far.
func (r *recorder) snapshot() Recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := r.info
	info.Duration = r.last
	info.Size = r.file.size.Load()
	return info
}
