package load

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The memory program re-runs this binary to hold its clients.
	if IsMemoryChild() {
		os.Exit(MemoryChild())
	}
	if IsMinimalChild() {
		os.Exit(MinimalChild())
	}
	if IsFloorChild() {
		os.Exit(FloorChild())
	}
	os.Exit(m.Run())
}

// buildKvssign builds the kvssign command for the programs to run as the
// emulator.
func buildKvssign(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kvssign")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/kvssign/kvssign/cmd/kvssign").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/kvssign: %v\n%s", err, out)
	}
	return bin
}

// TestPrograms runs every program in a tiny configuration, so that they
// keep working; the figures are not checked (see BENCHMARKS.md).
func TestPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kvssign and starts emulator processes")
	}
	bin := buildKvssign(t)
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install -y redis-server); the storm's fleet variant needs a real one")
	}
	tests := []struct {
		prog   string
		args   []string
		header string
	}{
		{"relay", []string{"-shapes", "1x2,2x1", "-messages", "200"}, "msgs/s"},
		{"handshake", []string{"-handshakes", "20", "-workers", "2", "-runs", "1", "-floors"}, "net/http"},
		{"budget", []string{"-max-connections", "4", "-extra", "5"}, "refused 503"},
		{"memory", []string{"-clients", "3", "-cycles", "1"}, "heap+stack B/client"}, // with 3 clients the bare heap can measure 0, and the ratios are left out
		{"serve", []string{"-conns", "2", "-requests", "50", "-runs", "1"}, "of minimal"},
		{"storm", []string{"-channels", "3", "-devices", "12", "-copies", "1,2", "-connect-workers", "4", "-max-in-flight", "4", "-max-connections", "8"}, "steady calls/req"},
		{"storm", []string{"-channels", "3", "-devices", "12", "-copies", "2", "-connect-workers", "4", "-redis-server", redis, "-alone=false", "-timeline"}, "AWS calls up to each second"},
	}
	for _, tc := range tests {
		t.Run(tc.prog, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := Main(ctx, bin, tc.prog, tc.args, &out); err != nil {
				t.Fatalf("%s: %v\n%s", tc.prog, err, out.String())
			}
			if !strings.Contains(out.String(), tc.header) {
				t.Errorf("%s printed no table with %q:\n%s", tc.prog, tc.header, out.String())
			}
		})
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	tests := []struct {
		prog string
		args []string
		want string
	}{
		{"nope", nil, "unknown program"},
		{"relay", []string{"-shapes", "3"}, "-shapes"},
		{"relay", []string{"-shapes", "0x1"}, "-shapes"},
		{"memory", []string{"-clients", "10,x"}, "-clients"},
		{"serve", []string{"-conns", "4", "-requests", "2"}, "-requests"},
		{"storm", []string{"-channels", "10", "-devices", "5"}, "-devices"},
		{"storm", []string{"-copies", "0"}, "-copies"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := Main(context.Background(), "/nonexistent/kvssign", tc.prog, tc.args, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Main(%s %v) = %v; want an error about %s", tc.prog, tc.args, err, tc.want)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	user, sys, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if user < 0 || sys < 0 {
		t.Errorf("processCPU = %v, %v; want non-negative times", user, sys)
	}
	if _, _, err := processCPU(-1); err == nil {
		t.Error("processCPU(-1): no error")
	}
}
