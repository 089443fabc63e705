package load

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kvssign/kvssign/vend"
)

// StormConfig is one storm: Devices devices, spread over Channels
// channels (one master and the rest viewers on each), ask Copies copies of
// kvssign serve for a URL at once, follow Retry-After, and connect with
// the URL they get.
type StormConfig struct {
	Channels int
	Devices  int
	Copies   int
	// RedisServer, if set, is the redis-server binary: the copies then
	// share a Redis it runs on loopback.
	RedisServer string
	// RedisTimeout, if set, is the copies' redis.timeout (a duration).
	RedisTimeout string
	// ConnectWorkers bounds the WebSocket connections being opened at
	// once.
	ConnectWorkers int
	// Limit bounds the whole storm: a device without a URL by then has
	// failed.
	Limit time.Duration
	// Timeline prints, under the table, the AWS calls made in each
	// second of each storm.
	Timeline bool
	// MaxInFlight and MaxConnections, if not zero, are the copies'
	// limits.maxInFlight and limits.maxConnections.
	MaxInFlight, MaxConnections int
}

// stormMain parses the storm program's flags and runs it.
func stormMain(ctx context.Context, bin string, fs *flag.FlagSet, args []string, out io.Writer) error {
	var cfg StormConfig
	fs.IntVar(&cfg.Channels, "channels", 2000, "channels (each gets one master device; the other devices are viewers)")
	fs.IntVar(&cfg.Devices, "devices", 10000, "devices asking at once")
	copies := fs.String("copies", "1,4", "copies of kvssign serve, comma-separated: one storm each")
	fs.StringVar(&cfg.RedisServer, "redis-server", "", "redis-server binary: run each storm again with the copies sharing a Redis")
	alone := fs.Bool("alone", true, "with -redis-server, also run each storm without Redis (false: only with it)")
	fs.StringVar(&cfg.RedisTimeout, "redis-timeout", "", "the copies' redis.timeout, e.g. 500ms (default: kvssign serve's)")
	fs.IntVar(&cfg.ConnectWorkers, "connect-workers", 64, "WebSocket connections opened at once")
	fs.DurationVar(&cfg.Limit, "limit", 3*time.Minute, "how long a storm may last")
	fs.BoolVar(&cfg.Timeline, "timeline", false, "print the AWS calls made in each second of each storm")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "the copies' limits.maxInFlight (0: kvssign serve's default; -1: no bound)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "the copies' limits.maxConnections (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := intList("-copies", *copies)
	if err != nil {
		return err
	}
	if cfg.Channels < 1 || cfg.Devices < cfg.Channels || cfg.ConnectWorkers < 1 || cfg.Limit <= 0 {
		return fmt.Errorf("load: storm: -channels, -connect-workers and -limit must be positive and -devices at least -channels")
	}
	variants := []bool{false}
	if cfg.RedisServer != "" {
		variants = []bool{true}
		if *alone {
			variants = []bool{false, true}
		}
	}
	return stormProgram(ctx, bin, cfg, ns, variants, out)
}

// stormFleet is what a storm runs against: the emulator with KVS's
// quotas, the copies, and Redis if any.
type stormFleet struct {
	e      *Emulator
	redis  *process
	copies []serveTarget
	tokens []string
	dir    string
}

// startStormFleet starts the emulator with cfg.Channels channels and
// KVS's quotas on, Redis if asked, and the copies of kvssign serve.
func startStormFleet(ctx context.Context, bin string, cfg StormConfig) (f *stormFleet, err error) {
	f = &stormFleet{}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	if f.dir, err = os.MkdirTemp("", "kvssign-load-storm-"); err != nil {
		return nil, err
	}
	if f.e, err = StartEmulator(ctx, bin, "--quotas", "on", "--log-level", "warn"); err != nil {
		return nil, err
	}
	if err := createChannels(ctx, f.e, cfg.Channels); err != nil {
		return nil, err
	}
	extra := map[string]any{"trustedProxies": []string{"127.0.0.1/32"}}
	if cfg.RedisServer != "" {
		var addr string
		if f.redis, addr, err = startRedis(ctx, cfg.RedisServer, f.dir); err != nil {
			return nil, err
		}
		r := map[string]any{"url": "redis://" + addr, "copies": cfg.Copies}
		if cfg.RedisTimeout != "" {
			r["timeout"] = cfg.RedisTimeout
		}
		extra["redis"] = r
	}
	f.tokens = make([]string, cfg.Devices)
	tokens := make([]any, cfg.Devices)
	base := newToken()
	for i := range f.tokens {
		f.tokens[i] = base + "-" + strconv.Itoa(i)
		tokens[i] = map[string]any{"name": "dev-" + strconv.Itoa(i), "sha256": vend.HashToken(f.tokens[i]), "groups": []string{"devices"}}
	}
	// The devices' own limits (the defaults), each device its own
	// caller, behind a load balancer that names its address.
	extra["auth"] = map[string]any{"tokens": tokens}
	extra["rules"] = []any{map[string]any{"groups": []string{"devices"}, "channels": []string{"storm-*"}, "roles": []string{"MASTER", "VIEWER"}}}
	limits := map[string]any{}
	if cfg.MaxInFlight != 0 {
		limits["maxInFlight"] = cfg.MaxInFlight
	}
	if cfg.MaxConnections != 0 {
		limits["maxConnections"] = cfg.MaxConnections
	}
	extra["limits"] = limits
	conf, err := writeServeConfig(f.dir, "storm.json", f.e.URL, "", nil, extra)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Copies {
		p, addr, err := startServe(ctx, bin, conf, filepath.Join(f.dir, fmt.Sprintf("copy%d.log", i)), nil)
		if err != nil {
			return nil, err
		}
		f.copies = append(f.copies, serveTarget{fmt.Sprintf("copy %d", i), p, addr})
	}
	return f, nil
}

func (f *stormFleet) stop() {
	for _, c := range f.copies {
		c.p.stop()
	}
	if f.redis != nil {
		f.redis.stop()
	}
	if f.e != nil {
		f.e.Stop()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// createChannels creates storm-0000 and on through the emulator's admin
// API, which no quota limits.
func createChannels(ctx context.Context, e *Emulator, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := e.CreateChannel(ctx, stormChannel(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func stormChannel(i int) string { return fmt.Sprintf("storm-%04d", i) }

// startRedis runs redis-server on a free loopback port, keeping nothing on
// disk.
func startRedis(ctx context.Context, bin, dir string) (*process, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "")
	p, _, err := startProcess(ctx, "redis-server", cmd, filepath.Join(dir, "redis.log"), func(line string) (string, bool) {
		return "", strings.Contains(line, "Ready to accept connections")
	})
	return p, addr, err
}

// ensureFileLimit raises the limit on open files so that this process
// can hold a connection per device, and a copy (which inherits the limit)
// can hold them all, and says so when the hard limit is too low.
func ensureFileLimit(need int) error {
	if err := raiseFileLimit(); err != nil {
		return err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("load: storm: the devices need %d file descriptors; the limit is %d (raise ulimit -Hn)", need, lim.Cur)
	}
	return nil
}

// stormProgram runs the storm for each number of copies and each of
// variants (with Redis or not), and prints a row for each.
func stormProgram(ctx context.Context, bin string, cfg StormConfig, copies []int, variants []bool, out io.Writer) error {
	if err := ensureFileLimit(cfg.Devices + 1000); err != nil {
		return err
	}
	w := newStormTable(out)
	for _, withRedis := range variants {
		for _, n := range copies {
			c := cfg
			c.Copies = n
			if !withRedis {
				c.RedisServer = ""
			}
			r, err := runStorm(ctx, bin, c)
			if err != nil {
				w.flush()
				return err
			}
			w.row(c, r)
		}
	}
	return w.flush()
}
