package emulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

type iceServer struct {
	Uris     []string
	Username string
	Password string
	Ttl      int
}

func getIceServerConfig(t *testing.T, e *emulator.Emulator, httpsEndpoint, body string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, httpsEndpoint+"/v1/get-ice-server-config", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s := sigv4.Signer{Service: kvs.Service, Region: e.Region()}
	if err := s.SignRequest(context.Background(), exampleCreds(), req, ""); err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient(e).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// twoIceServers calls GetIceServerConfig at the HTTPS endpoint ep with the
// JSON body given, and returns the two servers it must answer.
func twoIceServers(t *testing.T, e *emulator.Emulator, ep, body string) []iceServer {
	t.Helper()
	status, _, answer := getIceServerConfig(t, e, ep, body)
	if status != 200 {
		t.Fatalf("GetIceServerConfig: %d %s", status, answer)
	}
	var out struct{ IceServerList []iceServer }
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.IceServerList) != 2 {
		t.Fatalf("IceServerList has %d servers; want 2", len(out.IceServerList))
	}
	return out.IceServerList
}

func TestGetIceServerConfig(t *testing.T) {
	clock := newFrozenClock()
	e := start(t, emulator.Config{Clock: clock.Now})
	arn := mustCreate(t, e, "ice")
	ep := endpoint(t, e, arn, kvs.Viewer, "HTTPS")
	servers := twoIceServers(t, e, ep, `{"ChannelARN":"`+arn+`","ClientId":"viewer-1","Service":"TURN"}`)
	// With the TURN servers (the default), two different servers, each
	// with the URIs it serves (UDP and TCP; TLS needs Config.TLS), in
	// KVS's username format, with the password the TURN server checks.
	uriRE := regexp.MustCompile(`^turn:127\.0\.0\.1:([0-9]+)\?transport=udp turn:127\.0\.0\.1:([0-9]+)\?transport=tcp$`)
	wantUser := strconv.FormatInt(clock.Now().Add(300*time.Second).Unix(), 10) + ":" + base64.StdEncoding.EncodeToString([]byte("v1:"+arn))
	for _, s := range servers {
		if s.Ttl != 300 || s.Username != wantUser || s.Password == "" || !uriRE.MatchString(strings.Join(s.Uris, " ")) {
			t.Errorf("server = %+v; want Ttl 300, Username %q, a password, Uris matching %s", s, wantUser, uriRE)
		}
	}
	if a, b := servers[0].Uris[0], servers[1].Uris[0]; a == b || a != "turn:"+e.TURNAddr()+"?transport=udp" {
		t.Errorf("servers' UDP URIs %q and %q; want two different servers, the first at TURNAddr %s", a, b, e.TURNAddr())
	}
	if n := e.Stats().Calls[emulator.OpGetIceServerConfig]; n != 1 {
		t.Errorf("GetIceServerConfig calls = %d; want 1", n)
	}

	missing := strings.Replace(arn, "/ice/", "/gone/", 1)
	cases := []struct {
		name, endpoint, body, code string
		status                     int
	}{
		{"unknown channel", ep, `{"ChannelARN":"` + missing + `"}`, "ResourceNotFoundException", 404},
		{"no channel", ep, `{}`, "InvalidArgumentException", 400},
		{"bad service", ep, `{"ChannelARN":"` + arn + `","Service":"STUN"}`, "InvalidArgumentException", 400},
		{"bad client id", ep, `{"ChannelARN":"` + arn + `","ClientId":"AWS_x"}`, "InvalidArgumentException", 400},
		{"regional endpoint, not the channel's", e.URL(), `{"ChannelARN":"` + arn + `"}`, "UnknownOperationException", 404},
	}
	for _, tc := range cases {
		status, h, body := getIceServerConfig(t, e, tc.endpoint, tc.body)
		if status != tc.status || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), tc.code+":") || !json.Valid(body) {
			t.Errorf("%s: %d %s %s; want %d %s", tc.name, status, h.Get("x-amzn-ErrorType"), body, tc.status, tc.code)
		}
	}
	resp, err := http.Post(ep+"/v1/get-ice-server-config", "application/json", strings.NewReader(`{"ChannelARN":"`+url.QueryEscape(arn)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("unsigned GetIceServerConfig: %d; want 403", resp.StatusCode)
	}
}
