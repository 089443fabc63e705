package awskvs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// errCode returns the service's error code in err, or "".
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestEmulatorStreamsAndMediaStorage(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	chARN, err := e.CreateChannel("cam", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	ctx := context.Background()

	arn, err := r.CreateStream(ctx, "cam-recordings", awskvs.StreamOptions{DataRetention: 24 * time.Hour, MediaType: "video/h264", Tags: map[string]string{"site": "home"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateStream(ctx, "cam-recordings", awskvs.StreamOptions{DataRetention: time.Hour}); errCode(err) != "ResourceInUseException" {
		t.Errorf("creating the stream twice: %v; want ResourceInUseException", err)
	}
	for _, s := range []string{"cam-recordings", arn} {
		st, err := r.DescribeStream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if st.ARN != arn || st.Name != "cam-recordings" || st.Status != "ACTIVE" || st.DataRetention != 24*time.Hour || st.MediaType != "video/h264" {
			t.Errorf("DescribeStream(%q) = %+v", s, st)
		}
	}
	if _, err := r.CreateStream(ctx, "no-retention", awskvs.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if list, err := r.ListStreams(ctx, "cam"); err != nil || len(list) != 1 || list[0].ARN != arn {
		t.Errorf("ListStreams(cam) = %+v, %v; want cam-recordings alone", list, err)
	}
	if all, err := r.ListStreams(ctx, ""); err != nil || len(all) != 2 {
		t.Errorf("ListStreams() = %d streams, %v; want 2", len(all), err)
	}

	if _, err := r.StorageEndpoint(ctx, "cam", kvs.Master); !errors.Is(err, awskvs.ErrInvalidArgument) {
		t.Errorf("StorageEndpoint with storage off: %v; want ErrInvalidArgument", err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "no-retention"); errCode(err) != "NoDataRetentionException" {
		t.Errorf("storing into a stream without retention: %v; want NoDataRetentionException", err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "cam-recordings"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"cam", chARN} {
		ms, err := r.DescribeMediaStorage(ctx, ch)
		if err != nil || !ms.Enabled || ms.StreamARN != arn {
			t.Errorf("DescribeMediaStorage(%q) = %+v, %v; want enabled into %s", ch, ms, err, arn)
		}
	}
	ep, err := r.StorageEndpoint(ctx, "cam", kvs.Master)
	if err != nil || !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Errorf("StorageEndpoint = %q, %v; want the emulator's", ep, err)
	}
	before := e.Stats().Calls[emulator.OpGetSignalingChannelEndpoint]
	if again, err := r.StorageEndpoint(ctx, chARN, kvs.Master); err != nil || again != ep {
		t.Errorf("StorageEndpoint again = %q, %v; want %q", again, err, ep)
	}
	if n := e.Stats().Calls[emulator.OpGetSignalingChannelEndpoint] - before; n != 0 {
		t.Errorf("the cached WEBRTC endpoint made %d calls", n)
	}
	if err := r.DeleteStream(ctx, "cam-recordings"); errCode(err) != "ResourceInUseException" {
		t.Errorf("deleting the stream a channel stores into: %v; want ResourceInUseException", err)
	}

	if err := r.UpdateMediaStorage(ctx, chARN, false, ""); err != nil {
		t.Fatal(err)
	}
	if ms, err := r.DescribeMediaStorage(ctx, "cam"); err != nil || ms.Enabled {
		t.Errorf("DescribeMediaStorage after disabling = %+v, %v", ms, err)
	}
	// Disabling forgot the cached endpoint: the service is asked again.
	if _, err := r.StorageEndpoint(ctx, "cam", kvs.Master); !errors.Is(err, awskvs.ErrInvalidArgument) {
		t.Errorf("StorageEndpoint after disabling: %v; want ErrInvalidArgument", err)
	}
	if err := r.DeleteStream(ctx, arn); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DescribeStream(ctx, "cam-recordings"); !errors.Is(err, awskvs.ErrNotFound) {
		t.Errorf("DescribeStream after delete: %v; want ErrNotFound", err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "cam-recordings"); !errors.Is(err, awskvs.ErrNotFound) {
		t.Errorf("storing into a deleted stream: %v; want ErrNotFound", err)
	}
	if _, err := r.DescribeMediaStorage(ctx, "nope"); !errors.Is(err, awskvs.ErrNotFound) {
		t.Errorf("DescribeMediaStorage(nope): %v; want ErrNotFound", err)
	}
}

func TestStorageInvalidInput(t *testing.T) {
	// Every case fails before a call: the configuration points nowhere.
	r := awskvs.NewResolver(aws.Config{Region: "us-west-2"})
	ctx := context.Background()
	long := strings.Repeat("a", 257)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"stream name", func() error { _, err := r.CreateStream(ctx, "bad name", awskvs.StreamOptions{}); return err }, `stream name "bad name"`},
		{"stream ARN to create", func() error {
			_, err := r.CreateStream(ctx, "arn:aws:kinesisvideo:us-west-2:123456789012:stream/s/1", awskvs.StreamOptions{})
			return err
		}, "give a name"},
		{"retention in minutes", func() error {
			_, err := r.CreateStream(ctx, "s", awskvs.StreamOptions{DataRetention: 90 * time.Minute})
			return err
		}, "whole hours"},
		{"long stream name", func() error { _, err := r.DescribeStream(ctx, long); return err }, "1 to 256"},
		{"bad stream ARN", func() error { _, err := r.DescribeStream(ctx, "arn:aws:kinesisvideo:x"); return err }, "stream ARN"},
		{"enable without stream", func() error { return r.UpdateMediaStorage(ctx, "cam", true, "") }, "stream is empty"},
		{"bad channel", func() error { _, err := r.DescribeMediaStorage(ctx, "a b"); return err }, "channel name"},
		{"bad client id", func() error { return r.JoinStorageSessionAsViewer(ctx, "cam", "a b") }, "client id"},
		{"bad role", func() error { _, err := r.StorageEndpoint(ctx, "cam", "OWNER"); return err }, "MASTER or VIEWER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, awskvs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want ErrInvalidArgument mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEmulatorJoinStorageSession(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{RecordingDir: t.TempDir()})
	if _, err := e.CreateChannel("cam", 0); err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(emulatorConfig(t, e, awskvs.ConfigOptions{}))
	ctx := context.Background()
	if err := r.JoinStorageSession(ctx, "cam"); !errors.Is(err, awskvs.ErrInvalidArgument) {
		t.Errorf("joining without storage: %v; want ErrInvalidArgument", err)
	}
	if _, err := r.CreateStream(ctx, "rec", awskvs.StreamOptions{DataRetention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateMediaStorage(ctx, "cam", true, "rec"); err != nil {
		t.Fatal(err)
	}
	err := r.JoinStorageSession(ctx, "cam")
	if !errors.Is(err, awskvs.ErrInvalidArgument) || errCode(err) != "InvalidArgumentException" || !strings.Contains(err.Error(), `JoinStorageSession "arn:`) {
		t.Errorf("joining without a master on signaling: %v; want ErrInvalidArgument naming the operation and channel", err)
	}
	c, err := signaling.Dial(ctx, func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, "cam", kvs.Master, "")
		return s.URL, err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := r.JoinStorageSession(ctx, "cam"); err != nil {
		t.Fatalf("JoinStorageSession with a master connected: %v", err)
	}
	select {
	case ev := <-c.Events():
		if ev.Type != signaling.EventOffer || !strings.HasPrefix(ev.From, "storage-peer-") {
			t.Errorf("first event %v from %q; want the storage peer's offer", ev.Type, ev.From)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offer after JoinStorageSession")
	}
	if err := r.JoinStorageSessionAsViewer(ctx, "cam", "not-connected"); !errors.Is(err, awskvs.ErrInvalidArgument) {
		t.Errorf("joining as a viewer not on signaling: %v; want ErrInvalidArgument", err)
	}
	if n := e.Stats().Storage.Joins; n != 1 {
		t.Errorf("the emulator counted %d joins; want 1", n)
	}

	// A join is not idempotent: throttling, which refused it before it
	// did anything, is retried; a 5xx, which may have joined, is not.
	r.MaxAttempts = 3
	for _, tc := range []struct {
		kind         string
		wantErr      bool
		wantAttempts int
	}{
		{emulator.FaultThrottle, false, 2},
		{emulator.Fault5xx, true, 1},
	} {
		if err := e.SetFaults(emulator.Faults{Share: 1, Kind: tc.kind, Operations: []string{emulator.OpJoinStorageSession}, Count: 1}); err != nil {
			t.Fatal(err)
		}
		before := e.Stats().Calls[emulator.OpJoinStorageSession]
		err := r.JoinStorageSession(ctx, "cam")
		attempts := e.Stats().Calls[emulator.OpJoinStorageSession] - before
		if (err != nil) != tc.wantErr || attempts != int64(tc.wantAttempts) {
			t.Errorf("JoinStorageSession with one %s fault: %v after %d attempts; want error %v after %d", tc.kind, err, attempts, tc.wantErr, tc.wantAttempts)
		}
	}
}
