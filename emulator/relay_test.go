package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

var offer = kvs.SessionDescription{Type: "offer", SDP: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}

func TestRelayViewerToMaster(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "relay")
	m := connectMaster(t, e, arn)
	v := connectViewer(t, e, arn, "viewer-1")

	p := payload(t, offer)
	// The recipient a viewer names is ignored: its messages go to the master.
	v.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: p, RecipientClientID: "someone-else"})
	got := m.recv()
	want := kvs.ServerMessage{SenderClientID: "viewer-1", MessageType: kvs.ActionSDPOffer, MessagePayload: p}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("master received (-want +got):\n%s", diff)
	}
	var sd kvs.SessionDescription
	if err := kvs.DecodePayload(got.MessagePayload, &sd); err != nil || sd != offer {
		t.Errorf("payload = %+v, %v", sd, err)
	}

	// The master answers by recipientClientId; no senderClientId is set.
	ans := payload(t, kvs.SessionDescription{Type: "answer", SDP: "v=0\r\n"})
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "viewer-1", MessagePayload: ans})
	got = v.recv()
	if diff := cmp.Diff(kvs.ServerMessage{MessageType: kvs.ActionSDPAnswer, MessagePayload: ans}, got); diff != "" {
		t.Errorf("viewer received (-want +got):\n%s", diff)
	}
	// The wire form has alphabetical keys and no empty ones.
	m.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "viewer-1", MessagePayload: "e30="})
	_, raw, err := v.ws.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"messagePayload":"e30=","messageType":"ICE_CANDIDATE"}` {
		t.Errorf("wire = %s", raw)
	}
	waitFor(t, "3 relayed, none rejected", func() bool {
		st := e.Stats()
		return st.MessagesRelayed == 3 && st.MessagesRejected == 0
	})
}

func TestRelayNeverViewerToViewer(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "relay")
	m := connectMaster(t, e, arn)
	a := connectViewer(t, e, arn, "a")
	b := connectViewer(t, e, arn, "b")

	a.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "b", MessagePayload: "YQ=="})
	if got := m.recv(); got.SenderClientID != "a" || got.MessagePayload != "YQ==" {
		t.Fatalf("master received %+v", got)
	}
	// a's message has been fully routed; b's first message must be this one.
	m.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "b", MessagePayload: "bWFya2Vy"})
	if got := b.recv(); got.MessagePayload != "bWFya2Vy" {
		t.Fatalf("viewer b received %+v before the master's message; viewer → viewer must never happen", got)
	}
}

func TestRelayMessageRules(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "rules")
	m := connectMaster(t, e, arn)
	v := connectViewer(t, e, arn, "v1")
	marker := func() {
		t.Helper()
		v.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: "bWFya2Vy"})
		if got := m.recv(); got.MessagePayload != "bWFya2Vy" {
			t.Fatalf("master received %+v; want the marker", got)
		}
	}

	// C SDK style: capitalised keys and unknown fields are accepted.
	v.sendRaw(`{"Action":"SDP_OFFER","RecipientClientId":"","MessagePayload":"eyJ0eXBlIjoib2ZmZXIifQ==","CorrelationId":"c1","Ttl":5,"extra":{"nested":[1,2]}}`)
	if got := m.recv(); got.MessageType != kvs.ActionSDPOffer || got.MessagePayload != "eyJ0eXBlIjoib2ZmZXIifQ==" || got.SenderClientID != "v1" {
		t.Fatalf("capitalised message relayed as %+v", got)
	}

	// Errors answer with STATUS_RESPONSE only when a correlationId is given.
	statusCases := []struct {
		name, frame, errorType, inDescription string
	}{
		{"unknown action", `{"action":"SDP_PRANSWER","messagePayload":"e30=","correlationId":"c2"}`, "InvalidArgumentException", "action"},
		{"no payload", `{"action":"SDP_OFFER","correlationId":"c3"}`, "InvalidArgumentException", "messagePayload"},
		{"payload over 10 KB", `{"action":"SDP_OFFER","messagePayload":"` + strings.Repeat("A", 10*1024+1) + `","correlationId":"c4"}`, "InvalidArgumentException", "10240"},
		{"bad recipient", `{"action":"SDP_OFFER","messagePayload":"e30=","recipientClientId":"has space","correlationId":"c5"}`, "InvalidArgumentException", "recipientClientId"},
		{"action not a string", `{"action":5,"messagePayload":"e30=","correlationId":"c6"}`, "InvalidArgumentException", "action"},
	}
	for _, tc := range statusCases {
		v.sendRaw(tc.frame)
		got := v.recv()
		var corr string
		json.Unmarshal([]byte(tc.frame), &struct {
			CorrelationID *string `json:"correlationId"`
		}{&corr})
		if got.MessageType != kvs.TypeStatusResponse || got.StatusResponse == nil ||
			got.StatusResponse.ErrorType != tc.errorType || got.StatusResponse.StatusCode != "400" ||
			!strings.Contains(got.StatusResponse.Description, tc.inDescription) {
			t.Errorf("%s: got %+v; want a STATUS_RESPONSE %s naming %s", tc.name, got, tc.errorType, tc.inDescription)
			continue
		}
		if got.StatusResponse.CorrelationID != corr {
			t.Errorf("%s: correlationId = %q; want %q", tc.name, got.StatusResponse.CorrelationID, corr)
		}
	}
	// A payload of exactly 10 KB is relayed.
	big := strings.Repeat("A", 10*1024)
	v.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: big, CorrelationID: "c7"})
	if got := m.recv(); got.MessagePayload != big {
		t.Errorf("10 KB payload not relayed intact")
	}

	// Without a correlationId, errors are silent: the next thing the viewer
	// gets is the master's reply to the marker.
	for _, frame := range []string{`not json`, `{"action":"NOPE","messagePayload":"e30="}`, `{"action":"SDP_OFFER"}`, `[]`} {
		v.sendRaw(frame)
	}
	marker()
	m.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "v1", MessagePayload: "cmVwbHk="})
	if got := v.recv(); got.MessagePayload != "cmVwbHk=" {
		t.Fatalf("viewer received %+v; want only the reply (no STATUS_RESPONSE without a correlationId)", got)
	}
	// Success sends nothing back either: the viewer's marker above produced
	// no STATUS_RESPONSE, or it would have arrived before the reply.

	// The master must name a recipient.
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, MessagePayload: "e30=", CorrelationID: "m1"})
	if got := m.recv(); got.StatusResponse == nil || !strings.Contains(got.StatusResponse.Description, "recipientClientId") {
		t.Errorf("master without recipient got %+v", got)
	}
	if st := e.Stats(); st.MessagesRejected != int64(len(statusCases)+4+1) {
		t.Errorf("rejected = %d; want %d", st.MessagesRejected, len(statusCases)+5)
	}
}

func TestRelayReplacement(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "replace")
	m1 := connectMaster(t, e, arn)
	v1 := connectViewer(t, e, arn, "same")
	m2 := connectMaster(t, e, arn)
	if code := m1.closeStatus(5 * time.Second); code != websocket.StatusNormalClosure {
		t.Errorf("older master closed with %v; want 1000", code)
	}
	v1.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: "b2xk"})
	if got := m2.recv(); got.MessagePayload != "b2xk" {
		t.Errorf("newer master received %+v", got)
	}
	v2 := connectViewer(t, e, arn, "same")
	if code := v1.closeStatus(5 * time.Second); code != websocket.StatusNormalClosure {
		t.Errorf("older viewer closed with %v; want 1000", code)
	}
	m2.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "same", MessagePayload: "bmV3"})
	if got := v2.recv(); got.MessagePayload != "bmV3" {
		t.Errorf("newer viewer received %+v", got)
	}
	waitFor(t, "one master and one viewer", func() bool {
		c := e.Stats().Connections
		return c.Master == 1 && c.Viewer == 1
	})
}

func TestRelayHeldForOfflinePeer(t *testing.T) {
	clock := &fakeClock{}
	cfg := fastConfig()
	cfg.Clock = clock.Now
	e := start(t, cfg)
	arn, err := e.CreateChannel("held", 10*time.Second) // MessageTtlSeconds 10
	if err != nil {
		t.Fatal(err)
	}

	// Viewer → offline master: held, delivered in order when it connects.
	v := connectViewer(t, e, arn, "early")
	v.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: "b2ZmZXIx"})
	v.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: "Y2FuZDE="})
	v.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: "b2ZmZXIy"}) // replaces offer1
	v.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, MessagePayload: "Y2FuZDI="})
	waitFor(t, "4 held", func() bool { return e.Stats().MessagesHeld == 4 })
	m := connectMaster(t, e, arn)
	var got []string
	for range 3 {
		msg := m.recv()
		if msg.SenderClientID != "early" {
			t.Errorf("held message lost its sender: %+v", msg)
		}
		got = append(got, msg.MessagePayload)
	}
	if diff := cmp.Diff([]string{"Y2FuZDE=", "b2ZmZXIy", "Y2FuZDI="}, got); diff != "" {
		t.Errorf("held messages delivered (-want +got):\n%s", diff)
	}

	// Master → offline viewer: held under its ClientId.
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "late", MessagePayload: "YW5zd2Vy"})
	waitFor(t, "5 held", func() bool { return e.Stats().MessagesHeld == 5 })
	late := connectViewer(t, e, arn, "late")
	if msg := late.recv(); msg.MessagePayload != "YW5zd2Vy" || msg.SenderClientID != "" {
		t.Errorf("late viewer received %+v", msg)
	}

	// Past MessageTtlSeconds, held messages are dropped.
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: "too-late", MessagePayload: "c3RhbGU="})
	waitFor(t, "6 held", func() bool { return e.Stats().MessagesHeld == 6 })
	clock.Advance(11 * time.Second)
	tooLate := connectViewer(t, e, arn, "too-late")
	m.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: "too-late", MessagePayload: "ZnJlc2g="})
	if msg := tooLate.recv(); msg.MessagePayload != "ZnJlc2g=" {
		t.Errorf("viewer connecting after the TTL received %+v; want only the fresh message", msg)
	}
	if st := e.Stats(); st.MessagesExpired != 2 { // offer1 replaced, stale answer expired
		t.Errorf("expired = %d; want 2", st.MessagesExpired)
	}
}

func TestRelayRateLimits(t *testing.T) {
	clock := newFrozenClock()
	cfg := fastConfig()
	cfg.SDPRate, cfg.ICERate = 0, 0 // the defaults: 5 and 20 per second per connection
	cfg.Clock = clock.Now
	e := start(t, cfg)
	arn := mustCreate(t, e, "limits")
	m := connectMaster(t, e, arn)
	v := connectViewer(t, e, arn, "v")

	burst := func(action string, n int, prefix string) {
		for i := range n {
			v.send(kvs.ClientMessage{Action: action, MessagePayload: "e30=", CorrelationID: fmt.Sprintf("%s%d", prefix, i)})
		}
	}
	burst(kvs.ActionSDPOffer, 6, "offer")     // 5 pass, the 6th is limited
	burst(kvs.ActionSDPAnswer, 1, "answer")   // answers have their own quota
	burst(kvs.ActionICECandidate, 21, "cand") // 20 pass, the 21st is limited
	for i := range 5 + 1 + 20 {
		if got := m.recv(); got.StatusResponse != nil {
			t.Fatalf("master message %d is %+v", i, got)
		}
	}
	for _, want := range []string{"offer5", "cand20"} {
		got := v.recv()
		if got.StatusResponse == nil || got.StatusResponse.CorrelationID != want || got.StatusResponse.ErrorType != "ClientLimitExceededException" || got.StatusResponse.StatusCode != "400" {
			t.Errorf("viewer received %+v; want a ClientLimitExceededException STATUS_RESPONSE for %s", got, want)
		}
	}
	// A second later the quota is back.
	clock.Advance(time.Second)
	burst(kvs.ActionSDPOffer, 1, "again")
	if got := m.recv(); got.MessageType != kvs.ActionSDPOffer {
		t.Errorf("after a second the master received %+v", got)
	}
	waitFor(t, "2 rejected and 27 relayed", func() bool {
		st := e.Stats()
		return st.MessagesRejected == 2 && st.MessagesRelayed == 27
	})
}

func TestPingAnswered(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "ping")
	m := connectMaster(t, e, arn)
	ctx := m.ws.CloseRead(ctxT(t)) // reads (and so sees pongs) in the background
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.ws.Ping(pctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := fastConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	e := start(t, cfg)
	arn := mustCreate(t, e, "idle")
	busy := connectMaster(t, e, arn)
	idle := connectViewer(t, e, arn, "idle")
	// The master keeps talking (to an offline viewer) and stays; the
	// viewer says nothing and is closed.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				busy.ws.Write(context.Background(), websocket.MessageText, []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"nobody","messagePayload":"e30="}`))
			}
		}
	}()
	start := time.Now()
	if code := idle.closeStatus(5 * time.Second); code != websocket.StatusGoingAway {
		t.Errorf("idle viewer closed with %v; want 1001", code)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("idle viewer closed after %v; want ≥ 300ms", d)
	}
	close(stop)
	<-done
	if c := e.Stats().Connections; c.Master != 1 {
		t.Errorf("busy master was closed too: %+v", c)
	}
}

func TestMaxConnectionDurationAndGoAway(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConnectionDuration = 800 * time.Millisecond
	cfg.GoAwayGrace = 400 * time.Millisecond
	e := start(t, cfg)
	arn := mustCreate(t, e, "short")
	m := connectMaster(t, e, arn)
	begin := time.Now()
	if got := m.recv(); got.MessageType != kvs.TypeGoAway {
		t.Fatalf("received %+v; want GO_AWAY", got)
	}
	if d := time.Since(begin); d < 300*time.Millisecond || d > 700*time.Millisecond {
		t.Errorf("GO_AWAY after %v; want about 400ms (duration - grace)", d)
	}
	if code := m.closeStatus(5 * time.Second); code != websocket.StatusGoingAway {
		t.Errorf("closed with %v; want 1001", code)
	}
	if d := time.Since(begin); d < 700*time.Millisecond {
		t.Errorf("closed after %v; want about 800ms", d)
	}
}

func TestAdminGoAwayReconnectDrop(t *testing.T) {
	cfg := fastConfig()
	cfg.GoAwayGrace = 300 * time.Millisecond
	e := start(t, cfg)
	arn := mustCreate(t, e, "admin")
	m := connectMaster(t, e, arn)
	v1 := connectViewer(t, e, arn, "v1")
	v2 := connectViewer(t, e, arn, "v2")

	post := func(path string) map[string]int {
		t.Helper()
		resp, err := http.Post(e.URL()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]int
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		return out
	}
	// RECONNECT_ICE_SERVER to every connection of the channel.
	if n := post("/_emulator/reconnect-ice-server?channel=admin")["connections"]; n != 3 {
		t.Errorf("reconnect-ice-server told %d connections; want 3", n)
	}
	for _, p := range []*peer{m, v1, v2} {
		if got := p.recv(); got.MessageType != kvs.TypeReconnectICEServer {
			t.Errorf("received %+v; want RECONNECT_ICE_SERVER", got)
		}
	}
	// GO_AWAY to one viewer by ClientId (channel by ARN); closed after the grace.
	if n := e.GoAway(emulator.Target{Channel: arn, ClientID: "v1"}); n != 1 {
		t.Errorf("GoAway told %d; want 1", n)
	}
	begin := time.Now()
	if got := v1.recv(); got.MessageType != kvs.TypeGoAway {
		t.Errorf("v1 received %+v; want GO_AWAY", got)
	}
	if code := v1.closeStatus(5 * time.Second); code != websocket.StatusGoingAway {
		t.Errorf("v1 closed with %v; want 1001", code)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Errorf("v1 closed %v after GO_AWAY; want the 300ms grace", d)
	}
	// Drop the master: the socket closes without a close frame.
	if n := post("/_emulator/drop?role=MASTER")["connections"]; n != 1 {
		t.Errorf("drop closed %d; want 1", n)
	}
	if code := m.closeStatus(5 * time.Second); code != -1 {
		t.Errorf("dropped master saw close code %v; want none", code)
	}
	// Disconnect with a chosen code.
	if n := post("/_emulator/disconnect?client=v2&code=4000&reason=test")["connections"]; n != 1 {
		t.Errorf("disconnect closed %d; want 1", n)
	}
	if code := v2.closeStatus(5 * time.Second); code != 4000 {
		t.Errorf("v2 closed with %v; want 4000", code)
	}
	waitFor(t, "no connections", func() bool { return len(e.Connections()) == 0 })
	// Bad admin requests get 4xx JSON.
	for _, path := range []string{"/_emulator/goaway?role=BOSS", "/_emulator/nope", "/_emulator/disconnect?code=99"} {
		resp, err := http.Post(e.URL()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Errorf("POST %s = %d; want 4xx", path, resp.StatusCode)
		}
	}
}

func TestDeleteChannelClosesConnections(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "doomed")
	m := connectMaster(t, e, arn)
	resp, _ := rawCall(t, e, "/deleteSignalingChannel", `{"ChannelARN":"`+arn+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if code := m.closeStatus(5 * time.Second); code != websocket.StatusGoingAway {
		t.Errorf("closed with %v; want 1001", code)
	}
}

func TestFrameOverReadLimit(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "big")
	m := connectMaster(t, e, arn)
	v := connectViewer(t, e, arn, "v")
	// The server closes with 1009 as soon as it reads the frame header; the
	// rest of the frame, still in flight, may turn that into a reset.
	v.ws.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"SDP_OFFER","messagePayload":"`+strings.Repeat("A", 70<<10)+`"}`))
	if code := v.closeStatus(5 * time.Second); code != websocket.StatusMessageTooBig && code != -1 {
		t.Errorf("closed with %v; want 1009 (message too big)", code)
	}
	// The emulator serves on.
	v2 := connectViewer(t, e, arn, "v")
	v2.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: "e30="})
	if got := m.recv(); got.MessagePayload != "e30=" {
		t.Errorf("master received %+v", got)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := start(t, fastConfig())
	resp, err := http.Post(e.URL()+"/_emulator/channels", "application/json", strings.NewReader(`{"name":"made-by-admin","messageTtlSeconds":30}`))
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	arn := created["channelArn"]
	if resp.StatusCode != 200 || !strings.Contains(arn, ":channel/made-by-admin/") {
		t.Fatalf("POST /_emulator/channels: %d %v", resp.StatusCode, created)
	}
	connectViewer(t, e, arn, "v9")
	resp, err = http.Get(e.URL() + "/_emulator/connections")
	if err != nil {
		t.Fatal(err)
	}
	var conns []emulator.Connection
	json.NewDecoder(resp.Body).Decode(&conns)
	resp.Body.Close()
	if len(conns) != 1 || conns[0].ChannelARN != arn || conns[0].Role != kvs.Viewer || conns[0].ClientID != "v9" {
		t.Errorf("connections = %+v", conns)
	}
	if _, err := e.CreateChannel("made-by-admin", 0); !errors.Is(err, emulator.ErrChannelExists) {
		t.Errorf("CreateChannel(existing) = %v; want ErrChannelExists", err)
	}
	// Admin endpoints answer loopback clients only.
	req := httptest.NewRequest(http.MethodGet, "/_emulator/stats", nil)
	req.RemoteAddr = "192.0.2.7:4000"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("admin from a remote address: %d; want 403", w.Code)
	}
}
