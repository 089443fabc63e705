package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvssign/kvssign/emulator"
)

func TestChannelLifecycle(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	ep := "--endpoint-url=" + v.url

	r := cli(t, nil, "channel", "create", "front-door", "--message-ttl", "30s", "--tag", "site=home", ep)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "arn:aws:kinesisvideo:us-west-2:123456789012:channel/front-door/") {
		t.Fatalf("channel create: %v", r)
	}
	arn := strings.TrimSpace(r.stdout)

	if r := cli(t, nil, "channel", "create", "front-door", ep); r.code != 1 || !strings.Contains(r.stderr, "ResourceInUseException") {
		t.Errorf("creating it again: %v; want exit 1 naming ResourceInUseException", r)
	}
	r = cli(t, nil, "channel", "create", "back-door", ep, "--output", "json")
	var created map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || !strings.Contains(created["channelArn"], "back-door") {
		t.Errorf("channel create --output json: %v", r)
	}

	r = cli(t, nil, "channel", "describe", "front-door", ep)
	for _, want := range []string{"name:", "front-door", arn, "ACTIVE", "SINGLE_MASTER", "message ttl:  30s"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("channel describe: %v; want %q", r, want)
		}
	}
	r = cli(t, nil, "channel", "describe", arn, ep, "--output", "json")
	var ch channelJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ch) != nil || ch.ARN != arn || ch.MessageTTLSeconds != 30 || ch.Status != "ACTIVE" {
		t.Errorf("channel describe ARN --output json: %v", r)
	}

	r = cli(t, nil, "channel", "list", ep)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "back-door") {
		t.Errorf("channel list: %v; want two lines", r)
	}
	r = cli(t, nil, "channel", "list", "--prefix", "front", ep, "--output", "json")
	var list []channelJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 || list[0].Name != "front-door" {
		t.Errorf("channel list --prefix front --output json: %v", r)
	}

	if r := cli(t, nil, "channel", "delete", "front-door", ep); r.code != 0 || r.stdout != "deleted front-door\n" {
		t.Errorf("channel delete: %v", r)
	}
	r = cli(t, nil, "channel", "describe", "front-door", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "kvssign channel create") {
		t.Errorf("describing a deleted channel: %v; want exit 1 with the cause and fix", r)
	}
	if r := cli(t, nil, "channel", "delete", arn, ep); r.code != 1 {
		t.Errorf("deleting twice: %v; want exit 1", r)
	}
	r = cli(t, nil, "channel", "list", ep, "--output", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 {
		t.Errorf("channel list after delete: %v", r)
	}
}

func TestChannelUsageErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	ep := "--endpoint-url=" + v.url
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"channel"}, "give a subcommand"},
		{"unknown subcommand", []string{"channel", "rename", "x"}, ""},
		{"no name", []string{"channel", "create"}, "accepts 1 arg"},
		{"bad name", []string{"channel", "create", "a b"}, "must contain only a-z A-Z 0-9 _ . -"},
		{"ARN to create", []string{"channel", "create", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1"}, "give a name"},
		{"bad ttl", []string{"channel", "create", "x", "--message-ttl", "2s"}, "--message-ttl 2s: must be whole seconds from 5s to 2m0s"},
		{"bad tag", []string{"channel", "create", "x", "--tag", "novalue"}, "must be KEY=VALUE"},
		{"bad ARN", []string{"channel", "describe", "arn:aws:kinesisvideo:us-west-2:123:stream/x/1"}, "must start with channel/"},
		{"bad output", []string{"channel", "list", "--output", "xml"}, "must be text or json"},
		{"bad region", []string{"channel", "list", "--region", "Mars"}, `region "Mars"`},
		{"bad endpoint url", []string{"channel", "list", "--endpoint-url", "ftp://x"}, "must be http:// or https://"},
		{"missing profile", []string{"channel", "list", "--profile", "nope"}, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "endpoint-url") {
				args = append(args, ep)
			}
			r := cli(t, nil, args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v; want exit 2 mentioning %q", r, tc.want)
			}
		})
	}
	if n := v.e.Stats().Calls[emulator.OpCreateSignalingChannel]; n != 0 {
		t.Errorf("usage errors made %d calls; want 0", n)
	}
}
