package main

import (
	"strings"
	"testing"
)

// TestArgumentErrorsExitTwo: cobra's own checks of commands and arguments
// end with the usage exit code, as kvssign's do.
func TestArgumentErrorsExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 0, ""},
		{[]string{"conect"}, 2, "unknown command \"conect\" for \"kvssign\"\n\nDid you mean this?\n\tconnect"},
		{[]string{"version", "extra"}, 2, "unknown command \"extra\" for \"kvssign version\""},
		{[]string{"channel", "describe"}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"completion", "bash", "extra"}, 2, "unknown command \"extra\" for \"kvssign completion bash\""},
		{[]string{"connect", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"help", "connect"}, 0, ""},
	}
	for _, tc := range cases {
		r := cli(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("kvssign %q: %v; want exit %d and stderr containing %q", tc.args, r, tc.code, tc.want)
		}
	}
}
