package emulator_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// presignWith signs a signaling URL by hand, so a test can get any part
// wrong.
type presignWith struct {
	region, service string
	at              time.Time
	expires         time.Duration
	creds           sigv4.Credentials
	params          []sigv4.Param
}

func (p presignWith) sign(t *testing.T, endpoint string) string {
	t.Helper()
	if p.region == "" {
		p.region = "us-west-2"
	}
	if p.service == "" {
		p.service = "kinesisvideo"
	}
	if p.at.IsZero() {
		p.at = time.Now()
	}
	if p.expires == 0 {
		p.expires = 299 * time.Second
	}
	if p.creds.AccessKeyID == "" {
		p.creds = exampleCreds()
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var q []string
	for _, prm := range p.params {
		q = append(q, url.QueryEscape(prm.Name)+"="+url.QueryEscape(prm.Value))
	}
	u.RawQuery = strings.Join(q, "&")
	s := sigv4.Signer{Service: p.service, Region: p.region, Clock: func() time.Time { return p.at }}
	signed, err := s.PresignURL(context.Background(), p.creds, "GET", u, p.expires)
	if err != nil {
		t.Fatalf("PresignURL: %v", err)
	}
	return signed
}

func TestHandshake(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "door")
	missingARN := strings.Replace(arn, "/door/", "/nobody/", 1)
	masterEP := endpoint(t, e, arn, kvs.Master, "WSS")
	viewerEP := endpoint(t, e, arn, kvs.Viewer, "WSS")

	// Valid URLs from the kvs presigner connect, for both roles.
	m := dial(t, signedURL(t, e, arn, kvs.Master, ""))
	v := dial(t, signedURL(t, e, arn, kvs.Viewer, "viewer-1"))
	waitFor(t, "both connections registered", func() bool {
		st := e.Stats().Connections
		return st.Master == 1 && st.Viewer == 1
	})
	m.ws.Close(websocket.StatusNormalClosure, "")
	v.ws.Close(websocket.StatusNormalClosure, "")

	master := []sigv4.Param{{Name: kvs.ParamChannelARN, Value: arn}}
	viewer := func(id string) []sigv4.Param {
		return []sigv4.Param{{Name: kvs.ParamChannelARN, Value: arn}, {Name: kvs.ParamClientID, Value: id}}
	}
	good := presignWith{params: viewer("viewer-2")}.sign(t, viewerEP)
	tamperedSig := good[:len(good)-1] + map[bool]string{true: "0", false: "1"}[strings.HasSuffix(good, "1")]
	tamperedID := strings.Replace(good, "viewer-2", "viewer-3", 1)
	noSig := good[:strings.Index(good, "&X-Amz-Signature=")]

	cases := []struct {
		name    string
		url     string
		status  int
		code    string
		message string
	}{
		{"tampered signature", tamperedSig, 403, "AccessDeniedException", "does not match"},
		{"tampered client id", tamperedID, 403, "AccessDeniedException", "does not match"},
		{"expired", presignWith{params: master, at: time.Now().Add(-10 * time.Minute)}.sign(t, masterEP), 403, "AccessDeniedException", "Signature expired"},
		{"future dated", presignWith{params: master, at: time.Now().Add(10 * time.Minute)}.sign(t, masterEP), 403, "AccessDeniedException", "Signature not yet current"},
		{"wrong region", presignWith{params: master, region: "eu-west-1"}.sign(t, masterEP), 403, "AccessDeniedException", "region"},
		{"wrong service", presignWith{params: master, service: "s3"}.sign(t, masterEP), 403, "AccessDeniedException", "service"},
		{"unknown key", presignWith{params: master, creds: sigv4.Credentials{AccessKeyID: "AKIANOBODY", SecretAccessKey: "x"}}.sign(t, masterEP), 403, "AccessDeniedException", "The security token included in the request is invalid."},
		{"signed for the master path, sent to the viewer path", strings.Replace(presignWith{params: viewer("v")}.sign(t, masterEP), "/signaling/master/m-", "/signaling/viewer/v-", 1), 403, "AccessDeniedException", "does not match"},
		{"no signature", noSig, 400, "InvalidArgumentException", "X-Amz-Signature"},
		{"no channel ARN", presignWith{}.sign(t, masterEP), 400, "InvalidArgumentException", "X-Amz-ChannelARN"},
		{"bad channel ARN", presignWith{params: []sigv4.Param{{Name: kvs.ParamChannelARN, Value: "arn:aws:s3:::bucket"}}}.sign(t, masterEP), 400, "InvalidArgumentException", "ChannelARN"},
		{"viewer without client id", presignWith{params: master}.sign(t, viewerEP), 400, "InvalidArgumentException", "Invalid ClientId specified !"},
		{"viewer URL at the master endpoint", presignWith{params: viewer("v")}.sign(t, masterEP), 400, "InvalidArgumentException", "not accepted at a master endpoint"},
		{"client id with a space", presignWith{params: viewer("bad id")}.sign(t, viewerEP), 400, "InvalidArgumentException", "Invalid ClientId specified !"},
		{"client id AWS_", presignWith{params: viewer("aws_reserved")}.sign(t, viewerEP), 400, "InvalidArgumentException", "Invalid ClientId specified !"},
		{"client id too long", presignWith{params: viewer(strings.Repeat("x", 257))}.sign(t, viewerEP), 400, "InvalidArgumentException", "Invalid ClientId specified !"},
		{"unknown channel", presignWith{params: []sigv4.Param{{Name: kvs.ParamChannelARN, Value: missingARN}}}.sign(t, masterEP), 404, "ResourceNotFoundException", "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := dialFail(t, tc.url)
			if status != tc.status {
				t.Errorf("status = %d; want %d (body %v)", status, tc.status, body)
			}
			if got := h.Get("x-amzn-ErrorType"); !strings.HasPrefix(got, tc.code+":") {
				t.Errorf("x-amzn-ErrorType = %q; want %s", got, tc.code)
			}
			if !strings.Contains(body["message"], tc.message) {
				t.Errorf("body = %v; want a message containing %q", body, tc.message)
			}
			if h.Get("Date") == "" || h.Get("x-amzn-RequestId") == "" {
				t.Errorf("headers lack Date or x-amzn-RequestId: %v", h)
			}
			sig := tc.url[strings.LastIndex(tc.url, "=")+1:]
			for _, secret := range []string{emulator.ExampleSecretAccessKey, sig} {
				if strings.Contains(fmt.Sprint(body), secret) {
					t.Errorf("body %v reveals %q", body, secret)
				}
			}
		})
	}
	st := e.Stats()
	if st.HandshakesRejected != int64(len(cases)) || st.HandshakesAccepted != 2 {
		t.Errorf("handshakes accepted %d rejected %d; want 2 and %d", st.HandshakesAccepted, st.HandshakesRejected, len(cases))
	}
}

func TestViewerLimit(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "busy")
	for i := range 10 {
		dial(t, signedURL(t, e, arn, kvs.Viewer, fmt.Sprintf("viewer-%d", i)))
	}
	status, h, body := dialFail(t, signedURL(t, e, arn, kvs.Viewer, "viewer-10"))
	if status != 400 || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "ClientLimitExceededException:") ||
		body["Message"] != "Maximum number of clients connected to the channel !" {
		t.Errorf("eleventh viewer: %d %s %v; want 400 ClientLimitExceededException", status, h.Get("x-amzn-ErrorType"), body)
	}
	// A viewer reconnecting with a ClientId already there replaces itself
	// rather than counting as an eleventh; so does the master.
	dial(t, signedURL(t, e, arn, kvs.Viewer, "viewer-3"))
	connectMaster(t, e, arn)
	waitFor(t, "10 viewers and a master", func() bool {
		c := e.Stats().Connections
		return c.Viewer == 10 && c.Master == 1
	})
}

func TestConnectRateLimit(t *testing.T) {
	clock := newFrozenClock()
	cfg := fastConfig()
	cfg.ConnectRate = 0 // the default: 3 per second per channel and role
	cfg.Clock = clock.Now
	e := start(t, cfg)
	arn := mustCreate(t, e, "popular")
	for i := range 3 {
		dial(t, signedURL(t, e, arn, kvs.Viewer, fmt.Sprintf("v%d", i)))
	}
	status, h, _ := dialFail(t, signedURL(t, e, arn, kvs.Viewer, "v3"))
	if status != 400 || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "ClientLimitExceededException:") {
		t.Errorf("fourth connect in a second: %d %s; want 400 ClientLimitExceededException", status, h.Get("x-amzn-ErrorType"))
	}
	// The master's quota is separate.
	connectMaster(t, e, arn)
	// A second later there is room again.
	clock.Advance(time.Second)
	dial(t, signedURL(t, e, arn, kvs.Viewer, "v4"))
}

func TestHandshakeNotWebSocket(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "plain")
	u := strings.Replace(signedURL(t, e, arn, kvs.Master, ""), "ws://", "http://", 1)
	resp, err := httpGet(u)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 4 {
		t.Errorf("plain GET of a signed URL: %d; want 4xx", resp.StatusCode)
	}
}

func TestHandshakeFaults(t *testing.T) {
	e := start(t, fastConfig())
	arn := mustCreate(t, e, "faulty")
	if err := e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.Fault5xx, Operations: []string{emulator.OpConnectAsViewer}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	status, h, _ := dialFail(t, signedURL(t, e, arn, kvs.Viewer, "v"))
	if status != 500 || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "InternalFailure:") {
		t.Errorf("faulted handshake: %d %s; want 500 InternalFailure", status, h.Get("x-amzn-ErrorType"))
	}
	connectMaster(t, e, arn)      // other operations are not affected
	connectViewer(t, e, arn, "v") // and the count is spent
	if err := e.SetFaults(emulator.Faults{Share: 1, Operations: []string{emulator.OpConnectAsMaster}}); err != nil {
		t.Fatal(err)
	}
	status, h, _ = dialFail(t, signedURL(t, e, arn, kvs.Master, ""))
	if status != 400 || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "ClientLimitExceededException:") {
		t.Errorf("throttled handshake: %d %s; want 400 ClientLimitExceededException", status, h.Get("x-amzn-ErrorType"))
	}
}

// TestHandshakeTimeRules checks KVS's time rule at its boundaries: any
// X-Amz-Expires SigV4 allows, used within 5 minutes of X-Amz-Date (either
// way) and before X-Amz-Date + X-Amz-Expires, in KVS's words.
func TestHandshakeTimeRules(t *testing.T) {
	clock := newFrozenClock()
	cfg := fastConfig()
	cfg.Clock = clock.Now
	e := start(t, cfg)
	arn := mustCreate(t, e, "clock")
	ep := endpoint(t, e, arn, kvs.Master, "WSS")
	master := []sigv4.Param{{Name: kvs.ParamChannelARN, Value: arn}}
	const layout = "20060102T150405Z"
	now := clock.Now().UTC().Truncate(time.Second)
	stamp := func(d time.Duration) string { return now.Add(d).Format(layout) }
	cases := []struct {
		name     string
		signedAt time.Duration // relative to now
		expires  time.Duration
		status   int
		code     string
		message  string // exact; empty when the handshake succeeds
	}{
		{"expires 300", 0, 300 * time.Second, 101, "", ""},
		{"expires 301", 0, 301 * time.Second, 101, "", ""},
		{"expires 604800", 0, 604800 * time.Second, 101, "", ""},
		// The signer refuses 604801: the test rewrites a 604800 URL.
		{"expires 604801", 0, -604801 * time.Second, 400, "InvalidArgumentException", "X-Amz-Expires 604801 must be a whole number of seconds from 1 to 604800."},
		{"used at date+4m59s", -(4*time.Minute + 59*time.Second), 604800 * time.Second, 101, "", ""},
		{"used at date+5m01s", -(5*time.Minute + time.Second), 604800 * time.Second, 403, "AccessDeniedException",
			"Signature expired: " + stamp(-(5*time.Minute + time.Second)) + " is now earlier than " + stamp(-5*time.Minute) + " (" + stamp(0) + " - 5 min.)"},
		{"used past date+expires", -61 * time.Second, 60 * time.Second, 403, "AccessDeniedException",
			"Signature expired: " + stamp(-time.Second) + " is now earlier than " + stamp(0) + " (" + stamp(-61*time.Second) + " + 60 sec.)"},
		{"date 4m59s ahead", 4*time.Minute + 59*time.Second, 300 * time.Second, 101, "", ""},
		{"date 5m01s ahead", 5*time.Minute + time.Second, 300 * time.Second, 403, "AccessDeniedException",
			"Signature not yet current: " + stamp(5*time.Minute+time.Second) + " is still later than " + stamp(5*time.Minute) + " (" + stamp(0) + " + 5 min.)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var u string
			if tc.expires < 0 {
				u = presignWith{params: master, at: now.Add(tc.signedAt), expires: -tc.expires - time.Second}.sign(t, ep)
				u = strings.Replace(u, fmt.Sprintf("X-Amz-Expires=%d", -tc.expires/time.Second-1), fmt.Sprintf("X-Amz-Expires=%d", -tc.expires/time.Second), 1)
			} else {
				u = presignWith{params: master, at: now.Add(tc.signedAt), expires: tc.expires}.sign(t, ep)
			}
			// The emulator's clock at the second the test computed from.
			clock.Set(now)
			if tc.status == 101 {
				p := dial(t, u)
				p.ws.Close(websocket.StatusNormalClosure, "")
				return
			}
			status, h, body := dialFail(t, u)
			if status != tc.status || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), tc.code+":") || body["message"] != tc.message {
				t.Errorf("handshake = %d %s %q;\nwant %d %s %q", status, h.Get("x-amzn-ErrorType"), body["message"], tc.status, tc.code, tc.message)
			}
		})
	}
}
