package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// StormResult is what one storm measured.
type StormResult struct {
	Devices   int
	GotURL    int             // devices that got a URL within the limit
	Connected int             // of those, devices whose URL connected
	ToURL     []time.Duration // from the start, per device that got one, sorted
	ToConnect []time.Duration // from the start, per device connected, sorted
	Refused   map[int]int     // answers other than 200, by status
	Transport int             // requests that failed below HTTP
	// TransportErrors are those requests by error (addresses left out).
	TransportErrors map[string]int
	// DialFailed counts the URLs that did not connect, by the
	// handshake's status (0: no answer).
	DialFailed map[int]int
	Calls      map[string]int64
	Throttled  int64
	// Errors are the calls KVS refused, by operation: in a storm on
	// existing channels, the throttled ones.
	Errors map[string]int64
	// SteadyCalls are the AWS calls made while every device asked once
	// more, after the storm.
	SteadyCalls int64
	Steady      int
	// Shared are the copies' kvssign_vend_shared_calls_total after the
	// storm, summed, by outcome; Fallbacks their
	// kvssign_vend_redis_fallbacks_total (Redis variants only).
	Shared    map[string]float64
	Fallbacks float64
	// Timeline are the AWS calls made in each second of the storm, by
	// operation: how evenly the copies spend the budget.
	Timeline []callSample
}

// callSample is the AWS calls made between the previous sample and At
// (from the storm's start), by operation.
type callSample struct {
	At    time.Duration
	Calls map[string]int64
	total emulatorStats // the emulator's counts at At
}

// sampleOf is the sample of the calls in s since prev, at at.
func sampleOf(s, prev emulatorStats, at time.Duration) callSample {
	sample := callSample{At: at, Calls: map[string]int64{}, total: s}
	for op, n := range s.Calls {
		if d := n - prev.Calls[op]; d > 0 && !strings.HasPrefix(op, "Connect") {
			sample.Calls[op] = d
		}
	}
	return sample
}

// calls is the number of AWS calls in the storm.
func (r StormResult) calls() int64 {
	var n int64
	for _, c := range r.Calls {
		n += c
	}
	return n
}

// emulatorStats are the emulator's counters the storm reads.
type emulatorStats struct {
	Calls     map[string]int64 `json:"calls"`
	Errors    map[string]int64 `json:"errors"`
	Throttled int64            `json:"throttled"`
}

// emulatorCounts reads the emulator's calls and errors by operation and
// its throttles.
func emulatorCounts(ctx context.Context, e *Emulator) (emulatorStats, error) {
	var s emulatorStats
	err := e.admin(ctx, http.MethodGet, "stats", nil, &s)
	return s, err
}

// runStorm starts a fleet, lets every device ask at once, and then asks
// once more from every device to count the calls at steady state.
func runStorm(ctx context.Context, bin string, cfg StormConfig) (StormResult, error) {
	res := StormResult{Devices: cfg.Devices, Refused: map[int]int{}}
	f, err := startStormFleet(ctx, bin, cfg)
	if err != nil {
		return res, err
	}
	defer f.stop()
	s0, err := emulatorCounts(ctx, f.e)
	if err != nil {
		return res, err
	}
	d := &devices{f: f, cfg: cfg, client: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1},
		Timeout:   30 * time.Second,
	}, refused: map[int]int{}, dialFailed: map[int]int{}, transportErrors: map[string]int{}}
	sctx, cancel := context.WithTimeout(ctx, cfg.Limit)
	defer cancel()
	var timeline chan []callSample
	if cfg.Timeline {
		timeline = make(chan []callSample)
		go func() { timeline <- callsEachSecond(sctx, f.e, s0) }()
	}
	start := time.Now()
	d.storm(sctx)
	cancel()
	s1, err := emulatorCounts(ctx, f.e)
	if err != nil {
		return res, err
	}
	if timeline != nil {
		res.Timeline = <-timeline
		last := s0
		if n := len(res.Timeline); n > 0 {
			last = res.Timeline[n-1].total
		}
		res.Timeline = append(res.Timeline, sampleOf(s1, last, time.Since(start)))
	}
	res.Calls, res.Errors = map[string]int64{}, map[string]int64{}
	for op, n := range s1.Calls {
		// The WebSocket connections count as calls too; only the
		// control plane's are AWS calls of the copies.
		if n-s0.Calls[op] > 0 && !strings.HasPrefix(op, "Connect") {
			res.Calls[op] = n - s0.Calls[op]
		}
		if e := s1.Errors[op] - s0.Errors[op]; e > 0 && !strings.HasPrefix(op, "Connect") {
			res.Errors[op] = e
		}
	}
	res.Throttled = s1.Throttled - s0.Throttled
	res.GotURL, res.Connected = len(d.toURL), len(d.toConnect)
	res.ToURL, res.ToConnect = d.toURL, d.toConnect
	slices.Sort(res.ToURL)
	slices.Sort(res.ToConnect)
	res.Refused, res.DialFailed, res.TransportErrors = d.refused, d.dialFailed, d.transportErrors
	for _, n := range d.transportErrors {
		res.Transport += n
	}
	if f.redis != nil {
		if res.Shared, res.Fallbacks, err = fleetCounts(ctx, f); err != nil {
			return res, err
		}
	}
	res.Steady = d.steady(ctx)
	s2, err := emulatorCounts(ctx, f.e)
	if err != nil {
		return res, err
	}
	for op, n := range s2.Calls {
		if !strings.HasPrefix(op, "Connect") {
			res.SteadyCalls += n - s1.Calls[op]
		}
	}
	return res, nil
}

// callsEachSecond reads the emulator's calls about every second until ctx
// ends, and returns the AWS calls made since s0, by operation, sample by
// sample. On busy cores a read can take a while: each sample notes when it
// was read.
func callsEachSecond(ctx context.Context, e *Emulator, s0 emulatorStats) []callSample {
	var out []callSample
	prev, start := s0, time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		s, err := emulatorCounts(ctx, e)
		if err != nil {
			return out
		}
		out = append(out, sampleOf(s, prev, time.Since(start)))
		prev = s
	}
}

// errorKind is err's message without the addresses and ports it names, so
// that the storm can count failures by kind.
func errorKind(err error) string {
	var b strings.Builder
	for _, f := range strings.Fields(err.Error()) {
		if strings.Count(f, ".") == 3 || strings.Contains(f, "127.0.0.1") || strings.Contains(f, "://") {
			f = "ADDR"
		}
		b.WriteString(f)
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// fleetCounts sums, over the copies, how their KVS read calls were
// answered (shared, leased, alone) and how often they fell back to their
// own cache: why a fleet makes more calls than one copy.
func fleetCounts(ctx context.Context, f *stormFleet) (map[string]float64, float64, error) {
	shared := map[string]float64{}
	var fallbacks float64
	for _, c := range f.copies {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/metrics", nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("load: %s's metrics: %w", c.name, err)
		}
		for _, m := range fams["kvssign_vend_shared_calls_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					shared[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		for _, m := range fams["kvssign_vend_redis_fallbacks_total"].GetMetric() {
			fallbacks += m.GetCounter().GetValue()
		}
	}
	return shared, fallbacks, nil
}

// devices are the simulated devices of one storm.
type devices struct {
	f      *stormFleet
	cfg    StormConfig
	client *http.Client

	mu         sync.Mutex
	toURL      []time.Duration
	toConnect  []time.Duration
	refused    map[int]int
	dialFailed map[int]int
	// transportErrors counts the requests that failed below HTTP by
	// error, with addresses and ports left out.
	transportErrors map[string]int
}

// storm lets every device ask at once, then connect with its URL, a
// bounded number at a time.
func (d *devices) storm(ctx context.Context) {
	start := make(chan struct{})
	slots := make(chan struct{}, max(d.cfg.ConnectWorkers, 1))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range d.cfg.Devices {
		wg.Go(func() {
			<-start
			u, ok := d.ask(ctx, i, true)
			if !ok {
				return
			}
			d.record(&d.toURL, time.Since(t0))
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-slots }()
			ws, err := dialWS(ctx, u)
			if err != nil {
				d.mu.Lock()
				d.dialFailed[statusOf(err)]++
				d.mu.Unlock()
				return
			}
			ws.Close(websocket.StatusNormalClosure, "")
			d.record(&d.toConnect, time.Since(t0))
		})
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
}

func (d *devices) record(into *[]time.Duration, t time.Duration) {
	d.mu.Lock()
	*into = append(*into, t)
	d.mu.Unlock()
}

// steady has every device ask once more, 64 at a time, and returns how
// many got a URL.
func (d *devices) steady(ctx context.Context) int {
	var ok atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < d.cfg.Devices; i = int(next.Add(1)) - 1 {
				if _, got := d.ask(ctx, i, false); got {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// ask asks a copy picked at random, as a load balancer would, for device
// i's URL; with retry, it follows Retry-After (plus up to a second of its
// own jitter, as the header counts whole seconds) until it gets one or
// ctx ends.
func (d *devices) ask(ctx context.Context, i int, retry bool) (string, bool) {
	role := "VIEWER"
	if i < d.cfg.Channels {
		role = "MASTER"
	}
	body := `{"channel":"` + stormChannel(i%d.cfg.Channels) + `","role":"` + role + `"}`
	xff := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	for {
		c := d.f.copies[rand.IntN(len(d.f.copies))]
		u, status, wait, err := d.post(ctx, c.addr, d.f.tokens[i], xff, body)
		switch {
		case err == nil && status == http.StatusOK:
			return u, true
		case err != nil:
			if ctx.Err() != nil {
				return "", false
			}
			d.mu.Lock()
			d.transportErrors[errorKind(err)]++
			d.mu.Unlock()
			wait = time.Second
		default:
			d.mu.Lock()
			d.refused[status]++
			d.mu.Unlock()
		}
		if !retry || wait == 0 {
			return "", false
		}
		select {
		case <-time.After(wait + rand.N(time.Second)):
		case <-ctx.Done():
			return "", false
		}
	}
}

// lateWrite is kvssign serve's default limits.readHeaderTimeout: a copy
// closes a connection whose request has not come by then.
const lateWrite = 5 * time.Second

// errLateWrite marks a request that failed after this program, on busy
// cores, wrote it lateWrite or more after its connection opened (or never
// did): the copy's header timeout ran out before the request came, which
// says more about the load generator than about the copy.
var errLateWrite = errors.New("written late")

// post sends one request and returns the URL, or the status and the
// Retry-After it asked for.
func (d *devices) post(ctx context.Context, addr, token, xff, body string) (string, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/connections", strings.NewReader(body))
	if err != nil {
		return "", 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff)
	// The transport's goroutines report these, and may still be running
	// when Do fails.
	var connected, wrote atomic.Int64
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				connected.Store(time.Now().UnixNano())
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) },
	}))
	resp, err := d.client.Do(req)
	if err != nil {
		c, w := connected.Load(), wrote.Load()
		if w == 0 {
			w = time.Now().UnixNano() // not written yet
		}
		if c != 0 && time.Duration(w-c) >= lateWrite {
			err = fmt.Errorf("%w: %w", errLateWrite, err)
		}
		return "", 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		var wait time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return "", resp.StatusCode, wait, nil
	}
	var out struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.URL == "" {
		return "", 0, 0, fmt.Errorf("load: an answer without a URL: %.200s", b)
	}
	return out.URL, resp.StatusCode, 0, nil
}

// stormTable prints a row per storm.
type stormTable struct {
	out   io.Writer
	tw    *tabwriter.Writer
	notes []string // printed under the table
}

func newStormTable(out io.Writer) *stormTable {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "copies\tredis\tdevices\tgot URL\tconnected\tURL p50 s\tURL p99 s\tURL max s\tconnected max s\trefused, failed\tAWS calls\tthrottled (errors by op)\tsteady calls/req\tshared calls: shared/leased/alone, fallbacks\t")
	return &stormTable{out: out, tw: tw}
}

func (w *stormTable) row(cfg StormConfig, r StormResult) {
	last := func(ds []time.Duration) float64 {
		if len(ds) == 0 {
			return 0
		}
		return ds[len(ds)-1].Seconds()
	}
	q := func(ds []time.Duration, f float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(int(f*float64(len(ds))), len(ds)-1)].Seconds()
	}
	var refused []string
	for _, s := range slices.Sorted(maps.Keys(r.Refused)) {
		refused = append(refused, fmt.Sprintf("%d×%d", r.Refused[s], s))
	}
	if r.Transport > 0 {
		refused = append(refused, fmt.Sprintf("%d×conn", r.Transport))
	}
	if len(refused) == 0 {
		refused = []string{"0"}
	}
	for _, s := range slices.Sorted(maps.Keys(r.DialFailed)) {
		refused = append(refused, fmt.Sprintf("%d×dial%d", r.DialFailed[s], s))
	}
	byOp := func(m map[string]int64) string {
		var ops []string
		for _, op := range slices.Sorted(maps.Keys(m)) {
			ops = append(ops, fmt.Sprintf("%s=%d", abbrevOp(op), m[op]))
		}
		return strings.Join(ops, " ")
	}
	if len(r.TransportErrors) > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(r.TransportErrors)) {
			kinds = append(kinds, fmt.Sprintf("%d× %s", r.TransportErrors[k], k))
		}
		w.notes = append(w.notes, fmt.Sprintf("%d copies, Redis %t: requests failed below HTTP: %s", cfg.Copies, cfg.RedisServer != "", strings.Join(kinds, "; ")))
	}
	if cfg.Timeline {
		w.notes = append(w.notes, fmt.Sprintf("%d copies, Redis %t: AWS calls up to each second (Describe/ICE/Endpoint): %s", cfg.Copies, cfg.RedisServer != "", timeline(r.Timeline)))
	}
	fleet := "-"
	if r.Shared != nil {
		fleet = fmt.Sprintf("%.0f/%.0f/%.0f, %.0f", r.Shared["shared"], r.Shared["leased"], r.Shared["alone"], r.Fallbacks)
	}
	fmt.Fprintf(w.tw, "%d\t%t\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%d (%s)\t%d (%s)\t%.4f\t%s\t\n", cfg.Copies, cfg.RedisServer != "", r.Devices,
		r.GotURL, r.Connected, q(r.ToURL, 0.5), q(r.ToURL, 0.99), last(r.ToURL), last(r.ToConnect), strings.Join(refused, " "),
		r.calls(), byOp(r.Calls), r.Throttled, byOp(r.Errors), float64(r.SteadyCalls)/float64(max(r.Steady, 1)), fleet)
}

func (w *stormTable) flush() error {
	if err := w.tw.Flush(); err != nil {
		return err
	}
	for _, n := range w.notes {
		if _, err := fmt.Fprintln(w.out, n); err != nil {
			return err
		}
	}
	w.notes = nil
	return nil
}

// timeline prints samples as "time: D/I/E", up to the last sample with a
// call.
func timeline(samples []callSample) string {
	last := -1
	for i, s := range samples {
		if len(s.Calls) > 0 {
			last = i
		}
	}
	parts := make([]string, 0, last+1)
	for _, s := range samples[:last+1] {
		parts = append(parts, fmt.Sprintf("%.1fs: %d/%d/%d", s.At.Seconds(), s.Calls["DescribeSignalingChannel"], s.Calls["GetIceServerConfig"], s.Calls["GetSignalingChannelEndpoint"]))
	}
	return strings.Join(parts, ", ")
}

// abbrevOp shortens an AWS operation's name for the table.
func abbrevOp(op string) string {
	switch op {
	case "DescribeSignalingChannel":
		return "Describe"
	case "GetSignalingChannelEndpoint":
		return "Endpoint"
	case "GetIceServerConfig":
		return "ICE"
	}
	return op
}
