// The channel API: create, describe, list, delete. Thin over the SDK, with
// the Resolver's deadlines, retries and typed errors, and its caches kept
// in step.

package awskvs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvssign/kvssign/kvs"
)

// A Channel describes a signaling channel.
type Channel struct {
	Name      string
	ARN       string
	Type      string // SINGLE_MASTER
	Status    string // CREATING, ACTIVE, UPDATING or DELETING
	CreatedAt time.Time
	// MessageTTL is how long the service holds a message for a peer that
	// is not connected.
	MessageTTL time.Duration
	// Version changes with every update of the channel.
	Version string
}

func channelFrom(ci *types.ChannelInfo) Channel {
	if ci == nil {
		return Channel{}
	}
	c := Channel{
		Name:    aws.ToString(ci.ChannelName),
		ARN:     aws.ToString(ci.ChannelARN),
		Type:    string(ci.ChannelType),
		Status:  string(ci.ChannelStatus),
		Version: aws.ToString(ci.Version),
	}
	if ci.CreationTime != nil {
		c.CreatedAt = *ci.CreationTime
	}
	if s := ci.SingleMasterConfiguration; s != nil && s.MessageTtlSeconds != nil {
		c.MessageTTL = time.Duration(*s.MessageTtlSeconds) * time.Second
	}
	return c
}

// Limits of a channel's MessageTtlSeconds.
const (
	MinMessageTTL = 5 * time.Second
	MaxMessageTTL = 120 * time.Second
)

// CreateChannel creates a SINGLE_MASTER signaling channel and returns its
// ARN. messageTTL is how long undelivered messages are held, 5 s to 120 s
// (zero means the service's default, 60 s); tags may be nil.
func (r *Resolver) CreateChannel(ctx context.Context, name string, messageTTL time.Duration, tags map[string]string) (string, error) {
	r.init()
	const op = "CreateSignalingChannel"
	if err := kvs.ValidateChannelName(name); err != nil {
		return "", invalid(op, "", err)
	}
	in := &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(name), ChannelType: types.ChannelTypeSingleMaster}
	if messageTTL != 0 {
		if messageTTL < MinMessageTTL || messageTTL > MaxMessageTTL || messageTTL%time.Second != 0 {
			return "", invalid(op, name, fmt.Errorf("message TTL %v: must be whole seconds from %v to %v", messageTTL, MinMessageTTL, MaxMessageTTL))
		}
		in.SingleMasterConfiguration = &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(int32(messageTTL / time.Second))}
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if k == "" || len(k) > 128 || len(tags[k]) > 256 {
			return "", invalid(op, name, fmt.Errorf("tag %q: the key must be 1 to 128 characters and the value at most 256", k))
		}
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	var out *kinesisvideo.CreateSignalingChannelOutput
	err := r.call(ctx, op, name, mutating, func(ctx context.Context) error {
		var err error
		out, err = r.API.CreateSignalingChannel(ctx, in)
		return err
	})
	if err != nil {
		return "", err
	}
	r.arns.forget(func(k string) bool { return k == name })
	return aws.ToString(out.ChannelARN), nil
}

// DescribeChannel describes a channel given by name or ARN. It always asks
// the service, and forgets what was cached about a channel it says does
// not exist.
func (r *Resolver) DescribeChannel(ctx context.Context, channel string) (Channel, error) {
	r.init()
	isARN, err := checkChannel("DescribeSignalingChannel", channel)
	if err != nil {
		return Channel{}, err
	}
	var c Channel
	if isARN {
		c, err = r.describeARN(ctx, channel)
	} else {
		c, err = r.describe(ctx, channel)
	}
	if errors.Is(err, ErrNotFound) {
		// What was cached about the channel is out of date.
		r.Invalidate(channel)
	}
	return c, err
}

func (r *Resolver) describe(ctx context.Context, name string) (Channel, error) {
	return r.describeIn(ctx, name, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String(name)}, "")
}

func (r *Resolver) describeARN(ctx context.Context, arn string) (Channel, error) {
	a, _ := kvs.ParseChannelARN(arn)
	return r.describeIn(ctx, arn, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}, a.Region)
}

func (r *Resolver) describeIn(ctx context.Context, resource string, in *kinesisvideo.DescribeSignalingChannelInput, region string) (Channel, error) {
	var out *kinesisvideo.DescribeSignalingChannelOutput
	err := r.call(ctx, "DescribeSignalingChannel", resource, idempotent, func(ctx context.Context) error {
		var err error
		out, err = r.API.DescribeSignalingChannel(ctx, in, inRegion(region))
		return err
	})
	if err != nil {
		return Channel{}, err
	}
	c := channelFrom(out.ChannelInfo)
	if _, err := kvs.ParseChannelARN(c.ARN); err != nil {
		return Channel{}, &Error{Op: "DescribeSignalingChannel", Resource: resource, Message: "unexpected answer: " + err.Error()}
	}
	return c, nil
}

// createAndWait creates a channel that was not found and waits, briefly,
// for it to become active. A concurrent creation by someone else is fine.
func (r *Resolver) createAndWait(ctx context.Context, name string) (Channel, error) {
	_, err := r.CreateChannel(ctx, name, 0, nil)
	var ae *Error
	if err != nil && !(errors.As(err, &ae) && ae.Code == "ResourceInUseException") {
		return Channel{}, err
	}
	sleep := r.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for n := 1; ; n++ {
		c, err := r.describe(ctx, name)
		if err != nil || c.Status == string(types.StatusActive) || c.Status == "" {
			return c, err
		}
		if n == 10 {
			return Channel{}, &Error{Op: "CreateSignalingChannel", Resource: name, Message: "the new channel is still " + c.Status}
		}
		rnd := r.rand
		if rnd == nil {
			rnd = rand.Float64
		}
		if err := sleep(ctx, backoff(n, rnd)); err != nil {
			return Channel{}, err
		}
	}
}

// maxListPages bounds ListChannels: 100 pages of up to 10,000 channels.
const maxListPages = 100

// ListChannels lists the channels whose names begin with prefix (all of
// them if prefix is empty), following the pages.
func (r *Resolver) ListChannels(ctx context.Context, prefix string) ([]Channel, error) {
	r.init()
	const op = "ListSignalingChannels"
	in := &kinesisvideo.ListSignalingChannelsInput{MaxResults: aws.Int32(10000)}
	if prefix != "" {
		if len(prefix) > 256 {
			return nil, invalid(op, "", fmt.Errorf("prefix %q…: must be at most 256 characters", prefix[:64]))
		}
		in.ChannelNameCondition = &types.ChannelNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String(prefix)}
	}
	var all []Channel
	for range maxListPages {
		var out *kinesisvideo.ListSignalingChannelsOutput
		err := r.call(ctx, op, prefix, idempotent, func(ctx context.Context) error {
			var err error
			out, err = r.API.ListSignalingChannels(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range out.ChannelInfoList {
			all = append(all, channelFrom(&out.ChannelInfoList[i]))
		}
		if aws.ToString(out.NextToken) == "" {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
	return nil, &Error{Op: op, Resource: prefix, Message: fmt.Sprintf("more than %d pages of channels", maxListPages)}
}

// DeleteChannel deletes a channel given by name or ARN, and forgets what
// the Resolver cached about it.
func (r *Resolver) DeleteChannel(ctx context.Context, channel string) error {
	r.init()
	const op = "DeleteSignalingChannel"
	isARN, err := checkChannel(op, channel)
	if err != nil {
		return err
	}
	arn := channel
	if !isARN {
		c, err := r.describe(ctx, channel)
		if err != nil {
			return err
		}
		arn = c.ARN
	}
	a, _ := kvs.ParseChannelARN(arn)
	err = r.call(ctx, op, arn, mutating, func(ctx context.Context) error {
		_, err := r.API.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}, inRegion(a.Region))
		return err
	})
	r.Invalidate(arn)
	return err
}
