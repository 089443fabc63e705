package awskvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/sigv4"
)

var testCreds = sigv4.Credentials{AccessKeyID: "ASIAICETEST", SecretAccessKey: "ice-secret", SessionToken: "ice-token"}

// iceServer answers GetIceServerConfig at /ice/v1/get-ice-server-config
// after checking the signature; status, if set, is returned instead.
func iceServer(t *testing.T, clock *fakeClock, ttl int, status *atomic.Int64) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	v := &sigv4.Verifier{Service: "kinesisvideo", Region: "us-west-2", Clock: clock.Now,
		Lookup: func(_ context.Context, id string) (sigv4.Credentials, error) {
			if id != testCreds.AccessKeyID {
				return sigv4.Credentials{}, sigv4.ErrUnknownAccessKey
			}
			return testCreds, nil
		}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if s := status.Load(); s != 0 {
			w.Header().Set("x-amzn-ErrorType", "ClientLimitExceededException:http://internal.amazon.com/")
			w.WriteHeader(int(s))
			fmt.Fprint(w, `{"Message":"Too many calls"}`)
			return
		}
		if r.URL.Path != "/ice/v1/get-ice-server-config" || r.Method != http.MethodPost {
			http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
			return
		}
		if _, err := v.VerifyRequest(r.Context(), r, ""); err != nil {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		body, _ := io.ReadAll(r.Body)
		var in map[string]string
		if err := json.Unmarshal(body, &in); err != nil || in["Service"] != "TURN" || !strings.HasPrefix(in["ChannelARN"], "arn:") {
			http.Error(w, "bad body "+string(body), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"IceServerList":[{"Password":"pw1","Ttl":%d,"Uris":["turn:127.0.0.1:3478?transport=udp"],"Username":"u1:%s"},{"Password":"pw2","Ttl":%d,"Uris":["turns:127.0.0.1:5349?transport=tcp"],"Username":"u2"}]}`,
			ttl, in["ClientId"], ttl+60)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// endpointsAPI is a fakeAPI whose HTTPS endpoint is a test server.
type endpointsAPI struct {
	*fakeAPI
	https string
}

func (a *endpointsAPI) GetSignalingChannelEndpoint(ctx context.Context, in *kinesisvideo.GetSignalingChannelEndpointInput, opts ...func(*kinesisvideo.Options)) (*kinesisvideo.GetSignalingChannelEndpointOutput, error) {
	out, err := a.fakeAPI.GetSignalingChannelEndpoint(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	for i := range out.ResourceEndpointList {
		if out.ResourceEndpointList[i].Protocol == types.ChannelProtocolHttps {
			out.ResourceEndpointList[i].ResourceEndpoint = aws.String(a.https)
		}
	}
	return out, nil
}

func (a *endpointsAPI) resolver(clock *fakeClock) *Resolver {
	r, _ := newTestResolver(a, clock)
	r.Credentials = testCreds
	return r
}

func TestICEServers(t *testing.T) {
	clock := newFakeClock()
	var status atomic.Int64
	srv, calls := iceServer(t, clock, 300, &status)
	api := &endpointsAPI{fakeAPI: newFakeAPI("cam"), https: srv.URL + "/ice"}
	r := api.resolver(clock)
	ctx := context.Background()

	got, err := r.ICEServers(ctx, "cam", "viewer-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []ICEServer{
		{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u1:viewer-1", Credential: "pw1", Expires: clock.Now().Add(300 * time.Second)},
		{URLs: []string{"turns:127.0.0.1:5349?transport=tcp"}, Username: "u2", Credential: "pw2", Expires: clock.Now().Add(360 * time.Second)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ICEServers (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(got[:1])
	if s := string(b); s != `[{"urls":["turn:127.0.0.1:3478?transport=udp"],"username":"u1:viewer-1","credential":"pw1"}]` {
		t.Errorf("JSON = %s; want RTCIceServer JSON", s)
	}
	if s := fmt.Sprintf("%v %#v", got[0], got[0]); strings.Contains(s, "pw1") {
		t.Errorf("printing an ICEServer shows its credential: %s", s)
	}

	// Cached until the shortest Ttl less the margin.
	got[0].URLs[0] = "changed by the caller"
	clock.Advance(300*time.Second - ICEMargin - time.Second)
	again, err := r.ICEServers(ctx, "cam", "viewer-1")
	if err != nil || calls.Load() != 1 {
		t.Fatalf("second ICEServers: %v after %d calls; want the cached servers", err, calls.Load())
	}
	if again[0].URLs[0] != "turn:127.0.0.1:3478?transport=udp" {
		t.Errorf("the cache kept a caller's change: %v", again[0].URLs)
	}
	// Another client id is another entry.
	if _, err := r.ICEServers(ctx, "cam", "viewer-2"); err != nil || calls.Load() != 2 {
		t.Errorf("ICEServers for another client: %v, %d calls; want 2", err, calls.Load())
	}
	clock.Advance(2 * time.Second)
	if _, err := r.ICEServers(ctx, "cam", "viewer-1"); err != nil || calls.Load() != 3 {
		t.Errorf("ICEServers past Ttl-margin: %v, %d calls; want 3", err, calls.Load())
	}

	// Throttling is retried, then reported with the service's code.
	status.Store(400)
	clock.Advance(time.Hour)
	_, err = r.ICEServers(ctx, "cam", "viewer-1")
	var ae smithy.APIError
	if !errors.Is(err, ErrThrottled) || !errors.As(err, &ae) || ae.ErrorCode() != "ClientLimitExceededException" {
		t.Errorf("ICEServers while throttled: %v; want ErrThrottled with the code", err)
	}
	if n := calls.Load(); n != 3+DefaultMaxAttempts {
		t.Errorf("%d calls; want %d", n, 3+DefaultMaxAttempts)
	}
}

func TestICEServersAccessDenied(t *testing.T) {
	clock := newFakeClock()
	var status atomic.Int64
	srv, _ := iceServer(t, clock, 300, &status)
	api := &endpointsAPI{fakeAPI: newFakeAPI("cam"), https: srv.URL + "/ice"}
	r := api.resolver(clock)
	r.Credentials = sigv4.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: "x"}
	_, err := r.ICEServers(context.Background(), "cam", "")
	if !errors.Is(err, ErrAccessDenied) {
		t.Errorf("ICEServers with an unknown key: %v; want ErrAccessDenied", err)
	}
}
