// Storage sessions: the WEBRTC endpoint and JoinStorageSession(AsViewer),
// each one SigV4-signed JSON POST to that endpoint (the SDK module for
// kinesisvideowebrtcstorage is not used).

package awskvs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvssign/kvssign/kvs"
)

// Paths of the storage session calls under the WEBRTC endpoint.
const (
	joinStoragePath       = "/joinStorageSession"
	joinStorageViewerPath = "/joinStorageSessionAsViewer"
)

// StorageEndpoint returns the channel's WEBRTC endpoint for role, where
// storage sessions are joined, from the cache while it is fresh. channel
// is a name or an ARN. KVS has one only for channels whose media storage
// is enabled; for others it answers InvalidArgumentException
// ([ErrInvalidArgument]).
func (r *Resolver) StorageEndpoint(ctx context.Context, channel string, role kvs.Role) (string, error) {
	r.init()
	const op = "GetSignalingChannelEndpoint"
	if err := checkRole(op, role); err != nil {
		return "", err
	}
	var ep string
	_, err := r.retryGone(channel, func() (Connection, error) {
		arn, _, err := r.channelARN(ctx, op, channel)
		if err != nil {
			return Connection{}, err
		}
		ep, _, err = r.storageEndpoint(ctx, arn, role)
		return Connection{ChannelARN: arn}, err
	})
	return ep, err
}

func (r *Resolver) storageEndpoint(ctx context.Context, arn string, role kvs.Role) (string, result, error) {
	return r.storage.get(ctx, endpointKey{arn, role}, r.now, r.maxStale(), func(ctx context.Context) (string, time.Time, error) {
		return r.fetchStorageEndpoint(ctx, arn, role)
	})
}

func (r *Resolver) fetchStorageEndpoint(ctx context.Context, arn string, role kvs.Role) (string, time.Time, error) {
	list, err := r.getEndpoints(ctx, arn, role, types.ChannelProtocolWebrtc)
	if err != nil {
		return "", time.Time{}, err
	}
	ep := ""
	for _, e := range list {
		if e.Protocol == types.ChannelProtocolWebrtc {
			ep = aws.ToString(e.ResourceEndpoint)
		}
	}
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return "", time.Time{}, &Error{Op: "GetSignalingChannelEndpoint", Resource: arn,
			Message: fmt.Sprintf("unexpected answer: the WEBRTC endpoint %q is not an http(s) URL", ep)}
	}
	return ep, r.now().Add(r.cacheTTL()), nil
}

type joinRequest struct {
	ChannelArn string `json:"channelArn"`
	ClientID   string `json:"clientId,omitempty"`
}

// JoinStorageSession asks KVS to start (or take over) the channel's
// storage session with this master: the storage session then sends the
// master an SDP offer over its signaling connection, which must already
// be open, and the master answers it. The media must have an H.264 video
// track and an Opus audio track. The newest master to join wins, and a
// session lasts at most an hour: see [StorageJoiner], which joins again
// when needed. channel is a name or an ARN.
//
// The call is not idempotent (each one makes an offer), so it is retried
// only when throttled.
func (r *Resolver) JoinStorageSession(ctx context.Context, channel string) error {
	return r.join(ctx, "JoinStorageSession", channel, kvs.Master, "")
}

// JoinStorageSessionAsViewer asks KVS to add this viewer, clientID, to the
// channel's storage session: the session sends the viewer an SDP offer
// over its signaling connection, which must already be open, with the
// master's media; the viewer may send Opus audio back. Up to 3 viewers
// join a session; a viewer joining again with the same client id replaces
// its earlier place.
func (r *Resolver) JoinStorageSessionAsViewer(ctx context.Context, channel, clientID string) error {
	if err := kvs.ValidateClientID(clientID); err != nil {
		return invalid("JoinStorageSessionAsViewer", channel, err)
	}
	return r.join(ctx, "JoinStorageSessionAsViewer", channel, kvs.Viewer, clientID)
}

func (r *Resolver) join(ctx context.Context, op, channel string, role kvs.Role, clientID string) error {
	r.init()
	path := joinStoragePath
	if role == kvs.Viewer {
		path = joinStorageViewerPath
	}
	_, err := r.retryGone(channel, func() (Connection, error) {
		arn, _, err := r.channelARN(ctx, op, channel)
		if err != nil {
			return Connection{}, err
		}
		ep, _, err := r.storageEndpoint(ctx, arn, role)
		if err != nil {
			return Connection{ChannelARN: arn}, err
		}
		a, _ := kvs.ParseChannelARN(arn)
		body, _ := json.Marshal(joinRequest{ChannelArn: arn, ClientID: clientID})
		err = r.signedPost(ctx, op, arn, mutating, strings.TrimSuffix(ep, "/")+path, a.Region, body, nil)
		return Connection{ChannelARN: arn}, err
	})
	return err
}
