package emulator_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// claimedPort is a listener that reports another port than its own, so a
// test can see what the emulator advertises on port 443 without binding
// it (which needs root and a private network namespace).
type claimedPort struct {
	net.Listener
	port int
}

func (l claimedPort) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.port} }

// TestHostname serves as kinesisvideo.us-west-2.amazonaws.com, as the C SDK
// expects, and drives the control plane, GetIceServerConfig and a
// signaling handshake through it with a client that resolves the name to
// the listener and trusts only the certificate file the emulator wrote.
func TestHostname(t *testing.T) {
	const host = "kinesisvideo.us-west-2.amazonaws.com"
	cases := []struct {
		name      string
		tls       bool
		claimed   int    // the port the listener reports; 0: its own
		authority string // advertised host[:port]; PORT stands for the real port
	}{
		{"tls on 443", true, 443, host},
		{"tls on another port", true, 0, host + ":PORT"},
		{"plain http on 80", false, 80, host},
		{"plain http on 443", false, 443, host + ":443"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			certFile := ""
			if tc.tls {
				certFile = filepath.Join(t.TempDir(), "emulator.pem")
			}
			e, err := emulator.New(emulator.Config{Hostname: host, TLS: tc.tls, CertFile: certFile, ConnectRate: -1})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			real := ln.Addr().String()
			var served net.Listener = ln
			if tc.claimed != 0 {
				served = claimedPort{ln, tc.claimed}
			}
			if err := e.Serve(served); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			_, port, _ := net.SplitHostPort(real)
			authority := strings.Replace(tc.authority, "PORT", port, 1)
			scheme, wsScheme := "http", "ws"
			if tc.tls {
				scheme, wsScheme = "https", "wss"
			}
			if got, want := e.URL(), scheme+"://"+authority; got != want {
				t.Errorf("URL = %q; want %q", got, want)
			}

			client := hostClient(t, real, certFile, host)
			arn := mustCreate(t, e, "camera")
			kv := kinesisvideo.New(kinesisvideo.Options{
				Region: e.Region(), BaseEndpoint: aws.String(e.URL()), Retryer: aws.NopRetryer{}, HTTPClient: client,
				Credentials: credentials.NewStaticCredentialsProvider(emulator.ExampleAccessKeyID, emulator.ExampleSecretAccessKey, ""),
			})
			out, err := kv.GetSignalingChannelEndpoint(ctxT(t), &kinesisvideo.GetSignalingChannelEndpointInput{
				ChannelARN: aws.String(arn),
				SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
					Protocols: []kvtypes.ChannelProtocol{"WSS", "HTTPS"}, Role: "MASTER",
				},
			})
			if err != nil {
				t.Fatalf("GetSignalingChannelEndpoint through %s: %v", host, err)
			}
			eps := map[string]string{}
			for _, ep := range out.ResourceEndpointList {
				eps[string(ep.Protocol)] = aws.ToString(ep.ResourceEndpoint)
			}
			if !strings.HasPrefix(eps["WSS"], wsScheme+"://"+authority+"/") || !strings.HasPrefix(eps["HTTPS"], scheme+"://"+authority+"/") {
				t.Errorf("endpoints = %v; want them at %s", eps, authority)
			}

			// TURN URIs name the host and always carry their port.
			checkTURNURIs(t, client, e, eps["HTTPS"], arn, host)

			// The signaling handshake through the advertised endpoint.
			p := kvs.Presigner{Credentials: exampleCreds()}
			u, err := p.Presign(ctxT(t), eps["WSS"], arn, kvs.Master, "")
			if err != nil {
				t.Fatal(err)
			}
			ws, _, err := websocket.Dial(ctxT(t), u.URL, &websocket.DialOptions{HTTPClient: client})
			if err != nil {
				t.Fatalf("dial %s: %v", eps["WSS"], err)
			}
			ws.Close(websocket.StatusNormalClosure, "")
		})
	}
}

// checkTURNURIs calls GetIceServerConfig at httpsEndpoint through client
// and checks that every TURN URI names host and carries a port.
func checkTURNURIs(t *testing.T, client *http.Client, e *emulator.Emulator, httpsEndpoint, arn, host string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, httpsEndpoint+"/v1/get-ice-server-config", strings.NewReader(`{"ChannelARN":"`+arn+`"}`))
	s := sigv4.Signer{Service: kvs.Service, Region: e.Region()}
	if err := s.SignRequest(context.Background(), exampleCreds(), req, ""); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ice struct{ IceServerList []struct{ Uris []string } }
	if err := json.Unmarshal(b, &ice); err != nil || len(ice.IceServerList) != 2 {
		t.Fatalf("GetIceServerConfig = %d %s", resp.StatusCode, b)
	}
	uriRE := regexp.MustCompile(`^turns?:` + regexp.QuoteMeta(host) + `:[0-9]+\?transport=(udp|tcp)$`)
	for _, srv := range ice.IceServerList {
		for _, u := range srv.Uris {
			if !uriRE.MatchString(u) {
				t.Errorf("TURN URI %q; want turn(s):%s:PORT?transport=udp|tcp", u, host)
			}
		}
	}
}

// hostClient returns an HTTP client that sends every connection to addr
// (the /etc/hosts mapping a C SDK test would use) and, with certFile,
// trusts only that certificate, checked against host.
func hostClient(t *testing.T, addr, certFile, host string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	if certFile != "" {
		pemBytes, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			t.Fatalf("%s holds no certificate", certFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: host}
	}
	return &http.Client{Transport: tr}
}

func TestHostnameRefused(t *testing.T) {
	for _, bad := range []string{"kinesisvideo.us-west-2.amazonaws.com:443", "bad name", "-x.example", "http://x"} {
		if _, err := emulator.New(emulator.Config{Hostname: bad}); err == nil || !strings.Contains(err.Error(), "hostname") {
			t.Errorf("New with Hostname %q: %v; want an error naming the hostname", bad, err)
		}
	}
}
