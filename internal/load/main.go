package load

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Main runs the program named prog with its flags args against an
// emulator started from bin, printing its table to out.
func Main(ctx context.Context, bin, prog string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(out)
	switch prog {
	case "relay":
		shapes := fs.String("shapes", "1x10,10x10,100x1", "channel shapes, CHANNELSxVIEWERS, comma-separated")
		total := fs.Int("messages", 200000, "messages to deliver per shape (both directions)")
		runs := fs.Int("runs", 1, "runs per shape")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfgs, err := relayShapes(*shapes, *total)
		if err != nil {
			return err
		}
		return relayProgram(ctx, bin, cfgs, *runs, out)
	case "handshake":
		n := fs.Int("handshakes", 5000, "handshakes per run")
		workers := fs.Int("workers", 8, "handshakes under way at once")
		runs := fs.Int("runs", 3, "runs")
		floors := fs.Bool("floors", false, "also measure, in each run, servers that do nothing but the handshake: on the raw socket, and with net/http and coder/websocket")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return handshakeProgram(ctx, bin, HandshakeConfig{Handshakes: *n, Workers: *workers}, *runs, *floors, out)
	case "budget":
		var cfg BudgetConfig
		fs.IntVar(&cfg.Budget, "max-connections", 200, "the emulator's --max-connections")
		fs.IntVar(&cfg.Extra, "extra", 200, "handshakes to try beyond the budget")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return budgetProgram(ctx, bin, cfg, out)
	case "memory":
		counts := fs.String("clients", "100,1000,5000", "client counts, comma-separated")
		cycles := fs.Int("cycles", 10, "reconnect cycles (the emulator drops every connection; clients reconnect)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ns, err := intList("-clients", *counts)
		if err != nil {
			return err
		}
		return memoryProgram(ctx, bin, ns, *cycles, out)
	case "serve":
		return serveMain(ctx, bin, fs, args, out)
	case "storm":
		return stormMain(ctx, bin, fs, args, out)
	}
	return fmt.Errorf("load: unknown program %q: want relay, handshake, budget, memory, serve or storm", prog)
}

// relayShapes parses -shapes.
func relayShapes(s string, total int) ([]RelayConfig, error) {
	var out []RelayConfig
	for _, f := range strings.Split(s, ",") {
		c, v, ok := strings.Cut(strings.TrimSpace(f), "x")
		nc, err1 := strconv.Atoi(c)
		nv, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil || nc < 1 || nv < 1 {
			return nil, fmt.Errorf("load: -shapes: %q must be CHANNELSxVIEWERS, e.g. 10x10", f)
		}
		out = append(out, RelayConfig{Channels: nc, Viewers: nv, Messages: max(total/(2*nc*nv), 1)})
	}
	return out, nil
}

// intList parses a comma-separated list of positive integers.
func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("load: %s: %q must be a positive integer", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func relayProgram(ctx context.Context, bin string, cfgs []RelayConfig, runs int, out io.Writer) error {
	e, err := StartEmulator(ctx, bin)
	if err != nil {
		return err
	}
	defer e.Stop()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "channels\tviewers\tmessages\tseconds\tmsgs/s\tµs CPU/msg\tuser µs\tsys µs\t")
	for _, cfg := range cfgs {
		for range runs {
			r, err := RunRelay(ctx, e, cfg)
			if err != nil {
				tw.Flush()
				return err
			}
			n := time.Duration(max(r.Delivered, 1))
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", cfg.Channels, cfg.Viewers, r.Delivered,
				r.Wall.Seconds(), r.MsgsPerSec(), us(r.CPUPerMsg()), us(r.User/n), us(r.Sys/n))
		}
	}
	return tw.Flush()
}

func handshakeProgram(ctx context.Context, bin string, cfg HandshakeConfig, runs int, floors bool, out io.Writer) error {
	e, err := StartEmulator(ctx, bin)
	if err != nil {
		return err
	}
	defer e.Stop()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\thandshakes\tworkers\tseconds\thandshakes/s\tµs CPU/handshake\tuser µs\tsys µs\t")
	servers := []string{"emulator"}
	if floors {
		servers = append(servers, floorKinds...)
	}
	for range runs {
		for _, s := range servers {
			var r HandshakeResult
			var err error
			if s == "emulator" {
				r, err = RunHandshake(ctx, e, cfg)
			} else {
				r, err = runFloor(ctx, s, cfg)
			}
			if err != nil {
				tw.Flush()
				return err
			}
			n := time.Duration(max(r.Handshakes, 1))
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", s, r.Handshakes, r.Workers, r.Wall.Seconds(),
				r.PerSec(), us(r.CPUPer()), us(r.User/n), us(r.Sys/n))
		}
	}
	return tw.Flush()
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
