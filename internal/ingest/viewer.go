package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// ViewerConfig configures a Viewer.
type ViewerConfig struct {
	Resolver *awskvs.Resolver
	Channel  string
	ClientID string
	Loopback bool
	// Log, if set, receives a line for each step, one call at a time.
	Log func(format string, args ...any)
}

// ViewerStats count what a Viewer received.
type ViewerStats struct {
	// VideoFrames counts RTP packets with the marker bit: the last packet
	// of each frame.
	VideoPackets, VideoFrames, AudioPackets int64
}

// A Viewer joins a channel's storage session as a viewer and counts the
// master's media it receives. With storage on, this is how viewers watch:
// they do not connect to the master.
type Viewer struct {
	cfg ViewerConfig
	api *webrtc.API

	videoPackets, videoFrames, audioPackets atomic.Int64

	mu sync.Mutex
	pc *webrtc.PeerConnection
}

// NewViewer checks cfg and makes a Viewer.
func NewViewer(cfg ViewerConfig) (*Viewer, error) {
	if cfg.Resolver == nil || cfg.Channel == "" {
		return nil, errors.New("ingest: ViewerConfig needs a Resolver and a Channel")
	}
	if err := kvs.ValidateClientID(cfg.ClientID); err != nil {
		return nil, fmt.Errorf("ingest: viewer: %w", err)
	}
	cfg.Log = serialize(cfg.Log)
	api, err := NewAPI(cfg.Loopback)
	if err != nil {
		return nil, err
	}
	return &Viewer{cfg: cfg, api: api}, nil
}

// Stats returns what the viewer received so far.
func (v *Viewer) Stats() ViewerStats {
	return ViewerStats{VideoPackets: v.videoPackets.Load(), VideoFrames: v.videoFrames.Load(), AudioPackets: v.audioPackets.Load()}
}

// Run connects, joins the storage session as a viewer and receives until
// ctx is done (then it returns nil) or joining fails for good.
func (v *Viewer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, ch, id := v.cfg.Resolver, v.cfg.Channel, v.cfg.ClientID
	src := func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, ch, kvs.Viewer, id)
		return s.URL, err
	}
	c, err := signaling.Dial(ctx, src, &signaling.Options{BufferCandidates: true})
	if err != nil {
		return fmt.Errorf("ingest: viewer: connecting to signaling: %w", err)
	}
	defer c.Close()
	defer v.close(nil)
	v.cfg.Log("viewer %s connected to signaling", id)
	// The joiner's rules serve a viewer as well: join again without an
	// offer, after a reconnection or a loss.
	j := &awskvs.StorageJoiner{
		Join: func(ctx context.Context) error { return r.JoinStorageSessionAsViewer(ctx, ch, id) },
		OnJoin: func(a awskvs.JoinAttempt) {
			v.cfg.Log("JoinStorageSessionAsViewer (%s, #%d): err=%v", a.Reason, a.N, a.Err)
		},
	}
	return loop(ctx, c, j, v.close, func(ev signaling.Event) {
		switch ev.Type {
		case signaling.EventOffer:
			v.cfg.Log("viewer %s: SDP offer from the storage session", id)
			if err := v.answer(ctx, c, j, ev); err != nil {
				v.cfg.Log("viewer %s: answering: %v", id, err)
				j.Lost()
			}
		case signaling.EventCandidate:
			v.mu.Lock()
			pc := v.pc
			v.mu.Unlock()
			if pc != nil {
				pc.AddICECandidate(iceInit(ev.Candidate))
			}
		}
	})
}

func (v *Viewer) answer(ctx context.Context, c *signaling.Client, j *awskvs.StorageJoiner, ev signaling.Event) error {
	pc, err := v.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.pc = pc
	v.mu.Unlock()
	from := ev.From
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			ci := cand.ToJSON()
			c.SendCandidate(ctx, from, kvs.ICECandidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment})
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		// Under the lock, as the master's: see Master.closePeer.
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.pc != pc {
			return
		}
		v.cfg.Log("viewer %s: storage peer connection %s", v.cfg.ClientID, s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			j.Connected()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			j.Lost()
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				v.videoPackets.Add(1)
				if p.Marker {
					v.videoFrames.Add(1)
				}
			} else {
				v.audioPackets.Add(1)
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ev.SDP.SDP}); err != nil {
		return err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		return err
	}
	return c.SendAnswer(ctx, from, kvs.SessionDescription{Type: "answer", SDP: ans.SDP})
}

// close closes the peer connection; then, if given, runs under the lock
// once it is no longer current.
func (v *Viewer) close(then func()) {
	v.mu.Lock()
	pc := v.pc
	v.pc = nil
	if then != nil {
		then()
	}
	v.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
}
