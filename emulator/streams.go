// Kinesis video streams, as far as WebRTC ingestion needs them:
// CreateStream, DescribeStream, DeleteStream and ListStreams. The
// emulator keeps their descriptions only; it stores no media.

package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Stream operation names, as counted by [Emulator.Stats].
const (
	OpCreateStream   = "CreateStream"
	OpDescribeStream = "DescribeStream"
	OpDeleteStream   = "DeleteStream"
	OpListStreams    = "ListStreams"
)

// maxStreams bounds the streams of the emulated account, as
// Config.MaxChannels bounds its channels.
const maxStreams = 10000

// stream is one Kinesis video stream's description.
type stream struct {
	name      string
	arn       string
	created   time.Time
	retention int64 // DataRetentionInHours; 0 keeps no data
	mediaType string
	kmsKeyID  string
	device    string
	version   string
	tags      map[string]string
}

// streamSet holds the streams; guarded by Emulator.mu.
type streamSet struct {
	byName map[string]*stream
	byARN  map[string]*stream
}

func newStreamSet() streamSet {
	return streamSet{byName: map[string]*stream{}, byARN: map[string]*stream{}}
}

func (s streamSet) put(st *stream) {
	if old := s.byName[st.name]; old != nil {
		delete(s.byARN, old.arn)
	}
	s.byName[st.name] = st
	s.byARN[st.arn] = st
}

func (s streamSet) remove(name string) {
	if old := s.byName[name]; old != nil {
		delete(s.byARN, old.arn)
		delete(s.byName, name)
	}
}

// streamARN returns the ARN of a stream of this emulator.
func (e *Emulator) streamARN(name string, createdMs int64) string {
	return "arn:aws:kinesisvideo:" + e.cfg.Region + ":" + e.cfg.Account + ":stream/" + name + "/" + strconv.FormatInt(createdMs, 10)
}

// authorizeStream is authorize for DescribeStream and DeleteStream,
// whose refusal the service model names NotAuthorizedException rather
// than AccessDeniedException.
func (e *Emulator) authorizeStream(who *issued, op, resource string) *apiError {
	if who == nil || who.grant.allowsWith(actionPrefix+op, resource, who.vars) {
		return nil
	}
	return e.deny(who, "NotAuthorizedException", actionPrefix+op, resource)
}

const streamNotFound = "The requested stream is not found or not active."

// checkStreamARN validates a stream ARN argument.
func checkStreamARN(field string, arn *string) error {
	switch {
	case arn == nil:
		return invalidArg("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	case len(*arn) < 1 || len(*arn) > 1024:
		return invalidArg("%s", validationMessage(*arn, field, "Member must have length between 1 and 1024"))
	}
	parts := strings.Split(*arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesisvideo" || !strings.HasPrefix(parts[5], "stream/") {
		return invalidArg("%s", validationMessage(*arn, field,
			"Member must satisfy regular expression pattern: arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"))
	}
	return nil
}

// checkLength validates an optional string argument's length.
func checkLength(field string, v *string, max int) error {
	if v != nil && (len(*v) < 1 || len(*v) > max) {
		return invalidArg("%s", validationMessage(*v, field, fmt.Sprintf("Member must have length between 1 and %d", max)))
	}
	return nil
}

type createStreamInput struct {
	StreamName           *string
	DataRetentionInHours *int64
	MediaType            *string
	KmsKeyId             *string
	DeviceName           *string
	Tags                 map[string]string
}

type createStreamOutput struct{ StreamARN string }

// checkStreamTags validates CreateStream's tags, a map unlike the
// channels' list.
func checkStreamTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return errf(http.StatusBadRequest, "TagsPerResourceExceededLimitException",
			"The stream would have %d tags; a stream can have at most %d.", len(tags), maxTags)
	}
	for k, v := range tags {
		if err := checkTagKey("tags.key", &k); err != nil {
			return err
		}
		if len(v) > 256 {
			return invalidArg("%s", validationMessage(v, "tags.value", "Member must have length less than or equal to 256"))
		}
	}
	return nil
}

func (in createStreamInput) check() error {
	if err := checkName("streamName", in.StreamName); err != nil {
		return err
	}
	if r := in.DataRetentionInHours; r != nil && (*r < 0 || *r > 87600) {
		return invalidArg("%s", validationMessage(fmt.Sprint(*r), "dataRetentionInHours", "Member must have value between 0 and 87600"))
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"mediaType", in.MediaType, 128}, {"kmsKeyId", in.KmsKeyId, 2048}, {"deviceName", in.DeviceName, 128}} {
		if err := checkLength(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	return checkStreamTags(in.Tags)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// createStream creates a stream; who is nil for the Go API.
func (e *Emulator) createStream(in createStreamInput, who *issued) (*createStreamOutput, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	ms := e.now().UnixMilli()
	arn := e.streamARN(*in.StreamName, ms)
	if ae := e.authorize(who, OpCreateStream, arn); ae != nil {
		return nil, ae
	}
	var retention int64
	if in.DataRetentionInHours != nil {
		retention = *in.DataRetentionInHours
	}
	st := &stream{name: *in.StreamName, arn: arn, created: time.UnixMilli(ms), retention: retention,
		mediaType: deref(in.MediaType), kmsKeyID: deref(in.KmsKeyId), device: deref(in.DeviceName),
		version: randomAlnum(20, alnum), tags: in.Tags}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.streams.byName[st.name]; ok {
		return nil, errf(http.StatusBadRequest, "ResourceInUseException", "The stream %s already exists.", st.name)
	}
	if len(e.streams.byName) >= maxStreams {
		return nil, errf(http.StatusBadRequest, "AccountStreamLimitExceededException", "You have reached the maximum limit of %d streams for this account.", maxStreams)
	}
	e.streams.put(st)
	ps := st.persisted()
	if err := e.appendLocked(journalEntry{PutStream: &ps}); err != nil {
		e.streams.remove(st.name)
		return nil, err
	}
	e.log.Info("stream created", "name", st.name, "arn", st.arn)
	return &createStreamOutput{StreamARN: arn}, nil
}

type streamInfo struct {
	StreamName           string
	StreamARN            string
	Status               string
	CreationTime         float64 // epoch seconds, as the service sends it
	DataRetentionInHours int64
	MediaType            string `json:",omitempty"`
	KmsKeyId             string `json:",omitempty"`
	DeviceName           string `json:",omitempty"`
	Version              string
}

func (st *stream) info() streamInfo {
	return streamInfo{StreamName: st.name, StreamARN: st.arn, Status: "ACTIVE",
		CreationTime: float64(st.created.UnixMilli()) / 1000, DataRetentionInHours: st.retention,
		MediaType: st.mediaType, KmsKeyId: st.kmsKeyID, DeviceName: st.device, Version: st.version}
}

type describeStreamInput struct {
	StreamName *string
	StreamARN  *string
}

type describeStreamOutput struct{ StreamInfo streamInfo }

func (e *Emulator) describeStream(in describeStreamInput, who *issued) (*describeStreamOutput, error) {
	if in.StreamARN == nil && in.StreamName == nil {
		return nil, invalidArg("Either StreamName or StreamARN must be specified.")
	}
	resource := ""
	if in.StreamARN != nil {
		if err := checkStreamARN("streamARN", in.StreamARN); err != nil {
			return nil, err
		}
		resource = *in.StreamARN
	} else if err := checkName("streamName", in.StreamName); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var st *stream
	if in.StreamARN != nil {
		st = e.streams.byARN[*in.StreamARN]
		if st != nil && in.StreamName != nil && *in.StreamName != st.name {
			st = nil
		}
	} else {
		// As for channels: by name, the resource is the ARN if the stream
		// exists, the bare name if not.
		st = e.streams.byName[*in.StreamName]
		resource = *in.StreamName
		if st != nil {
			resource = st.arn
		}
	}
	if ae := e.authorizeStream(who, OpDescribeStream, resource); ae != nil {
		return nil, ae
	}
	if st == nil {
		return nil, notFound(streamNotFound)
	}
	return &describeStreamOutput{StreamInfo: st.info()}, nil
}

type deleteStreamInput struct {
	StreamARN      *string
	CurrentVersion *string
}

// deleteStream deletes a stream. A stream that a channel's media storage
// configuration names (ENABLED) is in use: KVS's behaviour there is not
// documented, and refusing keeps every ENABLED channel pointing at a
// stream that exists.
func (e *Emulator) deleteStream(in deleteStreamInput, who *issued) error {
	if err := checkStreamARN("streamARN", in.StreamARN); err != nil {
		return err
	}
	if in.CurrentVersion != nil {
		if err := checkVersion(in.CurrentVersion); err != nil {
			return err
		}
	}
	if ae := e.authorizeStream(who, OpDeleteStream, *in.StreamARN); ae != nil {
		return ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.streams.byARN[*in.StreamARN]
	if st == nil {
		return notFound(streamNotFound)
	}
	if in.CurrentVersion != nil && *in.CurrentVersion != st.version {
		return errf(http.StatusBadRequest, "VersionMismatchException", "The version %s does not match the stream's current version.", *in.CurrentVersion)
	}
	if ch := e.channelStoringLocked(st.arn); ch != nil {
		return errf(http.StatusBadRequest, "ResourceInUseException",
			"The stream %s is the media storage of channel %s; disable it there first.", st.name, ch.arn)
	}
	e.streams.remove(st.name)
	if err := e.appendLocked(journalEntry{DeleteStream: st.name}); err != nil {
		e.streams.put(st)
		return err
	}
	e.log.Info("stream deleted", "name", st.name, "arn", st.arn)
	return nil
}

type listStreamsInput struct {
	MaxResults          *int64
	NextToken           *string
	StreamNameCondition *struct {
		ComparisonOperator *string
		ComparisonValue    *string
	}
}

type listStreamsOutput struct {
	StreamInfoList []streamInfo
	NextToken      string `json:",omitempty"`
}

func (in listStreamsInput) check() (limit int64, prefix, after string, err error) {
	limit = 10000
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if limit < 1 || limit > 10000 {
			return 0, "", "", invalidArg("%s", validationMessage(fmt.Sprint(limit), "maxResults", "Member must have value between 1 and 10000"))
		}
	}
	if c := in.StreamNameCondition; c != nil {
		if c.ComparisonOperator != nil && *c.ComparisonOperator != "BEGINS_WITH" {
			return 0, "", "", invalidArg("%s", validationMessage(*c.ComparisonOperator, "streamNameCondition.comparisonOperator", "Member must satisfy enum value set: [BEGINS_WITH]"))
		}
		if c.ComparisonValue != nil {
			if err := checkName("streamNameCondition.comparisonValue", c.ComparisonValue); err != nil {
				return 0, "", "", err
			}
			prefix = *c.ComparisonValue
		}
	}
	if in.NextToken != nil {
		t := *in.NextToken
		raw, derr := base64.RawURLEncoding.DecodeString(t)
		if t == "" || len(t) > 512 || derr != nil || !strings.HasPrefix(string(raw), "after:") {
			return 0, "", "", invalidArg("%s", validationMessage(t, "nextToken", "Member must be a token returned by ListStreams"))
		}
		after = strings.TrimPrefix(string(raw), "after:")
	}
	return limit, prefix, after, nil
}

func (e *Emulator) listStreams(in listStreamsInput, who *issued) (*listStreamsOutput, error) {
	limit, prefix, after, err := in.check()
	if err != nil {
		return nil, err
	}
	if ae := e.authorize(who, OpListStreams, "*"); ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for name := range e.streams.byName {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := &listStreamsOutput{StreamInfoList: []streamInfo{}}
	for i, name := range names {
		if int64(i) == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte("after:" + names[i-1]))
			break
		}
		out.StreamInfoList = append(out.StreamInfoList, e.streams.byName[name].info())
	}
	return out, nil
}
