package emulator_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
)

// channelSummary lists the channels of e as name → ARN, version,
// MessageTtlSeconds and tags.
func channelSummary(t *testing.T, e *emulator.Emulator) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	out, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ci := range out.ChannelInfoList {
		tags, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: ci.ChannelARN})
		if err != nil {
			t.Fatal(err)
		}
		s := []string{*ci.ChannelARN, *ci.Version, fmt.Sprint(*ci.SingleMasterConfiguration.MessageTtlSeconds)}
		for k, v := range tags.Tags {
			s = append(s, k+"="+v)
		}
		slices.Sort(s[3:])
		got[*ci.ChannelName] = strings.Join(s, " ")
	}
	return got
}

// TestStateJournalReplay: changes since the snapshot are in the journal;
// an emulator that stops without a clean Close (a crash) loses none of
// them, and a partial last line, from a crash mid-write, is ignored.
func TestStateJournalReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	cfg := fastConfig()
	cfg.StateFile = path
	e1 := start(t, cfg)
	ctx := ctxT(t)
	c := sdkClient(e1, exampleCreds())
	mustCreate(t, e1, "a")
	arnB, arnC := mustCreate(t, e1, "b"), mustCreate(t, e1, "c")
	if _, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String(arnB), Tags: sdkTags("k", "v")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arnB)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{ChannelARN: aws.String(arnB), CurrentVersion: d.ChannelInfo.Version,
		SingleMasterConfiguration: &kvtypes.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(30)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arnC)}); err != nil {
		t.Fatal(err)
	}
	want := channelSummary(t, e1)
	if _, err := os.Stat(path + ".log"); err != nil {
		t.Fatalf("no journal after changes: %v", err)
	}
	// A crash while appending leaves a partial line.
	f, err := os.OpenFile(path+".log", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"delete":"a`)
	f.Close()

	// e1 never closes cleanly before e2 reads the files.
	e2 := start(t, cfg)
	if diff := cmp.Diff(want, channelSummary(t, e2)); diff != "" {
		t.Errorf("channels after replay (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(path + ".log"); !os.IsNotExist(err) {
		t.Errorf("journal still there after loading (%v); want it folded into the snapshot", err)
	}
	e2.Close()
	e3 := start(t, cfg)
	if diff := cmp.Diff(want, channelSummary(t, e3)); diff != "" {
		t.Errorf("channels from the compacted snapshot (-want +got):\n%s", diff)
	}
}

func TestStateJournalErrors(t *testing.T) {
	for _, tc := range []struct{ name, journal, want string }{
		{"not JSON", "{\"put\":\n", "line 1: corrupt"},
		{"both", `{"put":{"name":"x"},"delete":"x"}` + "\n", `line 1: corrupt (want exactly one of "put", "delete", "putStream" and "deleteStream")`},
		{"bad stream", `{"putStream":{"name":"s","arn":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/t/1","creationTimeMs":1,"version":"v"}}` + "\n", `line 1: stream "s": arn does not match`},
		{"neither", "{}\n", "line 1: corrupt"},
		{"bad channel", `{"delete":"a"}` + "\n" + `{"put":{"name":"x y","arn":"a","creationTimeMs":1,"messageTtlSeconds":60,"version":"v","endpointId":"01234567"}}` + "\n", `line 2: channel "x y"`},
		{"unknown field", `{"put":{"name":"x","color":"red"}}` + "\n", "line 1: corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			os.WriteFile(path+".log", []byte(tc.journal), 0o600)
			_, err := emulator.New(emulator.Config{StateFile: path, DisableTURN: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix or remove it") {
				t.Errorf("New = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestStateJournalCompaction: once the journal is longer than the number
// of channels plus a slack of 1024 lines, the next change writes a
// snapshot and removes the journal.
func TestStateJournalCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("1,026 synced writes")
	}
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := fastConfig()
	cfg.StateFile = path
	e := start(t, cfg)
	c := sdkClient(e, exampleCreds())
	arn := mustCreate(t, e, "busy")
	for i := range 1025 {
		if i == 1024 {
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("snapshot written after %d changes (%v); want only the journal", i+1, err)
			}
		}
		tag := sdkTags("n", fmt.Sprint(i))
		if _, err := c.TagResource(ctxT(t), &kinesisvideo.TagResourceInput{ResourceARN: aws.String(arn), Tags: tag}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no snapshot after 1,026 changes: %v", err)
	}
	if !strings.Contains(string(b), `"Value": "1024"`) {
		t.Errorf("snapshot lacks the last change:\n%s", b)
	}
	if _, err := os.Stat(path + ".log"); !os.IsNotExist(err) {
		t.Errorf("journal still there after compaction (%v)", err)
	}
}

// FuzzStateJournal: whatever the journal holds, New loads it or refuses
// it with an error; it never panics.
func FuzzStateJournal(f *testing.F) {
	for _, s := range []string{
		`{"put":{"name":"x","arn":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1","creationTimeMs":1,"messageTtlSeconds":60,"version":"v","endpointId":"01234567"}}` + "\n" + `{"delete":"x"}` + "\n",
		`{"delete":"nope"}` + "\n" + `{"put":`, "\n\n", "",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, journal []byte) {
		path := filepath.Join(dir, "state.json")
		os.Remove(path)
		if err := os.WriteFile(path+".log", journal, 0o600); err != nil {
			t.Fatal(err)
		}
		e, err := emulator.New(emulator.Config{StateFile: path, DisableTURN: true})
		if err == nil {
			e.Close()
		} else if !strings.HasPrefix(err.Error(), "emulator: state journal") {
			t.Fatalf("New = %v; want a state journal error", err)
		}
	})
}
