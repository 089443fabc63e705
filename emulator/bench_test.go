package emulator_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

// benchCandidate is an ICE candidate message payload of a typical size.
var benchCandidate = func() string {
	mid, idx := "0", uint16(0)
	s, _ := kvs.EncodePayload(kvs.ICECandidate{Candidate: "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag abcd network-cost 999", SDPMid: &mid, SDPMLineIndex: &idx})
	return s
}()

// BenchmarkRelay measures relay throughput with one master and ten viewers
// on one channel, clients in the same process: half the messages go from
// the viewers to the master, half from the master to the viewers. One op is
// one message delivered end to end.
func BenchmarkRelay(b *testing.B) {
	e := start(b, emulator.Config{ConnectRate: -1, SDPRate: -1, ICERate: -1, WriteTimeout: time.Minute})
	arn := mustCreate(b, e, "bench")
	m := connectMaster(b, e, arn)
	const viewers = 10
	vs := make([]*peer, viewers)
	ids := make([]string, viewers)
	for i := range vs {
		ids[i] = fmt.Sprintf("viewer-%d", i)
		vs[i] = connectViewer(b, e, arn, ids[i])
	}
	toMaster := b.N / 2
	toViewers := b.N - toMaster
	perViewer := func(i, total int) int { // messages for viewer i out of total spread round-robin
		n := total / viewers
		if i < total%viewers {
			n++
		}
		return n
	}
	viewerFrame := []byte(`{"action":"ICE_CANDIDATE","messagePayload":"` + benchCandidate + `"}`)
	masterFrames := make([][]byte, viewers)
	for i := range masterFrames {
		masterFrames[i] = []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"` + ids[i] + `","messagePayload":"` + benchCandidate + `"}`)
	}
	ctx := context.Background()
	var received atomic.Int64
	var wg sync.WaitGroup
	reader := func(p *peer, n int) {
		defer wg.Done()
		for range n {
			if _, _, err := p.ws.Read(ctx); err != nil {
				b.Errorf("read: %v", err)
				return
			}
			received.Add(1)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(viewerFrame)))
	b.ResetTimer()
	begin := time.Now()
	wg.Add(1 + viewers)
	go reader(m, toMaster)
	for i, v := range vs {
		go reader(v, perViewer(i, toViewers))
	}
	var writers sync.WaitGroup
	writers.Add(1 + viewers)
	go func() {
		defer writers.Done()
		for i := range toViewers {
			if err := m.ws.Write(ctx, websocket.MessageText, masterFrames[i%viewers]); err != nil {
				b.Errorf("master write: %v", err)
				return
			}
		}
	}()
	for i, v := range vs {
		go func() {
			defer writers.Done()
			for range perViewer(i, toMaster) {
				if err := v.ws.Write(ctx, websocket.MessageText, viewerFrame); err != nil {
					b.Errorf("viewer write: %v", err)
					return
				}
			}
		}()
	}
	writers.Wait()
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "msgs/s")
	waitFor(b, "the relay counter", func() bool { return e.Stats().MessagesRelayed == int64(b.N) })
}

// The idle-connection clients run in a child process (this test binary
// again), so that the server process holds only its own sockets: 10,000
// connections need 20,000 descriptors in one process, more than the
// machine's hard limit, and the measurement then counts the server alone.
const rawClientsEnv = "KVSSIGN_EMULATOR_RAW_CLIENTS"

// TestRawClientsHelper is the child: it reads signed URLs from stdin, one a
// line, opens each with a bare WebSocket handshake, answers "ok" or
// "error: …" per line, and holds the sockets until stdin closes. Without
// the environment variable it does nothing.
func TestRawClientsHelper(t *testing.T) {
	if os.Getenv(rawClientsEnv) != "1" {
		return
	}
	var conns []net.Conn
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 64<<10)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		c, err := rawDial(in.Text())
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
		} else {
			conns = append(conns, c)
			fmt.Fprintln(out, "ok")
		}
		out.Flush()
	}
	for _, c := range conns {
		c.Close()
	}
	os.Exit(0)
}

// rawDial opens a signaling connection with a hand-written handshake and
// keeps only the socket.
func rawDial(u string) (net.Conn, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	c, err := net.Dial("tcp", pu.Host)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	rand.Read(key[:])
	req := "GET " + pu.RequestURI() + " HTTP/1.1\r\nHost: " + pu.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	return c, nil
}

// memInUse returns the heap and stack in use after collecting garbage.
func memInUse() (heap, stack uint64) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// BenchmarkIdleConnectionMemory measures the emulator's heap plus stack per
// idle signaling connection: each op opens one viewer connection (ten per
// channel) from a child process and leaves it idle. Run it at scale with
// -benchtime=10000x.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < uint64(b.N+200) {
		b.Skipf("need %d file descriptors, have %d (%v)", b.N+200, lim.Cur, err)
	}
	e := start(b, emulator.Config{ConnectRate: -1})
	channels := (b.N + 9) / 10
	arns := make([]string, channels)
	for i := range arns {
		arns[i] = mustCreate(b, e, fmt.Sprintf("idle-%d", i))
	}
	wss := endpoint(b, e, arns[0], kvs.Viewer, "WSS")
	p := kvs.Presigner{Credentials: exampleCreds()}

	child := exec.Command(os.Args[0], "-test.run=^TestRawClientsHelper$", "-test.bench=^$", "-test.count=1")
	child.Env = append(os.Environ(), rawClientsEnv+"=1")
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		child.Wait()
	})
	replies := bufio.NewScanner(stdout)

	heap0, stack0 := memInUse()
	b.ResetTimer()
	for i := range b.N {
		u, err := p.Presign(context.Background(), wss, arns[i/10], kvs.Viewer, fmt.Sprintf("v%d", i%10))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(stdin, u.URL+"\n"); err != nil {
			b.Fatal(err)
		}
		if !replies.Scan() || replies.Text() != "ok" {
			b.Fatalf("connection %d: %q %v", i, replies.Text(), replies.Err())
		}
	}
	b.StopTimer()
	waitFor(b, "all connections registered", func() bool { return e.Stats().Connections.Viewer == int64(b.N) })
	heap1, stack1 := memInUse()
	heap := float64(int64(heap1)-int64(heap0)) / float64(b.N)
	stack := float64(int64(stack1)-int64(stack0)) / float64(b.N)
	per := heap + stack
	b.ReportMetric(per, "B/conn")
	b.ReportMetric(heap, "heap-B/conn")
	b.ReportMetric(stack, "stack-B/conn")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(b.N), "goroutines/conn")
	if b.N >= 1000 && per > 32<<10 {
		b.Errorf("%.0f bytes per idle connection; the target is at most 32 KiB", per)
	}
}
