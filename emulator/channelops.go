// The control-plane operations that change a channel in place:
// UpdateSignalingChannel and the tag API (TagResource, UntagResource,
// ListTagsForResource).

package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode"
)

// maxTags is KVS's limit of tags per channel, and per request.
const maxTags = 50

// checkTTL validates a MessageTtlSeconds.
func checkTTL(ttl int64) error {
	if ttl >= 5 && ttl <= 120 {
		return nil
	}
	rule := "Member must have value greater than or equal to 5"
	if ttl > 120 {
		rule = "Member must have value less than or equal to 120"
	}
	return invalidArg("%s", validationMessage(fmt.Sprint(ttl), "singleMasterConfiguration.messageTtlSeconds", rule))
}

// checkVersion validates a CurrentVersion.
func checkVersion(v *string) error {
	if v == nil {
		return invalidArg("1 validation error detected: Value null at 'currentVersion' failed to satisfy constraint: Member must not be null")
	}
	ok := len(*v) >= 1 && len(*v) <= 64
	for _, c := range *v {
		ok = ok && c < 128 && (unicode.IsLetter(c) || unicode.IsDigit(c))
	}
	if !ok {
		return invalidArg("%s", validationMessage(*v, "currentVersion", "Member must satisfy regular expression pattern: [a-zA-Z0-9]+ of length 1 to 64"))
	}
	return nil
}

// checkTagKey validates one tag key; field names it in the message.
func checkTagKey(field string, k *string) error {
	switch {
	case k == nil:
		return invalidArg("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	case len(*k) < 1 || len(*k) > 128:
		return invalidArg("%s", validationMessage(*k, field, "Member must have length between 1 and 128"))
	case !validTagKey(*k):
		return invalidArg("%s", validationMessage(*k, field, "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"))
	}
	return nil
}

// checkTags validates a list of tags (CreateSignalingChannel's Tags,
// TagResource's Tags); field is the list's name in messages.
func checkTags(field string, in []tagInput) ([]tag, error) {
	if len(in) > maxTags {
		return nil, invalidArg("%s", validationMessage(fmt.Sprintf("[%d tags]", len(in)), field, "Member must have length less than or equal to 50"))
	}
	var tags []tag
	seen := map[string]bool{}
	for i, t := range in {
		if err := checkTagKey(fmt.Sprintf("%s.%d.member.key", field, i+1), t.Key); err != nil {
			return nil, err
		}
		if seen[*t.Key] {
			return nil, invalidArg("Duplicate tag key %q", *t.Key)
		}
		seen[*t.Key] = true
		v := ""
		if t.Value != nil {
			v = *t.Value
		}
		if len(v) > 256 {
			return nil, invalidArg("%s", validationMessage(v, fmt.Sprintf("%s.%d.member.value", field, i+1), "Member must have length less than or equal to 256"))
		}
		tags = append(tags, tag{Key: *t.Key, Value: v})
	}
	return tags, nil
}

type updateInput struct {
	ChannelARN                *string
	CurrentVersion            *string
	SingleMasterConfiguration *struct{ MessageTtlSeconds *int64 }
}

// updateChannel changes a channel's MessageTtlSeconds if its version is
// still CurrentVersion, and gives it a new version, as KVS does, so that
// a second update from the same stale description fails.
func (e *Emulator) updateChannel(in updateInput, who *issued) error {
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return err
	}
	if err := checkVersion(in.CurrentVersion); err != nil {
		return err
	}
	var ttl *int64
	if c := in.SingleMasterConfiguration; c != nil && c.MessageTtlSeconds != nil {
		if err := checkTTL(*c.MessageTtlSeconds); err != nil {
			return err
		}
		ttl = c.MessageTtlSeconds
	}
	if ae := e.authorize(who, OpUpdateSignalingChannel, *in.ChannelARN); ae != nil {
		return ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := e.byARN[*in.ChannelARN]
	if ch == nil {
		return notFound(channelNotFound)
	}
	if *in.CurrentVersion != ch.version {
		return errf(http.StatusBadRequest, "VersionMismatchException", "The version %s does not match the channel's current version.", *in.CurrentVersion)
	}
	oldTTL, oldVersion := ch.messageTTL, ch.version
	newTTL := oldTTL
	if ttl != nil {
		newTTL = time.Duration(*ttl) * time.Second
	}
	ch.setDescription(newTTL, randomAlnum(20, alnum))
	if err := e.persistLocked(ch); err != nil {
		ch.setDescription(oldTTL, oldVersion)
		return err
	}
	e.log.Info("channel updated", "name", ch.name, "messageTtlSeconds", int64(newTTL/time.Second))
	return nil
}

// setDescription sets the fields UpdateSignalingChannel changes. The
// caller holds e.mu; ch.mu is taken too, since relaying reads the TTL
// under it.
func (ch *channel) setDescription(ttl time.Duration, version string) {
	ch.mu.Lock()
	ch.messageTTL = ttl
	ch.mu.Unlock()
	ch.version = version
}

type tagResourceInput struct {
	ResourceARN *string
	Tags        []tagInput
}

// lockedChannel authorises op on a resource ARN and returns its channel
// with e.mu held; on error, e.mu is not held.
func (e *Emulator) lockedChannel(who *issued, op string, arn *string) (*channel, error) {
	if _, err := checkARN("resourceARN", arn); err != nil {
		return nil, err
	}
	if ae := e.authorize(who, op, *arn); ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	ch := e.byARN[*arn]
	if ch == nil {
		e.mu.Unlock()
		return nil, notFound(channelNotFound)
	}
	return ch, nil
}

// tagResource adds tags to a channel, replacing the values of keys it
// has; more than 50 tags in all is TagsPerResourceExceededLimitException.
func (e *Emulator) tagResource(in tagResourceInput, who *issued) error {
	if len(in.Tags) == 0 {
		return invalidArg("%s", validationMessage("[]", "tags", "Member must have length greater than or equal to 1"))
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return err
	}
	ch, err := e.lockedChannel(who, OpTagResource, in.ResourceARN)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	merged := slices.Clone(ch.tags)
	for _, t := range tags {
		i := slices.IndexFunc(merged, func(m tag) bool { return m.Key == t.Key })
		if i >= 0 {
			merged[i].Value = t.Value
		} else {
			merged = append(merged, t)
		}
	}
	if len(merged) > maxTags {
		return errf(http.StatusBadRequest, "TagsPerResourceExceededLimitException",
			"The channel would have %d tags; a channel can have at most %d.", len(merged), maxTags)
	}
	return e.setTagsLocked(ch, merged)
}

// setTagsLocked replaces ch's tags and saves them. The caller holds e.mu.
func (e *Emulator) setTagsLocked(ch *channel, tags []tag) error {
	old := ch.tags
	ch.tags = tags
	if err := e.persistLocked(ch); err != nil {
		ch.tags = old
		return err
	}
	return nil
}

type untagResourceInput struct {
	ResourceARN *string
	TagKeyList  []*string
}

// untagResource removes tags by key; keys the channel does not have are
// ignored, as KVS ignores them.
func (e *Emulator) untagResource(in untagResourceInput, who *issued) error {
	if len(in.TagKeyList) < 1 || len(in.TagKeyList) > maxTags {
		return invalidArg("%s", validationMessage(fmt.Sprintf("[%d keys]", len(in.TagKeyList)), "tagKeyList", "Member must have length between 1 and 50"))
	}
	drop := map[string]bool{}
	for i, k := range in.TagKeyList {
		if err := checkTagKey(fmt.Sprintf("tagKeyList.%d.member", i+1), k); err != nil {
			return err
		}
		drop[*k] = true
	}
	ch, err := e.lockedChannel(who, OpUntagResource, in.ResourceARN)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	var kept []tag
	for _, t := range ch.tags {
		if !drop[t.Key] {
			kept = append(kept, t)
		}
	}
	if len(kept) == len(ch.tags) {
		return nil
	}
	return e.setTagsLocked(ch, kept)
}

type listTagsInput struct {
	ResourceARN *string
	NextToken   *string
}

type listTagsOutput struct {
	Tags map[string]string
}

// listTags returns a channel's tags. A channel has at most 50, which KVS
// returns in one page, so no NextToken is ever issued and any given one
// is refused.
func (e *Emulator) listTags(in listTagsInput, who *issued) (*listTagsOutput, error) {
	if in.NextToken != nil {
		return nil, invalidArg("%s", validationMessage(*in.NextToken, "nextToken", "Member must be a token returned by ListTagsForResource"))
	}
	ch, err := e.lockedChannel(who, OpListTagsForResource, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	out := &listTagsOutput{Tags: make(map[string]string, len(ch.tags))}
	for _, t := range ch.tags {
		out.Tags[t.Key] = t.Value
	}
	return out, nil
}
