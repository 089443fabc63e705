// Package ingest is a WebRTC ingestion master and storage viewer on pion,
// for examples/ingest-master, `kvssign demo --ingest` and the end-to-end
// tests: the master connects to signaling as MASTER, joins the channel's
// storage session (kept joined by an awskvs.StorageJoiner), answers each
// offer of the storage session and streams H.264 and Opus samples to it.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/internal/loopback"
	"github.com/kvssign/kvssign/internal/testmedia"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// Config configures a Master.
type Config struct {
	// Resolver signs the signaling URL and joins the storage session.
	// Required.
	Resolver *awskvs.Resolver
	// Channel is the channel's name or ARN. Required.
	Channel string
	// Video and Audio are the samples to stream, in a loop: H.264 access
	// units and Opus packets. If both are nil, internal/testmedia's clip.
	// With NoVideo or NoAudio the master sends only the other track (KVS
	// refuses that: both are required).
	Video, Audio     []media.Sample
	NoVideo, NoAudio bool
	// Loopback limits ICE to the loopback interface, for an emulator on
	// this machine.
	Loopback bool
	// ICEServers are STUN and TURN servers for the peer connection, e.g.
	// from Resolver.ICEServers.
	ICEServers []webrtc.ICEServer
	// Joiner, if set, holds the StorageJoiner's settings (timeouts, the
	// session limit, backoff, OnJoin, Logger); each Run joins with a
	// joiner of its own made from them, and leaves Joiner unchanged. If
	// nil, the defaults. Its Join is not used.
	Joiner *awskvs.StorageJoiner
	// Signaling are the signaling client's options; if nil, candidates
	// are buffered until their offer, the rest is default.
	Signaling *signaling.Options
	// Log, if set, receives a line for each step: joins, offers,
	// connection states, reconnections. Calls come one at a time.
	Log func(format string, args ...any)
}

// Stats count what a Master did.
type Stats struct {
	Joins, Offers, Connections    int64
	VideoSamples, AudioSamples    int64
	SignalingReconnects, PeerLost int64
	// SentFrames and SentDuration count the video written while a storage
	// peer connection was up, from its first keyframe on: what a
	// recording of the connection can hold.
	SentFrames   int64
	SentDuration time.Duration
}

// A Master streams media into a channel's storage session.
type Master struct {
	cfg    Config
	joiner *awskvs.StorageJoiner
	video  *webrtc.TrackLocalStaticSample
	audio  *webrtc.TrackLocalStaticSample
	api    *webrtc.API

	joins, offers, connections, videoOut, audioOut, reconnects, lost atomic.Int64
	sentFrames, sentDuration                                         atomic.Int64

	// live is set while the current connection is up; keyed is set once
	// a keyframe went out on it.
	live, keyed atomic.Bool

	mu   sync.Mutex
	pc   *webrtc.PeerConnection // the current storage peer connection
	peer string                 // the storage peer's client id
}

// New checks cfg and makes a Master.
func New(cfg Config) (*Master, error) {
	if cfg.Resolver == nil || cfg.Channel == "" {
		return nil, errors.New("ingest: Config needs a Resolver and a Channel")
	}
	if cfg.NoVideo && cfg.NoAudio {
		return nil, errors.New("ingest: NoVideo and NoAudio: nothing to send")
	}
	if cfg.Video == nil && cfg.Audio == nil {
		var err error
		if cfg.Video, err = testmedia.H264(); err != nil {
			return nil, err
		}
		if cfg.Audio, err = testmedia.Opus(); err != nil {
			return nil, err
		}
	}
	cfg.Log = serialize(cfg.Log)
	api, err := NewAPI(cfg.Loopback)
	if err != nil {
		return nil, err
	}
	m := &Master{cfg: cfg, api: api}
	if m.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "ingest-master"); err != nil {
		return nil, err
	}
	if m.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "ingest-master"); err != nil {
		return nil, err
	}
	return m, nil
}

// NewAPI returns a pion API with the default codecs and interceptors,
// limited to UDP over loopback when onLoopback is set.
func NewAPI(onLoopback bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		return nil, err
	}
	var s webrtc.SettingEngine
	if onLoopback {
		loopback.Restrict(&s)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s)), nil
}

// Stats returns what the master did so far.
func (m *Master) Stats() Stats {
	return Stats{Joins: m.joins.Load(), Offers: m.offers.Load(), Connections: m.connections.Load(),
		VideoSamples: m.videoOut.Load(), AudioSamples: m.audioOut.Load(),
		SignalingReconnects: m.reconnects.Load(), PeerLost: m.lost.Load(),
		SentFrames: m.sentFrames.Load(), SentDuration: time.Duration(m.sentDuration.Load())}
}

// Run connects, joins and streams until ctx is done (then it returns nil)
// or joining fails for good.
func (m *Master) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, ch := m.cfg.Resolver, m.cfg.Channel
	src := func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, ch, kvs.Master, "")
		return s.URL, err
	}
	opts := m.cfg.Signaling
	if opts == nil {
		opts = &signaling.Options{BufferCandidates: true}
	}
	c, err := signaling.Dial(ctx, src, opts)
	if err != nil {
		return fmt.Errorf("ingest: connecting to signaling: %w", err)
	}
	defer c.Close()
	m.cfg.Log("connected to signaling as MASTER")
	defer m.closePeer(nil)

	// A joiner of its own per run, with the configured settings: the
	// caller's Joiner is not changed, and a second run reports each join
	// once.
	m.joiner = &awskvs.StorageJoiner{Join: func(ctx context.Context) error { return r.JoinStorageSession(ctx, ch) }}
	var onJoin func(awskvs.JoinAttempt)
	if c := m.cfg.Joiner; c != nil {
		m.joiner.OfferTimeout, m.joiner.ConnectTimeout, m.joiner.SessionLimit = c.OfferTimeout, c.ConnectTimeout, c.SessionLimit
		m.joiner.MinBackoff, m.joiner.MaxBackoff, m.joiner.MaxFailures = c.MinBackoff, c.MaxBackoff, c.MaxFailures
		m.joiner.Logger, onJoin = c.Logger, c.OnJoin
	}
	m.joiner.OnJoin = func(a awskvs.JoinAttempt) {
		m.joins.Add(1)
		if a.Err != nil {
			m.cfg.Log("JoinStorageSession (%s, #%d) failed: %v", a.Reason, a.N, a.Err)
		} else {
			m.cfg.Log("JoinStorageSession (%s, #%d) in %v", a.Reason, a.N, a.Took.Round(1e6))
		}
		if onJoin != nil {
			onJoin(a)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	m.stream(ctx, &wg)
	return loop(ctx, c, m.joiner, m.closePeer, func(ev signaling.Event) { m.handle(ctx, c, ev) })
}

// stream plays the samples into the tracks, which every storage peer
// connection shares: a new connection picks the stream up at the next
// keyframe.
func (m *Master) stream(ctx context.Context, wg *sync.WaitGroup) {
	play := func(samples []media.Sample, t *webrtc.TrackLocalStaticSample, n *atomic.Int64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			testmedia.Play(ctx, samples, 0, func(s media.Sample) error {
				n.Add(1)
				if t == m.video && m.live.Load() && (m.keyed.Load() || IsKeyframe(s.Data)) {
					m.keyed.Store(true)
					m.sentFrames.Add(1)
					m.sentDuration.Add(int64(s.Duration))
				}
				// A track bound to no connection drops the sample;
				// errors of a closing connection are no reason to stop.
				t.WriteSample(s)
				return nil
			})
		}()
	}
	if !m.cfg.NoVideo {
		play(m.cfg.Video, m.video, &m.videoOut)
	}
	if !m.cfg.NoAudio {
		play(m.cfg.Audio, m.audio, &m.audioOut)
	}
}

func (m *Master) handle(ctx context.Context, c *signaling.Client, ev signaling.Event) {
	switch ev.Type {
	case signaling.EventOffer:
		m.offers.Add(1)
		m.cfg.Log("SDP offer from the storage session (%s)", ev.From)
		if err := m.answer(ctx, c, ev); err != nil {
			m.cfg.Log("answering: %v", err)
			m.joiner.Lost()
		}
	case signaling.EventCandidate:
		m.mu.Lock()
		pc, peer := m.pc, m.peer
		m.mu.Unlock()
		if pc != nil && ev.From == peer {
			pc.AddICECandidate(iceInit(ev.Candidate))
		}
	case signaling.EventGoAway:
		m.cfg.Log("GO_AWAY: signaling reconnects")
	case signaling.EventReconnected:
		m.reconnects.Add(1)
		m.cfg.Log("signaling reconnected (%v): joining again", ev.Err)
	case signaling.EventDisconnected:
		m.cfg.Log("signaling disconnected: %v", ev.Err)
	case signaling.EventStatus:
		m.cfg.Log("status: %v", ev.Err)
	}
}

// answer makes the storage peer connection for the offer.
func (m *Master) answer(ctx context.Context, c *signaling.Client, ev signaling.Event) error {
	pc, err := m.api.NewPeerConnection(webrtc.Configuration{ICEServers: m.cfg.ICEServers})
	if err != nil {
		return err
	}
	from := ev.From
	m.mu.Lock()
	m.pc, m.peer = pc, from
	m.mu.Unlock()
	if !m.cfg.NoVideo {
		if _, err := pc.AddTrack(m.video); err != nil {
			return err
		}
	}
	if !m.cfg.NoAudio {
		if _, err := pc.AddTrack(m.audio); err != nil {
			return err
		}
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		ci := cand.ToJSON()
		c.SendCandidate(ctx, from, kvs.ICECandidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		// Under the lock, so that the joiner hears of this connection's
		// end before a newer offer (see closePeer), or not at all.
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.pc != pc {
			return
		}
		m.cfg.Log("storage peer connection %s", s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			m.connections.Add(1)
			m.live.Store(true)
			m.joiner.Connected()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			m.live.Store(false)
			m.lost.Add(1)
			m.joiner.Lost()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ev.SDP.SDP}); err != nil {
		return err
	}
	// pion answers a kind it has no track for as sendonly all the same;
	// a master without that kind rejects its m-line instead.
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == nil || tr.Sender().Track() == nil {
			if err := tr.Stop(); err != nil {
				return err
			}
		}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		return err
	}
	m.cfg.Log("SDP answer to %s", from)
	return c.SendAnswer(ctx, from, kvs.SessionDescription{Type: "answer", SDP: ans.SDP})
}

// closePeer closes the storage peer connection. then, if given, runs
// under the lock once the connection is no longer current: the joiner
// hears of a new offer only after the old connection can no longer
// report its end.
func (m *Master) closePeer(then func()) {
	m.mu.Lock()
	pc := m.pc
	m.pc, m.peer = nil, ""
	m.live.Store(false)
	m.keyed.Store(false)
	if then != nil {
		then()
	}
	m.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
}

// serialize returns a log function that calls log one call at a time:
// pion reports connection states from goroutines of its own.
func serialize(log func(string, ...any)) func(string, ...any) {
	if log == nil {
		return func(string, ...any) {}
	}
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		log(format, args...)
	}
}

// IsKeyframe reports whether an H.264 access unit in Annex-B form holds
// an IDR slice.
func IsKeyframe(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

func iceInit(c kvs.ICECandidate) webrtc.ICECandidateInit {
	return webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}
