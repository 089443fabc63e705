//go:build unix

package emulator

import (
	"fmt"
	"syscall"
)

// softFileLimit returns the soft RLIMIT_NOFILE, or false if unknown.
func softFileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) {
		return 0, false
	}
	return uint64(lim.Cur), true
}

// RaiseFileLimit raises the process's soft limit of open files to its
// hard limit, so that the default [Config.MaxConnections] is as large as
// the machine allows, and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("emulator: reading the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("emulator: raising the open-file limit to %d: %w", lim.Max, err)
		}
	}
	return uint64(lim.Cur), nil
}
