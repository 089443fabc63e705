package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
	"github.com/kvssign/kvssign/sigv4"
)

// Config configures Run. The zero value is usable.
type Config struct {
	// Timeout bounds the whole demo. If zero, 30 seconds.
	Timeout time.Duration
	// Pings is how many messages the viewer sends over the data channel
	// and times. If zero, 3.
	Pings int
	// Channel is the name of the channel to create. If empty, kvssign-demo.
	Channel string
	// ClientID is the viewer's client id. If empty, viewer-demo.
	ClientID string
	// Emulator configures the in-process emulator; its zero value has the
	// KVS limits.
	Emulator emulator.Config
}

// Result is what the demo measured.
type Result struct {
	ViewerResult
	// Relayed counts the signaling messages the emulator delivered.
	Relayed int64
	// Handshakes counts the signaling connections it accepted.
	Handshakes int64
}

// Run starts an emulator on loopback, creates a channel, signs a master and
// a viewer URL, connects both with the signaling client, and has two pion
// peers negotiate a data channel through it and ping over it. It writes a
// timeline to w: who signed what (URLs redacted), who sent what, when the
// data channel opened, and the round trips.
func Run(ctx context.Context, w io.Writer, cfg Config) (res Result, err error) {
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer func() {
		if err != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("demo: did not finish within %v: %w", cfg.Timeout, err)
		}
	}()
	tl := NewTimeline(w)
	defer tl.Stop()

	e, err := emulator.New(cfg.Emulator)
	if err != nil {
		return res, err
	}
	if err := e.Start(); err != nil {
		return res, fmt.Errorf("demo: starting the emulator: %w", err)
	}
	defer e.Close()
	tl.Printf("emulator", "KVS emulator listening on %s (region %s, account %s)", e.URL(), e.Region(), e.Account())
	arn, endpoints, err := setUpChannel(ctx, e, tl, cfg.Channel)
	if err != nil {
		return res, err
	}
	master, viewer, err := dialBoth(ctx, e.Credentials(), tl, arn, endpoints, cfg.ClientID)
	if err != nil {
		return res, err
	}
	defer master.Close()
	defer viewer.Close()

	pion := LoopbackAPI()
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan error, 1)
	go func() { mdone <- RunMaster(mctx, master, pion, tl) }()
	vres, verr := RunViewer(ctx, viewer, pion, tl, cfg.Pings)
	mcancel()
	merr := <-mdone
	if verr != nil {
		return res, fmt.Errorf("demo: %w", verr)
	}
	if merr != nil {
		return res, fmt.Errorf("demo: %w", merr)
	}
	res.ViewerResult = vres
	st := e.Stats()
	res.Relayed, res.Handshakes = st.MessagesRelayed, st.HandshakesAccepted
	sorted := slices.Clone(vres.RTTs)
	slices.Sort(sorted)
	tl.Printf("done", "data channel open %s after the offer; %d pings, round trip min %s, median %s, max %s",
		ms(vres.Connected), len(sorted), ms(sorted[0]), ms(sorted[len(sorted)/2]), ms(sorted[len(sorted)-1]))
	tl.Printf("done", "the emulator accepted %d signaling connections and relayed %d messages", res.Handshakes, res.Relayed)
	return res, nil
}

// setDefaults fills in the zero fields and checks the rest.
func (cfg *Config) setDefaults() error {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	switch {
	case cfg.Pings == 0:
		cfg.Pings = 3
	case cfg.Pings < 0:
		return fmt.Errorf("demo: pings %d: must be positive", cfg.Pings)
	}
	if cfg.Channel == "" {
		cfg.Channel = "kvssign-demo"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "viewer-demo"
	}
	return kvs.ValidateClientID(cfg.ClientID)
}

// setUpChannel creates the channel on the emulator and looks up its
// endpoint for each role, through the control plane as an app would.
func setUpChannel(ctx context.Context, e *emulator.Emulator, tl *Timeline, name string) (string, map[kvs.Role]string, error) {
	api := &kvsapi.Client{
		BaseURL: e.URL(), Region: e.Region(), Credentials: e.Credentials(),
		Sign: func(op, key string) {
			tl.Printf("setup", "signed %s request (SigV4 Authorization header, key %s)", op, key)
		},
	}
	arn, err := api.CreateChannel(ctx, name)
	if err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	tl.Printf("setup", "channel %s: %s", name, arn)
	endpoints := map[kvs.Role]string{}
	for _, role := range []kvs.Role{kvs.Master, kvs.Viewer} {
		ep, err := api.Endpoint(ctx, arn, role)
		if err != nil {
			return "", nil, fmt.Errorf("demo: %w", err)
		}
		tl.Printf("setup", "%s endpoint: %s", role, ep)
		endpoints[role] = ep
	}
	return arn, endpoints, nil
}

// dialBoth connects a master and a viewer, each signing a fresh URL per
// connection. On error, neither is left open.
func dialBoth(ctx context.Context, creds sigv4.Credentials, tl *Timeline, arn string, endpoints map[kvs.Role]string, clientID string) (master, viewer *signaling.Client, err error) {
	signer := &kvs.Presigner{Credentials: creds}
	source := func(who string, role kvs.Role, clientID string) signaling.URLSource {
		op := "ConnectAsMaster"
		if role == kvs.Viewer {
			op = "ConnectAsViewer"
		}
		return func(ctx context.Context) (string, error) {
			s, err := signer.Presign(ctx, endpoints[role], arn, role, clientID)
			if err != nil {
				return "", err
			}
			tl.Printf(who, "signed a %s URL with key %s, valid until %s (signature redacted):", op, creds.AccessKeyID, s.ExpiresAt.UTC().Format("15:04:05 MST"))
			tl.Printf(who, "  %s", sigv4.Redact(s.URL))
			return s.URL, nil
		}
	}
	opts := &signaling.Options{BufferCandidates: true}
	master, err = signaling.Dial(ctx, source("master", kvs.Master, ""), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: master: %w", err)
	}
	tl.Printf("master", "connected to the signaling channel")
	viewer, err = signaling.Dial(ctx, source("viewer", kvs.Viewer, clientID), opts)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("demo: viewer: %w", err)
	}
	tl.Printf("viewer", "connected to the signaling channel as %s", clientID)
	return master, viewer, nil
}
