package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/kvssign/kvssign/emulator"
)

// storageFlags are kvssign emulate's flags for the storage peer of WebRTC
// ingestion (docs/ingestion.md).
type storageFlags struct {
	recordings string
	session    time.Duration
	viewers    int
}

func addStorageFlags(fl *pflag.FlagSet) *storageFlags {
	sf := &storageFlags{}
	fl.StringVar(&sf.recordings, "recordings", "", "where the storage peer writes each storage session's recording, a Matroska file (default: a temporary directory removed on exit)")
	fl.DurationVar(&sf.session, "storage-session-duration", time.Hour, "longest a storage session lasts before the storage peer ends it")
	fl.IntVar(&sf.viewers, "storage-viewers", 3, "viewers a storage session takes (-1: unlimited)")
	return sf
}

// apply checks the flags and sets cfg's storage peer settings.
func (sf *storageFlags) apply(cfg *emulator.Config) error {
	if sf.session <= 0 {
		return usagef("--storage-session-duration %v: must be positive", sf.session)
	}
	if sf.viewers == 0 || sf.viewers < -1 {
		return usagef("--storage-viewers %d: must be positive, or -1 for unlimited", sf.viewers)
	}
	cfg.RecordingDir, cfg.StorageSessionDuration, cfg.StorageViewers = sf.recordings, sf.session, sf.viewers
	return nil
}
