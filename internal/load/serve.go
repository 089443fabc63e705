package load

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvssign/kvssign/vend"
)

// ServeConfig is one serve program: a keep-alive load of Requests
// requests on Conns connections, against each target in turn, Runs times.
type ServeConfig struct {
	Conns    int
	Requests int
	Runs     int
	// Before, if set, is a second kvssign binary whose serve runs as a
	// target too, for a before-and-after in one run.
	Before string
	// RedisServer, if set, is the redis-server binary: a copy of serve
	// on a Redis it runs on loopback is measured too.
	RedisServer string
}

// serveMain parses the serve program's flags and runs it.
func serveMain(ctx context.Context, bin string, fs *flag.FlagSet, args []string, out io.Writer) error {
	var cfg ServeConfig
	fs.IntVar(&cfg.Conns, "conns", 8, "keep-alive connections")
	fs.IntVar(&cfg.Requests, "requests", 100000, "requests per run and target")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs (each target once per run, interleaved)")
	fs.StringVar(&cfg.Before, "before", "", "a second kvssign binary to measure too, for a before and after")
	fs.StringVar(&cfg.RedisServer, "redis-server", "", "redis-server binary: also measure a copy of serve on a Redis")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Conns < 1 || cfg.Requests < cfg.Conns || cfg.Runs < 1 {
		return fmt.Errorf("load: serve: -conns and -runs must be positive and -requests at least -conns")
	}
	return serveProgram(ctx, bin, cfg, out)
}

// serveBody is the request every target answers: a viewer of the one
// channel, with a client id bound to the token's name.
const serveBody = `{"channel":"bench","role":"VIEWER","clientId":"token-bench.load"}`

// serveTarget is a server the serve program measures.
type serveTarget struct {
	name string
	p    *process
	addr string
}

// serveProgram measures kvssign serve against a minimal net/http handler
// that checks a bearer token and answers a JSON body of the same size,
// interleaved, with the same load.
func serveProgram(ctx context.Context, bin string, cfg ServeConfig, out io.Writer) error {
	dir, err := os.MkdirTemp("", "kvssign-load-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e, err := StartEmulator(ctx, bin, "--create-channel", "bench", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer e.Stop()
	token := newToken()
	conf, err := writeServeConfig(dir, "serve.json", e.URL, token, []string{"bench"}, nil)
	if err != nil {
		return err
	}
	var targets []serveTarget
	defer func() {
		for _, t := range targets {
			t.p.stop()
		}
	}()
	type serveProc struct{ name, bin, conf string }
	procs := []serveProc{{"serve", bin, conf}}
	if cfg.Before != "" {
		procs = append(procs, serveProc{"serve before", cfg.Before, conf})
	}
	if cfg.RedisServer != "" {
		rp, raddr, err := startRedis(ctx, cfg.RedisServer, dir)
		if err != nil {
			return err
		}
		defer rp.stop()
		rconf, err := writeServeConfig(dir, "serve-redis.json", e.URL, token, []string{"bench"},
			map[string]any{"redis": map[string]any{"url": "redis://" + raddr}})
		if err != nil {
			return err
		}
		procs = append(procs, serveProc{"serve+redis", bin, rconf})
	}
	var size int
	for i, sp := range procs {
		p, addr, err := startServe(ctx, sp.bin, sp.conf, filepath.Join(dir, fmt.Sprintf("serve%d.log", i)), nil)
		if err != nil {
			return err
		}
		targets = append(targets, serveTarget{sp.name, p, addr})
		// The first answer fills the cache; the rest warm the process.
		w, err := httpLoad{Addr: addr, Request: postRequest(addr, "/v1/connections", token, serveBody), Conns: 1, Requests: 200}.run(ctx)
		if err != nil {
			return fmt.Errorf("load: warming %s: %w", sp.name, err)
		}
		size = w.BodyBytes
	}
	p, addr, err := startMinimal(ctx, filepath.Join(dir, "minimal.log"), token, size)
	if err != nil {
		return err
	}
	targets = append(targets, serveTarget{"minimal", p, addr})
	return serveRuns(ctx, targets, token, size, cfg, out)
}

// serveRuns runs the load against each target in turn, cfg.Runs times,
// and prints a row per run and the medians.
func serveRuns(ctx context.Context, targets []serveTarget, token string, size int, cfg ServeConfig, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\tconns\trequests\tseconds\treq/s\tp50 µs\tp99 µs\tµs CPU/req\t\n")
	rates := make([][]float64, len(targets))
	cpus := make([][]float64, len(targets))
	for range cfg.Runs {
		for i, t := range targets {
			l := httpLoad{Addr: t.addr, Request: postRequest(t.addr, "/v1/connections", token, serveBody), Conns: cfg.Conns, Requests: cfg.Requests}
			before, err := t.p.cpu()
			if err != nil {
				return err
			}
			r, err := l.run(ctx)
			if err != nil {
				tw.Flush()
				return fmt.Errorf("load: %s: %w", t.name, err)
			}
			after, err := t.p.cpu()
			if err != nil {
				return err
			}
			cpu := us(after-before) / float64(max(r.Requests, 1))
			rates[i] = append(rates[i], r.perSec())
			cpus[i] = append(cpus[i], cpu)
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", t.name, cfg.Conns, r.Requests, r.Wall.Seconds(),
				r.perSec(), us(r.quantile(0.5)), us(r.quantile(0.99)), cpu)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Each run's rate against the minimal handler's in the same round,
	// so that both saw about the same machine.
	last := len(targets) - 1
	fmt.Fprintf(out, "\nanswer body: %d bytes; medians over %d runs:\n", size, cfg.Runs)
	for i, t := range targets {
		ratios := make([]float64, len(rates[i]))
		toServe := make([]float64, len(rates[i]))
		for j := range ratios {
			ratios[j] = rates[i][j] / rates[last][j]
			toServe[j] = rates[i][j] / rates[0][j]
		}
		rss, err := t.p.peakRSS()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-13s %7.0f req/s  %5.1f µs CPU/req  %.2f of minimal (%.2f–%.2f)  %.2f of serve  peak RSS %.0f MiB\n", t.name,
			median(rates[i]), median(cpus[i]), median(ratios), slices.Min(ratios), slices.Max(ratios), median(toServe), rss)
	}
	return nil
}

// median returns the median of xs (the upper one of an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// newToken returns a random static bearer token.
func newToken() string {
	var b [24]byte
	rand.Read(b[:])
	return "kvst_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// writeServeConfig writes a kvssign serve configuration to dir/name: one
// static token named bench allowed the channels, rate limits high enough
// never to refuse the load but still counted, and extra merged in at the
// top level.
func writeServeConfig(dir, name, emulatorURL, token string, channels []string, extra map[string]any) (string, error) {
	c := map[string]any{
		"addr":        "127.0.0.1:0",
		"region":      "us-west-2",
		"endpointUrl": emulatorURL,
		"auth":        map[string]any{"tokens": []any{map[string]any{"name": "bench", "sha256": vend.HashToken(token)}}},
		"rules":       []any{map[string]any{"principals": []string{"token:bench"}, "channels": channels, "roles": []string{"MASTER", "VIEWER"}}},
		"limits": map[string]any{
			"perIp":        map[string]any{"perSecond": 1e6},
			"perPrincipal": map[string]any{"perSecond": 1e6},
		},
	}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, b, 0o600)
}

// startServe runs bin as kvssign serve with the configuration at conf
// and the emulator's example credentials, plus extra flags.
func startServe(ctx context.Context, bin, conf, logPath string, extra []string) (*process, string, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--config", conf}, extra...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKeyID, "AWS_SECRET_ACCESS_KEY="+secretAccessKey,
		"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true")
	return startProcess(ctx, "kvssign serve", cmd, logPath, prefixed("kvssign serve: listening on http://"))
}

// minimalEnv names the token hash and body size for a process started to
// be the minimal handler.
const minimalEnv = "KVSSIGN_LOAD_MINIMAL"

// startMinimal runs this program's executable as the minimal handler.
func startMinimal(ctx context.Context, logPath, token string, size int) (*process, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), minimalEnv+"="+vend.HashToken(token)+":"+strconv.Itoa(size))
	return startProcess(ctx, "the minimal handler", cmd, logPath, prefixed("minimal listening on "))
}

// IsMinimalChild reports whether this process was started to be the serve
// program's minimal handler.
func IsMinimalChild() bool { return os.Getenv(minimalEnv) != "" }

// MinimalChild serves the minimal handler on a loopback port until
// interrupted, and returns the exit code.
func MinimalChild() int {
	if err := minimalChild(os.Getenv(minimalEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func minimalChild(spec string) error {
	hexHash, n, _ := strings.Cut(spec, ":")
	hash, err := hex.DecodeString(hexHash)
	size, err2 := strconv.Atoi(n)
	if err != nil || err2 != nil || len(hash) != sha256.Size {
		return fmt.Errorf("load: %s=%q: want SHA256HEX:SIZE", minimalEnv, spec)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: minimalHandler(hash, minimalBody(size)), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		srv.Close()
	}()
	fmt.Printf("minimal listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// minimalHandler is the least a vending handler does: check the method,
// path and bearer token, read the body, answer JSON.
func minimalHandler(tokenHash, body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/connections" {
			http.Error(w, `{"error":{"code":"not_found"}}`, http.StatusNotFound)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		h := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(h[:], tokenHash) != 1 {
			http.Error(w, `{"error":{"code":"unauthenticated"}}`, http.StatusUnauthorized)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
}

// minimalBody is a JSON object of exactly size bytes, newline included.
func minimalBody(size int) []byte {
	const head, tail = `{"url":"`, "\"}\n"
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}
