package ingest

import (
	"context"
	"fmt"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/signaling"
)

// loop runs j and passes c's events to it and to handle until ctx ends
// (then it returns nil), j gives up (its error) or signaling ends. An
// offer reaches j through detach, which retires the current peer
// connection first, so that the old connection's end is not taken for the
// loss of the new one. j has stopped when loop returns: its OnJoin and the
// log it writes to belong to the caller again.
func loop(ctx context.Context, c *signaling.Client, j *awskvs.StorageJoiner, detach func(then func()), handle func(signaling.Event)) error {
	jctx, stop := context.WithCancel(ctx)
	joined := make(chan error, 1)
	go func() { joined <- j.Run(jctx) }()
	running := true
	defer func() {
		stop()
		if running {
			<-joined
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-joined:
			running = false
			if ctx.Err() != nil {
				return nil
			}
			return err
		case ev, ok := <-c.Events():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("ingest: signaling ended: %w", c.Err())
			}
			if ev.Type == signaling.EventOffer {
				detach(func() { j.Observe(ev) })
			} else {
				j.Observe(ev)
			}
			handle(ev)
		}
	}
}
