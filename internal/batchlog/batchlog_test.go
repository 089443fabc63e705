package batchlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// lockedWriter is a bytes.Buffer safe to read while a Writer writes.
type lockedWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	err    error
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	return w.b.Write(p)
}

func TestWriterKeepsEveryLineWhole(t *testing.T) {
	dst := &lockedWriter{}
	lw := NewWriter(dst)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(lw, "writer %d line %d %s\n", g, i, strings.Repeat("x", i%300))
			}
		})
	}
	wg.Wait()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(dst.b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines; want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "writer %d line %d %s", &g, &i, &pad); err != nil && i%300 != 0 {
			t.Fatalf("broken line %q: %v", l, err)
		}
		if i != next[g] || len(pad) != i%300 {
			t.Fatalf("line %q out of order or cut; want line %d of writer %d", l, next[g], g)
		}
		next[g]++
	}
	if dst.writes >= writers*lines {
		t.Errorf("%d writes for %d lines; want them batched", dst.writes, writers*lines)
	}
	// After Close, lines go straight through.
	fmt.Fprintln(lw, "after close")
	if !strings.HasSuffix(dst.b.String(), "after close\n") {
		t.Error("a line written after Close was not written")
	}
	if err := lw.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWriterReportsTheDestinationsError(t *testing.T) {
	boom := errors.New("disk full")
	dst := &lockedWriter{err: boom}
	lw := NewWriter(dst)
	fmt.Fprintln(lw, "lost")
	if err := lw.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v; want %v", err, boom)
	}
	if _, err := fmt.Fprintln(lw, "after"); !errors.Is(err, boom) {
		t.Errorf("Write after a failure = %v; want %v", err, boom)
	}
}

func ExampleNewWriter() {
	lw := NewWriter(os.Stdout)
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable example
			}
			return a
		},
	}))
	log.Info("vended", "channel", "cam-1")
	lw.Close() // writes what is still queued
	// Output: level=INFO msg=vended channel=cam-1
}
