package awskvs

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kinds of failure, matched with errors.Is. An [*Error] wraps at most one
// of them, besides the SDK's own error.
var (
	ErrNotFound        = errors.New("awskvs: not found")
	ErrAccessDenied    = errors.New("awskvs: access denied")
	ErrThrottled       = errors.New("awskvs: throttled")
	ErrInvalidArgument = errors.New("awskvs: invalid argument")
)

// An Error is a failed call to Kinesis Video Streams. It wraps both the
// kind of failure ([ErrNotFound], [ErrAccessDenied], [ErrThrottled],
// [ErrInvalidArgument], or none when the cause is something else, such as
// a 5xx or a network failure) and the SDK's error, so that errors.As to
// smithy.APIError still finds the service's code and message.
type Error struct {
	// Op is the operation, e.g. DescribeSignalingChannel.
	Op string
	// Resource is the channel name or ARN the call was about, if any.
	Resource string
	// Kind is one of the Err* values, or nil.
	Kind error
	// Code is the service's error code, e.g. ResourceNotFoundException;
	// empty when there was no answer.
	Code string
	// Message is the service's message, or the reason there was no answer.
	Message string
	// StatusCode is the HTTP status; 0 when there was no answer.
	StatusCode int
	// Attempts is how many times the call was made.
	Attempts int
	// Err is the underlying error.
	Err error

	transient bool // throttling, 5xx or no answer: the service did not say no
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("awskvs: ")
	b.WriteString(e.Op)
	if e.Resource != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Resource))
	}
	b.WriteString(": ")
	switch {
	case e.Code != "" && e.Message != "":
		b.WriteString(e.Code + ": " + e.Message)
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	}
	if e.StatusCode != 0 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.StatusCode))
		if e.Attempts > 1 {
			b.WriteString(", " + strconv.Itoa(e.Attempts) + " attempts")
		}
		b.WriteString(")")
	} else if e.Attempts > 1 {
		b.WriteString(" (" + strconv.Itoa(e.Attempts) + " attempts)")
	}
	return b.String()
}

// Unwrap returns the kind (if any) and the underlying error.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Error codes by kind. KVS reports throttling as
// ClientLimitExceededException; the rest are the usual AWS codes.
var (
	throttleCodes = set("ClientLimitExceededException", "ThrottlingException", "Throttling", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException",
		"RequestThrottled", "SlowDown", "PriorRequestNotComplete", "ProvisionedThroughputExceededException")
	deniedCodes = set("AccessDeniedException", "AccessDenied", "NotAuthorizedException", "UnrecognizedClientException",
		"InvalidSignatureException", "IncompleteSignatureException", "MissingAuthenticationTokenException",
		"ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"MissingAuthenticationToken", "IncompleteSignature")
	notFoundCodes = set("ResourceNotFoundException", "NotFoundException")
	invalidCodes  = set("InvalidArgumentException", "ValidationException", "ValidationError",
		"InvalidParameterValue", "InvalidParameterException", "SerializationException", "MalformedPolicyDocument")
)

func set(codes ...string) map[string]bool {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		m[c] = true
	}
	return m
}

// failure is what classify learns from an error.
type failure struct {
	kind      error
	code      string
	message   string
	status    int
	transient bool // worth retrying: throttling, 5xx, no answer, an attempt's timeout
	skew      bool // refused for the signing time: the SDK corrects its clock on the next attempt
	// later: the error says when to try again (a RetryAfter method, as a
	// caller's own call budget gives), so it is not retried now; it stays
	// transient, so cached answers are served over it.
	later bool
}

// classify reads an error from the SDK, from GetIceServerConfig, or from
// the network.
func classify(err error) failure {
	var f failure
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		f.status = hs.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.code = ae.ErrorCode()
		f.message = ae.ErrorMessage()
	}
	if m := strings.ToLower(f.message); strings.Contains(m, "signature expired") || strings.Contains(m, "signature not yet current") || f.code == "RequestTimeTooSkewed" {
		f.skew = true
	}
	switch {
	case throttleCodes[f.code] || f.status == 429:
		f.kind, f.transient = ErrThrottled, true
	case notFoundCodes[f.code] || f.code == "" && f.status == 404:
		f.kind = ErrNotFound
	case deniedCodes[f.code] || f.code == "" && (f.status == 401 || f.status == 403):
		f.kind = ErrAccessDenied
	case invalidCodes[f.code] || f.code == "" && f.status == 400:
		f.kind = ErrInvalidArgument
	case f.status >= 500:
		f.transient = true
	case f.status == 0 && f.code == "":
		f.transient = noAnswer(err)
		if f.message == "" {
			f.message = noAnswerMessage(err)
		}
	}
	var ra interface{ RetryAfter() time.Duration }
	f.later = errors.As(err, &ra)
	return f
}

// noAnswer reports whether err means the request got no answer in time
// or could not be sent: worth another attempt. A cancelled context is not.
func noAnswer(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// noAnswerMessage words a failure without a response briefly; the SDK's
// own text is kept in Err.
func noAnswerMessage(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the deadline"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return "cannot reach the service: " + oe.Err.Error()
	}
	return ""
}
