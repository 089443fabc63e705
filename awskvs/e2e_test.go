package awskvs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
)

// TestMain keeps the tests on loopback: no DNS (so no AWS host name is
// ever reached by mistake), no EC2 instance metadata, no shared config
// from the machine.
func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("tests resolve no names: use 127.0.0.1")
	}}
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// emulatorConfig loads an aws.Config for the emulator with its long-term
// credentials.
func emulatorConfig(t testing.TB, e *emulator.Emulator, o awskvs.ConfigOptions) aws.Config {
	t.Helper()
	c := e.Credentials()
	o.EndpointURL = e.URL()
	if o.Region == "" {
		o.Region = e.Region()
	}
	cfg, err := awskvs.LoadConfig(context.Background(), o,
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// connect opens and closes a signaling connection with url, and fails
// the test if the handshake is refused.
func connect(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connecting: HTTP %d: %v", status, redactErr(err))
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// redactErr keeps a signed URL's signature out of the test log.
func redactErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "?"); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

func TestEmulatorChannelLifecycle(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	ctx := context.Background()

	arn, err := r.CreateChannel(ctx, "front-door", 30*time.Second, map[string]string{"site": "home"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateChannel(ctx, "front-door", 0, nil); err == nil {
		t.Error("creating the channel twice succeeded")
	}
	for _, ch := range []string{"front-door", arn} {
		c, err := r.DescribeChannel(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if c.ARN != arn || c.Name != "front-door" || c.Status != "ACTIVE" || c.MessageTTL != 30*time.Second || c.Type != "SINGLE_MASTER" {
			t.Errorf("DescribeChannel(%q) = %+v", ch, c)
		}
	}
	if _, err := r.CreateChannel(ctx, "back-door", 0, nil); err != nil {
		t.Fatal(err)
	}
	list, err := r.ListChannels(ctx, "front")
	if err != nil || len(list) != 1 || list[0].ARN != arn {
		t.Errorf("ListChannels(front) = %+v, %v; want front-door alone", list, err)
	}
	if all, err := r.ListChannels(ctx, ""); err != nil || len(all) != 2 {
		t.Errorf("ListChannels() = %d channels, %v; want 2", len(all), err)
	}

	for _, role := range []kvs.Role{kvs.Master, kvs.Viewer} {
		c, err := r.Resolve(ctx, "front-door", role)
		if err != nil {
			t.Fatal(err)
		}
		if c.ChannelARN != arn || !strings.HasPrefix(c.WSSEndpoint, "ws://127.0.0.1:") || !strings.HasPrefix(c.HTTPSEndpoint, "http://127.0.0.1:") {
			t.Errorf("Resolve(%s) = %+v", role, c)
		}
	}
	servers, err := r.ICEServers(ctx, "front-door", "viewer-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) == 0 || !strings.HasPrefix(servers[0].URLs[0], "turn:127.0.0.1:") || servers[0].Credential == "" {
		t.Errorf("ICEServers = %v", servers)
	}
	master, err := r.Presign(ctx, "front-door", kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, master.URL)
	viewer, err := r.Presign(ctx, "front-door", kvs.Viewer, "viewer-1")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, viewer.URL)

	if err := r.DeleteChannel(ctx, "front-door"); err != nil {
		t.Fatal(err)
	}
	_, err = r.DescribeChannel(ctx, arn)
	var ae smithy.APIError
	if !errors.Is(err, awskvs.ErrNotFound) || !errors.As(err, &ae) || ae.ErrorCode() != "ResourceNotFoundException" {
		t.Errorf("DescribeChannel after delete: %v; want ErrNotFound with ResourceNotFoundException", err)
	}
	if _, err := r.Presign(ctx, "front-door", kvs.Master, ""); !errors.Is(err, awskvs.ErrNotFound) {
		t.Errorf("Presign after delete: %v; want ErrNotFound", err)
	}
	if err := r.DeleteChannel(ctx, arn); !errors.Is(err, awskvs.ErrNotFound) {
		t.Errorf("deleting twice: %v; want ErrNotFound", err)
	}
}

func TestEmulatorThousandPresignsOneCallEach(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	ctx := context.Background()
	before := e.Stats()
	start := time.Now()
	var last kvs.SignedURL
	for i := range 1000 {
		s, err := r.Presign(ctx, "cam", kvs.Viewer, fmt.Sprintf("viewer-%d", i))
		if err != nil {
			t.Fatalf("Presign #%d: %v", i, err)
		}
		last = s
	}
	took := time.Since(start)
	after := e.Stats()
	for _, op := range []string{emulator.OpDescribeSignalingChannel, emulator.OpGetSignalingChannelEndpoint} {
		if n := after.Calls[op] - before.Calls[op]; n != 1 {
			t.Errorf("1000 presigns made %d %s calls; want 1", n, op)
		}
	}
	connect(t, last.URL)
	t.Logf("1000 presigns through one Resolver: %v (%v each)", took, took/1000)
}

func TestEmulatorConcurrentMissesOneCall(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for i := range 100 {
		wg.Go(func() {
			<-start
			if _, err := r.Presign(context.Background(), "cam", kvs.Viewer, fmt.Sprintf("v%d", i)); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	s := e.Stats()
	for _, op := range []string{emulator.OpDescribeSignalingChannel, emulator.OpGetSignalingChannelEndpoint} {
		if n := s.Calls[op]; n != 1 {
			t.Errorf("100 concurrent presigns made %d %s calls; want 1", n, op)
		}
	}
}

func TestEmulatorRetriesAndStale(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	r.Clock = func() time.Time { return time.Unix(0, now.Load()) }
	r.CacheTTL = time.Hour
	ctx := context.Background()

	// Two throttled answers, then success: one Resolve, three calls.
	if err := e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.FaultThrottle, Operations: []string{emulator.OpDescribeSignalingChannel}, Count: 2}); err != nil {
		t.Fatal(err)
	}
	fresh, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil {
		t.Fatalf("Resolve through two throttled answers: %v", err)
	}
	if n := e.Stats().Calls[emulator.OpDescribeSignalingChannel]; n != 3 {
		t.Errorf("%d Describe calls; want 3 (two throttled, one answered)", n)
	}

	// The service fails for good after the cache expired: stale values.
	if err := e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.Fault503}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(time.Hour + time.Second))
	c, err := r.Resolve(ctx, "cam", kvs.Master)
	if err != nil || !c.Stale || c.WSSEndpoint != fresh.WSSEndpoint {
		t.Errorf("Resolve during an outage = %+v, %v; want the stale endpoints", c, err)
	}
	now.Add(int64(awskvs.DefaultMaxStale))
	_, err = r.Resolve(ctx, "cam", kvs.Master)
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailableException" {
		t.Errorf("Resolve past the stale window: %v; want ServiceUnavailableException", err)
	}
	e.SetFaults(emulator.Faults{})
}

func TestEmulatorProfileCredentials(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := e.Credentials()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", write("config", "[profile kvs]\nregion = "+e.Region()+"\n"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", write("credentials", "[kvs]\naws_access_key_id = "+c.AccessKeyID+"\naws_secret_access_key = "+c.SecretAccessKey+"\n"))
	cfg, err := awskvs.LoadConfig(context.Background(), awskvs.ConfigOptions{Profile: "kvs", EndpointURL: e.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != e.Region() {
		t.Errorf("region from the profile = %q; want %q", cfg.Region, e.Region())
	}
	r := awskvs.NewResolver(cfg)
	s, err := r.Presign(context.Background(), "cam", kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, s.URL)

	if _, err := awskvs.LoadConfig(context.Background(), awskvs.ConfigOptions{Profile: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("LoadConfig with a missing profile: %v; want an error naming it", err)
	}
}

func TestEmulatorAssumeRoleRenewal(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{STSMinDuration: time.Second, ConnectRate: -1})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	cfg := emulatorConfig(t, e, awskvs.ConfigOptions{
		RoleARN: "arn:aws:iam::123456789012:role/kvs-viewer", ExternalID: "ext-1", RoleDuration: 4 * time.Second,
	})
	r := awskvs.NewResolver(cfg)
	// URLs live two seconds (at least one after X-Amz-Date drops the
	// fraction of a second); credentials are renewed when less than 2.5 s
	// is left, so none is ever signed with credentials that would expire
	// before it, and each lasts about 1.5 s.
	r.Expires = 2 * time.Second
	r.Credentials = awskvs.Credentials(cfg.Credentials, 2500*time.Millisecond)
	ctx := context.Background()
	keys := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		s, err := r.Presign(ctx, "cam", kvs.Viewer, "viewer-1")
		if err != nil {
			t.Fatalf("Presign #%d: %v", n, err)
		}
		creds, _ := r.Credentials.Retrieve(ctx)
		keys[creds.AccessKeyID] = true
		connect(t, s.URL)
		n++
		time.Sleep(100 * time.Millisecond)
	}
	roles := e.Stats().Calls[emulator.OpAssumeRole]
	t.Logf("%d presigned and connected URLs over 5 s; %d AssumeRole calls, %d access keys", n, roles, len(keys))
	if roles < 3 || len(keys) < 3 {
		t.Errorf("%d AssumeRole calls, %d keys in 5 s of sessions renewed every 1.5 s; want at least 3", roles, len(keys))
	}
	for k := range keys {
		if !strings.HasPrefix(k, "ASIA") {
			t.Errorf("signed with %s; want temporary (ASIA…) role credentials", k)
		}
	}
}

func TestEmulatorClockSkew(t *testing.T) {
	// The service's clock is ten minutes ahead of this machine's.
	e := emulatortest.New(t, emulator.Config{Clock: func() time.Time { return time.Now().Add(10 * time.Minute) }})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	r.ClockOffset = 10 * time.Minute // for the URL, which the SDK does not sign
	s, err := r.Presign(context.Background(), "cam", kvs.Master, "")
	if err != nil {
		t.Fatalf("Presign with a skewed clock: %v", err)
	}
	connect(t, s.URL)
	// The control plane corrected itself: the SDK learned the skew from the
	// refusal's Date header, and the Resolver tried once more.
	st := e.Stats()
	if d, g := st.Calls[emulator.OpDescribeSignalingChannel], st.Calls[emulator.OpGetSignalingChannelEndpoint]; d != 2 || g != 1 {
		t.Errorf("%d Describe, %d GetEndpoint calls; want 2 (one refused) and 1", d, g)
	}

	// Without the offset, the URL is refused: the error a caller sees.
	r2 := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	s, err = r2.Presign(context.Background(), "cam", kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.Dial(context.Background(), s.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("a URL signed ten minutes behind: %v; want 403", resp)
	}
}

func TestEmulatorICEServersCachedAndRetried(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	if err := e.SetFaults(emulator.Faults{Share: 1, Kind: emulator.Fault5xx, Operations: []string{emulator.OpGetIceServerConfig}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		servers, err := r.ICEServers(context.Background(), "cam", "viewer-1")
		if err != nil || len(servers) != 2 {
			t.Fatalf("ICEServers: %v, %v", servers, err)
		}
	}
	if n := e.Stats().Calls[emulator.OpGetIceServerConfig]; n != 2 {
		t.Errorf("100 ICEServers calls made %d GetIceServerConfig calls; want 2 (one 500, one answer)", n)
	}
}
