package load

import (
	"context"
	"fmt"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// HandshakeConfig sizes a handshake run: Handshakes viewer connections,
// opened and closed (with a close frame) by Workers at a time, all on one
// channel.
type HandshakeConfig struct {
	Handshakes, Workers int
}

// HandshakeResult is what a handshake run measured.
type HandshakeResult struct {
	HandshakeConfig
	Wall      time.Duration
	User, Sys time.Duration // the emulator's CPU time over the run
}

// CPUPer is the emulator's CPU time per handshake, closing included.
func (r HandshakeResult) CPUPer() time.Duration {
	return (r.User + r.Sys) / time.Duration(max(r.Handshakes, 1))
}

// PerSec is the handshake rate.
func (r HandshakeResult) PerSec() float64 { return float64(r.Handshakes) / r.Wall.Seconds() }

// RunHandshake opens and closes the connections and measures the emulator's
// CPU time until it has seen every one of them end. URLs are presigned
// before the clock starts, so that signing does not compete with the
// emulator for the CPU.
func RunHandshake(ctx context.Context, e *Emulator, cfg HandshakeConfig) (HandshakeResult, error) {
	res := HandshakeResult{HandshakeConfig: cfg}
	arn, err := e.CreateChannel(ctx, fmt.Sprintf("handshake-%d", time.Now().UnixNano()))
	if err != nil {
		return res, err
	}
	s := e.signer()
	urls := make([]string, cfg.Handshakes)
	for i := range urls {
		if urls[i], err = s.url(ctx, arn, kvs.Viewer, fmt.Sprintf("hs-%d", i)); err != nil {
			return res, err
		}
	}
	m := e.meter()
	if err := handshakes(ctx, cfg, func(i int) string { return urls[i] }); err != nil {
		return res, err
	}
	if err := e.waitConnections(ctx, 0); err != nil {
		return res, err
	}
	res.Wall, res.User, res.Sys, err = m.stop()
	return res, err
}
