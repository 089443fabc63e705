package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/kvssign/kvssign/emulator"
)

// storageFlags are kvssign emulate's flags for the storage peer of WebRTC
// ingestion (JoinStorageSession).
type storageFlags struct {
	recordingDir    string
	sessionDuration time.Duration
	noMasterTimeout time.Duration
	viewers         int
}

func addStorageFlags(fl *pflag.FlagSet) *storageFlags {
	sf := &storageFlags{}
	// A directory that outlives the emulator: the recordings are for the
	// user to play after the run.
	fl.StringVar(&sf.recordingDir, "recording-dir", filepath.Join(os.TempDir(), "kvssign-recordings"), "where the storage peer writes each storage session's recording (Matroska, H.264 + Opus)")
	fl.DurationVar(&sf.sessionDuration, "storage-session-duration", time.Hour, "longest storage session (JoinStorageSession) before the storage peer ends it")
	fl.DurationVar(&sf.noMasterTimeout, "storage-no-master-timeout", 3*time.Minute, "how long storage viewers stay joined without a master")
	fl.IntVar(&sf.viewers, "storage-viewers", 3, "viewers per storage session (-1: unlimited)")
	return sf
}

// apply checks the flags and sets cfg's storage peer fields.
func (sf *storageFlags) apply(cfg *emulator.Config) error {
	switch {
	case sf.sessionDuration <= 0:
		return usagef("--storage-session-duration %v: must be positive", sf.sessionDuration)
	case sf.noMasterTimeout <= 0:
		return usagef("--storage-no-master-timeout %v: must be positive", sf.noMasterTimeout)
	case sf.viewers == 0 || sf.viewers < -1:
		return usagef("--storage-viewers %d: must be positive, or -1 for unlimited", sf.viewers)
	case sf.recordingDir == "":
		return usagef("--recording-dir: must name a directory")
	}
	cfg.RecordingDir = sf.recordingDir
	cfg.StorageSessionDuration = sf.sessionDuration
	cfg.StorageNoMasterTimeout = sf.noMasterTimeout
	cfg.StorageViewers = sf.viewers
	return nil
}
