// Command kvssign-load runs the emulator's load programs across processes:
// the emulator (kvssign emulate) in one, the clients in this one, over
// loopback only. Each program stops by itself and prints a table.
//
//	go build -o /tmp/kvssign ./cmd/kvssign
//	go run ./internal/load/cmd/kvssign-load -kvssign /tmp/kvssign relay
//	go run ./internal/load/cmd/kvssign-load -kvssign /tmp/kvssign handshake
//	go run ./internal/load/cmd/kvssign-load -kvssign /tmp/kvssign budget
//	go run ./internal/load/cmd/kvssign-load -kvssign /tmp/kvssign memory
//	go run ./internal/load/cmd/kvssign-load -kvssign /tmp/kvssign serve
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/kvssign/kvssign/internal/load"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if load.IsMemoryChild() {
		return load.MemoryChild()
	}
	if load.IsMinimalChild() {
		return load.MinimalChild()
	}
	if load.IsFloorChild() {
		return load.FloorChild()
	}
	fs := flag.NewFlagSet("kvssign-load", flag.ContinueOnError)
	bin := fs.String("kvssign", "kvssign", "the kvssign binary that runs the emulator")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kvssign-load [-kvssign BIN] relay|handshake|budget|memory|serve [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := load.Main(ctx, *bin, fs.Arg(0), fs.Args()[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvssign-load:", err)
		return 1
	}
	return 0
}
