package diagnose_test

import (
	"fmt"
	"time"

	"github.com/kvssign/kvssign/diagnose"
)

// A viewer's handshake refused with 403 "Signature expired" by a service
// whose clock reads ten minutes later than this machine's.
func ExampleExplain() {
	local := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f := diagnose.Failure{
		Status:     403,
		Message:    "Signature expired: 20261123T100000Z is now earlier than 20261123T100500Z",
		ServerDate: local.Add(10 * time.Minute),
		LocalNow:   local,
	}
	f.FromURL("wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fcam%2F1&X-Amz-ClientId=viewer-1")
	d := diagnose.Explain(f)
	fmt.Println(d.Cause)
	fmt.Println(d.SuggestedClockOffset)
	// Output:
	// clock-skew
	// 10m0s
}
