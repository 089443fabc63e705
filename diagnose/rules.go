// The rules Explain tries, in order, and the facts they read.

package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// skewThreshold is how far the signing clock may be from the service's
// before skew is named as the cause (the service allows 5 minutes).
const skewThreshold = time.Minute

// facts are a Failure with what the rules derive from it.
type facts struct {
	Failure
	msg    string // the message, lower-cased
	action string // the IAM action the call needed
	// skew is the offset that makes the local clock read the service's;
	// off is what is still missing from the signing clock (> 0: behind).
	skew, off time.Duration
	skewed    bool // off is beyond skewThreshold
	timeWords bool // the message speaks of the signing time
}

func newFacts(f Failure) *facts {
	x := &facts{Failure: f, msg: strings.ToLower(f.Message)}
	x.action = "kinesisvideo:ConnectAs" + titleRole(f.Role)
	if f.Op != "" && !strings.HasPrefix(f.Op, "ConnectAs") {
		x.action = "kinesisvideo:" + f.Op
	}
	if !f.ServerDate.IsZero() && !f.LocalNow.IsZero() {
		// The Date header has whole seconds: compare whole seconds, and
		// take a difference under two seconds for none.
		x.skew = f.ServerDate.Sub(f.LocalNow.Truncate(time.Second)).Round(time.Second)
		if x.skew > -2*time.Second && x.skew < 2*time.Second {
			x.skew = 0
		}
		x.off = x.skew - f.ClockOffset
		x.skewed = x.off.Abs() > skewThreshold
	}
	x.timeWords = x.has("signature expired", "signature not yet current", "requesttimetooskewed", "request time too skewed")
	return x
}

// has reports whether the message holds one of phrases (lower case).
func (x *facts) has(phrases ...string) bool {
	for _, p := range phrases {
		if strings.Contains(x.msg, p) {
			return true
		}
	}
	return false
}

func (x *facts) codeIs(codes ...string) bool {
	for _, c := range codes {
		if x.Code == c {
			return true
		}
	}
	return false
}

// A rule names a cause when match holds.
type rule struct {
	cause   string
	match   func(*facts) bool
	explain func(*facts) Diagnosis
}

// fixed is an explain function for a diagnosis that depends on nothing.
func fixed(explanation, fix string) func(*facts) Diagnosis {
	return func(*facts) Diagnosis { return Diagnosis{Explanation: explanation, Fix: fix} }
}

// rules are tried in order: the specific phrases of a message before the
// status and error type that many causes share.
var rules = []rule{
	{CauseClockSkew, func(x *facts) bool {
		return x.skewed && (x.timeWords || x.Status == 403 && x.off.Abs() > 4*time.Minute)
	}, explainSkew},
	{CauseURLExpired, func(x *facts) bool { return x.has("signature expired") }, fixed(
		"the signed URL was used too late: KVS takes a signaling URL only within 5 minutes of its X-Amz-Date (and before X-Amz-Date + X-Amz-Expires)",
		"sign a fresh URL right before connecting (kvssign connect signs one itself)")},
	{CauseClockSkew, func(x *facts) bool { return x.timeWords }, fixed(
		"the signing time is outside the 5 minutes the service allows: this machine's clock is probably off",
		"set the clock right (NTP), or correct it with --clock-offset")},
	{CauseExpiredCreds, func(x *facts) bool {
		return x.has("security token included in the request is expired") || x.codeIs("ExpiredTokenException", "ExpiredToken")
	}, fixed("the temporary credentials (session token) have expired",
		"renew them (aws sso login, or ask STS again); with --role-arn kvssign renews them itself")},
	{CauseRegion, func(x *facts) bool { return x.has("credential should be scoped to a valid region") }, explainRegion},
	{CauseSignature, func(x *facts) bool { return x.has("credential should be scoped to correct service") }, fixed(
		"the request was signed for another service", "sign for kinesisvideo")},
	{CauseInvalidCreds, func(x *facts) bool {
		return x.has("security token included in the request is invalid") || x.codeIs("UnrecognizedClientException", "InvalidClientTokenId")
	}, fixed("the service does not know the access key id, or the session token does not belong to it (another account or partition, a deleted key, a token from another session)",
		"check AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN, or --profile; temporary keys (ASIA…) need their own session token")},
	{CauseSignature, func(x *facts) bool {
		return x.has("signature we calculated does not match") || x.codeIs("SignatureDoesNotMatch")
	}, fixed("the signature does not match: a wrong secret access key, or the URL was changed after signing (re-encoded, a parameter added or reordered by a tool)",
		"check AWS_SECRET_ACCESS_KEY; pass the signed URL on unchanged")},
	{CauseExpiresTooLong, func(x *facts) bool {
		return x.has("x-amz-expires must be at most") || x.has("x-amz-expires") && x.has("must be a whole number of seconds from 1 to")
	}, fixed(
		"X-Amz-Expires is out of range: SigV4 allows 1 to 604800 seconds (7 days), and KVS honours a signaling URL only within 5 minutes of its X-Amz-Date whatever X-Amz-Expires says",
		"sign with --expires 299s (the default); sign a fresh URL for each connection rather than a long-lived one")},
	{CausePermission, func(x *facts) bool {
		return x.has("not authorized to perform") || x.Status == 403 && x.codeIs("AccessDeniedException", "AccessDenied") && !x.NoAnswer
	}, explainPermission},
	{CauseWrongEndpoint, func(x *facts) bool {
		return x.has("invalid clientid") && (x.ClientID == "" || x.Role == kvs.Master && EndpointRole(x.Endpoint) == kvs.Viewer)
	}, fixed("the URL has no ClientId, as a master's, but the endpoint is the channel's VIEWER endpoint, which requires one",
		"connect as master to the endpoint GetSignalingChannelEndpoint returns for Role MASTER (leave out --endpoint to have it resolved), or as viewer with a --client-id")},
	{CauseClientID, func(x *facts) bool { return x.has("invalid clientid") }, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: fmt.Sprintf("the ClientId %q is invalid: it must be 1 to 256 characters of a-z A-Z 0-9 _ . - and not start with AWS_", x.ClientID),
			Fix: "choose another --client-id (or leave it out for a random one)"}
	}},
	{CauseTooManyViewers, func(x *facts) bool { return x.has("maximum number of clients") }, fixed(
		"the channel already has its maximum of viewers connected (10 by default)",
		"disconnect a viewer, or reuse a ClientId: a viewer connecting with a ClientId already in use replaces that connection")},
	{CauseThrottled, func(x *facts) bool {
		return x.codeIs("ClientLimitExceededException", "ThrottlingException", "Throttling") || x.Status == 429
	}, fixed("throttled: too many calls (KVS allows 3 ConnectAsMaster/ConnectAsViewer per second per channel, and a few TPS per channel on the control plane)",
		"retry after a pause, with backoff; cache ARNs and endpoints rather than asking for them on every connection")},
	{CauseUnknownChannel, func(x *facts) bool { return x.Status == 404 || x.codeIs("ResourceNotFoundException") }, func(x *facts) Diagnosis {
		where := ""
		if x.Region != "" {
			where = " in " + x.Region
		}
		return Diagnosis{Explanation: fmt.Sprintf("the channel %s does not exist%s: a wrong name or region, or it was deleted", x.Channel, where),
			Fix: "check the name and --region, list channels with 'kvssign channel list', or create it with 'kvssign channel create NAME'"}
	}},
	{CauseWrongEndpoint, func(x *facts) bool {
		er := EndpointRole(x.Endpoint)
		return x.Status == 400 && er != "" && er != x.Role
	}, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: fmt.Sprintf("the endpoint is the channel's %s endpoint but the connection is as %s", EndpointRole(x.Endpoint), x.Role),
			Fix: fmt.Sprintf("use the endpoint GetSignalingChannelEndpoint returns for Role %s", x.Role)}
	}},
	{CausePermission, func(x *facts) bool { return x.Status == 403 }, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: fmt.Sprintf("access denied: the signer may lack %s on the channel", x.action),
			Fix: fmt.Sprintf("allow %s in the signer's IAM policy; run with --debug to see what was signed", x.action)}
	}},
	{CauseInvalidArgument, func(x *facts) bool {
		return x.Status == 400 && x.codeIs("InvalidArgumentException", "ValidationException")
	}, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: "the service refused a parameter: " + x.Message}
	}},
	{CauseServiceError, func(x *facts) bool { return x.Status >= 500 }, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: fmt.Sprintf("the service failed (HTTP %d)%s", x.Status, attemptsNote(x.Attempts)), Fix: "retry later"}
	}},
	{CauseNoCredentials, func(x *facts) bool {
		return x.has("failed to retrieve credentials", "no valid providers", "failed to refresh cached credentials", "get credentials", "no credentials")
	}, fixed("no usable AWS credentials: none in the environment, the profile, SSO, web identity, the container or the instance",
		"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a --profile, or run aws sso login")},
	{CauseUnreachable, func(x *facts) bool {
		return x.NoAnswer || x.Status == 0 && x.has("dial", "connection refused", "no such host", "deadline", "timeout", "cannot reach")
	}, func(x *facts) Diagnosis {
		return Diagnosis{Explanation: "no answer from the service" + attemptsNote(x.Attempts),
			Fix: "check the endpoint (--endpoint, --endpoint-url, --region), the network, and any proxy"}
	}},
}

func explainSkew(x *facts) Diagnosis {
	dir := "behind"
	if x.off < 0 {
		dir = "ahead of"
	}
	note := ""
	if x.ClockOffset != 0 {
		note = fmt.Sprintf(" with --clock-offset=%v", x.ClockOffset)
	}
	return Diagnosis{
		Explanation: fmt.Sprintf("clock skew: the signing clock (this machine's%s) is %v %s the service's (its Date header: %s), beyond the 5 minutes SigV4 allows",
			note, x.off.Abs(), dir, x.ServerDate.UTC().Format(time.RFC1123)),
		Fix:                  fmt.Sprintf("rerun with --clock-offset=%v (it is added to the local clock), or set this machine's clock right (NTP)", x.skew),
		SuggestedClockOffset: x.skew.String(),
	}
}

func explainRegion(x *facts) Diagnosis {
	signed := x.Region
	if signed == "" {
		signed = "one region"
	}
	d := Diagnosis{
		Explanation: fmt.Sprintf("region mismatch: the request was signed for %s, but the service or channel is in another region", signed),
		Fix:         "set --region (or AWS_REGION) to the channel's region: the fourth field of its ARN",
	}
	if x.ARNRegion != "" && x.ARNRegion != x.Region {
		d.Explanation += "; the channel ARN says " + x.ARNRegion
		d.Fix = "use --region " + x.ARNRegion + " (the channel ARN's region)"
	}
	return d
}

// explainPermission names the action and the resource the service checked,
// read from its message ("… not authorized to perform: ACTION on
// resource: ARN"), which is what the policy must allow.
func explainPermission(x *facts) Diagnosis {
	action := x.action
	// Indexes come from the message itself: lower-casing may change its
	// length.
	if i := strings.Index(x.Message, "perform: "); i >= 0 {
		rest := x.Message[i+len("perform: "):]
		if j := strings.IndexAny(rest, " ,"); j > 0 {
			action = rest[:j]
		}
	}
	on, resource := "on the channel", x.Channel
	if resource == "" {
		resource = "the channel's ARN"
	}
	if i := strings.Index(x.Message, "on resource: "); i >= 0 {
		if f := strings.Fields(x.Message[i+len("on resource: "):]); len(f) > 0 {
			if r := strings.TrimRight(f[0], ".,"); r != "" {
				on, resource = "on "+r, r
			}
		}
	}
	return Diagnosis{
		Explanation: fmt.Sprintf("access denied: the principal that signed lacks the %s permission %s (or a session policy or SCP removes it)", action, on),
		Fix:         fmt.Sprintf("allow %s on %s in the signer's IAM policy", action, resource),
	}
}

func titleRole(r kvs.Role) string {
	if r == kvs.Viewer {
		return "Viewer"
	}
	return "Master"
}

func attemptsNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(", after %d attempts", n)
	}
	return ""
}
