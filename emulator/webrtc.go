// The storage peer's WebRTC side, on pion: one peer connection per master
// session and per storage viewer, limited to loopback.

package emulator

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/kvssign/kvssign/internal/loopback"
	"github.com/kvssign/kvssign/kvs"
)

// storageH264Profiles are the profile-level-ids the storage peer offers:
// the H.264 profiles KVS ingests, at level 3.1 (the level is not
// negotiated, only the profile).
var storageH264Profiles = []string{"42e01f", "42001f", "4d001f", "640c1f", "64081f", "64001f"}

// newStorageAPI returns a pion API that speaks H.264 and Opus only and
// gathers host candidates on loopback only: no STUN, no mDNS, nothing
// leaves the machine.
func newStorageAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	for i, p := range storageH264Profiles {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p, RTCPFeedback: fb},
			PayloadType: webrtc.PayloadType(102 + i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	var s webrtc.SettingEngine
	loopbackOnly(&s)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s)), nil
}

// loopbackOnly limits s to the loopback interface and keeps pion's own
// logging quiet.
func loopbackOnly(s *webrtc.SettingEngine) {
	s.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	loopback.Restrict(s)
}

// storageAnswerTimeout is how long the storage peer waits for the answer
// to its offer before it gives the link up, so that an offer nobody
// answers does not hold a peer connection for the whole session.
const storageAnswerTimeout = 30 * time.Second

// peerLink is the storage peer's connection to the master or one viewer.
type peerLink struct {
	s        *storageSession
	pc       *webrtc.PeerConnection
	clientID string // the viewer's; empty for the master
	peerID   string // the storage peer's client id in this link's messages
	since    time.Time

	mu        sync.Mutex
	remoteSet bool
	pending   []webrtc.ICECandidateInit
	rec       *recorder
	videoSSRC uint32
	closed    bool // set once run waits for the readers

	ended   chan struct{}
	endOnce sync.Once
	reason  string // why the link ended; set before ended closes
	refused bool
	readers sync.WaitGroup
	rtpIn   atomic.Int64 // RTP packets received
	timer   *time.Timer  // the session's time limit (master only)
}

func (l *peerLink) isMaster() bool { return l.clientID == "" }

// end ends the link for reason; the link's goroutine then closes it.
func (l *peerLink) end(reason string, refused bool) {
	l.endOnce.Do(func() {
		l.reason, l.refused = reason, refused
		close(l.ended)
	})
}

// run offers, then keeps the link until it ends or the emulator closes,
// then closes the peer connection and, for a master, the recording. It
// runs on a goroutine counted by e.track.
func (l *peerLink) run() {
	e := l.s.e
	err := l.offer()
	if err != nil {
		l.end(err.Error(), false)
	}
	unanswered := time.NewTimer(storageAnswerTimeout)
	defer unanswered.Stop()
	for done := false; !done; {
		select {
		case <-l.ended:
			done = true
		case <-e.done:
			l.end("emulator shutting down", false)
			done = true
		case <-unanswered.C:
			l.mu.Lock()
			answered := l.remoteSet
			l.mu.Unlock()
			if !answered {
				l.end("no answer to the storage peer's offer within "+storageAnswerTimeout.String(), false)
			}
		}
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	l.pc.Close()
	// Readers may not start once the wait begins (see onTrack).
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.readers.Wait()
	l.s.linkEnded(l)
}

// offer creates the offer, waits for its candidates (loopback gathering
// is immediate) and sends it over signaling.
func (l *peerLink) offer() error {
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("emulator: storage peer: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("emulator: storage peer: offer: %w", err)
	}
	select {
	case <-gathered:
	case <-l.ended:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("emulator: storage peer: gathering candidates timed out")
	}
	payload, err := kvs.EncodePayload(kvs.SessionDescription{Type: "offer", SDP: l.pc.LocalDescription().SDP})
	if err != nil {
		return err
	}
	if !l.current() {
		// A newer join replaced the link while it gathered: the master or
		// viewer must only see the offer of the link that takes its answer.
		return nil
	}
	e, ch := l.s.e, l.s.ch
	e.route(ch, l.clientID, kvs.ServerMessage{MessageType: kvs.ActionSDPOffer, MessagePayload: payload, SenderClientID: l.peerID}, e.now())
	return nil
}

// current reports whether l is still its session's link for its master or
// viewer and has not ended.
func (l *peerLink) current() bool {
	st := &l.s.e.storage
	st.mu.Lock()
	defer st.mu.Unlock()
	select {
	case <-l.ended:
		return false
	default:
	}
	if l.isMaster() {
		return l.s.master == l
	}
	return l.s.viewers[l.clientID] == l
}

// receive handles a signaling message addressed to the storage peer on
// this link: the answer to its offer, or an ICE candidate.
func (l *peerLink) receive(m kvs.ServerMessage) {
	e := l.s.e
	switch m.MessageType {
	case kvs.ActionSDPAnswer:
		var sd kvs.SessionDescription
		if err := kvs.DecodePayload(m.MessagePayload, &sd); err != nil || sd.Type != "answer" {
			e.stats.rejected.Add(1)
			return
		}
		if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.SDP}); err != nil {
			l.end("the answer does not fit the offer: "+err.Error(), false)
			return
		}
		if l.isMaster() {
			if reason := checkMasterMedia(sd.SDP); reason != "" {
				l.end(reason, true)
				return
			}
		}
		l.mu.Lock()
		l.remoteSet = true
		pending := l.pending
		l.pending = nil
		l.mu.Unlock()
		for _, c := range pending {
			l.pc.AddICECandidate(c)
		}
	case kvs.ActionICECandidate:
		var c webrtc.ICECandidateInit
		if err := kvs.DecodePayload(m.MessagePayload, &c); err != nil {
			e.stats.rejected.Add(1)
			return
		}
		l.mu.Lock()
		if !l.remoteSet {
			if len(l.pending) < 64 {
				l.pending = append(l.pending, c)
			}
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.pc.AddICECandidate(c)
	default:
		// The storage peer makes the offers; an offer to it is ignored.
		e.stats.rejected.Add(1)
	}
}

// checkMasterMedia returns why the master's answer is refused, or "": it
// must send both H.264 video and Opus audio (the offer has no other codec).
func checkMasterMedia(answer string) string {
	var video, audio bool
	// A description of its own: pion's RemoteDescription caches its parse
	// in place, which would race pion's own use.
	sd := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}
	desc, err := sd.Unmarshal()
	if err != nil {
		return "the answer's SDP does not parse: " + err.Error()
	}
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue
		}
		_, sendonly := m.Attribute("sendonly")
		_, sendrecv := m.Attribute("sendrecv")
		// A section sends a track only with its msid or SSRC: pion answers
		// sendonly for a transceiver it has no track for.
		_, msid := m.Attribute("msid")
		_, ssrc := m.Attribute("ssrc")
		if !(sendonly || sendrecv) || !(msid || ssrc) {
			continue
		}
		switch m.MediaName.Media {
		case "video":
			video = true
		case "audio":
			audio = true
		}
	}
	switch {
	case !video && !audio:
		return "the master sends neither video nor audio: H.264 video and Opus audio are both required"
	case !video:
		return "the master sends no H.264 video: H.264 video and Opus audio are both required"
	case !audio:
		return "the master sends no Opus audio: H.264 video and Opus audio are both required"
	}
	return ""
}

// newPeerConnection makes l's peer connection: for the master, video to
// receive and audio both ways (the viewers' talk goes to the master); for a
// viewer, the session's video to send and audio both ways.
func (l *peerLink) newPeerConnection(api *webrtc.API) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("emulator: storage peer: %w", err)
	}
	l.pc = pc
	if l.isMaster() {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("emulator: storage peer: %w", err)
		}
		if _, err := pc.AddTransceiverFromTrack(l.s.talk.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			return fmt.Errorf("emulator: storage peer: %w", err)
		}
	} else {
		if _, err := pc.AddTransceiverFromTrack(l.s.video.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return fmt.Errorf("emulator: storage peer: %w", err)
		}
		if _, err := pc.AddTransceiverFromTrack(l.s.audio.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			return fmt.Errorf("emulator: storage peer: %w", err)
		}
	}
	pc.OnTrack(l.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if !l.isMaster() {
				l.s.requestKeyframe()
			}
		case webrtc.PeerConnectionStateFailed:
			l.end("the peer connection failed", false)
		case webrtc.PeerConnectionStateClosed:
			l.end("the peer connection closed", false)
		}
	})
	return nil
}

// onTrack reads a remote track until the link closes: the master's are
// recorded and forwarded to the viewers; a viewer's audio is taken and
// dropped.
func (l *peerLink) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	e := l.s.e
	l.mu.Lock()
	if l.closed || !e.track() {
		l.mu.Unlock()
		return
	}
	l.readers.Add(1)
	l.mu.Unlock()
	defer e.untrack()
	defer l.readers.Done()
	switch {
	case !l.isMaster():
		l.readTalk(tr)
	case tr.Kind() == webrtc.RTPCodecTypeVideo:
		l.mu.Lock()
		l.videoSSRC = uint32(tr.SSRC())
		l.mu.Unlock()
		l.readVideo(tr)
	default:
		l.readAudio(tr)
	}
}

// talkQuiet is how long the viewer that talks to the master must be
// silent before another viewer's audio takes its place.
const talkQuiet = 500 * time.Millisecond

// readTalk sends a viewer's Opus to the master. The storage peer does not
// mix: one viewer talks at a time, the first to speak after a silence.
func (l *peerLink) readTalk(tr *webrtc.TrackRemote) {
	s := l.s
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		l.rtpIn.Add(1)
		if s.mayTalk(l, time.Now()) {
			s.talk.forward(l, p)
		}
	}
}

// mayTalk reports whether the viewer l's audio packet, come at now, goes
// to the master.
func (s *storageSession) mayTalk(l *peerLink, now time.Time) bool {
	s.talkMu.Lock()
	defer s.talkMu.Unlock()
	if s.talker != nil && s.talker != l && now.Sub(s.talkAt) <= talkQuiet {
		return false
	}
	s.talker, s.talkAt = l, now
	return true
}

// readVideo depacketizes the master's H.264, checks its profile and size
// on the first keyframe, records it and forwards the packets.
func (l *peerLink) readVideo(tr *webrtc.TrackRemote) {
	sb := samplebuilder.New(128, &codecs.H264Packet{}, 90000)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		l.rtpIn.Add(1)
		l.s.video.forward(l, p)
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if !l.recordVideo(s.Data, s.PacketTimestamp) {
				return
			}
		}
	}
}

// recordVideo records one access unit; it reports false once the master's
// video is refused.
func (l *peerLink) recordVideo(au []byte, pts uint32) bool {
	nals := splitAnnexB(au)
	var sps, pps []byte
	key := false
	for _, n := range nals {
		switch n[0] & 0x1f {
		case nalSPS:
			sps = n
		case nalPPS:
			pps = n
		case nalIDR:
			key = true
		}
	}
	l.mu.Lock()
	rec := l.rec
	l.mu.Unlock()
	if rec == nil {
		if !key || sps == nil || pps == nil {
			// A recording starts at a keyframe with its parameter sets;
			// the viewers and the PLI the peer sends bring one.
			return true
		}
		var err error
		if rec, err = l.startRecording(sps, pps, pts); err != nil {
			l.end(err.Error(), errors.Is(err, errRefusedMedia))
			return false
		}
	}
	rec.writeVideo(nals, pts, key)
	return true
}

var errRefusedMedia = errors.New("emulator: storage peer: media refused")

// startRecording checks the SPS against KVS's rules and opens the
// session's recording.
func (l *peerLink) startRecording(sps, pps []byte, pts uint32) (*recorder, error) {
	if len(sps) >= 4 && h264ProfileName(sps[1], sps[2]) == "" {
		return nil, fmt.Errorf("%w: H.264 profile_idc %d (constraints %#02x) is not one of constrained-baseline, baseline, main, high, constrained-high, progressive-high", errRefusedMedia, sps[1], sps[2])
	}
	info, err := parseSPS(sps)
	if err != nil {
		return nil, fmt.Errorf("%w: the keyframe's %s", errRefusedMedia, strings.TrimPrefix(err.Error(), "emulator: "))
	}
	if info.width > maxStorageDimension || info.height > maxStorageDimension {
		return nil, fmt.Errorf("%w: the video is %dx%d, larger than %dx%d", errRefusedMedia, info.width, info.height, maxStorageDimension, maxStorageDimension)
	}
	rec, err := l.s.e.storage.newRecording(l.s.ch.name, sps, pps, info, pts, l.s.e.cfg.RecordingDir, time.Now())
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.rec = rec
	l.mu.Unlock()
	return rec, nil
}

// readAudio records the master's Opus and forwards it.
func (l *peerLink) readAudio(tr *webrtc.TrackRemote) {
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		l.rtpIn.Add(1)
		l.s.audio.forward(l, p)
		if len(p.Payload) == 0 {
			continue
		}
		l.mu.Lock()
		rec := l.rec
		l.mu.Unlock()
		if rec != nil {
			rec.writeAudio(p.Payload, p.Timestamp, time.Now())
		}
	}
}

// forwarder sends one of the master's tracks to the viewers. A new master
// brings new sequence numbers and timestamps; the forwarder shifts them to
// follow on from the previous master's, so that a viewer sees one stream.
type forwarder struct {
	track *webrtc.TrackLocalStaticRTP
	gap   uint32 // the timestamp step put between two masters' packets

	mu      sync.Mutex
	link    *peerLink // whose packets the offsets are for
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	started bool
}

// forward sends a packet of l's to the viewers. Writing to a track no
// viewer is bound to costs nothing.
func (f *forwarder) forward(l *peerLink, p *rtp.Packet) {
	f.mu.Lock()
	if f.link != l {
		f.link = l
		f.seqOff, f.tsOff = 0, 0
		if f.started {
			f.seqOff = f.lastSeq + 1 - p.SequenceNumber
			f.tsOff = f.lastTS + f.gap - p.Timestamp
		}
	}
	q := *p
	q.SequenceNumber += f.seqOff
	q.Timestamp += f.tsOff
	f.lastSeq, f.lastTS, f.started = q.SequenceNumber, q.Timestamp, true
	f.mu.Unlock()
	if err := f.track.WriteRTP(&q); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		l.s.e.log.Debug("storage peer: forwarding to viewers", "channel", l.s.ch.name, "err", err)
	}
}

// requestKeyframe asks the master for a keyframe, so that a viewer that
// just connected can start decoding.
func (s *storageSession) requestKeyframe() {
	st := &s.e.storage
	st.mu.Lock()
	m := s.master
	st.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	ssrc := m.videoSSRC
	m.mu.Unlock()
	if ssrc != 0 {
		m.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}
