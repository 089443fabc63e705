package emulator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
)

// TestStalledReaderIsDropped checks the write timeout: a viewer that stops
// reading is dropped once writes to it make no progress for WriteTimeout,
// and the master that sends to it is not held up for good.
func TestStalledReaderIsDropped(t *testing.T) {
	cfg := fastConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	e := start(t, cfg)
	arn := mustCreate(t, e, "stall")
	m := connectMaster(t, e, arn)
	connectViewer(t, e, arn, "sleepy") // never read
	frame := []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"sleepy","messagePayload":"` +
		strings.Repeat("A", kvs.MaxPayloadSize) + `"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		// Enough to fill the loopback socket's buffers many times over.
		for range 4000 {
			if err := m.ws.Write(ctx, websocket.MessageText, frame); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	waitFor(t, "the stalled viewer to be dropped", func() bool { return e.Stats().Connections.Viewer == 0 })
	if err := <-sent; err != nil {
		t.Fatalf("the master's writes were held up: %v", err)
	}
}
