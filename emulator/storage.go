// Channels' media storage configuration (UpdateMediaStorageConfiguration,
// DescribeMediaStorageConfiguration): which stream a channel's WebRTC
// ingestion stores into. The storage peer is in storage_peer.go.

package emulator

import "net/http"

// Media storage operation names, as counted by [Emulator.Stats].
const (
	OpUpdateMediaStorageConfiguration   = "UpdateMediaStorageConfiguration"
	OpDescribeMediaStorageConfiguration = "DescribeMediaStorageConfiguration"
)

// maxStorageChannels is KVS's limit of channels with media storage
// enabled, per account.
const maxStorageChannels = 100

const (
	storageEnabled  = "ENABLED"
	storageDisabled = "DISABLED"
)

// mediaStorage is a channel's media storage configuration; the zero value
// is DISABLED with no stream.
type mediaStorage struct {
	Status    string `json:"status"`
	StreamARN string `json:"streamArn,omitempty"`
}

func (m mediaStorage) enabled() bool { return m.Status == storageEnabled }

type mediaStorageConfiguration struct {
	Status    string
	StreamARN string `json:",omitempty"`
}

type updateStorageInput struct {
	ChannelARN                *string
	MediaStorageConfiguration *struct {
		Status    *string
		StreamARN *string
	}
}

// channelStoringLocked returns the channel whose storage is ENABLED into
// the stream arn, or nil. The caller holds e.mu.
func (e *Emulator) channelStoringLocked(arn string) *channel {
	for _, ch := range e.channels {
		if ch.storage.enabled() && ch.storage.StreamARN == arn {
			return ch
		}
	}
	return nil
}

func (in updateStorageInput) check() (mediaStorage, error) {
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return mediaStorage{}, err
	}
	c := in.MediaStorageConfiguration
	if c == nil {
		return mediaStorage{}, invalidArg("1 validation error detected: Value null at 'mediaStorageConfiguration' failed to satisfy constraint: Member must not be null")
	}
	if c.Status == nil {
		return mediaStorage{}, invalidArg("1 validation error detected: Value null at 'mediaStorageConfiguration.status' failed to satisfy constraint: Member must not be null")
	}
	if *c.Status != storageEnabled && *c.Status != storageDisabled {
		return mediaStorage{}, invalidArg("%s", validationMessage(*c.Status, "mediaStorageConfiguration.status", "Member must satisfy enum value set: [ENABLED, DISABLED]"))
	}
	if c.StreamARN != nil {
		if err := checkStreamARN("mediaStorageConfiguration.streamARN", c.StreamARN); err != nil {
			return mediaStorage{}, err
		}
	} else if *c.Status == storageEnabled {
		return mediaStorage{}, invalidArg("MediaStorageConfiguration.StreamARN is required when Status is ENABLED.")
	}
	return mediaStorage{Status: *c.Status, StreamARN: deref(c.StreamARN)}, nil
}

// updateStorage sets a channel's media storage configuration. Enabling
// needs a stream that exists, keeps data (else NoDataRetentionException,
// as the model has it) and is no other channel's storage (else
// ResourceInUseException). Past maxStorageChannels it answers
// ClientLimitExceededException: the model offers no other limit error
// for this operation.
func (e *Emulator) updateStorage(in updateStorageInput, who *issued) error {
	want, err := in.check()
	if err != nil {
		return err
	}
	if ae := e.authorize(who, OpUpdateMediaStorageConfiguration, *in.ChannelARN); ae != nil {
		return ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := e.byARN[*in.ChannelARN]
	if ch == nil {
		return notFound(channelNotFound)
	}
	if ae := e.quotas.allowChannel(OpUpdateMediaStorageConfiguration, ch.arn, e.now()); ae != nil {
		return ae
	}
	if want.enabled() {
		if err := e.checkStorageLocked(ch, want.StreamARN); err != nil {
			return err
		}
	}
	old := ch.storage
	ch.storage = want
	if err := e.persistLocked(ch); err != nil {
		ch.storage = old
		return err
	}
	e.log.Info("channel media storage configured", "channel", ch.name, "status", want.Status, "stream", want.StreamARN)
	if !want.enabled() {
		e.endStorage(ch, "the channel's media storage was disabled")
	}
	return nil
}

// checkStorageLocked checks that ch may store into the stream arn. The
// caller holds e.mu.
func (e *Emulator) checkStorageLocked(ch *channel, arn string) error {
	st := e.streams.byARN[arn]
	if st == nil {
		return notFound(streamNotFound)
	}
	if st.retention == 0 {
		return errf(http.StatusBadRequest, "NoDataRetentionException",
			"The stream %s has DataRetentionInHours 0; media storage needs a stream that keeps data.", st.name)
	}
	if other := e.channelStoringLocked(arn); other != nil && other != ch {
		return errf(http.StatusBadRequest, "ResourceInUseException",
			"The stream %s is already the media storage of channel %s.", st.name, other.arn)
	}
	if ch.storage.enabled() {
		return nil
	}
	n := 0
	for _, c := range e.channels {
		if c.storage.enabled() {
			n++
		}
	}
	if n >= maxStorageChannels {
		return errf(http.StatusBadRequest, "ClientLimitExceededException",
			"The account already has %d channels with media storage enabled, the most it can have.", maxStorageChannels)
	}
	return nil
}

type describeStorageInput struct {
	ChannelName *string
	ChannelARN  *string
}

type describeStorageOutput struct {
	MediaStorageConfiguration mediaStorageConfiguration
}

func (e *Emulator) describeStorage(in describeStorageInput, who *issued) (*describeStorageOutput, error) {
	if in.ChannelARN == nil && in.ChannelName == nil {
		return nil, invalidArg("Either ChannelName or ChannelARN must be specified.")
	}
	resource := ""
	if in.ChannelARN != nil {
		if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
			return nil, err
		}
		resource = *in.ChannelARN
	} else if err := checkName("channelName", in.ChannelName); err != nil {
		return nil, err
	}
	e.mu.Lock()
	var ch *channel
	if in.ChannelARN != nil {
		ch = e.byARN[*in.ChannelARN]
		if ch != nil && in.ChannelName != nil && *in.ChannelName != ch.name {
			ch = nil
		}
	} else {
		ch = e.channels[*in.ChannelName]
		resource = *in.ChannelName
		if ch != nil {
			resource = ch.arn
		}
	}
	var cfg mediaStorageConfiguration
	if ch != nil {
		cfg = mediaStorageConfiguration{Status: ch.storage.Status, StreamARN: ch.storage.StreamARN}
		if cfg.Status == "" {
			cfg.Status = storageDisabled
		}
	}
	e.mu.Unlock()
	if ae := e.authorize(who, OpDescribeMediaStorageConfiguration, resource); ae != nil {
		return nil, ae
	}
	if ch == nil {
		return nil, notFound(channelNotFound)
	}
	if ae := e.quotas.allowChannel(OpDescribeMediaStorageConfiguration, ch.arn, e.now()); ae != nil {
		return nil, ae
	}
	return &describeStorageOutput{MediaStorageConfiguration: cfg}, nil
}
