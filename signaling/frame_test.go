package signaling

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseFrame(t *testing.T) {
	mid, idx := "0", uint16(0)
	cases := []struct {
		name    string
		frame   string
		want    Event
		wantErr string
	}{
		{"offer from a viewer",
			`{"messagePayload":"` + b64(`{"type":"offer","sdp":"v=0\r\n"}`) + `","messageType":"SDP_OFFER","senderClientId":"viewer-1"}`,
			Event{Type: EventOffer, From: "viewer-1", SDP: kvs.SessionDescription{Type: "offer", SDP: "v=0\r\n"}}, ""},
		{"answer from the master",
			`{"messagePayload":"` + b64(`{"type":"answer","sdp":"v=0"}`) + `","messageType":"SDP_ANSWER"}`,
			Event{Type: EventAnswer, SDP: kvs.SessionDescription{Type: "answer", SDP: "v=0"}}, ""},
		{"candidate, keys as the C SDK writes them",
			`{"MessagePayload":"` + b64(`{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}`) + `","MessageType":"ICE_CANDIDATE","SenderClientId":"v"}`,
			Event{Type: EventCandidate, From: "v", Candidate: kvs.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx}}, ""},
		{"GO_AWAY", `{"messageType":"GO_AWAY"}`, Event{Type: EventGoAway}, ""},
		{"RECONNECT_ICE_SERVER", `{"messageType":"RECONNECT_ICE_SERVER"}`, Event{Type: EventReconnectICEServer}, ""},
		{"status response",
			`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"offer-3","errorType":"InvalidArgumentException","statusCode":"400","description":"bad"}}`,
			Event{Type: EventStatus, Err: &StatusError{Code: 400, Type: "InvalidArgumentException", Description: "bad", CorrelationID: "offer-3"}}, ""},
		{"unknown type is skipped", `{"messageType":"SOMETHING_NEW"}`, Event{}, ""},
		{"payload not base64", `{"messagePayload":"***","messageType":"SDP_OFFER","senderClientId":"v"}`, Event{}, `SDP_OFFER from "v": kvs: message payload: not base64`},
		{"not JSON", `hello`, Event{}, "kvs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tc.frame))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeFrame(t *testing.T) {
	mid := "0"
	got, err := encodeFrame(kvs.ActionICECandidate, "candidate", "viewer-1", kvs.ICECandidate{Candidate: "candidate:1", SDPMid: &mid}, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"ICE_CANDIDATE","correlationId":"candidate-7","messagePayload":"` + b64(`{"candidate":"candidate:1","sdpMid":"0"}`) + `","recipientClientId":"viewer-1"}`
	if string(got) != want {
		t.Errorf("frame\n %s\nwant\n %s", got, want)
	}
}

// The benchmarks measure the client's own path per message: building a
// frame from a typed payload, and turning a frame into an Event. The kvs
// package benchmarks the service's side (client frames in, server frames
// out).

var benchSDP = kvs.SessionDescription{Type: "offer", SDP: strings.Repeat("a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n", 40)}

func BenchmarkEncodeCandidate(b *testing.B) {
	mid, idx := "0", uint16(0)
	c := kvs.ICECandidate{Candidate: "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0", SDPMid: &mid, SDPMLineIndex: &idx}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := encodeFrame(kvs.ActionICECandidate, "candidate", "viewer-1", c, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeOffer(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := encodeFrame(kvs.ActionSDPOffer, "offer", "", benchSDP, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCandidate(b *testing.B) {
	frame := []byte(`{"messagePayload":"` + b64(`{"candidate":"candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0","sdpMid":"0","sdpMLineIndex":0}`) + `","messageType":"ICE_CANDIDATE","senderClientId":"viewer-1"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := parseFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOffer(b *testing.B) {
	payload, _ := kvs.EncodePayload(benchSDP)
	frame := []byte(`{"messagePayload":"` + payload + `","messageType":"SDP_OFFER","senderClientId":"viewer-1"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := parseFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
