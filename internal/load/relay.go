package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
)

// RelayConfig sizes a relay run: Channels channels, each with one master
// and Viewers viewers; every viewer sends Messages messages to its master,
// and the master sends Messages messages to each viewer.
type RelayConfig struct {
	Channels, Viewers, Messages int
}

// RelayResult is what a relay run measured.
type RelayResult struct {
	RelayConfig
	Delivered int           // messages received by the clients
	Wall      time.Duration // from the first send to the last receipt
	User, Sys time.Duration // the emulator's CPU time over the run
}

// MsgsPerSec is the delivery rate.
func (r RelayResult) MsgsPerSec() float64 { return float64(r.Delivered) / r.Wall.Seconds() }

// CPUPerMsg is the emulator's CPU time per delivered message.
func (r RelayResult) CPUPerMsg() time.Duration {
	return (r.User + r.Sys) / time.Duration(max(r.Delivered, 1))
}

// candidatePayload is a typical ICE candidate's messagePayload.
var candidatePayload = func() string {
	mid, idx := "0", uint16(0)
	s, err := kvs.EncodePayload(kvs.ICECandidate{
		Candidate: "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag abcd network-cost 999",
		SDPMid:    &mid, SDPMLineIndex: &idx,
	})
	if err != nil {
		panic(err)
	}
	return s
}()

// dialWS opens a bare WebSocket to a presigned URL.
func dialWS(ctx context.Context, u string) (*websocket.Conn, error) {
	ws, resp, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return nil, &dialError{status: resp.StatusCode, err: err}
		}
		return nil, &dialError{err: err}
	}
	ws.SetReadLimit(64 << 10)
	return ws, nil
}

// dialError is a failed WebSocket dial, with the handshake's status if the
// server answered.
type dialError struct {
	status int
	err    error
}

func (d *dialError) Error() string {
	if d.status != 0 {
		return fmt.Sprintf("load: dial: status %d: %v", d.status, d.err)
	}
	return "load: dial: " + d.err.Error()
}

func (d *dialError) Unwrap() error { return d.err }

// statusOf returns the handshake status of a failed dial, or 0.
func statusOf(err error) int {
	var de *dialError
	if errors.As(err, &de) {
		return de.status
	}
	return 0
}

// relayChannel is one channel's clients.
type relayChannel struct {
	master  *websocket.Conn
	viewers []*websocket.Conn
	ids     []string
}

// RunRelay connects the clients, relays the messages and measures the
// emulator's CPU time and the delivery rate.
func RunRelay(ctx context.Context, e *Emulator, cfg RelayConfig) (RelayResult, error) {
	res := RelayResult{RelayConfig: cfg}
	chs, err := connectRelay(ctx, e, cfg)
	defer func() {
		for _, ch := range chs {
			if ch.master != nil {
				ch.master.CloseNow()
			}
			for _, v := range ch.viewers {
				if v != nil {
					v.CloseNow()
				}
			}
		}
	}()
	if err != nil {
		return res, err
	}
	want := cfg.Channels * cfg.Viewers * cfg.Messages * 2
	var delivered atomic.Int64
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	read := func(ws *websocket.Conn, n int) {
		defer wg.Done()
		for range n {
			if _, _, err := ws.Read(ctx); err != nil {
				fail(fmt.Errorf("load: relay read: %w", err))
				return
			}
			delivered.Add(1)
		}
	}
	write := func(ws *websocket.Conn, frames [][]byte, n int) {
		defer wg.Done()
		for i := range n {
			if err := ws.Write(ctx, websocket.MessageText, frames[i%len(frames)]); err != nil {
				fail(fmt.Errorf("load: relay write: %w", err))
				return
			}
		}
	}
	viewerFrame := [][]byte{[]byte(`{"action":"ICE_CANDIDATE","messagePayload":"` + candidatePayload + `"}`)}
	m := e.meter()
	for _, ch := range chs {
		masterFrames := make([][]byte, len(ch.ids))
		for i, id := range ch.ids {
			masterFrames[i] = []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"` + id + `","messagePayload":"` + candidatePayload + `"}`)
		}
		wg.Add(2 + 2*len(ch.viewers))
		go read(ch.master, cfg.Viewers*cfg.Messages)
		go write(ch.master, masterFrames, cfg.Viewers*cfg.Messages)
		for _, v := range ch.viewers {
			go read(v, cfg.Messages)
			go write(v, viewerFrame, cfg.Messages)
		}
	}
	wg.Wait()
	wall, user, sys, err := m.stop()
	res.Delivered, res.Wall, res.User, res.Sys = int(delivered.Load()), wall, user, sys
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if err != nil {
		return res, err
	}
	if res.Delivered != want {
		return res, fmt.Errorf("load: relay: %d messages delivered, want %d", res.Delivered, want)
	}
	return res, nil
}

// connectRelay creates the channels and connects their clients.
func connectRelay(ctx context.Context, e *Emulator, cfg RelayConfig) ([]*relayChannel, error) {
	s := e.signer()
	prefix := fmt.Sprintf("relay-%d", time.Now().UnixNano())
	chs := make([]*relayChannel, 0, cfg.Channels)
	for c := range cfg.Channels {
		arn, err := e.CreateChannel(ctx, fmt.Sprintf("%s-%d", prefix, c))
		if err != nil {
			return chs, err
		}
		ch := &relayChannel{}
		chs = append(chs, ch)
		u, err := s.url(ctx, arn, kvs.Master, "")
		if err != nil {
			return chs, err
		}
		if ch.master, err = dialWS(ctx, u); err != nil {
			return chs, err
		}
		for v := range cfg.Viewers {
			id := fmt.Sprintf("viewer-%d", v)
			u, err := s.url(ctx, arn, kvs.Viewer, id)
			if err != nil {
				return chs, err
			}
			ws, err := dialWS(ctx, u)
			if err != nil {
				return chs, err
			}
			ch.viewers = append(ch.viewers, ws)
			ch.ids = append(ch.ids, id)
		}
	}
	return chs, nil
}

// isOverBudget reports whether err is a handshake refused with 503.
func isOverBudget(err error) bool {
	return statusOf(err) == http.StatusServiceUnavailable
}
