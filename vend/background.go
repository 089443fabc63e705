package vend

import (
	"context"
	"sync"
	"time"
)

// background runs work that outlives the request that started it (a
// refresh, a lookup whose answer other copies share, a late write), and
// lets its owner end that work and wait for it when it closes. Call init
// before use.
type background struct {
	closing context.Context // ends when close begins
	stop    context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (b *background) init() {
	b.closing, b.stop = context.WithCancel(context.Background())
}

// spawn runs fn in a goroutine that close waits for, with ctx's values, a
// timeout of d (none if zero), and a context that ends when close begins.
// Once close has begun it runs nothing and returns false.
func (b *background) spawn(ctx context.Context, d time.Duration, fn func(ctx context.Context)) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		ctx := context.WithoutCancel(ctx)
		var cancel context.CancelFunc
		if d > 0 {
			ctx, cancel = context.WithTimeout(ctx, d)
		} else {
			ctx, cancel = context.WithCancel(ctx)
		}
		defer cancel()
		defer context.AfterFunc(b.closing, cancel)()
		fn(ctx)
	}()
	return true
}

// shut makes spawn refuse new work from now on.
func (b *background) shut() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// close shuts b, ends the contexts of the work under way, and returns once
// it has all returned. It is safe to call more than once.
func (b *background) close() {
	b.shut()
	b.stop()
	b.wg.Wait()
}
