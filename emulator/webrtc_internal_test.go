package emulator

import (
	"testing"

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
