package testmedia_test

import (
	"context"
	"fmt"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvssign/kvssign/internal/testmedia"
)

// A master streams the clip's video once; a TrackLocalStaticSample's WriteSample
// would take the place of the counting function.
func ExamplePlay() {
	video, err := testmedia.H264()
	if err != nil {
		fmt.Println(err)
		return
	}
	frames := 0
	err = testmedia.Play(context.Background(), video[:5], 1, func(media.Sample) error {
		frames++
		return nil
	})
	fmt.Println(frames, err)
	// Output: 5 <nil>
}
