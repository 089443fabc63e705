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
	offer, answer := b64(`{"type":"offer","sdp":"v=0\r\n"}`), b64(`{"type":"answer","sdp":"v=0"}`)
	cand := b64(`{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}`)
	// Fields a description does not hold stay in Message.
	extra := b64(`{"sdp":"v=0","type":"offer","x-extra":[1,2]}`)
	status := &kvs.StatusResponse{CorrelationID: "offer-3", ErrorType: "InvalidArgumentException", StatusCode: "400", Description: "bad"}
	cases := []struct {
		name    string
		frame   string
		want    Event
		wantErr string
	}{
		{"offer from a viewer",
			`{"messagePayload":"` + offer + `","messageType":"SDP_OFFER","senderClientId":"viewer-1"}`,
			Event{Type: EventOffer, From: "viewer-1", SDP: kvs.SessionDescription{Type: "offer", SDP: "v=0\r\n"},
				Message: kvs.ServerMessage{SenderClientID: "viewer-1", MessageType: "SDP_OFFER", MessagePayload: offer}}, ""},
		{"offer with a field a description does not hold",
			`{"messagePayload":"` + extra + `","messageType":"SDP_OFFER","senderClientId":"viewer-1"}`,
			Event{Type: EventOffer, From: "viewer-1", SDP: kvs.SessionDescription{Type: "offer", SDP: "v=0"},
				Message: kvs.ServerMessage{SenderClientID: "viewer-1", MessageType: "SDP_OFFER", MessagePayload: extra}}, ""},
		{"answer from the master",
			`{"messagePayload":"` + answer + `","messageType":"SDP_ANSWER"}`,
			Event{Type: EventAnswer, SDP: kvs.SessionDescription{Type: "answer", SDP: "v=0"},
				Message: kvs.ServerMessage{MessageType: "SDP_ANSWER", MessagePayload: answer}}, ""},
		{"candidate, keys as the C SDK writes them",
			`{"MessagePayload":"` + cand + `","MessageType":"ICE_CANDIDATE","SenderClientId":"v"}`,
			Event{Type: EventCandidate, From: "v", Candidate: kvs.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx},
				Message: kvs.ServerMessage{SenderClientID: "v", MessageType: "ICE_CANDIDATE", MessagePayload: cand}}, ""},
		{"GO_AWAY", `{"messageType":"GO_AWAY"}`, Event{Type: EventGoAway, Message: kvs.ServerMessage{MessageType: "GO_AWAY"}}, ""},
		{"RECONNECT_ICE_SERVER", `{"messageType":"RECONNECT_ICE_SERVER"}`,
			Event{Type: EventReconnectICEServer, Message: kvs.ServerMessage{MessageType: "RECONNECT_ICE_SERVER"}}, ""},
		{"status response",
			`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"offer-3","errorType":"InvalidArgumentException","statusCode":"400","description":"bad"}}`,
			Event{Type: EventStatus, Err: &StatusError{Code: 400, Type: "InvalidArgumentException", Description: "bad", CorrelationID: "offer-3"},
				Message: kvs.ServerMessage{MessageType: "STATUS_RESPONSE", StatusResponse: status}}, ""},
		{"status response, statusCode a number",
			`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"offer-3","errorType":"InvalidArgumentException","statusCode":400,"description":"bad"}}`,
			Event{Type: EventStatus, Err: &StatusError{Code: 400, Type: "InvalidArgumentException", Description: "bad", CorrelationID: "offer-3"},
				Message: kvs.ServerMessage{MessageType: "STATUS_RESPONSE", StatusResponse: status}}, ""},
		{"unknown type", `{"messageType":"SOMETHING_NEW"}`, Event{Type: EventOther, Message: kvs.ServerMessage{MessageType: "SOMETHING_NEW"}}, ""},
		{"payload not base64", `{"messagePayload":"***","messageType":"SDP_OFFER","senderClientId":"v"}`, Event{Type: EventOther, From: "v",
			Message: kvs.ServerMessage{MessageType: "SDP_OFFER", SenderClientID: "v", MessagePayload: "***"}}, `SDP_OFFER from "v": kvs: message payload: not base64`},
		{"not JSON", `hello`, Event{}, "kvs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tc.frame))
			if tc.want.Type == 0 {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// EventOther's Err says why the payload could not be read.
			if tc.wantErr != "" && (got.Err == nil || !strings.Contains(got.Err.Error(), tc.wantErr)) {
				t.Errorf("Err %v; want one containing %q", got.Err, tc.wantErr)
			}
			if tc.wantErr != "" {
				got.Err = nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// typedFrame is the frame a typed send writes.
func typedFrame(action, kind, to string, payload any, seq uint64) ([]byte, error) {
	m, err := typedMessage(action, kind, to, payload, seq)
	if err != nil {
		return nil, err
	}
	return encodeFrame(m)
}

func TestEncodeFrame(t *testing.T) {
	mid := "0"
	got, err := typedFrame(kvs.ActionICECandidate, "candidate", "viewer-1", kvs.ICECandidate{Candidate: "candidate:1", SDPMid: &mid}, 7)
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
		if _, err := typedFrame(kvs.ActionICECandidate, "candidate", "viewer-1", c, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeOffer(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := typedFrame(kvs.ActionSDPOffer, "offer", "", benchSDP, uint64(i)); err != nil {
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

// FuzzParseFrame: whatever the service sends, parsing it does not panic,
// and a frame that parses is an event of a known type that keeps the
// message it came from.
func FuzzParseFrame(f *testing.F) {
	f.Add(`{"messagePayload":"` + b64(`{"type":"offer","sdp":"v=0"}`) + `","messageType":"SDP_OFFER","senderClientId":"v"}`)
	f.Add(`{"messageType":"STATUS_RESPONSE","statusResponse":{"statusCode":400}}`)
	f.Add(`{"messageType":"ICE_CANDIDATE","messagePayload":"***"}`)
	f.Add(`{"messageType":"SOMETHING_NEW"}`)
	f.Fuzz(func(t *testing.T, frame string) {
		ev, err := parseFrame([]byte(frame))
		if err != nil {
			return
		}
		if ev.Type < EventOffer || ev.Type > EventOther || ev.Type.String() == "" {
			t.Fatalf("event of type %d", ev.Type)
		}
		if ev.Message.MessageType == "" && ev.Type != EventOther {
			t.Fatalf("%v event without its message type", ev.Type)
		}
	})
}
