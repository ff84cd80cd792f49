package lapse

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// freshness tracks how recently a [ChangeFeed] vouched for the cache: the
// send time of the last mark that came back. Every change committed
// before that time has been delivered ahead of the mark.
type freshness struct {
	bound time.Duration
	// at is the clock's time, in Unix nanoseconds, at which the last mark
	// that came back was sent; 0 while none has since the feed went live.
	at atomic.Int64

	mu   sync.Mutex
	next uint64
	sent map[uint64]time.Time // marks on their way, by id
}

// maxMarksInFlight bounds the marks remembered while none comes back.
const maxMarksInFlight = 64

// fresh reports whether a mark sent within the bound before now came back.
func (f *freshness) fresh(now time.Time) bool {
	at := f.at.Load()
	return at != 0 && now.UnixNano()-at <= int64(f.bound)
}

// stale forgets every mark: the feed was lost or has just gone live.
func (f *freshness) stale() {
	f.mu.Lock()
	f.at.Store(0)
	clear(f.sent)
	f.mu.Unlock()
}

// send records a mark sent at now and returns its id.
func (f *freshness) send(now time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = map[uint64]time.Time{}
	}
	if len(f.sent) >= maxMarksInFlight {
		clear(f.sent) // none came back for a while: the oldest are as good as lost
	}
	f.next++
	f.sent[f.next] = now
	return f.next
}

// back records that the mark id came back, and forgets the marks sent
// before it: marks come back in the order they were sent.
func (f *freshness) back(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sentAt, ok := f.sent[id]
	if !ok {
		return // sent before the feed went live again
	}
	for k := range f.sent {
		if k <= id {
			delete(f.sent, k)
		}
	}
	if n := sentAt.UnixNano(); n > f.at.Load() {
		f.at.Store(n)
	}
}

// follow keeps the cache in step with the changes other nodes make,
// resubscribing after a lost feed. The cache serves only while marks
// sent through the feed come back within the bound; while the feed is
// down it is empty and unused.
func (m *Manager) follow(ctx context.Context, feed ChangeFeed, report func(error)) {
	for ctx.Err() == nil {
		sub, cancel := context.WithCancel(ctx)
		marking := make(chan struct{})
		go func() { m.mark(sub, feed); close(marking) }()
		err := feed.Changes(sub, m.changed)
		cancel()
		<-marking
		m.feed.stale()
		m.cache.clear()
		if ctx.Err() != nil {
			return
		}
		report(err)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// changed applies one item of the change feed.
func (m *Manager) changed(c Change) {
	switch {
	case c.Reset:
		m.feed.stale()
		m.cache.clear()
	case c.Mark != 0:
		m.feed.back(c.Mark)
	default:
		m.cache.forget(c.Token)
	}
}

// mark sends a mark through feed every quarter of the bound until ctx is
// done. A mark that cannot be sent is simply not there to come back.
func (m *Manager) mark(ctx context.Context, feed ChangeFeed) {
	t := time.NewTicker(m.feed.bound / 4)
	defer t.Stop()
	for {
		feed.Mark(ctx, m.feed.send(m.clock.Now()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
