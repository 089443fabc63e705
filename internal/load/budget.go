package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// BudgetConfig sizes a budget run: the emulator takes Budget connections
// (--max-connections); a relaying pair and idle viewers fill it, and Extra
// more handshakes are tried.
type BudgetConfig struct {
	Budget, Extra int
}

// BudgetResult is what a budget run saw.
type BudgetResult struct {
	BudgetConfig
	Refused503     int           // extra handshakes refused with 503
	OtherOutcome   int           // extra handshakes that got anything else
	SlowestRefusal time.Duration // the longest an extra handshake took to be refused
	PairTrips      int64         // the pair's round trips while the extra handshakes were tried
	ControlOK      int           // control-plane calls answered 200 meanwhile
	ControlCalls   int
	OverBudget     int64 // the emulator's own count of 503s
}

// OK reports whether the emulator refused cleanly: every extra handshake
// got 503, the pair kept relaying and the control plane kept answering.
func (r BudgetResult) OK() bool {
	return r.Refused503 == r.Extra && r.OtherOutcome == 0 && r.PairTrips > 0 &&
		r.ControlCalls > 0 && r.ControlOK == r.ControlCalls
}

// RunBudget fills the emulator's connection budget and tries more
// connections while a pair relays and the control plane is called.
func RunBudget(ctx context.Context, e *Emulator, cfg BudgetConfig) (BudgetResult, error) {
	res := BudgetResult{BudgetConfig: cfg}
	if cfg.Budget < 2 {
		return res, errors.New("load: budget: -max-connections must be at least 2 (the pair)")
	}
	s := e.signer()
	arn, err := e.CreateChannel(ctx, fmt.Sprintf("budget-%d", time.Now().UnixNano()))
	if err != nil {
		return res, err
	}
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			ws.CloseNow()
		}
	}()
	dial := func(role kvs.Role, id string) (*websocket.Conn, error) {
		u, err := s.url(ctx, arn, role, id)
		if err != nil {
			return nil, err
		}
		return dialWS(ctx, u)
	}
	master, err := dial(kvs.Master, "")
	if err != nil {
		return res, err
	}
	open = append(open, master)
	viewer, err := dial(kvs.Viewer, "pair")
	if err != nil {
		return res, err
	}
	open = append(open, viewer)
	for i := range cfg.Budget - 2 {
		ws, err := dial(kvs.Viewer, "idle-"+strconv.Itoa(i))
		if err != nil {
			return res, fmt.Errorf("load: budget: filling connection %d of %d: %w", i+3, cfg.Budget, err)
		}
		open = append(open, ws)
	}
	if err := e.waitConnections(ctx, int64(cfg.Budget)); err != nil {
		return res, err
	}

	pairCtx, stopPair := context.WithCancel(ctx)
	var trips atomic.Int64
	pairDone := make(chan error, 1)
	go func() { pairDone <- relayPair(pairCtx, master, viewer, &trips) }()

	// Extra handshakes and control-plane calls, at the same time.
	refuseCtx, stopControl := context.WithCancel(ctx)
	var ctlOK, ctlCalls int
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		ctlOK, ctlCalls = callControlPlane(ctx, refuseCtx, e, arn)
	}()
	before := trips.Load()
	tryExtra(cfg.Extra, func() (*websocket.Conn, error) { return dial(kvs.Viewer, "extra") }, &res)
	// Let the pair show it still relays after the refusals.
	for deadline := time.Now().Add(5 * time.Second); trips.Load() == before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	res.PairTrips = trips.Load() - before
	stopControl()
	<-ctlDone
	res.ControlOK, res.ControlCalls = ctlOK, ctlCalls
	stopPair()
	if err := <-pairDone; err != nil && pairCtx.Err() == nil {
		return res, err
	}
	st, err := e.stats(ctx)
	res.OverBudget = st.OverBudget
	return res, err
}

// callControlPlane calls DescribeSignalingChannel once, then again until
// the context until ends, and returns how many calls were answered 200 out of how many.
func callControlPlane(ctx, until context.Context, e *Emulator, arn string) (ok, calls int) {
	signer := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	for first := true; first || until.Err() == nil; first = false {
		st, err := e.describeChannel(ctx, signer, arn)
		calls++
		if err == nil && st == http.StatusOK {
			ok++
		}
	}
	return ok, calls
}

// tryExtra dials n connections, 8 at a time, expecting 503 for each, and
// records the outcomes in res.
func tryExtra(n int, dial func() (*websocket.Conn, error), res *BudgetResult) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for int(next.Add(1)) <= n {
				t0 := time.Now()
				ws, err := dial()
				took := time.Since(t0)
				mu.Lock()
				switch {
				case err == nil:
					ws.CloseNow()
					res.OtherOutcome++
				case isOverBudget(err):
					res.Refused503++
					res.SlowestRefusal = max(res.SlowestRefusal, took)
				default:
					res.OtherOutcome++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// relayPair sends a message from the viewer to the master and back, over
// and over, counting round trips, until ctx ends.
func relayPair(ctx context.Context, master, viewer *websocket.Conn, trips *atomic.Int64) error {
	up := []byte(`{"action":"ICE_CANDIDATE","messagePayload":"` + candidatePayload + `"}`)
	down := []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"pair","messagePayload":"` + candidatePayload + `"}`)
	for {
		if err := viewer.Write(ctx, websocket.MessageText, up); err != nil {
			return err
		}
		if _, _, err := master.Read(ctx); err != nil {
			return err
		}
		if err := master.Write(ctx, websocket.MessageText, down); err != nil {
			return err
		}
		if _, _, err := viewer.Read(ctx); err != nil {
			return err
		}
		trips.Add(1)
	}
}

func budgetProgram(ctx context.Context, bin string, cfg BudgetConfig, out io.Writer) error {
	e, err := StartEmulator(ctx, bin, "--max-connections", strconv.Itoa(cfg.Budget))
	if err != nil {
		return err
	}
	defer e.Stop()
	r, err := RunBudget(ctx, e, cfg)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "budget\textra tried\trefused 503\tother\tslowest refusal ms\tpair round trips meanwhile\tcontrol plane 200/calls\toverBudget stat\tclean\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.1f\t%d\t%d/%d\t%d\t%v\t\n", r.Budget, r.Extra, r.Refused503, r.OtherOutcome,
		float64(r.SlowestRefusal)/float64(time.Millisecond), r.PairTrips, r.ControlOK, r.ControlCalls, r.OverBudget, r.OK())
	if err := tw.Flush(); err != nil {
		return err
	}
	if !r.OK() {
		return errors.New("load: budget: the emulator did not refuse cleanly at its limit")
	}
	return nil
}
