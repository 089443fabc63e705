package signaling_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// channel starts a local emulator with one channel and returns it, the
// channel's ARN and its master and viewer endpoints. Against AWS, the
// endpoints come from GetSignalingChannelEndpoint (see awskvs.Resolver).
func channel() (e *emulator.Emulator, arn, masterEP, viewerEP string) {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	api := &kvsapi.Client{BaseURL: e.URL(), Region: e.Region(), Credentials: e.Credentials()}
	if arn, err = api.CreateChannel(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	if masterEP, err = api.Endpoint(ctx, arn, kvs.Master); err != nil {
		log.Fatal(err)
	}
	if viewerEP, err = api.Endpoint(ctx, arn, kvs.Viewer); err != nil {
		log.Fatal(err)
	}
	return e, arn, masterEP, viewerEP
}

// masterAndViewer starts a channel as channel does, and connects its
// master and the viewer viewer-1 (see ExampleDial).
func masterAndViewer(ctx context.Context) (e *emulator.Emulator, master, viewer *signaling.Client) {
	e, arn, masterEP, viewerEP := channel()
	signer := &kvs.Presigner{Credentials: e.Credentials()}
	master, err := signaling.Dial(ctx, signaling.Presigned(signer, masterEP, arn, kvs.Master, ""), nil)
	if err != nil {
		log.Fatal(err)
	}
	viewer, err = signaling.Dial(ctx, signaling.Presigned(signer, viewerEP, arn, kvs.Viewer, "viewer-1"), nil)
	if err != nil {
		log.Fatal(err)
	}
	return e, master, viewer
}

func ExampleDial() {
	e, arn, _, viewerEP := channel()
	defer e.Close()

	// The presigner signs a fresh URL for every connection, with whatever
	// credentials its provider holds then.
	signer := &kvs.Presigner{Credentials: e.Credentials()}
	src := signaling.Presigned(signer, viewerEP, arn, kvs.Viewer, "viewer-1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := signaling.Dial(ctx, src, nil)
	var he *signaling.HandshakeError
	if errors.As(err, &he) {
		log.Fatalf("refused: HTTP %d %s: %s", he.StatusCode, he.Type, he.Message)
	} else if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected as viewer-1")
	// Output: connected as viewer-1
}

func ExampleClient_SendOffer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, master, viewer := masterAndViewer(ctx)
	defer e.Close()
	defer master.Close()
	defer viewer.Close()

	// A viewer's messages always go to the master: no recipient. With pion:
	// kvs.SessionDescription{Type: offer.Type.String(), SDP: offer.SDP}.
	if err := viewer.SendOffer(ctx, "", kvs.SessionDescription{Type: "offer", SDP: "v=0\r\n"}); err != nil {
		log.Fatal(err)
	}
	ev := <-master.Events()
	fmt.Printf("master received %v from %s\n", ev.Type, ev.From)

	// The master answers the viewer by its client id.
	if err := master.SendAnswer(ctx, ev.From, kvs.SessionDescription{Type: "answer", SDP: "v=0\r\n"}); err != nil {
		log.Fatal(err)
	}
	ev = <-viewer.Events()
	fmt.Printf("viewer received %v\n", ev.Type)
	// Output:
	// master received SDP_OFFER from viewer-1
	// viewer received SDP_ANSWER
}

func ExampleClient_Send() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, master, viewer := masterAndViewer(ctx)
	defer e.Close()
	defer master.Close()
	defer viewer.Close()

	// A message relayed as it is: the payload has a field a description
	// does not hold, and the correlation id is the relay's own.
	payload := base64.StdEncoding.EncodeToString([]byte(`{"type":"offer","sdp":"v=0\r\n","app":"cam-7"}`))
	m := kvs.ClientMessage{Action: kvs.ActionSDPOffer, MessagePayload: payload, CorrelationID: "relay-1"}
	if err := viewer.Send(ctx, m); err != nil {
		log.Fatal(err)
	}
	ev := <-master.Events()
	raw, _ := base64.StdEncoding.DecodeString(ev.Message.MessagePayload)
	fmt.Printf("master received %v from %s: %s\n", ev.Type, ev.From, raw)

	// A message the service would refuse is not sent.
	m.CorrelationID = "relay 2"
	fmt.Println(viewer.Send(ctx, m))
	// Output:
	// master received SDP_OFFER from viewer-1: {"type":"offer","sdp":"v=0\r\n","app":"cam-7"}
	// signaling: SDP_OFFER: kvs: message field correlationId "relay 2": must contain only [a-zA-Z0-9_.-]
}

func ExampleClient_Events() {
	e, arn, _, viewerEP := channel()
	defer e.Close()
	signer := &kvs.Presigner{Credentials: e.Credentials()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := signaling.Dial(ctx, signaling.Presigned(signer, viewerEP, arn, kvs.Viewer, "viewer-1"), nil)
	if err != nil {
		log.Fatal(err)
	}
	for len(e.Connections()) == 0 {
		time.Sleep(time.Millisecond) // let the emulator register the connection
	}
	e.GoAway(emulator.Target{}) // as KVS does before it closes a connection

	for ev := range c.Events() {
		switch ev.Type {
		case signaling.EventOffer, signaling.EventAnswer:
			// pc.SetRemoteDescription(webrtc.SessionDescription{...})
		case signaling.EventCandidate:
			// pc.AddICECandidate(webrtc.ICECandidateInit(ev.Candidate))
		case signaling.EventStatus:
			log.Print(ev.Err) // a *StatusError: a message was not delivered
		case signaling.EventReconnectICEServer:
			// fetch ICE servers again
		case signaling.EventGoAway:
			fmt.Println("GO_AWAY: the client is reconnecting")
		case signaling.EventReconnected:
			fmt.Printf("on connection %d because %v\n", ev.Conn, ev.Err)
			c.Close() // ends the loop: Events is closed
		}
	}
	fmt.Println("closed:", c.Err())
	// Output:
	// GO_AWAY: the client is reconnecting
	// on connection 2 because signaling: the service sent GO_AWAY
	// closed: signaling: client closed
}

// A master that takes its events through Options.OnEvent: the client
// calls it on the goroutine that reads the connection, so the master holds
// that one goroutine and no event buffer, as a gateway with a connection
// per camera wants. The callback must not wait: it hands the offer over,
// and the answer is sent from another goroutine.
func ExampleOptions_onEvent() {
	e, arn, masterEP, viewerEP := channel()
	defer e.Close()
	signer := &kvs.Presigner{Credentials: e.Credentials()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	offers := make(chan signaling.Event, 16)
	opts := &signaling.Options{OnEvent: func(ev signaling.Event) {
		switch ev.Type {
		case signaling.EventOffer:
			select {
			case offers <- ev:
			default:
				log.Printf("busy: dropping the offer of %s", ev.From)
			}
		case signaling.EventDisconnected, signaling.EventReconnected:
			log.Printf("%v: %v", ev.Type, ev.Err)
		}
	}}
	master, err := signaling.Dial(ctx, signaling.Presigned(signer, masterEP, arn, kvs.Master, ""), opts)
	if err != nil {
		log.Fatal(err)
	}
	defer master.Close()

	viewer, err := signaling.Dial(ctx, signaling.Presigned(signer, viewerEP, arn, kvs.Viewer, "viewer-1"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer viewer.Close()
	if err := viewer.SendOffer(ctx, "", kvs.SessionDescription{SDP: "v=0\r\n"}); err != nil {
		log.Fatal(err)
	}

	offer := <-offers
	fmt.Printf("master received %v from %s\n", offer.Type, offer.From)
	if err := master.SendAnswer(ctx, offer.From, kvs.SessionDescription{SDP: "v=0\r\n"}); err != nil {
		log.Fatal(err)
	}
	ev := <-viewer.Events()
	fmt.Printf("viewer received %v\n", ev.Type)
	// Output:
	// master received SDP_OFFER from viewer-1
	// viewer received SDP_ANSWER
}
