package emulator_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// fakeClock is real time plus an offset the test moves.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// frozenClock stands still unless the test moves it. It starts at the
// real time, so that signatures made on real time during a test verify.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFrozenClock() *frozenClock { return &frozenClock{t: time.Now()} }

func (c *frozenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *frozenClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *frozenClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fastConfig is a Config without the per-second limits that would slow
// tests down; tests of those limits set them back.
func fastConfig() emulator.Config {
	return emulator.Config{ConnectRate: -1, SDPRate: -1, ICERate: -1}
}

func start(t testing.TB, cfg emulator.Config) *emulator.Emulator {
	t.Helper()
	return emulatortest.New(t, cfg)
}

func exampleCreds() sigv4.Credentials {
	return sigv4.Credentials{AccessKeyID: emulator.ExampleAccessKeyID, SecretAccessKey: emulator.ExampleSecretAccessKey}
}

// sdkClient returns a kinesisvideo client for e that does not retry.
func sdkClient(e *emulator.Emulator, c sigv4.Credentials, optFns ...func(*kinesisvideo.Options)) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{
		Region:       e.Region(),
		BaseEndpoint: aws.String(e.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   httpClient(e),
	}, optFns...)
}

// httpClient returns an HTTP client that trusts e's certificate, if any.
func httpClient(e *emulator.Emulator) *http.Client {
	if e.CertPool() == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t testing.TB, e *emulator.Emulator, name string) string {
	t.Helper()
	arn, err := e.CreateChannel(name, 0)
	if err != nil {
		t.Fatalf("CreateChannel(%q): %v", name, err)
	}
	return arn
}

// endpoint returns the channel's WSS endpoint for role, from the SDK.
func endpoint(t testing.TB, e *emulator.Emulator, arn string, role kvs.Role, protocol kvtypes.ChannelProtocol) string {
	t.Helper()
	out, err := sdkClient(e, exampleCreds()).GetSignalingChannelEndpoint(ctxT(t), &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(arn),
		SingleMasterChannelEndpointConfiguration: &kvtypes.SingleMasterChannelEndpointConfiguration{
			Protocols: []kvtypes.ChannelProtocol{protocol},
			Role:      kvtypes.ChannelRole(role),
		},
	})
	if err != nil {
		t.Fatalf("GetSignalingChannelEndpoint: %v", err)
	}
	return *out.ResourceEndpointList[0].ResourceEndpoint
}

// signedURL presigns a signaling URL for role with the example credentials.
func signedURL(t testing.TB, e *emulator.Emulator, arn string, role kvs.Role, clientID string) string {
	t.Helper()
	p := kvs.Presigner{Credentials: exampleCreds()}
	u, err := p.Presign(ctxT(t), endpoint(t, e, arn, role, kvtypes.ChannelProtocolWss), arn, role, clientID)
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	return u.URL
}

// peer is a test signaling client.
type peer struct {
	t  testing.TB
	ws *websocket.Conn
}

func dial(t testing.TB, url string) *peer {
	t.Helper()
	ws, resp, err := websocket.Dial(ctxT(t), url, nil)
	if err != nil {
		status := 0
		body := ""
		if resp != nil {
			status = resp.StatusCode
			if resp.Body != nil {
				b, _ := io.ReadAll(resp.Body)
				body = string(b)
			}
		}
		t.Fatalf("dial: %v (status %d, body %s)", err, status, body)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &peer{t: t, ws: ws}
}

func connectMaster(t testing.TB, e *emulator.Emulator, arn string) *peer {
	t.Helper()
	return dial(t, signedURL(t, e, arn, kvs.Master, ""))
}

func connectViewer(t testing.TB, e *emulator.Emulator, arn, id string) *peer {
	t.Helper()
	return dial(t, signedURL(t, e, arn, kvs.Viewer, id))
}

// dialFail dials url, expects the handshake to fail, and returns the
// status and the decoded JSON body.
func dialFail(t testing.TB, url string) (int, http.Header, map[string]string) {
	t.Helper()
	ws, resp, err := websocket.Dial(ctxT(t), url, nil)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("dial succeeded; want a refused handshake")
	}
	if resp == nil {
		t.Fatalf("dial: %v (no response)", err)
	}
	body := map[string]string{}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("handshake refusal body %q is not a JSON object: %v", b, err)
	}
	return resp.StatusCode, resp.Header, body
}

func (p *peer) sendRaw(s string) {
	p.t.Helper()
	if err := p.ws.Write(ctxT(p.t), websocket.MessageText, []byte(s)); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

func (p *peer) send(m kvs.ClientMessage) {
	p.t.Helper()
	b, _ := json.Marshal(m)
	p.sendRaw(string(b))
}

// recv reads one message within a few seconds.
func (p *peer) recv() kvs.ServerMessage {
	p.t.Helper()
	m, err := p.tryRecv(5 * time.Second)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return m
}

func (p *peer) tryRecv(d time.Duration) (kvs.ServerMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := p.ws.Read(ctx)
	if err != nil {
		return kvs.ServerMessage{}, err
	}
	return kvs.DecodeServerMessage(b)
}

// expectNothing checks that nothing arrives for d. A read that times out
// closes a coder/websocket connection, so the peer is unusable afterwards.
func (p *peer) expectNothing(d time.Duration) {
	p.t.Helper()
	if m, err := p.tryRecv(d); err == nil {
		p.t.Fatalf("received %+v; want nothing", m)
	}
}

// closeStatus waits for the connection to end and returns its close code
// (-1 for no close frame).
func (p *peer) closeStatus(d time.Duration) websocket.StatusCode {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, _, err := p.ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				p.t.Fatalf("connection still open after %v", d)
			}
			return websocket.CloseStatus(err)
		}
	}
}

func payload(t testing.TB, v any) string {
	t.Helper()
	s, err := kvs.EncodePayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func httpGet(u string) (*http.Response, error) {
	resp, err := http.Get(u)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}
