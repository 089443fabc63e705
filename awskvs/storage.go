// Streams and channels' media storage configuration: the control plane of
// WebRTC ingestion. Thin over the SDK, with the Resolver's deadlines,
// retries and typed errors.

package awskvs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvssign/kvssign/kvs"
)

// StorageAPI is the part of the control plane that manages streams and
// media storage. *kinesisvideo.Client implements it; a Resolver whose API
// does not fails these calls with an error saying so.
type StorageAPI interface {
	CreateStream(context.Context, *kinesisvideo.CreateStreamInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.CreateStreamOutput, error)
	DescribeStream(context.Context, *kinesisvideo.DescribeStreamInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.DescribeStreamOutput, error)
	DeleteStream(context.Context, *kinesisvideo.DeleteStreamInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.DeleteStreamOutput, error)
	ListStreams(context.Context, *kinesisvideo.ListStreamsInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.ListStreamsOutput, error)
	UpdateMediaStorageConfiguration(context.Context, *kinesisvideo.UpdateMediaStorageConfigurationInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.UpdateMediaStorageConfigurationOutput, error)
	DescribeMediaStorageConfiguration(context.Context, *kinesisvideo.DescribeMediaStorageConfigurationInput, ...func(*kinesisvideo.Options)) (*kinesisvideo.DescribeMediaStorageConfigurationOutput, error)
}

// A Stream describes a Kinesis video stream.
type Stream struct {
	Name   string
	ARN    string
	Status string // CREATING, ACTIVE, UPDATING or DELETING
	// MediaType is the stream's MIME type, e.g. video/h264, if set.
	MediaType  string
	KMSKeyID   string
	DeviceName string
	CreatedAt  time.Time
	// DataRetention is how long the stream keeps data; zero means it
	// keeps none, and a channel cannot store into it.
	DataRetention time.Duration
	// Version changes with every update of the stream.
	Version string
}

func streamFrom(si *types.StreamInfo) Stream {
	if si == nil {
		return Stream{}
	}
	s := Stream{
		Name: aws.ToString(si.StreamName), ARN: aws.ToString(si.StreamARN), Status: string(si.Status),
		MediaType: aws.ToString(si.MediaType), KMSKeyID: aws.ToString(si.KmsKeyId),
		DeviceName: aws.ToString(si.DeviceName), Version: aws.ToString(si.Version),
		DataRetention: time.Duration(aws.ToInt32(si.DataRetentionInHours)) * time.Hour,
	}
	if si.CreationTime != nil {
		s.CreatedAt = *si.CreationTime
	}
	return s
}

// StreamOptions are the settings of a new stream. The zero value keeps no
// data, which a channel's media storage refuses: set DataRetention.
type StreamOptions struct {
	// DataRetention is how long the stream keeps data, in whole hours up
	// to MaxDataRetention.
	DataRetention time.Duration
	// MediaType is the stream's MIME type (e.g. video/h264), optional.
	MediaType string
	// KMSKeyID encrypts the stream's data; if empty, KVS's own key.
	KMSKeyID string
	// DeviceName names the device that writes to the stream, optional.
	DeviceName string
	// Tags are up to 50 key/value pairs, optional.
	Tags map[string]string
}

// MaxDataRetention is the longest a stream keeps data: 87,600 hours.
const MaxDataRetention = 87600 * time.Hour

// streamARNRE is the form of a stream ARN, as the service model gives it.
var streamARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:[0-9]+:stream/[a-zA-Z0-9_.-]{1,256}/[0-9]+$`)

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)

// checkStream accepts a stream name or ARN and reports which it is.
func checkStream(op, stream string) (isARN bool, err error) {
	if strings.HasPrefix(stream, "arn:") {
		if !streamARNRE.MatchString(stream) {
			return true, invalid(op, "", fmt.Errorf("stream ARN %q: must look like arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION_MS", stream))
		}
		return true, nil
	}
	if !streamNameRE.MatchString(stream) {
		return false, invalid(op, "", fmt.Errorf("stream name %q: must be 1 to 256 characters of a-z, A-Z, 0-9, '_', '.' and '-'", stream))
	}
	return false, nil
}

// streamRegion returns the region a stream ARN names, or "".
func streamRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 || parts[0] != "arn" {
		return ""
	}
	return parts[3]
}

// storageAPI returns the Resolver's API as a StorageAPI.
func (r *Resolver) storageAPI(op, resource string) (StorageAPI, error) {
	api, ok := r.API.(StorageAPI)
	if !ok {
		return nil, &Error{Op: op, Resource: resource, Message: fmt.Sprintf("the resolver's API (%T) has no stream and media storage calls", r.API)}
	}
	return api, nil
}

// CreateStream creates a Kinesis video stream and returns its ARN.
func (r *Resolver) CreateStream(ctx context.Context, name string, o StreamOptions) (string, error) {
	r.init()
	const op = "CreateStream"
	if isARN, err := checkStream(op, name); err != nil || isARN {
		if err == nil {
			err = invalid(op, "", fmt.Errorf("stream name %q: give a name; the service makes the ARN", name))
		}
		return "", err
	}
	api, err := r.storageAPI(op, name)
	if err != nil {
		return "", err
	}
	if o.DataRetention < 0 || o.DataRetention > MaxDataRetention || o.DataRetention%time.Hour != 0 {
		return "", invalid(op, name, fmt.Errorf("data retention %v: must be whole hours from 0 to %d", o.DataRetention, int(MaxDataRetention/time.Hour)))
	}
	if len(o.Tags) > 50 {
		return "", invalid(op, name, fmt.Errorf("tags: %d given, at most 50 allowed", len(o.Tags)))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Tags)) {
		if k == "" || len(k) > 128 || len(o.Tags[k]) > 256 {
			return "", invalid(op, name, fmt.Errorf("tag %q: the key must be 1 to 128 characters and the value at most 256", k))
		}
	}
	in := &kinesisvideo.CreateStreamInput{StreamName: aws.String(name),
		DataRetentionInHours: aws.Int32(int32(o.DataRetention / time.Hour))}
	if o.MediaType != "" {
		in.MediaType = aws.String(o.MediaType)
	}
	if o.KMSKeyID != "" {
		in.KmsKeyId = aws.String(o.KMSKeyID)
	}
	if o.DeviceName != "" {
		in.DeviceName = aws.String(o.DeviceName)
	}
	if len(o.Tags) > 0 {
		in.Tags = maps.Clone(o.Tags)
	}
	var out *kinesisvideo.CreateStreamOutput
	err = r.call(ctx, op, name, mutating, func(ctx context.Context) error {
		var err error
		out, err = api.CreateStream(ctx, in)
		return err
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.StreamARN), nil
}

// DescribeStream describes a stream given by name or ARN.
func (r *Resolver) DescribeStream(ctx context.Context, stream string) (Stream, error) {
	r.init()
	const op = "DescribeStream"
	isARN, err := checkStream(op, stream)
	if err != nil {
		return Stream{}, err
	}
	api, err := r.storageAPI(op, stream)
	if err != nil {
		return Stream{}, err
	}
	in := &kinesisvideo.DescribeStreamInput{StreamName: aws.String(stream)}
	region := ""
	if isARN {
		in = &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(stream)}
		region = streamRegion(stream)
	}
	var out *kinesisvideo.DescribeStreamOutput
	err = r.call(ctx, op, stream, idempotent, func(ctx context.Context) error {
		var err error
		out, err = api.DescribeStream(ctx, in, inRegion(region))
		return err
	})
	if err != nil {
		return Stream{}, err
	}
	s := streamFrom(out.StreamInfo)
	if !streamARNRE.MatchString(s.ARN) {
		return Stream{}, &Error{Op: op, Resource: stream, Message: fmt.Sprintf("unexpected answer: the stream ARN %q is not one", s.ARN)}
	}
	return s, nil
}

// streamARN returns the ARN of a stream given by name or ARN.
func (r *Resolver) streamARN(ctx context.Context, op, stream string) (string, error) {
	isARN, err := checkStream(op, stream)
	if err != nil || isARN {
		return stream, err
	}
	s, err := r.DescribeStream(ctx, stream)
	return s.ARN, err
}

// ListStreams lists the streams whose names begin with prefix (all of them
// if prefix is empty), following the pages.
func (r *Resolver) ListStreams(ctx context.Context, prefix string) ([]Stream, error) {
	r.init()
	const op = "ListStreams"
	api, err := r.storageAPI(op, prefix)
	if err != nil {
		return nil, err
	}
	in := &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(10000)}
	if prefix != "" {
		if !streamNameRE.MatchString(prefix) {
			return nil, invalid(op, "", fmt.Errorf("prefix %q: must be 1 to 256 characters of a-z, A-Z, 0-9, '_', '.' and '-'", prefix))
		}
		in.StreamNameCondition = &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String(prefix)}
	}
	var all []Stream
	for range maxListPages {
		var out *kinesisvideo.ListStreamsOutput
		err := r.call(ctx, op, prefix, idempotent, func(ctx context.Context) error {
			var err error
			out, err = api.ListStreams(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range out.StreamInfoList {
			all = append(all, streamFrom(&out.StreamInfoList[i]))
		}
		if aws.ToString(out.NextToken) == "" {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
	return nil, &Error{Op: op, Resource: prefix, Message: fmt.Sprintf("more than %d pages of streams", maxListPages)}
}

// DeleteStream deletes a stream given by name or ARN. KVS deletes a
// stream's data with it, and refuses to while a channel stores into it.
func (r *Resolver) DeleteStream(ctx context.Context, stream string) error {
	r.init()
	const op = "DeleteStream"
	arn, err := r.streamARN(ctx, op, stream)
	if err != nil {
		return err
	}
	api, err := r.storageAPI(op, arn)
	if err != nil {
		return err
	}
	return r.call(ctx, op, arn, mutating, func(ctx context.Context) error {
		_, err := api.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn)}, inRegion(streamRegion(arn)))
		return err
	})
}

// MediaStorage is a channel's media storage configuration.
type MediaStorage struct {
	// Enabled says whether the channel's WebRTC sessions are stored.
	Enabled bool
	// StreamARN is the stream they are stored into, if any.
	StreamARN string
}

// UpdateMediaStorage turns a channel's media storage on, into stream (a
// name or an ARN), or off (stream is then optional). channel is a name or
// an ARN. While storage is on, masters join a storage session
// ([Resolver.JoinStorageSession]) and viewers do not connect to them
// peer-to-peer.
func (r *Resolver) UpdateMediaStorage(ctx context.Context, channel string, enabled bool, stream string) error {
	r.init()
	const op = "UpdateMediaStorageConfiguration"
	if _, err := checkChannel(op, channel); err != nil {
		return err
	}
	if enabled && stream == "" {
		return invalid(op, channel, errors.New("stream is empty: enabling media storage needs the stream to store into"))
	}
	conf := &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusDisabled}
	if enabled {
		conf.Status = types.MediaStorageConfigurationStatusEnabled
	}
	if stream != "" {
		arn, err := r.streamARN(ctx, op, stream)
		if err != nil {
			return err
		}
		conf.StreamARN = aws.String(arn)
	}
	api, err := r.storageAPI(op, channel)
	if err != nil {
		return err
	}
	var used string
	_, err = r.retryGone(channel, func() (Connection, error) {
		arn, _, err := r.channelARN(ctx, op, channel)
		if err != nil {
			return Connection{}, err
		}
		used = arn
		a, _ := kvs.ParseChannelARN(arn)
		in := &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(arn), MediaStorageConfiguration: conf}
		return Connection{ChannelARN: arn}, r.call(ctx, op, arn, mutating, func(ctx context.Context) error {
			_, err := api.UpdateMediaStorageConfiguration(ctx, in, inRegion(a.Region))
			return err
		})
	})
	if used != "" {
		// Whether the channel has a WEBRTC endpoint follows the change,
		// even one that failed half-way.
		r.storage.forget(func(k endpointKey) bool { return k.arn == used })
	}
	return err
}

// DescribeMediaStorage returns a channel's media storage configuration.
// channel is a name or an ARN; it is asked about by what it is, with no
// lookup of the ARN.
func (r *Resolver) DescribeMediaStorage(ctx context.Context, channel string) (MediaStorage, error) {
	r.init()
	const op = "DescribeMediaStorageConfiguration"
	isARN, err := checkChannel(op, channel)
	if err != nil {
		return MediaStorage{}, err
	}
	api, err := r.storageAPI(op, channel)
	if err != nil {
		return MediaStorage{}, err
	}
	in := &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelName: aws.String(channel)}
	region := ""
	if isARN {
		in = &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(channel)}
		a, _ := kvs.ParseChannelARN(channel)
		region = a.Region
	}
	var out *kinesisvideo.DescribeMediaStorageConfigurationOutput
	err = r.call(ctx, op, channel, idempotent, func(ctx context.Context) error {
		var err error
		out, err = api.DescribeMediaStorageConfiguration(ctx, in, inRegion(region))
		return err
	})
	if err != nil {
		return MediaStorage{}, err
	}
	if out.MediaStorageConfiguration == nil {
		return MediaStorage{}, nil
	}
	return MediaStorage{
		Enabled:   out.MediaStorageConfiguration.Status == types.MediaStorageConfigurationStatusEnabled,
		StreamARN: aws.ToString(out.MediaStorageConfiguration.StreamARN),
	}, nil
}
