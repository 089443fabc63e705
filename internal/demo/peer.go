// Package demo runs two pion WebRTC peers that negotiate a data channel
// through KVS signaling: the master answers, the viewer offers, both trickle
// ICE candidates. It is shared by `kvssign demo` and the end-to-end tests.
//
// The peers gather host candidates on the loopback interface only and use
// no STUN or TURN server, so that no packet leaves the machine.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvssign/kvssign/internal/loopback"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// LoopbackAPI returns a pion API whose peer connections gather host
// candidates on the loopback interface only (IPv4, UDP), without mDNS.
func LoopbackAPI() *webrtc.API {
	var s webrtc.SettingEngine
	loopback.Restrict(&s)
	return webrtc.NewAPI(webrtc.WithSettingEngine(s))
}

// DataChannelLabel is the label of the demo's data channel.
const DataChannelLabel = "kvssign-demo"

// describeSDP summarises a description for the timeline.
func describeSDP(sdp string) string {
	media := strings.Count(sdp, "\nm=")
	return fmt.Sprintf("%d media section(s), %d bytes of SDP", media, len(sdp))
}

// describeCandidate summarises a candidate line: "host 127.0.0.1:50000 udp".
func describeCandidate(c string) string {
	if c == "" {
		return "end of candidates"
	}
	f := strings.Fields(strings.TrimPrefix(c, "candidate:"))
	if len(f) >= 8 {
		return fmt.Sprintf("%s %s:%s %s", f[7], f[4], f[5], strings.ToLower(f[2]))
	}
	return c
}

// toKVS converts a pion description to the signaling payload.
func toKVS(d webrtc.SessionDescription) kvs.SessionDescription {
	return kvs.SessionDescription{Type: d.Type.String(), SDP: d.SDP}
}

func fromKVS(d kvs.SessionDescription) webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP}
}

// trickle sends each local candidate of pc to peer as it is gathered.
func trickle(ctx context.Context, pc *webrtc.PeerConnection, sig *signaling.Client, who, to, toName string, tl *Timeline, fail func(error)) {
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			tl.Printf(who, "ICE gathering complete")
			return
		}
		init := c.ToJSON()
		tl.Printf(who, "→ %-8s ICE_CANDIDATE %s", toName, describeCandidate(init.Candidate))
		if err := sig.SendCandidate(ctx, to, kvs.ICECandidate(init)); err != nil && ctx.Err() == nil {
			fail(fmt.Errorf("%s: sending a candidate: %w", who, err))
		}
	})
}

// RunMaster answers viewers' offers arriving on sig, adds their candidates,
// and echoes every text message on their data channels, prefixed "echo: ".
// It returns when ctx ends, or with the first error.
func RunMaster(ctx context.Context, sig *signaling.Client, api *webrtc.API, tl *Timeline) error {
	const who = "master"
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) { cancel(err) }
	peers := map[string]*webrtc.PeerConnection{}
	defer func() {
		for _, pc := range peers {
			pc.Close()
		}
	}()
	for {
		var ev signaling.Event
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case e, ok := <-sig.Events():
			if !ok {
				return fmt.Errorf("%s: signaling ended: %w", who, sig.Err())
			}
			ev = e
		}
		switch ev.Type {
		case signaling.EventOffer:
			tl.Printf(who, "← %-8s SDP_OFFER (%s)", ev.From, describeSDP(ev.SDP.SDP))
			if old := peers[ev.From]; old != nil {
				old.Close()
			}
			pc, err := api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				return fmt.Errorf("%s: %w", who, err)
			}
			peers[ev.From] = pc
			viewer := ev.From
			trickle(ctx, pc, sig, who, viewer, viewer, tl, fail)
			pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
				if s != webrtc.PeerConnectionStateClosed {
					tl.Printf(who, "peer connection with %s: %s", viewer, s)
				}
			})
			pc.OnDataChannel(func(dc *webrtc.DataChannel) {
				dc.OnOpen(func() { tl.Printf(who, "data channel %q open", dc.Label()) })
				dc.OnMessage(func(m webrtc.DataChannelMessage) {
					if err := dc.SendText("echo: " + string(m.Data)); err != nil {
						fail(fmt.Errorf("%s: echoing: %w", who, err))
					}
				})
			})
			if err := pc.SetRemoteDescription(fromKVS(ev.SDP)); err != nil {
				return fmt.Errorf("%s: setting the offer: %w", who, err)
			}
			answer, err := pc.CreateAnswer(nil)
			if err != nil {
				return fmt.Errorf("%s: creating the answer: %w", who, err)
			}
			if err := pc.SetLocalDescription(answer); err != nil {
				return fmt.Errorf("%s: %w", who, err)
			}
			tl.Printf(who, "→ %-8s SDP_ANSWER (%s)", viewer, describeSDP(answer.SDP))
			if err := sig.SendAnswer(ctx, viewer, toKVS(answer)); err != nil {
				return fmt.Errorf("%s: sending the answer: %w", who, err)
			}
		case signaling.EventCandidate:
			tl.Printf(who, "← %-8s ICE_CANDIDATE %s", ev.From, describeCandidate(ev.Candidate.Candidate))
			pc := peers[ev.From]
			if pc == nil {
				tl.Printf(who, "no offer from %s yet: candidate dropped", ev.From)
				continue
			}
			if err := pc.AddICECandidate(webrtc.ICECandidateInit(ev.Candidate)); err != nil {
				return fmt.Errorf("%s: adding a candidate: %w", who, err)
			}
		default:
			logEvent(tl, who, ev)
		}
	}
}

// logEvent prints an event the peers do not act on.
func logEvent(tl *Timeline, who string, ev signaling.Event) {
	switch ev.Type {
	case signaling.EventStatus:
		tl.Printf(who, "STATUS_RESPONSE: %v", ev.Err)
	case signaling.EventDisconnected, signaling.EventReconnected:
		tl.Printf(who, "%v (connection %d): %v", ev.Type, ev.Conn, ev.Err)
	default:
		tl.Printf(who, "%v", ev.Type)
	}
}

// ViewerResult is what a viewer measured.
type ViewerResult struct {
	// Connected is the time from sending the offer to the data channel
	// opening.
	Connected time.Duration
	// RTTs are the round trips of the pings over the data channel.
	RTTs []time.Duration
}

// RunViewer offers a data channel to the master over sig, trickles
// candidates, and once the channel is open sends pings text messages and
// times each echo.
func RunViewer(ctx context.Context, sig *signaling.Client, api *webrtc.API, tl *Timeline, pings int) (ViewerResult, error) {
	const who = "viewer"
	var res ViewerResult
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return res, fmt.Errorf("%s: %w", who, err)
	}
	defer pc.Close()
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s != webrtc.PeerConnectionStateClosed {
			tl.Printf(who, "peer connection with master: %s", s)
		}
		if s == webrtc.PeerConnectionStateFailed {
			fail(errors.New("viewer: the peer connection failed"))
		}
	})
	dc, err := pc.CreateDataChannel(DataChannelLabel, nil)
	if err != nil {
		return res, fmt.Errorf("%s: %w", who, err)
	}
	open := make(chan struct{})
	dc.OnOpen(func() { close(open) })
	echoes := make(chan string, pings+1)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case echoes <- string(m.Data):
		default:
		}
	})
	trickle(ctx, pc, sig, who, "", "master", tl, fail)

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return res, fmt.Errorf("%s: creating the offer: %w", who, err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return res, fmt.Errorf("%s: %w", who, err)
	}
	start := time.Now()
	tl.Printf(who, "→ %-8s SDP_OFFER (%s)", "master", describeSDP(offer.SDP))
	if err := sig.SendOffer(ctx, "", toKVS(offer)); err != nil {
		return res, fmt.Errorf("%s: sending the offer: %w", who, err)
	}

	if err := awaitOpen(ctx, sig, pc, tl, open, errs); err != nil {
		return res, err
	}
	res.Connected = time.Since(start)
	tl.Printf(who, "data channel %q open, %s after the offer", dc.Label(), ms(res.Connected))

	// Keep draining signaling (late candidates, reconnections) meanwhile.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-sig.Events():
				if !ok {
					return
				}
				if ev.Type == signaling.EventCandidate {
					pc.AddICECandidate(webrtc.ICECandidateInit(ev.Candidate))
					continue
				}
				logEvent(tl, who, ev)
			}
		}
	}()

	res.RTTs, err = ping(ctx, dc, tl, pings, echoes, errs)
	return res, err
}

// awaitOpen handles the master's answer and candidates until the data
// channel opens.
func awaitOpen(ctx context.Context, sig *signaling.Client, pc *webrtc.PeerConnection, tl *Timeline, open <-chan struct{}, errs <-chan error) error {
	const who = "viewer"
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case <-open:
			return nil
		case ev, ok := <-sig.Events():
			if !ok {
				return fmt.Errorf("%s: signaling ended: %w", who, sig.Err())
			}
			switch ev.Type {
			case signaling.EventAnswer:
				tl.Printf(who, "← %-8s SDP_ANSWER (%s)", "master", describeSDP(ev.SDP.SDP))
				if err := pc.SetRemoteDescription(fromKVS(ev.SDP)); err != nil {
					return fmt.Errorf("%s: setting the answer: %w", who, err)
				}
			case signaling.EventCandidate:
				tl.Printf(who, "← %-8s ICE_CANDIDATE %s", "master", describeCandidate(ev.Candidate.Candidate))
				if err := pc.AddICECandidate(webrtc.ICECandidateInit(ev.Candidate)); err != nil {
					return fmt.Errorf("%s: adding a candidate: %w", who, err)
				}
			default:
				logEvent(tl, who, ev)
			}
		}
	}
}

// ping sends n text messages over dc and times each echo.
func ping(ctx context.Context, dc *webrtc.DataChannel, tl *Timeline, n int, echoes <-chan string, errs <-chan error) ([]time.Duration, error) {
	const who = "viewer"
	var rtts []time.Duration
	for i := 1; i <= n; i++ {
		msg := "ping " + strconv.Itoa(i)
		sent := time.Now()
		if err := dc.SendText(msg); err != nil {
			return rtts, fmt.Errorf("%s: sending %q: %w", who, msg, err)
		}
		select {
		case <-ctx.Done():
			return rtts, fmt.Errorf("%s: waiting for the echo of %q: %w", who, msg, ctx.Err())
		case err := <-errs:
			return rtts, err
		case got := <-echoes:
			rtt := time.Since(sent)
			if got != "echo: "+msg {
				return rtts, fmt.Errorf("%s: sent %q, received %q", who, msg, got)
			}
			rtts = append(rtts, rtt)
			tl.Printf(who, "data channel: sent %q, received %q: round trip %s", msg, got, ms(rtt))
		}
	}
	return rtts, nil
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}
