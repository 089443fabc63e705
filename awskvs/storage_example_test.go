package awskvs_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// A channel records its WebRTC sessions into a stream that keeps data.
func ExampleResolver_UpdateMediaStorage() {
	ctx := context.Background()
	cfg, stop := startEmulator(ctx)
	defer stop()
	r := awskvs.NewResolver(cfg)
	streamARN, err := r.CreateStream(ctx, "front-door-recordings", awskvs.StreamOptions{DataRetention: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.UpdateMediaStorage(ctx, "front-door", true, streamARN); err != nil {
		log.Fatal(err)
	}
	ms, err := r.DescribeMediaStorage(ctx, "front-door")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ms.Enabled, strings.Contains(ms.StreamARN, ":stream/front-door-recordings/"))
	// Output: true true
}

// A master connects to signaling, then joins the storage session, which
// sends it an offer over that connection. A StorageJoiner keeps it
// joined; see docs/ingestion.md.
func ExampleResolver_JoinStorageSession() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, stop := startEmulator(ctx)
	defer stop()
	r := awskvs.NewResolver(cfg)
	if _, err := r.CreateStream(ctx, "front-door-recordings", awskvs.StreamOptions{DataRetention: time.Hour}); err != nil {
		log.Fatal(err)
	}
	if err := r.UpdateMediaStorage(ctx, "front-door", true, "front-door-recordings"); err != nil {
		log.Fatal(err)
	}
	c, err := signaling.Dial(ctx, func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, "front-door", kvs.Master, "")
		return s.URL, err
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := r.JoinStorageSession(ctx, "front-door"); err != nil {
		log.Fatal(err)
	}
	for ev := range c.Events() {
		if ev.Type == signaling.EventOffer {
			// Answer it with a peer connection that sends H.264 and Opus.
			fmt.Println("offer from the storage session:", strings.Contains(ev.SDP.SDP, "H264"))
			return
		}
	}
	// Output: offer from the storage session: true
}

// A StorageJoiner runs beside the master's event loop: it hears of
// offers and reconnections through Observe, of the storage peer
// connection through Connected and Lost, and joins again when needed.
func ExampleStorageJoiner() {
	ctx := context.Background()
	cfg, stop := startEmulator(ctx)
	defer stop()
	r := awskvs.NewResolver(cfg)
	c, err := signaling.Dial(ctx, func(ctx context.Context) (string, error) {
		s, err := r.Presign(ctx, "front-door", kvs.Master, "")
		return s.URL, err
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	j := &awskvs.StorageJoiner{
		Join: func(ctx context.Context) error { return r.JoinStorageSession(ctx, "front-door") },
		OnJoin: func(a awskvs.JoinAttempt) {
			if a.Err != nil {
				log.Printf("join (%s): %v", a.Reason, a.Err)
			}
		},
	}
	go j.Run(ctx)
	for ev := range c.Events() {
		j.Observe(ev)
		// On an offer: a pion peer connection with H.264 and Opus tracks
		// answers it, and reports j.Connected() and j.Lost().
	}
}
