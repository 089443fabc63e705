package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: go build -ldflags "-X main.version=v1.2.3".
// If empty, the module version from the build information is used.
var version string

type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func newVersionCmd() *cobra.Command {
	var f outputFlags
	c := &cobra.Command{
		Use:   "version",
		Short: "Print kvssign's version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			v := buildVersion()
			if f.json() {
				return writeJSON(c.OutOrStdout(), v)
			}
			commit := ""
			if v.Commit != "" {
				commit = " " + v.Commit
			}
			_, err := fmt.Fprintf(c.OutOrStdout(), "kvssign %s%s %s %s/%s\n", v.Version, commit, v.Go, v.OS, v.Arch)
			return err
		},
	}
	f.register(c.Flags(), true)
	registerCompletions(c)
	return c
}
