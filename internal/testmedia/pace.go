package testmedia

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
)

// Play writes samples to write at the pace of their durations, starting over at
// the end, until ctx is done or write fails. loops limits how many times the
// samples are played; 0 plays them until ctx is done. Pacing follows the wall
// clock from the start so that a slow write does not stretch the timeline. Play
// returns nil when the loops are done or ctx ends, or write's error.
func Play(ctx context.Context, samples []media.Sample, loops int, write func(media.Sample) error) error {
	if len(samples) == 0 {
		return nil
	}
	start := time.Now()
	var at time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := 0; loops == 0 || n < loops; n++ {
		for _, s := range samples {
			timer.Reset(time.Until(start.Add(at)))
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
			if err := write(s); err != nil {
				return err
			}
			at += s.Duration
		}
	}
	return nil
}
