// Package batchlog writes log lines in batches: one write system call per
// batch of lines instead of one per line, off the caller's path. kvssign
// serve writes its audit log through it.
package batchlog

import (
	"io"
	"sync"
	"time"
)

// logPending is how many bytes of lines a Writer holds before Write
// waits for the destination to catch up.
const logPending = 256 << 10

// logGather is how long a Writer lets lines gather after the first of
// a batch: under load, tens of lines then share one write; when idle, a
// line waits no longer than this.
const logGather = 2 * time.Millisecond

// A Writer passes what is written to it on to another writer from a
// goroutine of its own, in batches: the lines written within 2ms of the
// first go out in one write. When the destination falls behind by more
// than 256 KiB, Write waits, as a direct write would. Create one with
// [NewWriter] and Close it before exiting; it is safe for concurrent use.
// Each Write is passed on whole, so a log/slog handler, which writes a
// line per call, keeps its lines intact.
type Writer struct {
	w    io.Writer
	mu   sync.Mutex
	room sync.Cond // signalled when the batch is taken
	buf  []byte    // the lines not yet taken, guarded by mu
	// closed is set by Close, guarded by mu.
	closed bool
	err    error // the destination's first error, guarded by mu
	wake   chan struct{}
	done   chan struct{}
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	l := &Writer{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.room.L = &l.mu
	go l.loop()
	return l
}

// Write queues p. It returns the destination's first error, if it has
// failed; the line is then written directly.
func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.buf) > 0 && len(l.buf)+len(p) > logPending && !l.closed {
		l.room.Wait()
	}
	if closed := l.closed; closed || l.err != nil {
		// After Close, or once the destination fails, nothing is queued:
		// the caller sees what the destination does, after the lines
		// queued before.
		l.mu.Unlock()
		if closed {
			<-l.done
		}
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	// Under mu, so that Close cannot close wake in between.
	select {
	case l.wake <- struct{}{}:
	default:
	}
	l.mu.Unlock()
	return len(p), nil
}

// loop writes each batch, swapping two buffers so that lines keep
// arriving while one is written.
func (l *Writer) loop() {
	defer close(l.done)
	var spare []byte
	for {
		_, ok := <-l.wake
		if ok {
			time.Sleep(logGather)
		}
		l.mu.Lock()
		batch := l.buf
		l.buf = spare[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		if len(batch) > 0 {
			if _, err := l.w.Write(batch); err != nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		}
		spare = batch
		if cap(spare) > 4*logPending {
			spare = nil // after a burst, do not keep a large buffer
		}
		if !ok {
			return
		}
	}
}

// Close writes the lines still queued and stops the goroutine; later
// writes go straight to the destination. It returns the destination's
// first error.
func (l *Writer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.err
	}
	l.closed = true
	l.room.Broadcast()
	close(l.wake)
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
