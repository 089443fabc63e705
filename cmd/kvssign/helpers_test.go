package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listeningRE finds the address a server command prints when it is ready.
var listeningRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)\n`)

// startCommand runs a long-lived command (emulate, serve) in-process until
// stop or the end of the test, and returns the URL it prints once it
// listens. stop cancels it and returns its exit code; wait bounds both the
// start and the stop.
func startCommand(t *testing.T, wait time.Duration, args ...string) (url string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(wait):
				t.Errorf("%s did not stop within %v of cancellation", args[0], wait)
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(wait)
	for {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stdout, stderr, stop
		}
		select {
		case c := <-done:
			t.Fatalf("%s exited with %d:\n%s\n%s", args[0], c, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no address:\n%s\n%s", args[0], stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
