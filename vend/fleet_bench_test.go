package vend

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/kvs"
)

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time the test's redis-server has used, from /proc
// (clock ticks of 10 ms, so meaningful over many operations only).
func (r *redisServer) cpu() time.Duration {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkFleetConnection is the request hot path of one copy, with rate
// limits on and a warm cache, alone and with Redis (limits counted there,
// the cache read from the copy's memo of it). cpu-ns/op is this process's
// CPU per request, redis-cpu-ns/op redis-server's.
func BenchmarkFleetConnection(b *testing.B) {
	for _, mode := range []string{"local", "redis"} {
		for _, parallel := range []bool{false, true} {
			name := mode
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) { benchFleet(b, mode == "redis", parallel) })
		}
	}
}

func benchFleet(b *testing.B, withRedis, parallel bool) {
	cfg := baseConfig()
	cfg.Limits = Limits{PerIP: Rate{PerSecond: 1e9, Burst: 1e9}, PerPrincipal: Rate{PerSecond: 1e9, Burst: 1e9}}
	var backend Backend = newFakeBackend("cam-1")
	opts := Options{Credentials: testCreds, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()}
	var rs *redisServer
	if withRedis {
		rs = startRedis(b)
		f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(time.Second)}, fleetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		backend = f.Backend(backend, Cache{})
		opts.Fleet = f
	}
	opts.Backend = backend
	s, err := New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	var rcpu0 time.Duration
	if rs != nil {
		rcpu0 = rs.cpu()
	}
	benchServe(b, s, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`, parallel)
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if rs != nil {
		b.ReportMetric(float64(rs.cpu()-rcpu0)/float64(b.N), "redis-cpu-ns/op")
	}
}

// BenchmarkFleetCacheRead is what reading the shared cache costs: from the
// copy's memo (every request but one per key every 5 s), and from Redis
// itself (a GET and a JSON decode).
func BenchmarkFleetCacheRead(b *testing.B) {
	rs := startRedis(b)
	f, err := newFleet(redisConfig{URL: rs.URL(), Timeout: Duration(time.Second)}, fleetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fb := newFleetBackend(f, newFakeBackend("cam-1"), Cache{}, nil)
	ctx := context.Background()
	if _, err := fb.Connection(ctx, "cam-1", kvs.Viewer, false); err != nil {
		b.Fatal(err)
	}
	b.Run("memo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fb.Connection(ctx, "cam-1", kvs.Viewer, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fb.get(ctx, "kvssign:conn:cam-1|VIEWER"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gcra", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, asked := f.allow(ctx, "limit:bench", 1e9, 1e9); !asked {
				b.Fatal("redis not asked")
			}
		}
	})
}
