package emulator

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestForwarderFollowsOn: a new master's packets continue the previous
// master's sequence numbers and timestamps.
func TestForwarderFollowsOn(t *testing.T) {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	s := &storageSession{e: &Emulator{}, ch: &channel{name: "fwd"}}
	f := &forwarder{track: track, gap: 3600}
	a, b := &peerLink{s: s}, &peerLink{s: s}
	type out struct {
		seq uint16
		ts  uint32
	}
	steps := []struct {
		l    *peerLink
		seq  uint16
		ts   uint32
		want out
	}{
		{a, 65535, 1000, out{65535, 1000}},
		{a, 0, 4600, out{0, 4600}},
		{b, 5000, 777, out{1, 8200}},
		{b, 5001, 4377, out{2, 11800}},
		{a, 1, 8200, out{3, 15400}}, // a link that comes back starts over
	}
	for i, st := range steps {
		f.forward(st.l, &rtp.Packet{Header: rtp.Header{SequenceNumber: st.seq, Timestamp: st.ts}})
		if got := (out{f.lastSeq, f.lastTS}); got != st.want {
			t.Errorf("step %d: forwarded seq %d ts %d; want %d %d", i, got.seq, got.ts, st.want.seq, st.want.ts)
		}
	}
}

// TestMayTalk: one viewer talks to the master at a time; another takes
// over after talkQuiet of silence.
func TestMayTalk(t *testing.T) {
	s := &storageSession{}
	a, b := &peerLink{}, &peerLink{}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		l    *peerLink
		at   time.Duration
		want bool
	}{
		{a, 0, true},
		{b, 20 * time.Millisecond, false},
		{a, 40 * time.Millisecond, true},
		{b, 40*time.Millisecond + talkQuiet, false},
		{b, 41*time.Millisecond + talkQuiet, true},
		{a, 42*time.Millisecond + talkQuiet, false},
	}
	for i, st := range steps {
		if got := s.mayTalk(st.l, t0.Add(st.at)); got != st.want {
			t.Errorf("step %d: mayTalk = %v; want %v", i, got, st.want)
		}
	}
}
