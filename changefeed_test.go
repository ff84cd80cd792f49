package lapse_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

// sharedStore is a memory store posing as one shared between nodes: its
// change feed is driven by the test, marks included.
type sharedStore struct {
	*lapsetest.Store
	notes      chan lapse.Change
	handled    chan struct{} // after each note was handed to the manager
	lose       chan error
	subscribed chan struct{} // at each (re)subscription

	mu    sync.Mutex
	marks []uint64      // sent and not yet delivered
	sent  chan struct{} // a mark was sent
}

func newSharedStore() *sharedStore {
	return &sharedStore{Store: lapsetest.NewStore(), notes: make(chan lapse.Change), handled: make(chan struct{}),
		lose: make(chan error), subscribed: make(chan struct{}), sent: make(chan struct{}, 1)}
}

func (s *sharedStore) Changes(ctx context.Context, fn func(lapse.Change)) error {
	s.subscribed <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.lose:
			return err
		case c := <-s.notes:
			fn(c)
			s.handled <- struct{}{}
		}
	}
}

func (s *sharedStore) Mark(ctx context.Context, id uint64) error {
	s.mu.Lock()
	s.marks = append(s.marks, id)
	s.mu.Unlock()
	select {
	case s.sent <- struct{}{}:
	default:
	}
	return nil
}

// note hands one change to the manager and waits until it took it.
func (s *sharedStore) note(c lapse.Change) {
	s.notes <- c
	<-s.handled
}

// pending returns the marks sent and not yet delivered, and forgets them.
func (s *sharedStore) pending() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.marks
	s.marks = nil
	return ids
}

// deliver hands the marks ids to the manager, as if they came back.
func (s *sharedStore) deliver(ids []uint64) {
	for _, id := range ids {
		s.note(lapse.Change{Mark: id})
	}
}

// vouch waits for the manager to send marks and delivers them, as a feed
// that keeps up would. The marks sent before the call are dropped, and it
// waits for two: the second was sent (and stamped) after the first
// reached the feed, which was after the call, so after every change and
// reset the test made before.
func (s *sharedStore) vouch(t *testing.T) {
	t.Helper()
	s.pending()
	for {
		s.mu.Lock()
		n := len(s.marks)
		s.mu.Unlock()
		if n >= 2 {
			s.deliver(s.pending())
			return
		}
		select {
		case <-s.sent:
		case <-time.After(10 * time.Second):
			t.Fatal("the manager sent no mark through its change feed within 10s")
		}
	}
}

// TestSharedStoreCacheFailsClosed checks that a manager on a shared store
// answers from its cache only while its change feed vouches for it: after
// the feed went live, while marks come back within the propagation bound,
// and never once the feed is lost or has stalled for longer than the
// bound. Its clock is fake: the bound passes when the test says so. The
// manager sends marks, and resubscribes after a lost feed, on real
// timers: the test runs in a synctest bubble, whose fake time moves to
// the next timer as soon as everything in it waits.
func TestSharedStoreCacheFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newSharedStore()
		const bound = 100 * time.Millisecond
		m, clock, _ := lapsetest.NewManager(t, lapse.Config{Store: shared, PropagationBound: bound})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- m.Run(runCtx, lapse.RunOptions{SweepEvery: time.Hour, Retention: -1}) }()
		defer func() { stop(); <-done }() // the bubble ends only once Run has
		<-shared.subscribed

		// Another node revokes each session straight in the store.
		refusedOnceEndedElsewhere := func(what string) {
			t.Helper()
			tok, s := create(t, m, lapse.CreateParams{})
			m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
			endElsewhere(t, shared.Store, s.ID)
			_, err := m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
			wantCode(t, what, err, lapse.CodeSessionRevoked)
		}
		refusedOnceEndedElsewhere("verify before the feed is live")
		shared.note(lapse.Change{Reset: true})
		refusedOnceEndedElsewhere("verify once the feed is live, before a mark came back")

		shared.vouch(t)
		tok2, s2 := create(t, m, lapse.CreateParams{})
		m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{}) // cached now
		endElsewhere(t, shared.Store, s2.ID)
		if _, err := m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Fatalf("with a fresh feed and no notice yet, the cache should still answer (to show it is used): %v", err)
		}
		shared.note(lapse.Change{Token: s2.TokenHash}) // the other node's notice
		_, err := m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{})
		wantCode(t, "verify after the change notice", err, lapse.CodeSessionRevoked)

		// The feed stalls: no mark comes back. Within the bound the cache
		// still answers; once the bound has passed, the store does.
		tok3, s3 := create(t, m, lapse.CreateParams{})
		m.Verify(ctx, tok3.Reveal(), lapse.VerifyOptions{})
		endElsewhere(t, shared.Store, s3.ID)
		late := shared.pending() // sent before the stall
		clock.Advance(bound)
		if _, err := m.Verify(ctx, tok3.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Fatalf("at the bound after the last mark came back, the cache should still answer: %v", err)
		}
		clock.Advance(time.Nanosecond)
		_, err = m.Verify(ctx, tok3.Reveal(), lapse.VerifyOptions{})
		wantCode(t, "verify past the bound with a stalled feed", err, lapse.CodeSessionRevoked)

		shared.deliver(late) // the marks sent before the stall come back late: still stale
		refusedOnceEndedElsewhere("verify after late marks came back")

		shared.lose <- errors.New("connection reset") // the feed is lost
		<-shared.subscribed                           // the manager gave up its cache and resubscribes
		refusedOnceEndedElsewhere("verify after the feed was lost")
	})
}

func endElsewhere(t *testing.T, st lapse.Store, id string) {
	t.Helper()
	if _, _, err := st.End(ctx, id, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
}
