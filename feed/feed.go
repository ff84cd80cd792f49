// Package feed tails lapse's event log and hands each new event to the
// subscribers of its session, such as a browser's server-sent-events
// stream. Because it reads the store's log rather than in-process calls,
// it sees changes made by every node sharing the store, and the sweeper's
// expiries, alike.
package feed

import (
	"context"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
)

// Feed fans events out to subscribers by session id. It is safe for
// concurrent use.
type Feed struct {
	log   lapse.EventLog
	every time.Duration

	ready chan struct{}
	mu    sync.Mutex
	subs  map[string]map[*Subscription]struct{}
}

// Subscription receives the events of one session. C is closed when the
// subscription ends: by Close, by the feed stopping, or because the
// subscriber fell too far behind (it should reconnect).
type Subscription struct {
	C       <-chan lapse.Event
	c       chan lapse.Event
	f       *Feed
	id      string
	closing sync.Once
}

// New returns a feed over log that polls it every interval (0 means 50ms).
func New(log lapse.EventLog, every time.Duration) *Feed {
	if every <= 0 {
		every = 50 * time.Millisecond
	}
	return &Feed{log: log, every: every, ready: make(chan struct{}), subs: map[string]map[*Subscription]struct{}{}}
}

// Ready is closed once Run has found the end of the log: events recorded
// after that reach subscribers.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Subscribe returns a subscription to the events of session id.
func (f *Feed) Subscribe(id string) *Subscription {
	c := make(chan lapse.Event, 16)
	s := &Subscription{C: c, c: c, f: f, id: id}
	f.mu.Lock()
	if f.subs[id] == nil {
		f.subs[id] = map[*Subscription]struct{}{}
	}
	f.subs[id][s] = struct{}{}
	f.mu.Unlock()
	return s
}

// Watch subscribes to session id's events and returns the channel and a
// function that ends the subscription: the shape an HTTP stream needs.
func (f *Feed) Watch(id string) (<-chan lapse.Event, func()) {
	s := f.Subscribe(id)
	return s.C, s.Close
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	s.f.drop(s)
	s.f.mu.Unlock()
}

// drop removes s; f.mu must be held.
func (f *Feed) drop(s *Subscription) {
	s.closing.Do(func() {
		delete(f.subs[s.id], s)
		if len(f.subs[s.id]) == 0 {
			delete(f.subs, s.id)
		}
		close(s.c)
	})
}

// Run tails the log from its present end until ctx is done, then closes
// every subscription. Read errors are retried at the next poll.
func (f *Feed) Run(ctx context.Context) error {
	after, err := f.log.LastSeq(ctx)
	for err != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.every):
		}
		after, err = f.log.LastSeq(ctx)
	}
	close(f.ready)
	t := time.NewTicker(f.every)
	defer t.Stop()
	defer f.closeAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			evs, err := f.log.Events(ctx, after, 1000)
			if err != nil || len(evs) == 0 {
				break
			}
			f.publish(evs)
			after = evs[len(evs)-1].Seq
			if len(evs) < 1000 {
				break
			}
		}
	}
}

func (f *Feed) publish(evs []lapse.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		for s := range f.subs[ev.SessionID] {
			select {
			case s.c <- ev:
			default:
				f.drop(s) // too slow: it reconnects and reads the session afresh
			}
		}
	}
}

func (f *Feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, set := range f.subs {
		for s := range set {
			f.drop(s)
		}
	}
}
