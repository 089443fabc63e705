package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
)

func TestICE(t *testing.T) {
	v := newEnv(t, emulator.Config{ICETTL: 300 * time.Second})
	arn := v.channel(t, "cam")
	ep := "--endpoint-url=" + v.url

	r := cli(t, nil, "ice", "--channel", "cam", ep)
	var servers []awskvs.ICEServer
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &servers) != nil {
		t.Fatalf("ice: %v; want one line of JSON", r)
	}
	if len(servers) != 2 {
		t.Fatalf("ice: %d servers; want the emulator's 2 (and no STUN server in AWS)", len(servers))
	}
	for _, s := range servers {
		if len(s.URLs) == 0 || !strings.HasPrefix(s.URLs[0], "turn:127.0.0.1:") || s.Username == "" || s.Credential == "" {
			t.Errorf("server %+v: want loopback TURN with credentials", s)
		}
	}
	if !strings.HasPrefix(r.stdout, `[{"urls":["turn:127.0.0.1:`) || !strings.Contains(r.stdout, `"credential":"`) {
		t.Errorf("ice text output is not RTCPeerConnection iceServers JSON: %s", r.stdout)
	}

	r = cli(t, nil, "ice", "--channel-arn", arn, "--client-id", "viewer-1", "--output", "json", ep)
	var got struct {
		ChannelARN string             `json:"channelArn"`
		ICEServers []awskvs.ICEServer `json:"iceServers"`
		ExpiresAt  time.Time          `json:"expiresAt"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.ChannelARN != arn || len(got.ICEServers) != 2 {
		t.Fatalf("ice --output json: %v", r)
	}
	if d := time.Until(got.ExpiresAt); d < 290*time.Second || d > 301*time.Second {
		t.Errorf("expiresAt in %v; want about 300 s", d)
	}

	if r := cli(t, nil, "ice", "--channel", "cam", "--client-id", "AWS_x", ep); r.code != 2 || !strings.Contains(r.stderr, "must not start with AWS_") {
		t.Errorf("ice with a bad client id: %v", r)
	}
	if r := cli(t, nil, "ice", "--channel", "gone", ep); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("ice for an unknown channel: %v", r)
	}
}

func TestSTUNServer(t *testing.T) {
	cases := map[string]string{
		"https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com":      "stun:stun.kinesisvideo.us-west-2.amazonaws.com:443",
		"https://r-1234abcd.kinesisvideo.cn-north-1.amazonaws.com.cn":  "stun:stun.kinesisvideo.cn-north-1.amazonaws.com.cn:443",
		"http://127.0.0.1:4566/ice/r-1234abcd":                         "",
		"https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com.evil": "",
		"https://example.amazonaws.com":                                "",
	}
	for in, want := range cases {
		if got := stunServer(in); got != want {
			t.Errorf("stunServer(%q) = %q; want %q", in, got, want)
		}
	}
}
