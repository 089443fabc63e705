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
	newJoinStorageCmd,
	newRequestCmd,
	newServeCmd,
	newStreamCmd,
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

// typeArgErrors makes cobra's checks of positional arguments, whose errors
// it does not type, return usage errors. The root command checks its own
// (an unknown command), which takes running it to show the help.
func typeArgErrors(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usageError{errors.New(msg)}
	}
	root.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
}

func wrapArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// run executes the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	typeArgErrors(root) // once the writers are set: cobra's completion command keeps them
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// The error's own lines stay; whatever it quotes cannot drive the
	// terminal.
	fmt.Fprintln(stderr, "kvssign:", printableLines(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
