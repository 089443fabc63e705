package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvssign/kvssign/emulator"
)

func TestStreamAndStorageCommands(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	ep := "--endpoint-url=" + v.url
	chARN := v.channel(t, "cam")

	r := cli(t, nil, "stream", "create", "cam-recordings", "--retention", "24h", "--media-type", "video/h264", "--tag", "site=home", ep)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam-recordings/") {
		t.Fatalf("stream create: %v", r)
	}
	arn := strings.TrimSpace(r.stdout)
	if r := cli(t, nil, "stream", "create", "cam-recordings", "--retention", "1h", ep); r.code != 1 || !strings.Contains(r.stderr, "ResourceInUseException") {
		t.Errorf("creating it again: %v; want exit 1 naming ResourceInUseException", r)
	}
	r = cli(t, nil, "stream", "create", "scratch", ep, "--output", "json")
	var created map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || !strings.Contains(created["streamArn"], "scratch") {
		t.Errorf("stream create --output json: %v", r)
	}

	r = cli(t, nil, "stream", "describe", "cam-recordings", ep)
	for _, want := range []string{arn, "ACTIVE", "video/h264", "retention:   24h0m0s"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("stream describe: %v; want %q", r, want)
		}
	}
	r = cli(t, nil, "stream", "describe", arn, ep, "--output", "json")
	var st streamJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Name != "cam-recordings" || st.DataRetentionInHours != 24 {
		t.Errorf("stream describe ARN --output json: %v", r)
	}
	r = cli(t, nil, "stream", "list", ep)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "scratch") {
		t.Errorf("stream list: %v; want two lines", r)
	}
	r = cli(t, nil, "stream", "list", "--prefix", "cam", ep, "--output", "json")
	var list []streamJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 || list[0].ARN != arn {
		t.Errorf("stream list --prefix cam --output json: %v", r)
	}

	r = cli(t, nil, "channel", "storage", "describe", "cam", ep)
	if r.code != 0 || !strings.Contains(r.stdout, "DISABLED") {
		t.Errorf("channel storage describe before: %v; want DISABLED", r)
	}
	r = cli(t, nil, "channel", "storage", "enable", "cam", "--stream", "scratch", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "NoDataRetentionException") {
		t.Errorf("enabling into a stream without retention: %v; want exit 1 naming NoDataRetentionException", r)
	}
	r = cli(t, nil, "channel", "storage", "enable", "cam", "--stream", "cam-recordings", ep)
	if r.code != 0 || !strings.Contains(r.stdout, "ENABLED") || !strings.Contains(r.stdout, arn) {
		t.Errorf("channel storage enable: %v", r)
	}
	r = cli(t, nil, "channel", "storage", "describe", chARN, ep, "--output", "json")
	var sj storageJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sj) != nil || sj.Status != "ENABLED" || sj.StreamARN != arn {
		t.Errorf("channel storage describe --output json: %v", r)
	}
	if r := cli(t, nil, "stream", "delete", "cam-recordings", ep); r.code != 1 || !strings.Contains(r.stderr, "ResourceInUseException") {
		t.Errorf("deleting a stream in use: %v; want exit 1", r)
	}
	r = cli(t, nil, "channel", "storage", "disable", "cam", ep, "--output", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sj) != nil || sj.Status != "DISABLED" {
		t.Errorf("channel storage disable: %v", r)
	}
	if r := cli(t, nil, "stream", "delete", "cam-recordings", ep); r.code != 0 || r.stdout != "deleted cam-recordings\n" {
		t.Errorf("stream delete: %v", r)
	}
	r = cli(t, nil, "stream", "describe", "cam-recordings", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "the stream cam-recordings does not exist") || !strings.Contains(r.stderr, "kvssign stream create") {
		t.Errorf("describing a deleted stream: %v; want exit 1 with the cause and fix", r)
	}
	r = cli(t, nil, "channel", "storage", "enable", "cam", "--stream", "cam-recordings", ep, "--output", "json")
	if r.code != 1 || !strings.Contains(r.stdout, "unknown-stream") {
		t.Errorf("enabling into a deleted stream --output json: %v; want the diagnosis as JSON", r)
	}
}

func TestStreamAndStorageUsageErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	ep := "--endpoint-url=" + v.url
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"stream"}, "give a subcommand"},
		{"bad name", []string{"stream", "create", "a b"}, "1 to 256 characters"},
		{"ARN to create", []string{"stream", "create", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/x/1"}, "give a name"},
		{"retention in minutes", []string{"stream", "create", "x", "--retention", "90m"}, "--retention 1h30m0s: must be whole hours"},
		{"bad tag", []string{"stream", "create", "x", "--tag", "novalue"}, "must be KEY=VALUE"},
		{"bad stream ARN", []string{"stream", "describe", "arn:aws:kinesisvideo:us-west-2:123:channel/x/1"}, "stream/NAME/CREATION_MS"},
		{"bad prefix", []string{"stream", "list", "--prefix", "a b"}, "--prefix"},
		{"storage no subcommand", []string{"channel", "storage"}, "enable, disable or describe"},
		{"enable without stream", []string{"channel", "storage", "enable", "cam"}, "--stream NAME|ARN is required"},
		{"enable bad stream", []string{"channel", "storage", "enable", "cam", "--stream", "a/b"}, "--stream"},
		{"storage bad channel", []string{"channel", "storage", "describe", "a b"}, "NAME|ARN"},
		{"join without channel", []string{"join-storage"}, "--channel NAME or --channel-arn ARN is required"},
		{"join viewer without id", []string{"join-storage", "--channel", "cam", "--as-viewer"}, "needs --client-id"},
		{"join master with id", []string{"join-storage", "--channel", "cam", "--client-id", "v1"}, "is for --as-viewer"},
		{"join bad id", []string{"join-storage", "--channel", "cam", "--as-viewer", "--client-id", "a b"}, "--client-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, nil, append(tc.args, ep)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v; want exit 2 mentioning %q", r, tc.want)
			}
		})
	}
	st := v.e.Stats()
	for _, op := range []string{"CreateStream", "DescribeStream", "ListStreams", "UpdateMediaStorageConfiguration", emulator.OpGetSignalingChannelEndpoint} {
		if n := st.Calls[op]; n != 0 {
			t.Errorf("usage errors made %d %s calls; want 0", n, op)
		}
	}
}

func TestJoinStorageWithoutStorage(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.channel(t, "cam")
	r := cli(t, nil, "join-storage", "--channel", "cam", "--endpoint-url="+v.url)
	if r.code != 1 || !strings.Contains(r.stderr, "InvalidArgumentException") || !strings.Contains(r.stderr, "WEBRTC") {
		t.Errorf("join-storage on a channel without storage: %v; want exit 1 naming InvalidArgumentException", r)
	}
}
