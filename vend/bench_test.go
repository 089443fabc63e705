package vend

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
)

// benchWriter is a ResponseWriter that keeps nothing.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// benchServe runs the handler b.N times on one request, on one goroutine
// (so ns/op is the CPU time of a request), or with parallel on
// GOMAXPROCS goroutines (ns/op is then wall time per request).
func benchServe(b *testing.B, s *Server, token, body string, parallel bool) {
	b.Helper()
	b.ReportAllocs()
	loop := func(next func() bool) {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:8080/v1/connections", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		br := strings.NewReader(body)
		w := &benchWriter{h: make(http.Header, 16)}
		for next() {
			br.Reset(body)
			r.Body = io.NopCloser(br)
			r.ContentLength = int64(len(body))
			clear(w.h)
			s.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	}
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
		return
	}
	loop(b.Loop)
}

func newBenchServer(b *testing.B, opts Options, logger *slog.Logger) *Server {
	b.Helper()
	if opts.Backend == nil {
		opts.Backend = newFakeBackend("cam-1")
	}
	if opts.Credentials == nil {
		opts.Credentials = testCreds
	}
	opts.Logger = logger
	opts.Registry = prometheus.NewRegistry()
	s, err := New(baseConfig(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkConnection is the whole hot path with an in-memory backend:
// auth, rate limits (on), JSON in and out, signing, metrics, and the
// audit line formatted as JSON (to io.Discard).
func BenchmarkConnection(b *testing.B) {
	s := newBenchServer(b, Options{}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	benchServe(b, s, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`, false)
}

// BenchmarkConnectionParallel is BenchmarkConnection on every core.
func BenchmarkConnectionParallel(b *testing.B) {
	s := newBenchServer(b, Options{}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	benchServe(b, s, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`, true)
}

// BenchmarkConnectionNoLog is the same without the audit line, to show
// what logging costs.
func BenchmarkConnectionNoLog(b *testing.B) {
	s := newBenchServer(b, Options{}, slog.New(slog.DiscardHandler))
	benchServe(b, s, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`, false)
}

// BenchmarkConnectionMaster is a master request (no client id).
func BenchmarkConnectionMaster(b *testing.B) {
	s := newBenchServer(b, Options{}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	benchServe(b, s, tokCamera, `{"channel":"cam-1","role":"MASTER"}`, false)
}

// BenchmarkConnectionResolver goes through the awskvs resolver's warm
// cache, with the emulator behind it (no call is made once warm).
func BenchmarkConnectionResolver(b *testing.B) {
	emu := emulatortest.New(b, emulator.Config{})
	if _, err := emu.CreateChannel("cam-1", 0); err != nil {
		b.Fatal(err)
	}
	backend, creds := resolverForBench(b, emu)
	s := newBenchServer(b, Options{Backend: backend, Credentials: creds}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	// Warm.
	w := &benchWriter{h: http.Header{}}
	r, _ := http.NewRequest("POST", "/v1/connections", bytes.NewReader([]byte(`{"channel":"cam-1","role":"VIEWER"}`)))
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("Authorization", "Bearer "+tokAlice)
	r.Header.Set("Content-Type", "application/json")
	s.ServeHTTP(w, r)
	if w.status != 200 {
		b.Fatalf("warm-up: %d", w.status)
	}
	before := emu.Stats()
	benchServe(b, s, tokAlice, `{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`, false)
	b.StopTimer()
	if d := upstreamCalls(emu.Stats()) - upstreamCalls(before); d != 0 {
		b.Errorf("%d AWS calls during the benchmark; want 0", d)
	}
}
