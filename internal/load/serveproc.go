package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// process is a server the serve and storm programs run: kvssign serve, the
// minimal handler, redis-server. Its standard error goes to a file, as a
// production server's log would, so that writing it costs the load
// program nothing.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startProcess starts cmd and waits until ready accepts a line of its
// standard output; it returns what ready took from that line (an
// address).
func startProcess(ctx context.Context, name string, cmd *exec.Cmd, logPath string, ready func(line string) (string, bool)) (*process, string, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("load: %s log: %w", name, err)
	}
	cmd.Stderr = f
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.Close()
		return nil, "", err
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("load: starting %s: %w", name, err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := ready(sc.Text()); ok {
				select {
				case addrc <- strings.TrimSpace(a):
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addrc:
		return p, a, nil
	case <-p.done:
		err = fmt.Errorf("load: %s exited before listening: %s", name, p.logTail())
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("load: %s did not start listening: %s", name, p.logTail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, "", err
}

// prefixed is a ready function for startProcess: the line starts with
// prefix and the address follows it.
func prefixed(prefix string) func(string) (string, bool) {
	return func(line string) (string, bool) { return strings.CutPrefix(line, prefix) }
}

// logTail returns the end of the process's standard error.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return strings.TrimSpace(string(b))
}

// stop interrupts the process and waits for it.
func (p *process) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// kill ends the process at once, as a crash would.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.log.Close()
}

// cpu returns the CPU time the process has used so far.
func (p *process) cpu() (time.Duration, error) {
	u, s, err := processCPU(p.cmd.Process.Pid)
	return u + s, err
}

// peakRSS returns the most resident memory the process has had, in MiB,
// from VmHWM in /proc/PID/status.
func (p *process) peakRSS() (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("load: reading %s's memory: %w", p.name, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				break
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("load: no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}
