// Package kvs holds the vocabulary of Amazon Kinesis Video Streams WebRTC
// signaling, with the standard library only: roles, channel ARNs, client id
// rules, and the presigned ConnectAsMaster/ConnectAsViewer URL.
package kvs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Service is the SigV4 signing name of Kinesis Video Streams.
const Service = "kinesisvideo"

// The query parameters of a signaling URL besides SigV4's own.
const (
	ParamChannelARN = "X-Amz-ChannelARN"
	ParamClientID   = "X-Amz-ClientId"
)

// Role is the part a peer plays on a signaling channel.
type Role string

// The two roles of a SINGLE_MASTER channel.
const (
	Master Role = "MASTER"
	Viewer Role = "VIEWER"
)

// A FieldError says which input is wrong and the rule it breaks. Every
// validation in this package returns one, possibly wrapped: find it with
// errors.As.
type FieldError struct {
	Field string // e.g. "client id", "channel ARN", "endpoint"
	Value string // what was given, shortened to 80 bytes; "" if empty
	Rule  string // e.g. "must not start with AWS_ (in any case)"
}

// Error returns "kvs: FIELD "VALUE": RULE", or "kvs: FIELD is empty: RULE".
func (e *FieldError) Error() string { return "kvs: " + e.Reason() }

// Reason is the error without its package prefix — the field, the value and
// the rule — for a message that already says where the input came from.
func (e *FieldError) Reason() string {
	if e.Value == "" {
		return e.Field + " is empty: " + e.Rule
	}
	return e.Field + " " + strconv.Quote(e.Value) + ": " + e.Rule
}

func fieldError(field, value, rule string) *FieldError {
	return &FieldError{Field: field, Value: clip(value), Rule: rule}
}

// ParseRole accepts MASTER or VIEWER in any case.
func ParseRole(s string) (Role, error) {
	switch strings.ToUpper(s) {
	case string(Master):
		return Master, nil
	case string(Viewer):
		return Viewer, nil
	}
	return "", fieldError("role", s, "must be MASTER or VIEWER")
}

// ChannelARN is a parsed signaling channel ARN:
// arn:PARTITION:kinesisvideo:REGION:ACCOUNT:channel/NAME/CREATION_TIME.
type ChannelARN struct {
	Partition    string // aws, aws-cn, aws-us-gov, ...
	Region       string
	Account      string
	Name         string
	CreationTime int64 // as in the ARN: milliseconds since the Unix epoch
}

// String returns the ARN in its canonical text form.
func (a ChannelARN) String() string {
	return "arn:" + a.Partition + ":kinesisvideo:" + a.Region + ":" + a.Account +
		":channel/" + a.Name + "/" + strconv.FormatInt(a.CreationTime, 10)
}

// MaxARNLength is the longest channel ARN the service accepts.
const MaxARNLength = 1024

// ParseChannelARN parses and validates a signaling channel ARN. The error
// names the part that is wrong and the rule it breaks.
func ParseChannelARN(s string) (ChannelARN, error) {
	const form = "must be arn:PARTITION:kinesisvideo:REGION:ACCOUNT:channel/NAME/CREATION_TIME"
	fail := func(part, rule string) (ChannelARN, error) {
		return ChannelARN{}, fieldError("channel ARN", s, part+": "+rule)
	}
	if s == "" {
		return ChannelARN{}, fieldError("channel ARN", s, form)
	}
	if len(s) > MaxARNLength {
		return ChannelARN{}, fieldError("channel ARN", s, fmt.Sprintf("is %d characters: must be at most %d", len(s), MaxARNLength))
	}
	if strings.Contains(s, "%") {
		return fail("text", "is percent-encoded: give the ARN itself (arn:aws:kinesisvideo:...)")
	}
	var parts [6]string
	rest := s
	for i := range 5 {
		var ok bool
		if parts[i], rest, ok = strings.Cut(rest, ":"); !ok {
			return fail("format", form)
		}
	}
	parts[5] = rest
	if parts[0] != "arn" {
		return fail("format", form)
	}
	var a ChannelARN
	a.Partition, a.Region, a.Account = parts[1], parts[3], parts[4]
	if !strings.HasPrefix(a.Partition, "aws") || !charsIn(a.Partition[3:], cLower|cDash) {
		return fail("partition "+strconv.Quote(a.Partition), "must be aws or aws-<letters> (aws-cn, aws-us-gov)")
	}
	if parts[2] != Service {
		return fail("service "+strconv.Quote(parts[2]), "must be kinesisvideo")
	}
	if a.Region == "" || !charsIn(a.Region, cLower|cDigit|cDash) {
		return fail("region "+strconv.Quote(a.Region), "must be lower-case letters, digits and '-'")
	}
	if a.Account == "" || !charsIn(a.Account, cDigit) {
		return fail("account "+strconv.Quote(a.Account), "must be digits")
	}
	res, ok := strings.CutPrefix(parts[5], "channel/")
	if !ok {
		return fail("resource", "must start with channel/ (a stream ARN is not a channel ARN)")
	}
	i := strings.LastIndexByte(res, '/')
	if i < 0 {
		return fail("resource", "must be channel/NAME/CREATION_TIME")
	}
	a.Name = res[:i]
	if err := ValidateChannelName(a.Name); err != nil {
		rule := err.(*FieldError).Rule
		if a.Name == "" {
			rule = "is empty: " + rule
		}
		return fail("channel name", rule)
	}
	ct := res[i+1:]
	n, err := strconv.ParseInt(ct, 10, 64)
	if ct == "" || !charsIn(ct, cDigit) || err != nil {
		return fail("creation time "+strconv.Quote(clip(ct)), "must be digits")
	}
	a.CreationTime = n
	return a, nil
}

// ValidateChannelName checks a channel name: 1 to 256 characters of
// a-z A-Z 0-9 _ . -.
func ValidateChannelName(name string) error {
	switch {
	case name == "":
		return fieldError("channel name", name, "must be 1 to 256 characters")
	case len(name) > 256:
		return fieldError("channel name", name, fmt.Sprintf("is %d characters: must be at most 256", len(name)))
	case !idChars(name):
		return fieldError("channel name", name, "must contain only a-z A-Z 0-9 _ . -")
	}
	return nil
}

// ValidateClientID checks a viewer's client id: 1 to 256 characters of
// a-z A-Z 0-9 _ . -, not starting with AWS_ in any case.
func ValidateClientID(id string) error {
	switch {
	case id == "":
		return fieldError("client id", id, "a viewer needs 1 to 256 characters")
	case len(id) > 256:
		return fieldError("client id", id, fmt.Sprintf("is %d characters: must be at most 256", len(id)))
	case !idChars(id):
		return fieldError("client id", id, "must contain only a-z A-Z 0-9 _ . -")
	case len(id) >= 4 && strings.EqualFold(id[:4], "AWS_"):
		return fieldError("client id", id, "must not start with AWS_ (in any case)")
	}
	return nil
}

// NewClientID returns a random valid client id: "viewer-" and 16 hex digits.
func NewClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return "viewer-" + hex.EncodeToString(b[:])
}

// Character classes for validation, looked up per byte.
const (
	cLower uint8 = 1 << iota
	cUpper
	cDigit
	cDash
	cDot
	cUnderscore
	cColon
	cHex

	cID   = cLower | cUpper | cDigit | cDash | cDot | cUnderscore // [a-zA-Z0-9_.-]
	cHost = cLower | cUpper | cDigit | cDash | cDot
)

var charClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cHex
	}
	for _, c := range "abcdefABCDEF" {
		t[c] |= cHex
	}
	t['-'] |= cDash
	t['.'] |= cDot
	t['_'] |= cUnderscore
	t[':'] |= cColon
	return t
}()

// charsIn reports whether every byte of s is in one of the classes.
func charsIn(s string, classes uint8) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&classes == 0 {
			return false
		}
	}
	return true
}

func idChars(s string) bool { return charsIn(s, cID) }

// clip shortens what a caller gave before it goes into an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
