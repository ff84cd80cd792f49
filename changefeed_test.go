package lapse_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/sqlite"
)

// sharedStore is a SQLite store posing as one shared between nodes: its
// change feed is driven by the test.
type sharedStore struct {
	*sqlite.Store
	notes      chan lapse.TokenHash // a zero hash means "live"
	handled    chan struct{}        // after each note was handed to the manager
	lose       chan error
	subscribed chan struct{} // at each (re)subscription
}

func (s *sharedStore) Changes(ctx context.Context, fn func(lapse.Change)) error {
	s.subscribed <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.lose:
			return err
		case h := <-s.notes:
			fn(lapse.Change{Token: h, Reset: h == (lapse.TokenHash{})})
			s.handled <- struct{}{}
		}
	}
}

// Mark sends nothing: this manager's follower does not use marks.
func (s *sharedStore) Mark(context.Context, uint64) error { return nil }

func (s *sharedStore) note(h lapse.TokenHash) {
	s.notes <- h
	<-s.handled
}

func TestSharedStoreCacheFailsClosed(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	shared := &sharedStore{Store: st, notes: make(chan lapse.TokenHash), handled: make(chan struct{}),
		lose: make(chan error), subscribed: make(chan struct{})}
	clock := lapsetest.NewClock(time.Time{})
	m, err := lapse.New(lapse.Config{Store: shared, Policy: lapsetest.Policy(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go m.Run(runCtx, lapse.RunOptions{SweepEvery: time.Hour, Retention: -1})
	<-shared.subscribed

	tok, s := f2create(t, m)
	m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	// Another node revokes it, straight in the store: before the feed is
	// live the manager must not have served from its cache.
	endElsewhere(t, st, s.ID)
	_, err = m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "verify before the feed is live", err, lapse.CodeSessionRevoked)

	shared.note(lapse.TokenHash{}) // live
	tok2, s2 := f2create(t, m)
	m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{}) // cached now
	endElsewhere(t, st, s2.ID)
	if _, err := m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatalf("with a live feed and no notice yet, the cache should still answer (to show it is used): %v", err)
	}
	shared.note(s2.TokenHash) // the other node's notice
	_, err = m.Verify(ctx, tok2.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "verify after the change notice", err, lapse.CodeSessionRevoked)

	tok3, s3 := f2create(t, m)
	m.Verify(ctx, tok3.Reveal(), lapse.VerifyOptions{})
	shared.lose <- errors.New("connection reset") // the feed is lost
	<-shared.subscribed                           // the manager gave up its cache and resubscribes
	endElsewhere(t, st, s3.ID)
	_, err = m.Verify(ctx, tok3.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "verify after the feed was lost", err, lapse.CodeSessionRevoked)
}

func f2create(t *testing.T, m *lapse.Manager) (lapse.Token, *lapse.Session) {
	t.Helper()
	tok, s, err := m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, s
}

func endElsewhere(t *testing.T, st lapse.Store, id string) {
	t.Helper()
	if _, _, err := st.End(ctx, id, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
}
