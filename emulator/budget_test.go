package emulator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
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
