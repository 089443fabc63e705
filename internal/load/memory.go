package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// memoryChildEnv carries a memory measurement's parameters to the child
// process that holds the clients: MODE,CLIENTS,CYCLES,EMULATOR_URL.
const memoryChildEnv = "KVSSIGN_LOAD_MEMORY_CHILD"

// viewersPerChannel spreads the memory program's clients over channels.
const viewersPerChannel = 10

// MemoryResult is one client process's memory with Clients clients.
type MemoryResult struct {
	Mode    string `json:"mode"` // "bare", "events" or "callback"
	Clients int    `json:"clients"`
	// Per client, in bytes (goroutines: count), once connected and after
	// the reconnect cycles: growth over the process before the clients.
	HeapStack       float64 `json:"heapStack"`
	Goroutines      float64 `json:"goroutines"`
	RSS             float64 `json:"rss"`
	Cycles          int     `json:"cycles"`
	HeapStackAfter  float64 `json:"heapStackAfter"`
	GoroutinesAfter float64 `json:"goroutinesAfter"`
	RSSAfter        float64 `json:"rssAfter"`
}

// IsMemoryChild reports whether this process was started to hold clients
// for the memory program.
func IsMemoryChild() bool { return os.Getenv(memoryChildEnv) != "" }

// MemoryChild holds the clients its parent asked for, prints a MemoryResult
// as JSON and returns the exit code.
func MemoryChild() int {
	r, err := memoryChild(context.Background(), os.Getenv(memoryChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvssign-load memory:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// RunMemory measures clients of mode in a child process (the running
// executable, which must call MemoryChild when IsMemoryChild).
func RunMemory(ctx context.Context, e *Emulator, mode string, clients, cycles int) (MemoryResult, error) {
	self, err := os.Executable()
	if err != nil {
		return MemoryResult{}, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%s", memoryChildEnv, mode, clients, cycles, e.URL))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return MemoryResult{}, fmt.Errorf("load: memory child (%s, %d clients): %v: %s", mode, clients, err, strings.TrimSpace(stderr.String()))
	}
	var r MemoryResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("load: memory child: %w", err)
	}
	return r, nil
}

// sample is the process's memory at one moment.
type sample struct {
	heapStack, goroutines, rss float64
}

func measure() sample {
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{float64(ms.HeapInuse + ms.StackInuse), float64(runtime.NumGoroutine()), float64(rss())}
}

// rss returns the process's resident set size from /proc/self/statm.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// holder holds n connections of one kind.
type holder interface {
	connect(ctx context.Context, e *Emulator, arns []string, n int) error
	// reconnected reports whether every client is connected again after
	// the cycle-th drop.
	reconnected(cycle int) bool
	close()
}

func memoryChild(ctx context.Context, spec string) (MemoryResult, error) {
	f := strings.SplitN(spec, ",", 4)
	if len(f) != 4 {
		return MemoryResult{}, fmt.Errorf("load: %s=%q: want MODE,CLIENTS,CYCLES,URL", memoryChildEnv, spec)
	}
	n, err1 := strconv.Atoi(f[1])
	cycles, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return MemoryResult{}, fmt.Errorf("load: %s=%q: CLIENTS and CYCLES must be numbers", memoryChildEnv, spec)
	}
	if err := raiseFileLimit(); err != nil {
		return MemoryResult{}, err
	}
	e := &Emulator{URL: f[3]}
	h, err := newHolder(f[0])
	if err != nil {
		return MemoryResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	arns, err := memoryChannels(ctx, e, f[0], n)
	if err != nil {
		return MemoryResult{}, err
	}
	// One client, connected and closed, first: what every process pays
	// once (the HTTP client, the signing caches) is not counted per client.
	warm, err := newHolder(f[0])
	if err != nil {
		return MemoryResult{}, err
	}
	if err := warm.connect(ctx, e, arns, 1); err != nil {
		return MemoryResult{}, err
	}
	warm.close()
	if err := e.waitConnections(ctx, 0); err != nil {
		return MemoryResult{}, err
	}
	base := measure()
	if err := h.connect(ctx, e, arns, n); err != nil {
		return MemoryResult{}, err
	}
	defer h.close()
	if err := e.waitConnections(ctx, int64(n)); err != nil {
		return MemoryResult{}, err
	}
	per := func(s sample) (float64, float64, float64) {
		d := float64(n)
		return (s.heapStack - base.heapStack) / d, (s.goroutines - base.goroutines) / d, (s.rss - base.rss) / d
	}
	r := MemoryResult{Mode: f[0], Clients: n, Cycles: cycles}
	r.HeapStack, r.Goroutines, r.RSS = per(measure())
	for c := 1; c <= cycles; c++ {
		for _, arn := range arns {
			q := url.Values{"channel": {arn}}
			if err := e.admin(ctx, http.MethodPost, "drop?"+q.Encode(), nil, nil); err != nil {
				return r, err
			}
		}
		for !h.reconnected(c) {
			select {
			case <-ctx.Done():
				return r, fmt.Errorf("load: memory: reconnect cycle %d: %w", c, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := e.waitConnections(ctx, int64(n)); err != nil {
			return r, err
		}
	}
	r.HeapStackAfter, r.GoroutinesAfter, r.RSSAfter = per(measure())
	return r, nil
}

// memoryChannels creates the channels the clients spread over.
func memoryChannels(ctx context.Context, e *Emulator, mode string, n int) ([]string, error) {
	prefix := fmt.Sprintf("mem-%s-%d", mode, time.Now().UnixNano())
	var arns []string
	for i := range (n + viewersPerChannel - 1) / viewersPerChannel {
		arn, err := e.CreateChannel(ctx, fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			return nil, err
		}
		arns = append(arns, arn)
	}
	return arns, nil
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit, for
// thousands of connections.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("load: RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("load: raising RLIMIT_NOFILE to %d: %w", lim.Max, err)
		}
	}
	return nil
}

func newHolder(mode string) (holder, error) {
	switch mode {
	case "events":
		return &signalingHolder{}, nil
	case "callback":
		return &signalingHolder{callback: true}, nil
	case "bare":
		return &bareHolder{}, nil
	}
	return nil, fmt.Errorf("load: memory mode %q: want bare, events or callback", mode)
}

// signalingHolder holds signaling.Clients. Each client's events go to
// Options.OnEvent if callback, else to a goroutine that drains Events, as
// an application that uses the channel must have.
type signalingHolder struct {
	reconnectCounts
	callback bool
	clients  []*signaling.Client
}

// reconnectCounts counts each client's reconnections; mu also guards the
// holder's own fields.
type reconnectCounts struct {
	mu         sync.Mutex
	reconnects []int
}

// reconnected reports whether every client has reconnected cycle times.
func (h *reconnectCounts) reconnected(cycle int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.reconnects {
		if n < cycle {
			return false
		}
	}
	return true
}

func (h *signalingHolder) connect(ctx context.Context, e *Emulator, arns []string, n int) error {
	// One Presigner for every client, as a gateway has: with a Skew of its
	// own, Presigned signs with it rather than with a copy per client, and
	// the clients share its caches (a copy costs ~4 KB).
	p := &kvs.Presigner{Credentials: creds, Skew: new(kvs.ClockSkew)}
	base := e.wsBase() + "/signaling/viewer/load"
	h.reconnects = make([]int, n)
	for i := range n {
		src := signaling.Presigned(p, base, arns[i/viewersPerChannel], kvs.Viewer, "c-"+strconv.Itoa(i))
		onEvent := func(ev signaling.Event) {
			if ev.Type == signaling.EventReconnected {
				h.mu.Lock()
				h.reconnects[i]++
				h.mu.Unlock()
			}
		}
		opts := &signaling.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}
		if h.callback {
			opts.OnEvent = onEvent
		}
		c, err := signaling.Dial(ctx, src, opts)
		if err != nil {
			return fmt.Errorf("load: signaling client %d: %w", i, err)
		}
		h.clients = append(h.clients, c)
		if !h.callback {
			go func() {
				for ev := range c.Events() {
					onEvent(ev)
				}
			}()
		}
	}
	return nil
}

func (h *signalingHolder) close() {
	for _, c := range h.clients {
		c.Close()
	}
}

// bareHolder holds bare WebSockets, each with the goroutine that reads it
// (a coder/websocket connection answers pings and close frames only while
// read), and dials again when the connection drops.
type bareHolder struct {
	reconnectCounts
	conns []*websocket.Conn
	stop  context.CancelFunc
}

func (h *bareHolder) connect(ctx context.Context, e *Emulator, arns []string, n int) error {
	s := e.signer()
	ctx, h.stop = context.WithCancel(ctx)
	h.reconnects = make([]int, n)
	h.conns = make([]*websocket.Conn, n)
	dial := func(i int) (*websocket.Conn, error) {
		u, err := s.url(ctx, arns[i/viewersPerChannel], kvs.Viewer, "c-"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		return dialWS(ctx, u)
	}
	for i := range n {
		ws, err := dial(i)
		if err != nil {
			return fmt.Errorf("load: bare client %d: %w", i, err)
		}
		h.conns[i] = ws
		go func() {
			for {
				// Read without a context that can end: coder/websocket
				// registers one that can with the context per read, and
				// a registration outlives a dead connection until the
				// context ends. close ends the reads by closing the
				// connections.
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						break
					}
				}
				ws.CloseNow()
				for {
					if ctx.Err() != nil {
						return
					}
					var err error
					if ws, err = dial(i); err == nil {
						break
					}
					time.Sleep(time.Duration(50+rand.IntN(50)) * time.Millisecond)
				}
				h.mu.Lock()
				h.conns[i] = ws
				h.reconnects[i]++
				h.mu.Unlock()
			}
		}()
	}
	return nil
}

func (h *bareHolder) close() {
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.conns {
		ws.CloseNow()
	}
}

func memoryProgram(ctx context.Context, bin string, counts []int, cycles int, out io.Writer) error {
	e, err := StartEmulator(ctx, bin)
	if err != nil {
		return err
	}
	defer e.Stop()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "clients\tkind\theap+stack B/client\tgoroutines/client\tRSS B/client\theap+stack after %d cycles\tgoroutines after\tRSS after\t\n", cycles)
	for _, n := range counts {
		var rs [3]MemoryResult
		for i, mode := range []string{"bare", "events", "callback"} {
			r, err := RunMemory(ctx, e, mode, n, cycles)
			if err != nil {
				tw.Flush()
				return err
			}
			rs[i] = r
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.0f\t%.0f\t%.2f\t%.0f\t\n", n, mode, r.HeapStack, r.Goroutines, r.RSS,
				r.HeapStackAfter, r.GoroutinesAfter, r.RSSAfter)
		}
		for _, r := range rs[1:] {
			if b := rs[0]; b.HeapStack > 0 {
				fmt.Fprintf(tw, "%d\t%s/bare\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", n, r.Mode, r.HeapStack/b.HeapStack,
					r.Goroutines/b.Goroutines, r.RSS/b.RSS, r.HeapStackAfter/b.HeapStackAfter,
					r.GoroutinesAfter/b.GoroutinesAfter, r.RSSAfter/b.RSSAfter)
			}
		}
		if err := e.waitConnections(ctx, 0); err != nil {
			return err
		}
	}
	return tw.Flush()
}
