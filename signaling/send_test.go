package signaling

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
)

// recorder is a WebSocket server on loopback that keeps every text frame
// it reads, as the signaling service would read them.
type recorder struct {
	url    string
	frames chan string
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{frames: make(chan string, 256)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			_, data, err := ws.Read(req.Context())
			if err != nil {
				return
			}
			r.frames <- string(data)
		}
	}))
	t.Cleanup(srv.Close)
	r.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/?X-Amz-ChannelARN=test"
	return r
}

func (r *recorder) source() *source {
	return &source{next: func(context.Context) (string, error) { return r.url, nil }}
}

// next returns the next frame the server read.
func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("the server read no frame within 5s")
		return ""
	}
}

// Payloads that the typed sends would not produce: fields a description or
// a candidate does not hold, keys in another order, spaces, no padding.
var (
	extraOffer     = base64.StdEncoding.EncodeToString([]byte(`{"sdp":"v=0\r\n","type":"offer","x-app":{"retry":2}}`))
	spacedCand     = base64.StdEncoding.EncodeToString([]byte(`{ "candidate" : "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "foo": true }`))
	unpaddedAnswer = base64.RawStdEncoding.EncodeToString([]byte(`{"type":"answer","sdp":"v=0"}`))
)

// TestSendKeepsMessage: Send writes the message's own frame, correlation
// id and payload byte for byte, and the typed sends' frames go the same
// way.
func TestSendKeepsMessage(t *testing.T) {
	r := newRecorder(t)
	c := dial(t, r.source(), nil)
	ctx := testContext(t)
	cases := []struct {
		name string
		m    kvs.ClientMessage
		want string
	}{
		{"offer with fields a description does not hold",
			kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: extraOffer, CorrelationID: "app.offer-1"},
			`{"action":"SDP_OFFER","correlationId":"app.offer-1","messagePayload":"` + extraOffer + `"}`},
		{"candidate with spaces in its JSON, to a recipient",
			kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "viewer-1", MessagePayload: spacedCand, CorrelationID: "c_7"},
			`{"action":"ICE_CANDIDATE","correlationId":"c_7","messagePayload":"` + spacedCand + `","recipientClientId":"viewer-1"}`},
		{"answer, base64 without padding, no correlation id",
			kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "viewer-1", MessagePayload: unpaddedAnswer},
			`{"action":"SDP_ANSWER","messagePayload":"` + unpaddedAnswer + `","recipientClientId":"viewer-1"}`},
		{"payload that is not base64 JSON: the service decides",
			kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: "not-base64", CorrelationID: "x"},
			`{"action":"ICE_CANDIDATE","correlationId":"x","messagePayload":"not-base64"}`},
		{"payload at the size limit",
			kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: strings.Repeat("QUJD", kvs.MaxPayloadSize/4), CorrelationID: strings.Repeat("a", 256)},
			`{"action":"ICE_CANDIDATE","correlationId":"` + strings.Repeat("a", 256) + `","messagePayload":"` + strings.Repeat("QUJD", kvs.MaxPayloadSize/4) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Send(ctx, tc.m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := r.next(t); got != tc.want {
				t.Errorf("frame\n %s\nwant\n %s", got, tc.want)
			}
		})
	}

	// The typed sends go through Send: the same frame encodeFrame builds.
	if err := c.SendCandidate(ctx, "viewer-1", candidate(1)); err != nil {
		t.Fatal(err)
	}
	want, err := typedFrame(kvs.ActionICECandidate, "candidate", "viewer-1", candidate(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got != string(want) {
		t.Errorf("SendCandidate frame\n %s\nwant\n %s", got, want)
	}
}

// TestSendRefusesInvalid: a message that kvs.ClientMessage.Validate
// refuses is not sent, and the error names the field.
func TestSendRefusesInvalid(t *testing.T) {
	r := newRecorder(t)
	c := dial(t, r.source(), nil)
	ctx := testContext(t)
	p := b64(`{"type":"offer","sdp":"v=0"}`)
	cases := []struct {
		name string
		m    kvs.ClientMessage
		want string
	}{
		{"no action", kvs.ClientMessage{MessagePayload: p},
			"signaling: kvs: message field action is empty: must be SDP_OFFER"},
		{"unknown action", kvs.ClientMessage{Action: "SDP_PRANSWER", MessagePayload: p},
			`signaling: kvs: message field action "SDP_PRANSWER": must be one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE`},
		{"action in lower case", kvs.ClientMessage{Action: "sdp_offer", MessagePayload: p},
			`signaling: kvs: message field action "sdp_offer": must be one of`},
		{"no payload", kvs.ClientMessage{Action: kvs.ActionSDPOffer},
			"signaling: SDP_OFFER: kvs: message field messagePayload is empty: must be the base64 of a JSON object"},
		{"payload too large", kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: strings.Repeat("A", kvs.MaxPayloadSize+1)},
			"signaling: ICE_CANDIDATE: kvs: message field messagePayload \"AAAA"},
		{"correlation id with a space", kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: p, CorrelationID: "my id"},
			`signaling: SDP_OFFER: kvs: message field correlationId "my id": must contain only [a-zA-Z0-9_.-]`},
		{"correlation id too long", kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: p, CorrelationID: strings.Repeat("a", 257)},
			"signaling: SDP_OFFER: kvs: message field correlationId \"aaaa"},
		{"recipient with a slash", kvs.ClientMessage{Action: kvs.ActionSDPAnswer, MessagePayload: p, RecipientClientID: "viewer/1"},
			`signaling: SDP_ANSWER: kvs: message field recipientClientId "viewer/1": must contain only [a-zA-Z0-9_.-]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Send(ctx, tc.m)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Send error %v; want one starting %q", err, tc.want)
			}
		})
	}
	// Nothing was sent: the next frame the server reads is this one.
	ok := kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: p, CorrelationID: "after"}
	if err := c.Send(ctx, ok); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(ok)
	if got := r.next(t); got != string(want) {
		t.Errorf("first frame read %s; want %s (an invalid message went out)", got, want)
	}

	c.Close()
	if err := c.Send(ctx, ok); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v; want ErrClosed", err)
	}
}

// TestSendPacedWithTypedSends: Send and SendOffer share the offers' pace
// (burst 2 at the default 5 per second), so a third offer in a row waits.
func TestSendPacedWithTypedSends(t *testing.T) {
	r := newRecorder(t)
	c := dial(t, r.source(), nil)
	ctx := testContext(t)
	m := kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: extraOffer, CorrelationID: "o"}
	start := time.Now()
	if err := c.SendOffer(ctx, "", kvs.SessionDescription{SDP: "v=0"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("three offers sent in %v; the third should have waited about 220ms for its turn", el)
	}
	for range 3 {
		r.next(t)
	}

	// A context that ends while the send waits for its turn.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	for {
		if err := c.Send(short, m); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Send waiting for its turn = %v; want DeadlineExceeded", err)
			}
			break
		}
	}
}

// TestSendThroughService: through the emulator, the peer receives the
// payload exactly as sent (Event.Message), and a refusal names the
// message's own correlation id.
func TestSendThroughService(t *testing.T) {
	t.Cleanup(func() { checkNoLeak(t) })
	v := newEnv(t, fastConfig())
	master := dial(t, v.source(kvs.Master, ""), nil)
	viewer := dial(t, v.source(kvs.Viewer, "viewer-1"), nil)
	ctx := testContext(t)
	cases := []struct {
		name     string
		from, to *Client
		m        kvs.ClientMessage
		want     Event // Type, From, SDP or Candidate; Message is m's
	}{
		{"viewer's offer with an extra field", viewer, master,
			kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: extraOffer, CorrelationID: "v.offer-1"},
			Event{Type: EventOffer, From: "viewer-1", SDP: kvs.SessionDescription{Type: "offer", SDP: "v=0\r\n"}}},
		{"viewer's candidate with spaces", viewer, master,
			kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: spacedCand},
			Event{Type: EventCandidate, From: "viewer-1", Candidate: kvs.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: ptr("0")}}},
		{"master's answer without padding", master, viewer,
			kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "viewer-1", MessagePayload: unpaddedAnswer, CorrelationID: "m-1"},
			Event{Type: EventAnswer, SDP: kvs.SessionDescription{Type: "answer", SDP: "v=0"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.from.Send(ctx, tc.m); err != nil {
				t.Fatal(err)
			}
			got, _ := await(t, tc.to, 5*time.Second, tc.name, isType(tc.want.Type))
			wantMsg := kvs.ServerMessage{SenderClientID: tc.want.From, MessageType: tc.m.Action, MessagePayload: tc.m.MessagePayload}
			if got.Message != wantMsg {
				t.Errorf("Message %+v; want %+v", got.Message, wantMsg)
			}
			if got.From != tc.want.From || got.SDP != tc.want.SDP || got.Candidate.Candidate != tc.want.Candidate.Candidate {
				t.Errorf("event %+v; want %+v", got, tc.want)
			}
		})
	}

	// A master's message without a recipient is refused; the
	// STATUS_RESPONSE names the message's own correlation id.
	m := kvs.ClientMessage{Action: kvs.ActionSDPAnswer, MessagePayload: unpaddedAnswer, CorrelationID: "mine.42"}
	if err := master.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	ev, _ := await(t, master, 5*time.Second, "STATUS_RESPONSE", isType(EventStatus))
	var se *StatusError
	if !errors.As(ev.Err, &se) || se.CorrelationID != "mine.42" || se.Code != 400 {
		t.Errorf("status error %#v; want a 400 for mine.42", ev.Err)
	}
	if s := ev.Message.StatusResponse; s == nil || s.CorrelationID != "mine.42" || s.StatusCode != "400" || ev.Message.MessageType != kvs.TypeStatusResponse {
		t.Errorf("Message %+v; want the service's STATUS_RESPONSE for mine.42", ev.Message)
	}
}

func ptr[T any](v T) *T { return &v }
