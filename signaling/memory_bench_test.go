// What a connected Client costs, against a bare coder/websocket connection
// with the one goroutine that reads it, both connected to an emulator in
// another process, so that only the clients' memory is measured.

package signaling

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// helperEnv marks the test binary run as the benchmark's emulator.
const helperEnv = "KVSSIGN_SIGNALING_EMULATOR_HELPER"

// memoryClients is how many clients each run connects: enough to average
// out the runtime's own allocations, few enough for a quick run.
const memoryClients = 200

// TestEmulatorHelperProcess is not a test: run by BenchmarkClientMemory
// with helperEnv set, it serves an emulator on loopback, prints its URL
// and region, and serves until its stdin closes.
func TestEmulatorHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("the emulator of BenchmarkClientMemory")
	}
	e, err := emulator.New(emulator.Config{ConnectRate: -1, SDPRate: -1, ICERate: -1, MaxViewers: memoryClients})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fmt.Printf("emulator %s %s\n", e.URL(), e.Region())
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// startEmulatorProcess runs the helper and returns the emulator's URL and
// region.
func startEmulatorProcess(b *testing.B) (url, region string) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmulatorHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "emulator" {
			go func() { // drain the rest
				for sc.Scan() {
				}
			}()
			return f[1], f[2]
		}
	}
	b.Fatalf("the emulator process printed no URL: %v", sc.Err())
	return "", ""
}

// BenchmarkClientMemory connects memoryClients viewers to one channel and
// reports, per connected client, the heap in use, the stack in use and the
// goroutines: of a Client (with its defaults, nobody reading Events; and
// with OnEvent), and of a bare
// coder/websocket connection read by one goroutine, the least a client
// that answers pings and sees the close can hold.
func BenchmarkClientMemory(b *testing.B) {
	url, region := startEmulatorProcess(b)
	ctx := context.Background()
	creds := sigv4.Credentials{AccessKeyID: emulator.ExampleAccessKeyID, SecretAccessKey: emulator.ExampleSecretAccessKey}
	api := &kvsapi.Client{BaseURL: url, Region: region, Credentials: creds}
	arn, err := api.CreateChannel(ctx, "memory")
	if err != nil {
		b.Fatal(err)
	}
	ep, err := api.Endpoint(ctx, arn, kvs.Viewer)
	if err != nil {
		b.Fatal(err)
	}
	// A Skew of its own: the sources sign with the one Presigner rather
	// than with a copy each.
	signer := &kvs.Presigner{Credentials: creds, Region: region, Skew: new(kvs.ClockSkew)}
	kinds := []struct {
		name    string
		connect func(id string) (close func(), err error)
	}{
		{"signaling.Client", func(id string) (func(), error) {
			c, err := Dial(ctx, Presigned(signer, ep, arn, kvs.Viewer, id), nil)
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		}},
		{"signaling.Client+OnEvent", func(id string) (func(), error) {
			c, err := Dial(ctx, Presigned(signer, ep, arn, kvs.Viewer, id), &Options{OnEvent: func(Event) {}})
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		}},
		{"bare-websocket", func(id string) (func(), error) {
			s, err := signer.Presign(ctx, ep, arn, kvs.Viewer, id)
			if err != nil {
				return nil, err
			}
			ws, _, err := websocket.Dial(ctx, s.URL, nil)
			if err != nil {
				return nil, err
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, _, err := ws.Read(ctx); err != nil {
						return
					}
				}
			}()
			return func() { ws.Close(websocket.StatusNormalClosure, ""); <-done }, nil
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var heap, stack, goroutines float64
			for i := 0; b.Loop(); i++ {
				h, s, g := measure(b, memoryClients, func(n int) (func(), error) {
					return k.connect(fmt.Sprintf("m%d-%d", i, n))
				})
				heap, stack, goroutines = heap+h, stack+s, goroutines+g
			}
			runs := float64(b.N)
			b.ReportMetric(heap/runs, "heap-B/client")
			b.ReportMetric(stack/runs, "stack-B/client")
			b.ReportMetric((heap+stack)/runs, "B/client")
			b.ReportMetric(goroutines/runs, "goroutines/client")
		})
	}
}

// measure connects n clients and returns what each holds, on average,
// once they are all connected.
func measure(b *testing.B, n int, connect func(int) (func(), error)) (heap, stack, goroutines float64) {
	b.Helper()
	settle := func() (runtime.MemStats, int) {
		// Let goroutines that are ending end, then collect.
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m, runtime.NumGoroutine()
	}
	before, g0 := settle()
	closers := make([]func(), 0, n)
	for i := range n {
		c, err := connect(i)
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		closers = append(closers, c)
	}
	after, g1 := settle()
	for _, c := range closers {
		c()
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return per(after.HeapAlloc, before.HeapAlloc), per(after.StackInuse, before.StackInuse), float64(g1-g0) / float64(n)
}
