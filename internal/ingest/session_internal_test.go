package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// TestLoopStopsItsJoiner: when loop returns, its joiner has returned too,
// so nothing calls the caller's OnJoin or log afterwards. The join below
// takes a while to notice its context's end, as a call in its retry
// back-off does.
func TestLoopStopsItsJoiner(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	c := e.Credentials()
	cfg, err := awskvs.LoadConfig(context.Background(), awskvs.ConfigOptions{Region: e.Region(), EndpointURL: e.URL()},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	r := awskvs.NewResolver(cfg)
	if _, err := r.CreateChannel(context.Background(), "cam", 0, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := signaling.Dial(ctx, func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, "cam", kvs.Master, "")
		return s.URL, err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	var joinEnded atomic.Bool
	joining := make(chan struct{})
	j := &awskvs.StorageJoiner{Join: func(ctx context.Context) error {
		close(joining)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		joinEnded.Store(true)
		return ctx.Err()
	}}
	done := make(chan error, 1)
	go func() { done <- loop(ctx, client, j, func(then func()) { then() }, func(signaling.Event) {}) }()
	<-joining
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("loop: %v", err)
	}
	if !joinEnded.Load() {
		t.Error("loop returned while its joiner was still joining")
	}
}
