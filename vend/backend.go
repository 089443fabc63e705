package vend

import (
	"context"
	"errors"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// A Backend resolves a channel to what a client needs to connect to it.
// It must be safe for concurrent use, and should cache: the server calls
// it on every request. [NewResolverBackend] adapts the awskvs resolver.
type Backend interface {
	// Connection returns the channel's ARN, the WSS endpoint for role and
	// the ICE servers. channel is a channel name or ARN. With create, a
	// missing channel is created.
	//
	// Errors should wrap [ErrChannelNotFound] when the channel does not
	// exist, [ErrUnavailable] when AWS throttles, fails or times out and
	// nothing usable is cached, [ErrInvalid] when AWS refuses the input,
	// and [ErrForbidden] when AWS denies access to the channel; other
	// errors are answered with a bare 502. An error with a method
	// RetryAfter() time.Duration sets a 503's Retry-After.
	Connection(ctx context.Context, channel string, role kvs.Role, create bool) (Target, error)
	// Forget drops what the Backend cached about channel (a name or an
	// ARN). The server calls it, at most once per channel every few
	// seconds, when a client says that a URL it was given was refused:
	// the channel may have been deleted and created again.
	Forget(channel string)
}

// Target is what a [Backend] resolves a channel to.
type Target struct {
	ChannelARN string
	Region     string
	// Endpoint is the role's WSS endpoint (wss://, or ws:// for a local
	// emulator).
	Endpoint string
	// ICEServers are the channel's STUN and TURN servers. The server may
	// cache their JSON by the identity of the slice's backing array, so a
	// Backend must not change a list after returning it (return a new
	// slice instead).
	ICEServers []ICEServer
	// FromCache reports that no AWS call was made for this answer.
	FromCache bool
	// Stale reports that the answer came from an expired cache entry
	// because AWS failed.
	Stale bool
	// Expires, if set, is when the soonest-expiring part of the answer
	// (usually the ICE servers' credentials) should be resolved again. A
	// shared cache ([Fleet.Backend]) keeps the answer until then.
	Expires time.Time
}

// ICEServer is one entry of RTCPeerConnection's iceServers, as JSON.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Errors a [Backend] wraps so that the server can answer with the right
// status.
var (
	ErrChannelNotFound = errors.New("vend: channel not found")
	ErrUnavailable     = errors.New("vend: AWS is unavailable")
	ErrInvalid         = errors.New("vend: invalid request")
	ErrForbidden       = errors.New("vend: AWS denied access to the channel")
)

// retryAfterError is implemented by errors that know when to retry; a 503
// answer uses it for its Retry-After header.
type retryAfterError interface {
	error
	RetryAfter() time.Duration
}

// A Scoper returns credentials that may only connect to one channel in one
// role; [STSScoper] gets them from STS. It must be safe for concurrent use
// and should cache.
type Scoper interface {
	ScopedCredentials(ctx context.Context, channelARN string, role kvs.Role) (sigv4.Credentials, error)
}
