package diagnose

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

func TestExplainTable(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   Failure
		want Diagnosis
	}{
		{"skew with the Date header", Failure{Status: 403, Message: "Signature expired: 20261123T094000Z is now earlier than …", ServerDate: now.Add(20 * time.Minute), LocalNow: now},
			Diagnosis{Cause: CauseClockSkew, SuggestedClockOffset: "20m0s"}},
		{"skew already partly corrected", Failure{Status: 403, Message: "Signature not yet current", ServerDate: now, LocalNow: now.Add(3 * time.Minute), ClockOffset: 5 * time.Minute},
			Diagnosis{Cause: CauseClockSkew, SuggestedClockOffset: "-3m0s"}},
		{"no skew: the URL is old", Failure{Status: 403, Message: "Signature expired: …", ServerDate: now, LocalNow: now.Add(500 * time.Millisecond)},
			Diagnosis{Cause: CauseURLExpired}},
		{"403 and a big skew without the phrase", Failure{Status: 403, Message: "Forbidden", ServerDate: now.Add(time.Hour), LocalNow: now},
			Diagnosis{Cause: CauseClockSkew, SuggestedClockOffset: "1h0m0s"}},
		{"time words without a Date header", Failure{Status: 403, Message: "Signature not yet current"},
			Diagnosis{Cause: CauseClockSkew}},
		{"expired token", Failure{Status: 403, Code: "ExpiredTokenException"}, Diagnosis{Cause: CauseExpiredCreds}},
		{"region", Failure{Status: 403, Message: "Credential should be scoped to a valid region.", Region: "eu-west-1", ARNRegion: "us-west-2"},
			Diagnosis{Cause: CauseRegion}},
		{"unknown key", Failure{Status: 403, Code: "UnrecognizedClientException"}, Diagnosis{Cause: CauseInvalidCreds}},
		{"signature", Failure{Status: 403, Message: "The request signature we calculated does not match the signature you provided."}, Diagnosis{Cause: CauseSignature}},
		{"expires too long", Failure{Status: 400, Message: "X-Amz-Expires must be at most 300"}, Diagnosis{Cause: CauseExpiresTooLong}},
		{"expires over 7 days", Failure{Status: 400, Message: "X-Amz-Expires 604801 must be a whole number of seconds from 1 to 604800."}, Diagnosis{Cause: CauseExpiresTooLong}},
		{"permission", Failure{Status: 403, Code: "AccessDeniedException", Message: "User: x is not authorized to perform: kinesisvideo:ConnectAsMaster on resource: y", Role: kvs.Master},
			Diagnosis{Cause: CausePermission}},
		{"permission, a message that lower-cases longer", Failure{Status: 403, Code: "AccessDeniedException", Message: "User: İİİİ is not authorized to perform: kinesisvideo:ListSignalingChannels on resource: *"},
			Diagnosis{Cause: CausePermission}},
		{"permission, no resource named", Failure{Status: 403, Code: "AccessDeniedException", Message: "User: x is not authorized to perform: kinesisvideo:ConnectAsMaster on resource: "},
			Diagnosis{Cause: CausePermission}},
		{"master URL at the viewer endpoint", Failure{Status: 400, Message: "Invalid ClientId specified !", Role: kvs.Master, Endpoint: "ws://127.0.0.1:1/signaling/viewer/v-1"},
			Diagnosis{Cause: CauseWrongEndpoint}},
		{"invalid client id", Failure{Status: 400, Message: "Invalid ClientId specified !", Role: kvs.Viewer, ClientID: "AWS_x"},
			Diagnosis{Cause: CauseClientID}},
		{"eleventh viewer", Failure{Status: 400, Code: "ClientLimitExceededException", Message: "Maximum number of clients reached"},
			Diagnosis{Cause: CauseTooManyViewers}},
		{"throttled connects", Failure{Status: 400, Code: "ClientLimitExceededException", Message: "Kinesis Video Streams has throttled the request"},
			Diagnosis{Cause: CauseThrottled}},
		{"unknown channel", Failure{Status: 404, Channel: "cam", Region: "us-west-2"}, Diagnosis{Cause: CauseUnknownChannel}},
		{"viewer at the master endpoint (AWS)", Failure{Status: 400, Code: "InvalidArgumentException", Message: "bad", Role: kvs.Viewer, Endpoint: "wss://m-1234abcd.kinesisvideo.us-west-2.amazonaws.com"},
			Diagnosis{Cause: CauseWrongEndpoint}},
		{"plain 403", Failure{Status: 403, Role: kvs.Viewer}, Diagnosis{Cause: CausePermission}},
		{"invalid argument", Failure{Status: 400, Code: "ValidationException", Message: "1 validation error"}, Diagnosis{Cause: CauseInvalidArgument}},
		{"5xx", Failure{Status: 503, Attempts: 4}, Diagnosis{Cause: CauseServiceError}},
		{"no credentials", Failure{Message: "kvs: retrieving credentials: failed to refresh cached credentials, no EC2 IMDS role found"}, Diagnosis{Cause: CauseNoCredentials}},
		{"no answer", Failure{NoAnswer: true, Message: "dial tcp 127.0.0.1:1: connect: connection refused"}, Diagnosis{Cause: CauseUnreachable}},
		{"unexplained", Failure{Status: 418, Message: "teapot"}, Diagnosis{}},
	}
	for _, tc := range cases {
		got := Explain(tc.in)
		if got.Cause == CausePermission && !strings.Contains(got.Fix, "kinesisvideo:") {
			t.Errorf("%s: fix %q does not name the action", tc.name, got.Fix)
		}
		if got.Cause != tc.want.Cause || got.SuggestedClockOffset != tc.want.SuggestedClockOffset {
			t.Errorf("%s: Explain = %+v; want cause %q, offset %q", tc.name, got, tc.want.Cause, tc.want.SuggestedClockOffset)
		}
		if got.Cause != "" && (got.Explanation == "" || got.Fix == "" && got.Cause != CauseInvalidArgument) {
			t.Errorf("%s: diagnosis %+v lacks an explanation or a fix", tc.name, got)
		}
	}
}

func TestExplainTexts(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   Failure
		want Diagnosis
	}{
		{"skew", Failure{Status: 403, Message: "Signature expired", ServerDate: now.Add(10 * time.Minute), LocalNow: now}, Diagnosis{
			Cause:                CauseClockSkew,
			Explanation:          "clock skew: the signing clock (this machine's) is 10m0s behind the service's (its Date header: Mon, 23 Nov 2026 10:10:00 UTC), beyond the 5 minutes SigV4 allows",
			Fix:                  "rerun with --clock-offset=10m0s (it is added to the local clock), or set this machine's clock right (NTP)",
			SuggestedClockOffset: "10m0s"}},
		{"permission on the resource named", Failure{Status: 403, Code: "AccessDeniedException",
			Message: "User: u is not authorized to perform: kinesisvideo:ConnectAsViewer on resource: arn:aws:kinesisvideo:us-west-2:1:channel/cam/1.", Role: kvs.Viewer}, Diagnosis{
			Cause:       CausePermission,
			Explanation: "access denied: the principal that signed lacks the kinesisvideo:ConnectAsViewer permission on arn:aws:kinesisvideo:us-west-2:1:channel/cam/1 (or a session policy or SCP removes it)",
			Fix:         "allow kinesisvideo:ConnectAsViewer on arn:aws:kinesisvideo:us-west-2:1:channel/cam/1 in the signer's IAM policy"}},
		{"region from the ARN", Failure{Status: 403, Message: "Credential should be scoped to a valid region", Region: "eu-west-1", ARNRegion: "us-west-2"}, Diagnosis{
			Cause:       CauseRegion,
			Explanation: "region mismatch: the request was signed for eu-west-1, but the service or channel is in another region; the channel ARN says us-west-2",
			Fix:         "use --region us-west-2 (the channel ARN's region)"}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, Explain(tc.in)); diff != "" {
			t.Errorf("%s: Explain (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestFromURL(t *testing.T) {
	const arn = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam/1"
	cases := []struct {
		name string
		url  string
		want Failure
	}{
		{"viewer on AWS", "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=" + arn +
			"&X-Amz-ClientId=viewer-1&X-Amz-Credential=AKID%2F20261123%2Feu-west-1%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20261123T100000Z&X-Amz-Signature=00",
			Failure{Endpoint: "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com/", Channel: arn, ARNRegion: "us-west-2", Region: "eu-west-1",
				ClientID: "viewer-1", Role: kvs.Viewer, SignedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}},
		{"a client id makes a viewer", "ws://127.0.0.1:1/x?X-Amz-ClientId=v",
			Failure{Endpoint: "ws://127.0.0.1:1/x", ClientID: "v", Role: kvs.Viewer}},
		{"the endpoint's shape wins", "ws://127.0.0.1:1/signaling/master/m?X-Amz-ClientId=v",
			Failure{Endpoint: "ws://127.0.0.1:1/signaling/master/m", ClientID: "v", Role: kvs.Master}},
		{"unreadable", "ws://%zz", Failure{}},
	}
	for _, tc := range cases {
		var got Failure
		got.FromURL(tc.url)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: FromURL (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestEndpointRole(t *testing.T) {
	cases := map[string]kvs.Role{
		"wss://m-1234abcd.kinesisvideo.us-west-2.amazonaws.com":       kvs.Master,
		"wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com":       kvs.Viewer,
		"ws://127.0.0.1:4566/signaling/master/x":                      kvs.Master,
		"ws://127.0.0.1:4566/signaling/viewer/x":                      kvs.Viewer,
		"wss://m-1234abcd.example.com":                                "",
		"wss://example.com/ws":                                        "",
		"https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com/x/y": "",
		"::": "",
	}
	for in, want := range cases {
		if got := EndpointRole(in); got != want {
			t.Errorf("EndpointRole(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzExplain: whatever a service answers, explaining it does not panic,
// and a diagnosis comes with its explanation.
func FuzzExplain(f *testing.F) {
	f.Add(403, "AccessDeniedException", "User: x is not authorized to perform: kinesisvideo:ConnectAsMaster on resource: y")
	f.Add(403, "", "Signature expired: 20261123T094000Z is now earlier than 20261123T100000Z")
	f.Add(400, "InvalidArgumentException", "Invalid ClientId")
	f.Add(403, "AccessDeniedException", "perform: on resource: ")
	f.Fuzz(func(t *testing.T, status int, code, message string) {
		d := Explain(Failure{Status: status, Code: code, Message: message, Role: kvs.Viewer, ClientID: "v"})
		if d.Cause != "" && d.Explanation == "" {
			t.Fatalf("diagnosis %+v has no explanation", d)
		}
	})
}

// FuzzFromURL: any text given as a URL fills a Failure without panicking.
func FuzzFromURL(f *testing.F) {
	f.Add("wss://v-1.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ClientId=v&X-Amz-Credential=a%2Fb%2Fc%2Fd%2Fe")
	f.Add("ws://%zz")
	f.Fuzz(func(t *testing.T, u string) {
		var got Failure
		got.FromURL(u)
	})
}

func TestHandshake(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	viewerURL := "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A1%3Achannel%2Fcam%2F1&X-Amz-ClientId=AWS_x&X-Amz-Signature=REDACTED"
	masterAtViewer := "ws://127.0.0.1:1/signaling/viewer/v?X-Amz-ChannelARN=arn&X-Amz-Signature=REDACTED"
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"skew", &signaling.HandshakeError{StatusCode: 403, Message: "Signature expired", Date: now.Add(10 * time.Minute), URL: viewerURL}, CauseClockSkew},
		{"client id from the URL", &signaling.HandshakeError{StatusCode: 400, Message: "Invalid ClientId specified !", URL: viewerURL}, CauseClientID},
		{"role from the URL", &signaling.HandshakeError{StatusCode: 400, Message: "Invalid ClientId specified !", URL: masterAtViewer}, CauseWrongEndpoint},
		{"after giving up", &signaling.GiveUpError{Attempts: 4, Last: &signaling.HandshakeError{StatusCode: 503}}, CauseServiceError},
		{"no answer", errors.New("signaling: connecting to ws://127.0.0.1:1/: dial tcp 127.0.0.1:1: connect: connection refused"), CauseUnreachable},
	}
	for _, tc := range cases {
		if got := Handshake(tc.err, now); got.Cause != tc.want {
			t.Errorf("%s: Handshake = %+v; want cause %q", tc.name, got, tc.want)
		}
	}
	if d := Handshake(&signaling.GiveUpError{Attempts: 4, Last: &signaling.HandshakeError{StatusCode: 503}}, now); !strings.Contains(d.Explanation, "after 4 attempts") {
		t.Errorf("explanation %q does not count the attempts", d.Explanation)
	}
}
