package emulator_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/kvs"
)

// iceServers calls GetIceServerConfig through the HTTP API, as a client
// would, and returns its servers.
func iceServers(t *testing.T, e *emulator.Emulator, name string) []iceServer {
	t.Helper()
	arn := mustCreate(t, e, name)
	ep := endpoint(t, e, arn, kvs.Viewer, "HTTPS")
	return twoIceServers(t, e, ep, `{"ChannelARN":"`+arn+`","ClientId":"viewer-1"}`)
}

// turnAddr returns the host:port of a turn: URI over UDP.
func turnAddr(t *testing.T, uri string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "turn:")
	addr, q, _ := strings.Cut(rest, "?")
	if !ok || q != "transport=udp" {
		t.Fatalf("URI %q is not turn:HOST:PORT?transport=udp", uri)
	}
	return addr
}

// turnClient returns a TURN client of addr on a loopback UDP socket.
func turnClient(t *testing.T, addr, username, password string) *turn.Client {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: addr,
		Username:       username,
		Password:       password,
		Conn:           pc,
		RTO:            100 * time.Millisecond,
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTURNRelay(t *testing.T) {
	e := start(t, emulator.Config{})
	s := iceServers(t, e, "turn")[0]
	c := turnClient(t, turnAddr(t, s.Uris[0]), s.Username, s.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate with GetIceServerConfig's credentials: %v", err)
	}
	defer relay.Close()
	if ra := relay.LocalAddr().(*net.UDPAddr); !ra.IP.IsLoopback() {
		t.Errorf("relay address %v is not on loopback", ra)
	}

	// A loopback peer echoes what the relay sends it.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			peer.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()

	msg := []byte("through the emulator's TURN server")
	relay.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	// The first send also creates the permission; resend until the echo
	// comes back, in case a datagram is lost.
	for i := 0; ; i++ {
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			t.Fatalf("relay WriteTo: %v", err)
		}
		relay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := relay.ReadFrom(buf)
		if err == nil {
			if !bytes.Equal(buf[:n], append([]byte("echo "), msg...)) || from.String() != peer.LocalAddr().String() {
				t.Fatalf("relay read %q from %v; want the echo from %v", buf[:n], from, peer.LocalAddr())
			}
			break
		}
		if i == 4 {
			t.Fatalf("no echo through the relay: %v", err)
		}
	}
}

func TestTURNRefusesBadCredentials(t *testing.T) {
	clock := newFrozenClock()
	e := start(t, emulator.Config{Clock: clock.Now})
	s := iceServers(t, e, "turn-auth")[0]
	addr := turnAddr(t, s.Uris[0])
	exp, _, _ := strings.Cut(s.Username, ":")

	cases := []struct{ name, user, pass string }{
		{"wrong password", s.Username, s.Password[:len(s.Password)-4] + "AAA="},
		{"username not issued", exp + ":" + "b3RoZXI=", s.Password},
		{"username without expiry", "viewer-1", s.Password},
	}
	for _, tc := range cases {
		c := turnClient(t, addr, tc.user, tc.pass)
		relay, err := c.Allocate()
		if err == nil {
			relay.Close()
			t.Errorf("%s: Allocate succeeded; want it refused", tc.name)
		} else if !strings.Contains(err.Error(), "error 400") {
			t.Errorf("%s: Allocate: %v; want an error response (pion answers 400 to bad credentials)", tc.name, err)
		}
	}

	// The credentials work until the Ttl has passed, and not after.
	c := turnClient(t, addr, s.Username, s.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate before expiry: %v", err)
	}
	relay.Close()
	clock.Advance(time.Duration(s.Ttl)*time.Second + time.Second)
	c = turnClient(t, addr, s.Username, s.Password)
	if relay, err := c.Allocate(); err == nil {
		relay.Close()
		t.Error("expired username: Allocate succeeded; want it refused")
	} else if !strings.Contains(err.Error(), "error 400") {
		t.Errorf("expired username: Allocate: %v; want an error response (pion answers 400 to bad credentials)", err)
	}
}

func TestTURNDisabled(t *testing.T) {
	e := start(t, emulator.Config{DisableTURN: true})
	if a := e.TURNAddr(); a != "" {
		t.Errorf("TURNAddr = %q with DisableTURN; want empty", a)
	}
	host := strings.TrimPrefix(e.URL(), "http://")
	for _, s := range iceServers(t, e, "no-turn") {
		if len(s.Uris) != 3 || s.Uris[0] != "turn:"+host+"?transport=udp" {
			t.Errorf("Uris = %q; want 3, on the emulator's address %s", s.Uris, host)
		}
	}
}

// TestTURNWebRTCRelayOnly connects two pion peers that may use relay
// candidates only, so the data channel can only open through the
// emulator's TURN server, reached over UDP, then over TCP.
func TestTURNWebRTCRelayOnly(t *testing.T) {
	e := start(t, emulator.Config{})
	servers := iceServers(t, e, "turn-webrtc")
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			var list []webrtc.ICEServer
			for _, s := range servers {
				for _, u := range s.Uris {
					if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport="+transport) {
						list = append(list, webrtc.ICEServer{URLs: []string{u}, Username: s.Username, Credential: s.Password})
					}
				}
			}
			if len(list) != 2 {
				t.Fatalf("%d turn: URIs over %s in %+v; want one per server", len(list), transport, servers)
			}
			relayOnly(t, list)
		})
	}
}

// relayOnly opens a data channel between two pion peers restricted to
// relay candidates of iceServersList.
func relayOnly(t *testing.T, iceServersList []webrtc.ICEServer) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Relay pairs are the only ones: accept one without pion's 2 s wait
	// for better pairs.
	se.SetRelayAcceptanceMinWait(10 * time.Millisecond)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	cfg := webrtc.Configuration{ICEServers: iceServersList, ICETransportPolicy: webrtc.ICETransportPolicyRelay}

	newPC := func() *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	offerer, answerer := newPC(), newPC()

	got := make(chan string, 1)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case got <- string(m.Data):
			default:
			}
		})
	})
	dc, err := offerer.CreateDataChannel("relay", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { dc.SendText("hello over TURN") })

	// Exchange complete descriptions (no trickle): gather, then swap.
	gathered := func(pc *webrtc.PeerConnection, d webrtc.SessionDescription) webrtc.SessionDescription {
		t.Helper()
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(d); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("ICE gathering did not complete")
		}
		ld := pc.LocalDescription()
		if !strings.Contains(ld.SDP, "typ relay") {
			t.Fatalf("no relay candidate gathered:\n%s", ld.SDP)
		}
		return *ld
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := answerer.SetRemoteDescription(gathered(offerer, offer)); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := offerer.SetRemoteDescription(gathered(answerer, answer)); err != nil {
		t.Fatal(err)
	}

	select {
	case m := <-got:
		if m != "hello over TURN" {
			t.Fatalf("received %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no message through the relay; ICE states %v / %v", offerer.ICEConnectionState(), answerer.ICEConnectionState())
	}
	pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("selected pair %v (%v); want a relay candidate", pair, err)
	}
}

// turnServer matches the stack of a goroutine running the TURN server's
// code (not its client's).
var turnServer = leakcheck.Mentioning("turn/v5.(*Server)", "turn/v5/internal/allocation", "turn/v5/internal/server")

func TestTURNClose(t *testing.T) {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	s := iceServers(t, e, "turn-close")[0]
	c := turnClient(t, turnAddr(t, s.Uris[0]), s.Username, s.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := relay.LocalAddr().String()
	if len(leakcheck.Stacks(turnServer)) == 0 {
		t.Fatal("no TURN server goroutine while serving")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has stopped the server and its allocation: no goroutine is
	// left, and the ports are free again.
	leakcheck.Gone(t, time.Second, turnServer)
	for _, a := range []string{strings.TrimPrefix(strings.TrimSuffix(s.Uris[0], "?transport=udp"), "turn:"), relayAddr} {
		pc, err := net.ListenPacket("udp4", a)
		if err != nil {
			t.Errorf("%s still bound after Close: %v", a, err)
			continue
		}
		pc.Close()
	}
}

// TestTURNOverTLS allocates through the turns: URI a TLS emulator hands
// out, trusting the emulator's certificate.
func TestTURNOverTLS(t *testing.T) {
	e := start(t, emulator.Config{TLS: true})
	for _, s := range iceServers(t, e, "turn-tls") {
		var addr string
		for _, u := range s.Uris {
			if rest, ok := strings.CutPrefix(u, "turns:"); ok {
				addr = strings.TrimSuffix(rest, "?transport=tcp")
			}
		}
		if len(s.Uris) != 3 || addr == "" {
			t.Fatalf("Uris = %q; want turn: (udp), turns: (tcp) and turn: (tcp)", s.Uris)
		}
		tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.CertPool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS to the TURN server at %s: %v", addr, err)
		}
		t.Cleanup(func() { tc.Close() })
		c, err := turn.NewClient(&turn.ClientConfig{
			TURNServerAddr: addr,
			Username:       s.Username,
			Password:       s.Password,
			Conn:           turn.NewSTUNConn(tc),
			LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := c.Allocate()
		if err != nil {
			t.Fatalf("Allocate over TLS: %v", err)
		}
		relay.Close()
	}
}
