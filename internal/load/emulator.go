// Package load holds the emulator's load programs: relay throughput,
// handshake cost, the connection budget and per-client memory. Each runs
// the emulator in a process of its own (kvssign emulate) and its clients in
// the calling process, over loopback only, and stops by itself.
package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// Example credentials the emulator accepts by default.
const (
	accessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// creds are the emulator's default credentials.
var creds = sigv4.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// Emulator is a kvssign emulate process.
type Emulator struct {
	URL  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	errB *lockedBuffer
}

// lockedBuffer keeps the end of the emulator's standard error, for errors.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartEmulator runs bin (a kvssign binary) as "kvssign emulate" on a free
// loopback port with the per-connection rate limits, the viewer limit and
// the control-plane quotas off, plus extra flags, and waits until it
// listens.
func StartEmulator(ctx context.Context, bin string, extra ...string) (*Emulator, error) {
	args := []string{"emulate", "--addr", "127.0.0.1:0", "--no-turn",
		"--connect-rate", "-1", "--sdp-rate", "-1", "--ice-rate", "-1", "--max-viewers", "-1", "--quotas", "off"}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	// The programs sign with AWS's example key, the emulator's default
	// unless the environment names another secret.
	cmd.Env = append(os.Environ(), "KVSSIGN_EMULATOR_SECRET_ACCESS_KEY=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e := &Emulator{cmd: cmd, done: make(chan struct{}), errB: &lockedBuffer{}}
	cmd.Stderr = e.errB
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("load: starting the emulator %s: %w", bin, err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "kvssign emulator listening on "); ok {
				urlc <- u
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		cmd.Wait()
		close(e.done)
	}()
	select {
	case e.URL = <-urlc:
		return e, nil
	case <-e.done:
		return nil, fmt.Errorf("load: the emulator exited before listening: %s", strings.TrimSpace(e.errB.String()))
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	e.Stop()
	return nil, errors.New("load: the emulator did not start listening")
}

// Stop ends the emulator and waits for it.
func (e *Emulator) Stop() {
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
}

// PID returns the emulator's process id.
func (e *Emulator) PID() int { return e.cmd.Process.Pid }

// CPU returns the CPU time the emulator has used so far, user and system.
func (e *Emulator) CPU() (user, sys time.Duration, err error) {
	return processCPU(e.PID())
}

// processCPU reads a process's user and system CPU time from
// /proc/PID/stat.
func processCPU(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("load: reading the emulator's CPU time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: count fields
	// from the last parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("load: /proc/PID/stat: too few fields")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("load: /proc/PID/stat: utime or stime is not a number")
	}
	return time.Duration(u) * clockTick, time.Duration(s) * clockTick, nil
}

// cpuMeter measures the emulator's CPU time over a phase.
type cpuMeter struct {
	e          *Emulator
	user, sys  time.Duration
	start      time.Time
	errOnStart error
}

func (e *Emulator) meter() *cpuMeter {
	m := &cpuMeter{e: e, start: time.Now()}
	m.user, m.sys, m.errOnStart = e.CPU()
	return m
}

// stop returns the wall time, and the emulator's user and system CPU time,
// since the meter started.
func (m *cpuMeter) stop() (wall, user, sys time.Duration, err error) {
	wall = time.Since(m.start)
	if m.errOnStart != nil {
		return 0, 0, 0, m.errOnStart
	}
	u, s, err := m.e.CPU()
	return wall, u - m.user, s - m.sys, err
}

// admin calls one of the emulator's /_emulator/ endpoints and decodes its
// JSON answer into out, if not nil.
func (e *Emulator) admin(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+"/_emulator/"+path, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("load: %s /_emulator/%s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("load: %s /_emulator/%s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// CreateChannel creates a channel through the admin API and returns its ARN.
func (e *Emulator) CreateChannel(ctx context.Context, name string) (string, error) {
	var out struct {
		ChannelARN string `json:"channelArn"`
	}
	err := e.admin(ctx, http.MethodPost, "channels", map[string]string{"name": name}, &out)
	return out.ChannelARN, err
}

// stats is the part of the emulator's counters the programs read.
type stats struct {
	Connections struct {
		Master int64 `json:"master"`
		Viewer int64 `json:"viewer"`
	} `json:"connections"`
	HandshakesAccepted int64 `json:"handshakesAccepted"`
	HandshakesRejected int64 `json:"handshakesRejected"`
	OverBudget         int64 `json:"overBudget"`
	MessagesRelayed    int64 `json:"messagesRelayed"`
	MessagesRejected   int64 `json:"messagesRejected"`
}

func (e *Emulator) stats(ctx context.Context) (stats, error) {
	var s stats
	err := e.admin(ctx, http.MethodGet, "stats", nil, &s)
	return s, err
}

// waitConnections waits until the emulator counts n live connections.
func (e *Emulator) waitConnections(ctx context.Context, n int64) error {
	for {
		s, err := e.stats(ctx)
		if err != nil {
			return err
		}
		if got := s.Connections.Master + s.Connections.Viewer; got == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load: waiting for %d live connections: %w", n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wsBase returns the emulator's WebSocket URL base: ws://HOST:PORT.
func (e *Emulator) wsBase() string {
	return "ws" + strings.TrimPrefix(e.URL, "http")
}

// signer presigns signaling URLs for the emulator.
type signer struct {
	p    kvs.Presigner
	base string
}

func (e *Emulator) signer() *signer {
	return &signer{p: kvs.Presigner{Credentials: creds}, base: e.wsBase()}
}

// url presigns a connection URL for role on the channel arn.
func (s *signer) url(ctx context.Context, arn string, role kvs.Role, clientID string) (string, error) {
	ep := s.base + "/signaling/master/load"
	if role == kvs.Viewer {
		ep = s.base + "/signaling/viewer/load"
	}
	u, err := s.p.Presign(ctx, ep, arn, role, clientID)
	return u.URL, err
}

// describeChannel calls the control plane's DescribeSignalingChannel,
// signed, and returns the HTTP status.
func (e *Emulator) describeChannel(ctx context.Context, s *sigv4.Signer, arn string) (int, error) {
	body := `{"ChannelARN":` + strconv.Quote(arn) + `}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/describeSignalingChannel", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := s.SignRequest(ctx, creds, req, ""); err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
