package main

import (
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/kvssign/kvssign/emulator"
)

// limitFlags are kvssign emulate's flags for KVS's quotas and the
// connection budget.
type limitFlags struct {
	quotas         string
	quota          []string
	maxConnections int
}

func addLimitFlags(fl *pflag.FlagSet) *limitFlags {
	lf := &limitFlags{}
	fl.StringVar(&lf.quotas, "quotas", "on", "enforce KVS's control-plane quotas (calls per second per account and per channel): on or off")
	fl.StringArrayVar(&lf.quota, "quota", nil, "override one quota: OPERATION=RATE per account, OPERATION/channel=RATE per channel; RATE in calls per second, or off (repeatable)")
	fl.IntVar(&lf.maxConnections, "max-connections", 0, "most signaling connections at once; beyond, handshakes get 503 (0: the open-file limit less a reserve; -1: unlimited)")
	return lf
}

// apply checks the flags and sets cfg's limits. It first raises the
// soft open-file limit to the hard one, so that the default connection
// budget is as large as the machine allows.
func (lf *limitFlags) apply(cfg *emulator.Config, log *slog.Logger) error {
	switch lf.quotas {
	case "on":
	case "off":
		cfg.Quotas.Off = true
	default:
		return usagef("--quotas %q: must be on or off", lf.quotas)
	}
	for _, spec := range lf.quota {
		if err := cfg.Quotas.Set(spec); err != nil {
			return usagef("--quota: %v", err)
		}
	}
	if lf.maxConnections < -1 {
		return usagef("--max-connections %d: must be positive, 0 for the default, or -1 for unlimited", lf.maxConnections)
	}
	cfg.MaxConnections = lf.maxConnections
	if n, err := emulator.RaiseFileLimit(); err != nil {
		log.Warn("could not raise the open-file limit; the connection budget follows the current one", "err", err)
	} else if n > 0 {
		log.Info("open-file limit", "soft", n)
	}
	return nil
}
