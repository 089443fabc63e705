package emulator_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvssign/kvssign/emulator"
)

// TestSlowBodyIsCutOff is a regression test: a client that sends headers
// and then trickles (or never sends) its body held its connection open
// for as long as it liked. Others must be served meanwhile, and the slow
// one cut off once the request timeout passes.
func TestSlowBodyIsCutOff(t *testing.T) {
	e := start(t, fastConfig())
	emulator.SetRequestTimeout(e, 200*time.Millisecond)
	host := strings.TrimPrefix(e.URL(), "http://")
	for _, path := range []string{"/describeSignalingChannel", "/", "/ice/r-12345678/v1/get-ice-server-config"} {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", path, host)

		for range 3 {
			if _, err := sdkClient(e, exampleCreds()).ListSignalingChannels(ctxT(t), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
				t.Fatalf("ListSignalingChannels beside a slow client: %v", err)
			}
		}
		// Far longer than the request timeout, so that only a missing
		// deadline fails here.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Errorf("POST %s with a body that never comes: the connection is still open: %v", path, err)
		}
	}
}
