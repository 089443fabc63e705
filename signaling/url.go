package signaling

import (
	"context"

	"github.com/kvssign/kvssign/kvs"
)

// A URLSource returns a freshly signed signaling URL. A Client calls it once
// for every connection attempt and never reuses a URL, so the source should
// sign anew each time with current credentials (a URL is valid for at most
// five minutes, and temporary credentials expire). It may also fetch the URL
// from a vending service. It must be safe for concurrent use and honour
// ctx, which carries the attempt's deadline.
type URLSource func(ctx context.Context) (string, error)

// Presigned returns a URLSource that signs a ConnectAsMaster or
// ConnectAsViewer URL with p for every connection. endpoint is the WSS
// endpoint GetSignalingChannelEndpoint returned for role; clientID is empty
// for a master. p's credentials provider is asked for credentials each time,
// so a provider that renews them (STS, an SDK credentials cache) keeps the
// client connected past their expiry.
//
// The source corrects for clock skew: if p.Skew is nil, it signs with a
// copy of p that has a ClockSkew of its own (p is not modified), otherwise
// with p.Skew. When the service refuses a URL because the device's clock
// is off, the client learns the service's time from the refusal's Date
// header into that ClockSkew, reports an EventClockSkew, and the next URL
// is signed with the corrected time.
func Presigned(p *kvs.Presigner, endpoint, channelARN string, role kvs.Role, clientID string) URLSource {
	q := p
	if p.Skew == nil {
		// A kvs.Presigner must not be copied after use: copy its settings.
		q = &kvs.Presigner{Credentials: p.Credentials, Region: p.Region, Expires: p.Expires, Clock: p.Clock,
			Skew: new(kvs.ClockSkew), Trace: p.Trace}
	}
	return func(ctx context.Context) (string, error) {
		s, err := q.Presign(ctx, endpoint, channelARN, role, clientID)
		if err != nil {
			return "", err
		}
		reportSkew(ctx, q)
		return s.URL, nil
	}
}
