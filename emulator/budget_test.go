package emulator_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
)

// TestConnectionBudget: with a budget of 50, the 51st signaling
// connection is refused at once with 503 and a JSON message, counted in
// the stats, while the control plane and the admin endpoints answer; a
// closed connection makes room again.
func TestConnectionBudget(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConnections = 50
	cfg.MaxViewers = -1
	e := start(t, cfg)
	arn := mustCreate(t, e, "busy")
	var peers []*peer
	for i := range 50 {
		peers = append(peers, connectViewer(t, e, arn, fmt.Sprintf("v%d", i)))
	}
	status, h, body := dialFail(t, signedURL(t, e, arn, "VIEWER", "v50"))
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "ServiceUnavailableException:") ||
		!strings.Contains(body["message"], "limit of 50 signaling connections") {
		t.Errorf("51st handshake: %d %s %v; want 503 ServiceUnavailableException naming the limit", status, h.Get("x-amzn-ErrorType"), body)
	}
	st := e.Stats()
	if st.OverBudget != 1 || st.HandshakesRejected != 1 || st.Connections.Viewer != 50 {
		t.Errorf("stats: overBudget %d, rejected %d, viewers %d; want 1, 1, 50", st.OverBudget, st.HandshakesRejected, st.Connections.Viewer)
	}
	if _, err := sdkClient(e, exampleCreds()).ListSignalingChannels(ctxT(t), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Errorf("ListSignalingChannels at the budget: %v", err)
	}
	if resp, err := httpGet(e.URL() + "/_emulator/stats"); err != nil || resp.StatusCode != 200 {
		t.Errorf("admin stats at the budget: %v %v", resp, err)
	}
	peers[0].ws.CloseNow()
	waitFor(t, "the closed connection to be gone", func() bool { return e.Stats().Connections.Viewer == 49 })
	connectViewer(t, e, arn, "v50")
}

// TestDropMany drops and closes connections in bulk, several at once: each
// is counted once and all end.
func TestDropMany(t *testing.T) {
	cfg := fastConfig()
	e := start(t, cfg)
	var peers []*peer
	for ch := range 10 {
		arn := mustCreate(t, e, fmt.Sprintf("bulk-%d", ch))
		for v := range 10 {
			peers = append(peers, connectViewer(t, e, arn, fmt.Sprintf("v%d", v)))
		}
	}
	if n := e.Disconnect(emulator.Target{Channel: "bulk-0"}, 4000, "bye"); n != 10 {
		t.Errorf("Disconnect of bulk-0 = %d; want 10", n)
	}
	if n := e.Drop(emulator.Target{}); n != 90 {
		t.Errorf("Drop of all = %d; want the other 90", n)
	}
	waitFor(t, "every connection to end", func() bool { return e.Stats().Connections.Viewer == 0 })
	for i, p := range peers {
		if got := p.closeStatus(5 * time.Second); (i < 10) != (got == 4000) {
			t.Errorf("peer %d closed with %d", i, got)
		}
	}
}

// TestHandshakeWithBodyRefused: an upgrade request that announces a body is
// refused at once, before it can hold a slot of the connection budget while
// its body trickles in.
func TestHandshakeWithBodyRefused(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConnections = 1
	e := start(t, cfg)
	arn := mustCreate(t, e, "held")
	u, err := url.Parse(signedURL(t, e, arn, "VIEWER", "v0"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 1000000\r\n\r\nx",
		u.RequestURI(), u.Host)
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, " 400 ") {
		t.Errorf("handshake with a body: %q, %v; want 400 at once", status, err)
	}
	connectViewer(t, e, arn, "v1") // the only slot is free
}

// TestBudgetCountsReplacedSocket: a connection replaced by a newer one of
// the same client id keeps its place in the budget until its socket is
// closed, since until then it still holds a descriptor. The replaced peer
// here does not answer the close frame, so its socket stays open until it
// goes away.
func TestBudgetCountsReplacedSocket(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConnections = 2
	e := start(t, cfg)
	arn := mustCreate(t, e, "replaced")
	old := connectViewer(t, e, arn, "same")
	connectViewer(t, e, arn, "same")
	waitFor(t, "the old connection to be replaced", func() bool {
		st := e.Stats().Connections
		return st.Viewer == 1
	})
	if status, _, body := dialFail(t, signedURL(t, e, arn, "VIEWER", "other")); status != http.StatusServiceUnavailable {
		t.Errorf("a third connection while the replaced socket is open: %d %v; want 503", status, body)
	}
	old.ws.CloseNow()
	waitFor(t, "room once the replaced socket is closed", func() bool {
		ws, _, err := websocket.Dial(ctxT(t), signedURL(t, e, arn, "VIEWER", "other"), nil)
		if err == nil {
			ws.CloseNow()
		}
		return err == nil
	})
}
