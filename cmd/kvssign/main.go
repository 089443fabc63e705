// Command kvssign signs and uses Amazon Kinesis Video Streams WebRTC
// signaling connections: it signs URLs offline, talks to AWS or a local
// emulator, connects, vends URLs to clients, and runs a demo.
//
// Exit codes: 0 success, 1 failure, 2 usage or validation error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// usageError marks a mistake in the command line or its values: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// subcommands make the commands, each in a file of its own, in the order
// of the help.
var subcommands = []func() *cobra.Command{
	newChannelCmd,
	newConnectCmd,
	newDemoCmd,
	newEmulateCmd,
	newICECmd,
	newRequestCmd,
	newServeCmd,
	newURLCmd,
	newPresignCmd,
	newVersionCmd,
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "kvssign",
		Short: "Sign and use Amazon Kinesis Video Streams WebRTC signaling connections",
		Long: `kvssign signs and uses Amazon Kinesis Video Streams WebRTC signaling
connections: it signs URLs offline or through AWS, connects, prints ICE
servers, manages channels, vends URLs to clients, runs a local KVS emulator
and a demo of the whole flow.

Exit codes: 0 success, 1 failure, 2 usage or validation error.
Reference: docs/cli.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// run executes the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "kvssign:", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

// isCobraUsage recognises the errors cobra returns for unknown commands and
// wrong argument counts, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
