// The kinesisvideo control plane: REST-JSON, POST /<operation>.

package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// Operation names, as counted by [Emulator.Stats] and named in faults.
const (
	OpCreateSignalingChannel      = "CreateSignalingChannel"
	OpDescribeSignalingChannel    = "DescribeSignalingChannel"
	OpGetSignalingChannelEndpoint = "GetSignalingChannelEndpoint"
	OpListSignalingChannels       = "ListSignalingChannels"
	OpDeleteSignalingChannel      = "DeleteSignalingChannel"
	OpGetIceServerConfig          = "GetIceServerConfig"
	OpAssumeRole                  = "AssumeRole"
	OpGetSessionToken             = "GetSessionToken"
	OpGetCallerIdentity           = "GetCallerIdentity"
	OpConnectAsMaster             = "ConnectAsMaster"
	OpConnectAsViewer             = "ConnectAsViewer"
	OpUpdateSignalingChannel      = "UpdateSignalingChannel"
	OpTagResource                 = "TagResource"
	OpUntagResource               = "UntagResource"
	OpListTagsForResource         = "ListTagsForResource"
	OpSendAlexaOfferToMaster      = "SendAlexaOfferToMaster"
)

// operations lists every operation the emulator serves.
var operations = []string{
	OpCreateSignalingChannel, OpDescribeSignalingChannel, OpGetSignalingChannelEndpoint,
	OpListSignalingChannels, OpDeleteSignalingChannel, OpGetIceServerConfig,
	OpAssumeRole, OpGetSessionToken, OpGetCallerIdentity, OpConnectAsMaster, OpConnectAsViewer,
	OpUpdateSignalingChannel, OpTagResource, OpUntagResource, OpListTagsForResource, OpSendAlexaOfferToMaster,
	OpCreateStream, OpDescribeStream, OpDeleteStream, OpListStreams,
	OpUpdateMediaStorageConfiguration, OpDescribeMediaStorageConfiguration,
	OpJoinStorageSession, OpJoinStorageSessionAsViewer,
}

var controlOps = map[string]string{
	"/createSignalingChannel":      OpCreateSignalingChannel,
	"/describeSignalingChannel":    OpDescribeSignalingChannel,
	"/getSignalingChannelEndpoint": OpGetSignalingChannelEndpoint,
	"/listSignalingChannels":       OpListSignalingChannels,
	"/deleteSignalingChannel":      OpDeleteSignalingChannel,
	// The tag operations' paths are capitalised, unlike the others: so
	// says the service model.
	"/updateSignalingChannel": OpUpdateSignalingChannel,
	"/TagResource":            OpTagResource,
	"/UntagResource":          OpUntagResource,
	"/ListTagsForResource":    OpListTagsForResource,

	"/createStream":                      OpCreateStream,
	"/describeStream":                    OpDescribeStream,
	"/deleteStream":                      OpDeleteStream,
	"/listStreams":                       OpListStreams,
	"/updateMediaStorageConfiguration":   OpUpdateMediaStorageConfiguration,
	"/describeMediaStorageConfiguration": OpDescribeMediaStorageConfiguration,
}

const maxBody = 1 << 20

// readSigned reads a header-signed JSON request's body and verifies its
// signature for kinesisvideo.
func (e *Emulator) readSigned(r *http.Request) ([]byte, *sigv4.Result, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, nil, errf(http.StatusBadRequest, "SerializationException", "could not read the request body")
	}
	if len(body) > maxBody {
		return nil, nil, errf(http.StatusRequestEntityTooLarge, "SerializationException", "the request body is larger than %d bytes", maxBody)
	}
	sum := sha256.Sum256(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	res, err := e.verifier.VerifyRequest(r.Context(), r, hex.EncodeToString(sum[:]))
	if err != nil {
		if ae := authError(err); ae != nil {
			return nil, nil, ae
		}
		return nil, nil, err
	}
	return body, res, nil
}

// decodeJSON decodes a request body into v, reporting type errors by field.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errf(http.StatusBadRequest, "SerializationException", "field %s: expected %s, got JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return errf(http.StatusBadRequest, "SerializationException", "the request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return errf(http.StatusBadRequest, "SerializationException", "the request body has data after the JSON object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int64", "int", "int32":
		return "an integer"
	case "slice":
		return "a list"
	case "struct", "ptr", "map":
		return "an object"
	}
	return k
}

func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	e.setCommonHeaders(w)
	if strings.HasPrefix(r.URL.Path, webrtcPrefix) {
		e.serveStorage(w, r)
		return
	}
	op, ok := controlOps[r.URL.Path]
	if !ok || r.Method != http.MethodPost {
		e.writeJSONError(w, errf(http.StatusNotFound, "UnknownOperationException", "no operation at %s %s", r.Method, clipValue(r.URL.Path)))
		return
	}
	e.stats.call(op)
	resp, err := e.control(r, op)
	if err != nil {
		e.stats.fail(op)
		e.log.Debug("control plane error", "op", op, "err", err)
		e.writeJSONError(w, err)
		return
	}
	e.writeJSON(w, resp)
}

func (e *Emulator) control(r *http.Request, op string) (any, error) {
	body, res, err := e.readSigned(r)
	if err != nil {
		return nil, err
	}
	if ae := e.faults.inject(op, false); ae != nil {
		e.stats.faults.Add(1)
		return nil, ae
	}
	who, ae := e.caller(res.AccessKeyID)
	if ae != nil {
		return nil, ae
	}
	if ae := e.quotas.allowAccount(op, e.now()); ae != nil {
		return nil, ae
	}
	// Each operation authorises once its input is valid (so that the
	// resource is known) and before it looks anything up, so a caller
	// without the permission cannot learn whether a channel of a given
	// ARN exists. (DescribeSignalingChannel by name is the exception: its
	// resource is the ARN when the channel exists, the name when not.)
	switch op {
	case OpCreateSignalingChannel:
		var in createInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return e.createChannel(in, who)
	case OpDescribeSignalingChannel:
		var in describeInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return e.describeChannel(in, who)
	case OpGetSignalingChannelEndpoint:
		var in endpointInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return e.channelEndpoint(r, in, who)
	case OpListSignalingChannels:
		var in listInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return e.listChannels(in, who)
	case OpDeleteSignalingChannel:
		var in deleteInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return struct{}{}, e.deleteChannel(in, who)
	}
	return e.controlMore(body, op, who)
}

// controlMore routes the operations that change a channel in place.
func (e *Emulator) controlMore(body []byte, op string, who *issued) (any, error) {
	switch op {
	case OpUpdateSignalingChannel:
		var in updateInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return struct{}{}, e.updateChannel(in, who)
	case OpTagResource:
		var in tagResourceInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return struct{}{}, e.tagResource(in, who)
	case OpUntagResource:
		var in untagResourceInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return struct{}{}, e.untagResource(in, who)
	case OpListTagsForResource:
		var in listTagsInput
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		return e.listTags(in, who)
	}
	return e.controlStreams(body, op, who)
}

// controlStreams routes the stream and media storage operations.
func (e *Emulator) controlStreams(body []byte, op string, who *issued) (any, error) {
	var in any
	switch op {
	case OpCreateStream:
		in = &createStreamInput{}
	case OpDescribeStream:
		in = &describeStreamInput{}
	case OpDeleteStream:
		in = &deleteStreamInput{}
	case OpListStreams:
		in = &listStreamsInput{}
	case OpUpdateMediaStorageConfiguration:
		in = &updateStorageInput{}
	case OpDescribeMediaStorageConfiguration:
		in = &describeStorageInput{}
	default:
		return nil, errors.New("unrouted operation " + op)
	}
	if err := decodeJSON(body, in); err != nil {
		return nil, err
	}
	switch in := in.(type) {
	case *createStreamInput:
		return e.createStream(*in, who)
	case *describeStreamInput:
		return e.describeStream(*in, who)
	case *deleteStreamInput:
		return struct{}{}, e.deleteStream(*in, who)
	case *listStreamsInput:
		return e.listStreams(*in, who)
	case *updateStorageInput:
		return struct{}{}, e.updateStorage(*in, who)
	default:
		return e.describeStorage(*in.(*describeStorageInput), who)
	}
}

func clipValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

type createInput struct {
	ChannelName               *string
	ChannelType               *string
	SingleMasterConfiguration *struct{ MessageTtlSeconds *int64 }
	Tags                      []tagInput
}

type tagInput struct{ Key, Value *string }

type createOutput struct{ ChannelARN string }

// checkName validates a channel name the way the service words it.
func checkName(field string, name *string) error {
	switch {
	case name == nil:
		return invalidArg("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	case *name == "":
		return invalidArg("%s", validationMessage(*name, field, "Member must have length greater than or equal to 1"))
	case len(*name) > 256:
		return invalidArg("%s", validationMessage(*name, field, "Member must have length less than or equal to 256"))
	case kvs.ValidateChannelName(*name) != nil:
		return invalidArg("%s", validationMessage(*name, field, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"))
	}
	return nil
}

// checkARN validates a channel ARN argument.
func checkARN(field string, arn *string) (kvs.ChannelARN, error) {
	switch {
	case arn == nil:
		return kvs.ChannelARN{}, invalidArg("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	case *arn == "":
		return kvs.ChannelARN{}, invalidArg("%s", validationMessage(*arn, field, "Member must have length greater than or equal to 1"))
	case len(*arn) > kvs.MaxARNLength:
		return kvs.ChannelARN{}, invalidArg("%s", validationMessage(*arn, field, "Member must have length less than or equal to 1024"))
	}
	a, err := kvs.ParseChannelARN(*arn)
	if err != nil {
		return a, invalidArg("%s", validationMessage(*arn, field,
			"Member must satisfy regular expression pattern: arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"))
	}
	return a, nil
}

func validTagKey(k string) bool {
	for _, r := range k {
		if !(unicode.IsLetter(r) || unicode.In(r, unicode.Z) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)) {
			return false
		}
	}
	return true
}

// createChannel creates a channel; who is nil for the Go API and the admin
// endpoint, which are not authorised.
func (e *Emulator) createChannel(in createInput, who *issued) (*createOutput, error) {
	if err := checkName("channelName", in.ChannelName); err != nil {
		return nil, err
	}
	if in.ChannelType != nil {
		switch *in.ChannelType {
		case "SINGLE_MASTER":
		case "FULL_MESH":
			return nil, invalidArg("ChannelType FULL_MESH is not supported; use SINGLE_MASTER")
		default:
			return nil, invalidArg("%s", validationMessage(*in.ChannelType, "channelType", "Member must satisfy enum value set: [SINGLE_MASTER, FULL_MESH]"))
		}
	}
	ttl := int64(60)
	if c := in.SingleMasterConfiguration; c != nil && c.MessageTtlSeconds != nil {
		ttl = *c.MessageTtlSeconds
		if err := checkTTL(ttl); err != nil {
			return nil, err
		}
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	// The resource is the ARN the channel will get.
	ms := e.now().UnixMilli()
	arn := e.channelARN(*in.ChannelName, ms)
	if ae := e.authorize(who, OpCreateSignalingChannel, arn); ae != nil {
		return nil, ae
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.channels[*in.ChannelName]; ok {
		return nil, errf(http.StatusBadRequest, "ResourceInUseException", "The signaling channel %s already exists.", *in.ChannelName)
	}
	if len(e.channels) >= e.cfg.MaxChannels {
		return nil, errf(http.StatusBadRequest, "AccountChannelLimitExceededException", "You have reached the maximum limit of %d signaling channels for this account.", e.cfg.MaxChannels)
	}
	ch := newChannel(*in.ChannelName, arn, time.UnixMilli(ms), time.Duration(ttl)*time.Second,
		randomAlnum(20, alnum), tags, randomAlnum(8, hexDigits))
	e.channels[ch.name] = ch
	e.byARN[ch.arn] = ch
	if err := e.persistLocked(ch); err != nil {
		delete(e.channels, ch.name)
		delete(e.byARN, ch.arn)
		return nil, err
	}
	e.log.Info("channel created", "name", ch.name, "arn", ch.arn)
	return &createOutput{ChannelARN: ch.arn}, nil
}

type describeInput struct {
	ChannelName *string
	ChannelARN  *string
}

type singleMasterConfiguration struct {
	MessageTtlSeconds int64
}

type channelInfo struct {
	ChannelARN                string
	ChannelName               string
	ChannelStatus             string
	ChannelType               string
	CreationTime              float64 // epoch seconds, as the service sends it
	SingleMasterConfiguration singleMasterConfiguration
	Version                   string
}

func (ch *channel) info() channelInfo {
	return channelInfo{
		ChannelARN: ch.arn, ChannelName: ch.name, ChannelStatus: "ACTIVE", ChannelType: "SINGLE_MASTER",
		CreationTime:              float64(ch.created.UnixMilli()) / 1000,
		SingleMasterConfiguration: singleMasterConfiguration{MessageTtlSeconds: int64(ch.messageTTL / time.Second)},
		Version:                   ch.version,
	}
}

type describeOutput struct{ ChannelInfo channelInfo }

const channelNotFound = "The requested channel is not found or not active."

// channelByARN returns the channel with this ARN, or a 404.
func (e *Emulator) channelByARN(arn string) (*channel, error) {
	e.mu.Lock()
	ch := e.byARN[arn]
	e.mu.Unlock()
	if ch == nil {
		return nil, notFound(channelNotFound)
	}
	return ch, nil
}

func (e *Emulator) describeChannel(in describeInput, who *issued) (*describeOutput, error) {
	if in.ChannelARN == nil && in.ChannelName == nil {
		return nil, invalidArg("Either ChannelName or ChannelARN must be specified.")
	}
	var ch *channel
	if in.ChannelARN != nil {
		if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
			return nil, err
		}
		if ae := e.authorize(who, OpDescribeSignalingChannel, *in.ChannelARN); ae != nil {
			return nil, ae
		}
		var err error
		if ch, err = e.channelByARN(*in.ChannelARN); err != nil {
			return nil, err
		}
		if in.ChannelName != nil && *in.ChannelName != ch.name {
			return nil, notFound(channelNotFound)
		}
	} else {
		if err := checkName("channelName", in.ChannelName); err != nil {
			return nil, err
		}
		e.mu.Lock()
		ch = e.channels[*in.ChannelName]
		e.mu.Unlock()
		// By name, the resource is the channel's ARN; for a channel that
		// does not exist there is no ARN, and KVS names the bare name
		// instead, which only a Resource of "*" (or a pattern that
		// matches the name) allows.
		resource := *in.ChannelName
		if ch != nil {
			resource = ch.arn
		}
		if ae := e.authorize(who, OpDescribeSignalingChannel, resource); ae != nil {
			return nil, ae
		}
		if ch == nil {
			return nil, notFound(channelNotFound)
		}
	}
	if ae := e.quotas.allowChannel(OpDescribeSignalingChannel, ch.arn, e.now()); ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &describeOutput{ChannelInfo: ch.info()}, nil
}

type endpointInput struct {
	ChannelARN                               *string
	SingleMasterChannelEndpointConfiguration *struct {
		Protocols []string
		Role      *string
	}
}

type resourceEndpoint struct {
	Protocol         string
	ResourceEndpoint string
}

type endpointOutput struct{ ResourceEndpointList []resourceEndpoint }

func (e *Emulator) channelEndpoint(r *http.Request, in endpointInput, who *issued) (*endpointOutput, error) {
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	protocols := []string{"WSS", "HTTPS"}
	role := kvs.Master
	if c := in.SingleMasterChannelEndpointConfiguration; c != nil {
		if c.Protocols != nil {
			if len(c.Protocols) < 1 || len(c.Protocols) > 5 {
				return nil, invalidArg("%s", validationMessage(fmt.Sprint(c.Protocols), "singleMasterChannelEndpointConfiguration.protocols", "Member must have length between 1 and 5"))
			}
			protocols = nil
			for _, p := range c.Protocols {
				switch p {
				case "WSS", "HTTPS", "WEBRTC":
				default:
					return nil, invalidArg("%s", validationMessage(p, "singleMasterChannelEndpointConfiguration.protocols.member", "Member must satisfy enum value set: [WSS, HTTPS, WEBRTC]"))
				}
				dup := false
				for _, q := range protocols {
					dup = dup || q == p
				}
				if !dup {
					protocols = append(protocols, p)
				}
			}
		}
		if c.Role != nil {
			switch *c.Role {
			case "MASTER":
			case "VIEWER":
				role = kvs.Viewer
			default:
				return nil, invalidArg("%s", validationMessage(*c.Role, "singleMasterChannelEndpointConfiguration.role", "Member must satisfy enum value set: [MASTER, VIEWER]"))
			}
		}
	}
	if ae := e.authorize(who, OpGetSignalingChannelEndpoint, *in.ChannelARN); ae != nil {
		return nil, ae
	}
	ch, err := e.channelByARN(*in.ChannelARN)
	if err != nil {
		return nil, err
	}
	if slices.Contains(protocols, "WEBRTC") {
		e.mu.Lock()
		enabled := ch.storage.enabled()
		e.mu.Unlock()
		if !enabled {
			return nil, invalidArg("Protocol WEBRTC needs the channel's media storage ENABLED (UpdateMediaStorageConfiguration); use WSS and HTTPS")
		}
	}
	scheme, host := e.baseFor(r)
	wsScheme := "ws"
	if scheme == "https" {
		wsScheme = "wss"
	}
	out := &endpointOutput{ResourceEndpointList: []resourceEndpoint{}}
	for _, p := range protocols {
		var ep string
		switch {
		case p == "WSS" && role == kvs.Master:
			ep = wsScheme + "://" + host + "/signaling/master/m-" + ch.endpointID
		case p == "WSS":
			ep = wsScheme + "://" + host + "/signaling/viewer/v-" + ch.endpointID
		case p == "WEBRTC":
			ep = scheme + "://" + host + "/webrtc/w-" + ch.endpointID
		default:
			ep = scheme + "://" + host + "/ice/r-" + ch.endpointID
		}
		out.ResourceEndpointList = append(out.ResourceEndpointList, resourceEndpoint{Protocol: p, ResourceEndpoint: ep})
	}
	return out, nil
}

type listInput struct {
	MaxResults           *int64
	NextToken            *string
	ChannelNameCondition *struct {
		ComparisonOperator *string
		ComparisonValue    *string
	}
}

type listOutput struct {
	ChannelInfoList []channelInfo
	NextToken       string `json:",omitempty"`
}

func (e *Emulator) listChannels(in listInput, who *issued) (*listOutput, error) {
	limit := int64(10000)
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if limit < 1 || limit > 10000 {
			return nil, invalidArg("%s", validationMessage(fmt.Sprint(limit), "maxResults", "Member must have value between 1 and 10000"))
		}
	}
	prefix := ""
	if c := in.ChannelNameCondition; c != nil {
		if c.ComparisonOperator != nil && *c.ComparisonOperator != "BEGINS_WITH" {
			return nil, invalidArg("%s", validationMessage(*c.ComparisonOperator, "channelNameCondition.comparisonOperator", "Member must satisfy enum value set: [BEGINS_WITH]"))
		}
		if c.ComparisonValue != nil {
			if err := checkName("channelNameCondition.comparisonValue", c.ComparisonValue); err != nil {
				return nil, err
			}
			prefix = *c.ComparisonValue
		}
	}
	after := ""
	if in.NextToken != nil {
		t := *in.NextToken
		raw, err := base64.RawURLEncoding.DecodeString(t)
		if t == "" || len(t) > 512 || err != nil || !strings.HasPrefix(string(raw), "after:") {
			return nil, invalidArg("%s", validationMessage(t, "nextToken", "Member must be a token returned by ListSignalingChannels"))
		}
		after = strings.TrimPrefix(string(raw), "after:")
	}
	// Listing is allowed on all channels or none: its resource is "*".
	if ae := e.authorize(who, OpListSignalingChannels, "*"); ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	var names []string
	for name := range e.channels {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := &listOutput{ChannelInfoList: []channelInfo{}}
	for i, name := range names {
		if int64(i) == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte("after:" + names[i-1]))
			break
		}
		out.ChannelInfoList = append(out.ChannelInfoList, e.channels[name].info())
	}
	e.mu.Unlock()
	return out, nil
}

type deleteInput struct {
	ChannelARN     *string
	CurrentVersion *string
}

func (e *Emulator) deleteChannel(in deleteInput, who *issued) error {
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return err
	}
	if in.CurrentVersion != nil {
		if err := checkVersion(in.CurrentVersion); err != nil {
			return err
		}
	}
	if ae := e.authorize(who, OpDeleteSignalingChannel, *in.ChannelARN); ae != nil {
		return ae
	}
	e.mu.Lock()
	ch := e.byARN[*in.ChannelARN]
	if ch == nil {
		e.mu.Unlock()
		return notFound(channelNotFound)
	}
	if in.CurrentVersion != nil && *in.CurrentVersion != ch.version {
		e.mu.Unlock()
		return errf(http.StatusBadRequest, "VersionMismatchException", "The version %s does not match the channel's current version.", *in.CurrentVersion)
	}
	delete(e.channels, ch.name)
	delete(e.byARN, ch.arn)
	if err := e.persistDeleteLocked(ch.name); err != nil {
		e.channels[ch.name] = ch
		e.byARN[ch.arn] = ch
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	e.log.Info("channel deleted", "name", ch.name, "arn", ch.arn)
	ch.mu.Lock()
	ch.deleted = true
	conns := ch.connsLocked()
	ch.held = map[string][]heldMsg{}
	ch.mu.Unlock()
	forEachConn(conns, func(c *conn) bool { c.close(statusGoingAway, "channel deleted"); return true })
	e.endStorage(ch, "the channel was deleted")
	return nil
}
