package signaling

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// skewLimit is how far the service's Date may be from the signing clock
// before any 403 is taken for clock skew: SigV4 allows five minutes.
const skewLimit = 4 * time.Minute

// skewKey is the context key of a *skewReport.
type skewKey struct{}

// A skewReport is how a URLSource made by Presigned tells the client, through
// the context of the call, which ClockSkew and clock it signed with, so that
// the client can teach the ClockSkew what a refusal's Date header says.
type skewReport struct {
	skew  *kvs.ClockSkew
	clock func() time.Time // nil: time.Now
}

// reportSkew tells the client dialling with ctx, if any, what p signed with.
func reportSkew(ctx context.Context, p *kvs.Presigner) {
	if r, ok := ctx.Value(skewKey{}).(*skewReport); ok {
		r.skew, r.clock = p.Skew, p.Clock
	}
}

// skewRefusal reports whether he refused a URL because the clock it was
// signed with is off: a 403 with a Date header, and a message that says so
// or a Date more than skewLimit from the signing clock, corrected by
// offset, at the time of the response.
func skewRefusal(he *HandshakeError, local time.Time, offset time.Duration) bool {
	if he.StatusCode != http.StatusForbidden || he.Date.IsZero() {
		return false
	}
	if strings.Contains(he.Message, "Signature expired") || strings.Contains(he.Message, "Signature not yet current") {
		return true
	}
	return (he.Date.Add(time.Second/2).Sub(local) - offset).Abs() > skewLimit
}

// learnSkew looks at a refused handshake, answered when the local clock
// read at (by the client's Clock), for clock skew. If the URL came from a source
// that reported a ClockSkew and the refusal teaches it a new offset, it
// returns the EventClockSkew to report, and the next URL will be signed
// with the corrected clock.
func (c *Client) learnSkew(he *HandshakeError, rep *skewReport, at time.Time) *Event {
	if rep.skew == nil {
		if skewRefusal(he, at, 0) {
			c.log.Warn("signaling: refused, and the service's clock differs from ours; sign with a kvs.Presigner with a Skew to correct it",
				"offset", he.Date.Add(time.Second/2).Sub(at).Round(time.Second), "err", he)
		}
		return nil
	}
	local := at
	if rep.clock != nil {
		local = rep.clock()
	}
	if !skewRefusal(he, local, rep.skew.Offset()) {
		return nil
	}
	off, changed := rep.skew.Observe(he.Date, local)
	if !changed {
		return nil
	}
	c.log.Warn("signaling: refused for clock skew; signing with the service's time from now on",
		"offset", off.Round(time.Millisecond), "err", he)
	return &Event{Type: EventClockSkew, Skew: off, Err: he}
}
