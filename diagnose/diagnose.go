// Package diagnose turns a call or a signaling handshake that Amazon Kinesis
// Video Streams refused (or never answered) into its likely cause and the
// fix: clock skew and the offset that corrects it, expired or unknown
// credentials, a region mismatch, a missing permission, the wrong endpoint
// for the role, an invalid client id, a full channel, throttling, an unknown
// channel.
//
// It reads only what a client has at hand: the HTTP status, the error type
// and message the service sent, its Date header, the signed URL's
// parameters and the local clock. [Explain] tries a table of rules in
// order; the first that matches names the cause. The fixes name the kvssign
// command's flags where one applies (--region, --clock-offset, --expires,
// --client-id); a program maps them to its own settings.
package diagnose

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

// A Failure is what is known about a refused call or handshake. Every field
// is optional: the zero value of one means it is unknown.
type Failure struct {
	// Op is the operation, e.g. ConnectAsViewer or DescribeSignalingChannel;
	// empty means the signaling handshake of Role.
	Op string
	// Status is the HTTP status; 0 if there was no answer.
	Status int
	// Code is the service's error type (x-amzn-ErrorType or the SDK's
	// error code), e.g. AccessDeniedException.
	Code string
	// Message is the service's message, or the error's text when there
	// was no answer.
	Message string
	// Attempts is how many attempts were made, if more than one.
	Attempts int
	// NoAnswer says that the service never answered.
	NoAnswer bool
	// ServerDate is the answer's Date header and LocalNow the local clock
	// when the answer came; both are needed to measure clock skew.
	ServerDate, LocalNow time.Time
	// ClockOffset is what was added to the local clock when signing.
	ClockOffset time.Duration
	// SignedAt is the URL's X-Amz-Date.
	SignedAt time.Time
	// Role is the role connected as.
	Role kvs.Role
	// Endpoint is the signaling endpoint, without the query.
	Endpoint string
	// Channel is the channel's ARN or name.
	Channel string
	// Region is the region the request was signed for, and ARNRegion the
	// channel ARN's.
	Region, ARNRegion string
	// ClientID is the viewer's client id.
	ClientID string
}

// A Diagnosis is the likely cause of a failure and its fix. A zero Cause
// means no rule matched.
type Diagnosis struct {
	// Cause is a short, stable id, one of the Cause constants.
	Cause       string `json:"cause,omitempty"`
	Explanation string `json:"explanation,omitempty"`
	Fix         string `json:"fix,omitempty"`
	// SuggestedClockOffset is, for clock skew measured from the Date
	// header, the offset to add to the local clock, as a Go duration.
	SuggestedClockOffset string `json:"suggestedClockOffset,omitempty"`
}

// Causes a Diagnosis names.
const (
	CauseClockSkew       = "clock-skew"
	CauseURLExpired      = "url-expired"
	CauseExpiredCreds    = "expired-credentials"
	CauseInvalidCreds    = "invalid-credentials"
	CauseSignature       = "signature-mismatch"
	CauseRegion          = "region-mismatch"
	CausePermission      = "missing-permission"
	CauseWrongEndpoint   = "wrong-endpoint"
	CauseClientID        = "invalid-client-id"
	CauseTooManyViewers  = "too-many-viewers"
	CauseThrottled       = "throttled"
	CauseUnknownChannel  = "unknown-channel"
	CauseExpiresTooLong  = "expires-too-long"
	CauseNoCredentials   = "no-credentials"
	CauseUnreachable     = "unreachable"
	CauseServiceError    = "service-error"
	CauseInvalidArgument = "invalid-argument"
)

// Explain names the likely cause of f and its fix: the diagnosis of the
// first rule that matches, or a zero Diagnosis.
func Explain(f Failure) Diagnosis {
	x := newFacts(f)
	for _, r := range rules {
		if r.match(x) {
			d := r.explain(x)
			d.Cause = r.cause
			return d
		}
	}
	return Diagnosis{}
}

// FromURL fills in what a signed signaling URL says of the connection:
// Endpoint, Channel and ARNRegion (X-Amz-ChannelARN), ClientID, Region (the
// credential scope's), SignedAt (X-Amz-Date), and Role, from the endpoint's
// shape or else from the presence of a client id. Fields already set are
// kept; an unreadable URL changes nothing.
func (f *Failure) FromURL(signedURL string) {
	u, err := url.Parse(signedURL)
	if err != nil {
		return
	}
	q := u.Query()
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&f.Channel, q.Get(kvs.ParamChannelARN))
	set(&f.ClientID, q.Get(kvs.ParamClientID))
	if parts := strings.Split(q.Get(sigv4.ParamCredential), "/"); len(parts) == 5 {
		set(&f.Region, parts[2])
	}
	if a, err := kvs.ParseChannelARN(f.Channel); err == nil {
		set(&f.ARNRegion, a.Region)
	}
	if f.SignedAt.IsZero() {
		f.SignedAt, _ = time.Parse("20060102T150405Z", q.Get(sigv4.ParamDate))
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	set(&f.Endpoint, u.String())
	if f.Role == "" {
		switch r := EndpointRole(f.Endpoint); {
		case r != "":
			f.Role = r
		case f.ClientID != "":
			f.Role = kvs.Viewer
		default:
			f.Role = kvs.Master
		}
	}
}

// EndpointRole tells a master endpoint from a viewer one by its shape: AWS's
// hosts start with m- or v-, the kvssign emulator's paths hold /master/ or
// /viewer/. It returns "" when the shape says nothing.
func EndpointRole(endpoint string) kvs.Role {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	switch {
	case strings.HasPrefix(host, "m-") && strings.Contains(host, ".kinesisvideo."):
		return kvs.Master
	case strings.HasPrefix(host, "v-") && strings.Contains(host, ".kinesisvideo."):
		return kvs.Viewer
	case strings.Contains(u.Path, "/master/"):
		return kvs.Master
	case strings.Contains(u.Path, "/viewer/"):
		return kvs.Viewer
	}
	return ""
}

// Handshake explains why a signaling client could not connect: err is what
// [signaling.Dial] returned, or [signaling.Client.Err] once the client gave
// up. A [*signaling.HandshakeError] in it gives the status, error type,
// message and Date of the refusal, and its URL what was signed; any other
// error is taken for no answer. local is the local clock when the answer
// came (time.Now right after Dial), which measures clock skew.
func Handshake(err error, local time.Time) Diagnosis {
	if err == nil {
		return Diagnosis{}
	}
	f := Failure{LocalNow: local}
	var ge *signaling.GiveUpError
	if errors.As(err, &ge) {
		f.Attempts = ge.Attempts
	}
	var he *signaling.HandshakeError
	if errors.As(err, &he) {
		f.Status, f.Code, f.Message, f.ServerDate = he.StatusCode, he.Type, he.Message, he.Date
		f.FromURL(he.URL)
	} else {
		f.NoAnswer, f.Message = true, err.Error()
	}
	return Explain(f)
}
