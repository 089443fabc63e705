package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
)

// TestRun makes connections over a few seconds with role credentials that
// live three seconds, so that they are renewed through the emulator's STS
// between connections.
func TestRun(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{STSMinDuration: time.Second, ConnectRate: -1})
	if _, err := e.CreateChannel("repeat", 0); err != nil {
		t.Fatal(err)
	}
	// The standard chain finds these in the environment, and nothing else.
	c := e.Credentials()
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	for _, role := range []kvs.Role{kvs.Viewer, kvs.Master} {
		t.Run(string(role), func(t *testing.T) {
			before := e.Stats()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clientID := ""
			if role == kvs.Viewer {
				clientID = "device-1"
			}
			var out bytes.Buffer
			err := run(ctx, config{
				Channel: "repeat", Role: role, ClientID: clientID,
				Count: 5, Interval: 600 * time.Millisecond, URLLifetime: time.Second,
				AWS: awskvs.ConfigOptions{
					Region: e.Region(), EndpointURL: e.URL(),
					RoleARN: "arn:aws:iam::" + e.Account() + ":role/kvs-device", RoleDuration: 3 * time.Second,
				},
			}, &out)
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 5 {
				t.Fatalf("%d progress lines; want 5", len(lines))
			}
			path := "/signaling/viewer/"
			if role == kvs.Master {
				path = "/signaling/master/"
			}
			keys := map[string]bool{}
			re := regexp.MustCompile(`signed by (ASIA[A-Z0-9]+); closed$`)
			for i, l := range lines {
				if !strings.HasPrefix(l, "connection "+string(rune('1'+i))+"/5: "+string(role)+" connected") || !strings.Contains(l, path) {
					t.Errorf("line %q: want connection %d/5 to the %s endpoint", l, i+1, role)
				}
				m := re.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("line %q: want temporary credentials (ASIA…) from AssumeRole", l)
					continue
				}
				keys[m[1]] = true
			}
			if len(keys) < 2 {
				t.Errorf("all connections signed with %v; want renewed credentials", keys)
			}
			st := e.Stats()
			op := emulator.OpConnectAsViewer
			if role == kvs.Master {
				op = emulator.OpConnectAsMaster
			}
			if n := st.Calls[op] - before.Calls[op]; n != 5 {
				t.Errorf("%s calls: %d; want 5", op, n)
			}
			if n := st.Calls[emulator.OpAssumeRole] - before.Calls[emulator.OpAssumeRole]; n < 2 {
				t.Errorf("AssumeRole calls: %d; want renewals", n)
			}
			// Endpoints are resolved once and cached, not fetched per connection.
			if n := st.Calls[emulator.OpGetSignalingChannelEndpoint] - before.Calls[emulator.OpGetSignalingChannelEndpoint]; n != 1 {
				t.Errorf("GetSignalingChannelEndpoint calls: %d; want 1", n)
			}
			// Nothing is left open.
			deadline := time.Now().Add(5 * time.Second)
			for len(e.Connections()) != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := len(e.Connections()); n != 0 {
				t.Errorf("%d connections left open", n)
			}
		})
	}
}
