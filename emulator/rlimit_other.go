//go:build !unix

package emulator

// softFileLimit reports that the descriptor limit is unknown here.
func softFileLimit() (uint64, bool) { return 0, false }

// RaiseFileLimit does nothing where there is no RLIMIT_NOFILE; it returns
// 0.
func RaiseFileLimit() (uint64, error) { return 0, nil }
