package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
)

// TestDataChannelThroughEmulator is the end-to-end test: two pion peers
// negotiate through the emulator's signaling (offer, answer, trickled
// candidates) and exchange messages over a data channel.
func TestDataChannelThroughEmulator(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), &out, Config{Timeout: 30 * time.Second, Pings: 3})
	t.Logf("timeline:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RTTs) != 3 {
		t.Errorf("%d round trips; want 3", len(res.RTTs))
	}
	for _, rtt := range res.RTTs {
		if rtt <= 0 || rtt > 5*time.Second {
			t.Errorf("round trip %v; want a small positive time", rtt)
		}
	}
	// An offer, an answer, and at least one candidate each way.
	if res.Relayed < 4 {
		t.Errorf("emulator relayed %d messages; want at least 4", res.Relayed)
	}
	text := out.String()
	for _, want := range []string{
		"signed a ConnectAsMaster URL", "signed a ConnectAsViewer URL", "X-Amz-Signature=REDACTED",
		"→ master   SDP_OFFER", "← viewer-demo SDP_OFFER", "→ viewer-demo SDP_ANSWER", "← master   SDP_ANSWER",
		"ICE_CANDIDATE host 127.0.0.1:", `data channel "kvssign-demo" open`,
		`received "echo: ping 3": round trip`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	// Every candidate either side gathered is on loopback.
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "ICE_CANDIDATE") && !strings.Contains(line, "ICE_CANDIDATE host 127.0.0.1:") {
			t.Errorf("candidate off loopback: %s", line)
		}
	}
	checkNoSecrets(t, text)
}

// checkNoSecrets fails if text holds a signature or a secret key.
func checkNoSecrets(t *testing.T, text string) {
	t.Helper()
	if strings.Contains(text, emulator.ExampleSecretAccessKey) {
		t.Error("output holds the secret access key")
	}
	if m := regexp.MustCompile(`(?i)X-Amz-Signature=[0-9a-f]{64}`).FindString(text); m != "" {
		t.Errorf("output holds a signature: %s", m)
	}
	if m := regexp.MustCompile(`Signature=[0-9a-f]{64}`).FindString(text); m != "" {
		t.Errorf("output holds a header signature: %s", m)
	}
}

func TestDescribeCandidate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"candidate:2574486823 1 udp 2130706431 127.0.0.1 54321 typ host", "host 127.0.0.1:54321 udp"},
		{"candidate:1 1 UDP 1 127.0.0.1 1 typ srflx raddr 0.0.0.0 rport 0", "srflx 127.0.0.1:1 udp"},
		{"", "end of candidates"},
		{"garbage", "garbage"},
	}
	for _, tc := range cases {
		if got := describeCandidate(tc.in); got != tc.want {
			t.Errorf("describeCandidate(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, &bytes.Buffer{}, Config{Timeout: time.Second})
	if err == nil {
		t.Fatal("Run with a cancelled context succeeded")
	}
}
